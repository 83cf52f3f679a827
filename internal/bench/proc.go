package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/batchkv/batchkv/internal/proc"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// server is a process the benchmark started and must stop.
type server struct {
	*proc.Process
	addr string
}

func startServer(name string, cpu string, argsFor func(port int) []string) (*server, error) {
	var lastErr error
	for range 4 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("bench: %s: pick a port: %w", name, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		argv := argsFor(port)
		if cpu != "" {
			// taskset execs the server: the pid stays the server's.
			argv = append([]string{"taskset", "-c", cpu}, argv...)
		}
		pr, err := proc.Start(name, exec.Command(argv[0], argv[1:]...), 64<<10)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		s := &server{Process: pr, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		err = s.waitReady(60 * time.Second)
		if err == nil {
			return s, nil
		}
		s.stop()
		lastErr = fmt.Errorf("%w\n--- %s output ---\n%s", err, name, s.Output())
	}
	return nil, lastErr
}

func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if exited, err := s.Exited(); exited {
			return fmt.Errorf("bench: %s exited before answering PING: %v", s.Name, err)
		}
		last = ping(s.addr)
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s at %s not ready after %v: %v", s.Name, s.addr, timeout, last)
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf[:n])
	}
	return nil
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits for the exit.
func (s *server) stop() {
	if s != nil {
		s.Stop(5 * time.Second)
	}
}

// cpuTime returns the CPU time (user + system) the process has used, from
// /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	// The command name (field 2) may hold spaces: split after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// rssBytes returns the process's resident memory (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("bench: /proc/%d/status has no VmRSS", pid)
}

var execLookPath = exec.LookPath

// selfCPU returns the CPU time (user + system) this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
