package proc

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestStopEscalates(t *testing.T) {
	// A process that ignores SIGTERM is killed after the grace period.
	p, err := Start("stubborn", exec.Command("sh", "-c", `trap "" TERM; echo started; sleep 30`), 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Output(), "started") {
		if time.Now().After(deadline) {
			t.Fatal("no output")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	p.Stop(200 * time.Millisecond)
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Stop took %s", d)
	}
	if exited, err := p.Exited(); !exited || err == nil {
		t.Fatalf("Exited() = %v, %v; want a killed process", exited, err)
	}
	p.Stop(time.Second) // stopping twice is fine
}

func TestStopPolite(t *testing.T) {
	p, err := Start("polite", exec.Command("sleep", "30"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); exited {
		t.Fatal("exited at once")
	}
	start := time.Now()
	p.Stop(10 * time.Second)
	if time.Since(start) > 5*time.Second {
		t.Fatal("SIGTERM did not stop sleep")
	}
	<-p.Done()
}

func TestOutputBounded(t *testing.T) {
	p, err := Start("chatty", exec.Command("sh", "-c", "yes | head -c 100000"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if n := len(p.Output()); n != 1000 {
		t.Fatalf("kept %d bytes, want 1000", n)
	}
	if _, err := Start("missing", exec.Command("/nonexistent/binary"), 0); err == nil {
		t.Fatal("started a missing binary")
	}
}
