// Package proc runs child processes for tests and the benchmark: each one
// owned by its starter, its output kept (bounded) for error messages, stopped
// politely (SIGTERM, then SIGKILL after a grace period) and always reaped.
package proc

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a started child process.
type Process struct {
	Name string
	Cmd  *exec.Cmd

	out  *output
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// Start starts cmd, collecting its stdout and stderr (up to keep bytes; 0
// means 4 MiB) and waiting for it in a goroutine owned by the Process. The
// child is killed by the kernel if the starting process dies first.
func Start(name string, cmd *exec.Cmd, keep int) (*Process, error) {
	if keep <= 0 {
		keep = 4 << 20
	}
	p := &Process{Name: name, Cmd: cmd, out: &output{limit: keep}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.WaitDelay == 0 {
		// A grandchild that inherited the output pipe must not keep Wait
		// (and so Stop) waiting after the process itself is gone.
		cmd.WaitDelay = time.Second
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Output returns what the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and Wait's error if so.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, then SIGKILL if the process has not exited within
// grace, and waits for it.
func (p *Process) Stop(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// output collects a process's output; os/exec copies into it from its own
// goroutine while the owner may read it. Past limit, the rest is dropped:
// the start is what error messages need.
type output struct {
	mu    sync.Mutex
	b     bytes.Buffer
	limit int
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := o.limit - o.b.Len(); room > 0 {
		o.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
