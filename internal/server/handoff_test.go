package server

import (
	"context"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A stall makes the command ECHO <token> block, on whatever goroutine runs
// it, until the test releases it: a command as long as the test needs.
type stall struct {
	entered chan struct{} // closed when the command started
	release chan struct{}
	once    sync.Once
	min     time.Duration // the command lasts at least this long
}

var (
	stallsMu sync.Mutex
	stalls   = map[string]*stall{}
)

func init() {
	testHookCommand = func(args [][]byte) {
		if len(args) != 2 || !foldEq(args[0], "echo") {
			return
		}
		stallsMu.Lock()
		st := stalls[string(args[1])]
		stallsMu.Unlock()
		if st == nil {
			return
		}
		start := time.Now()
		st.once.Do(func() { close(st.entered) })
		select {
		case <-st.release:
		case <-time.After(60 * time.Second):
		}
		time.Sleep(st.min - time.Since(start))
	}
}

// newStall registers token; the stall is released at the end of the test
// at the latest.
func newStall(t *testing.T, token string, min time.Duration) *stall {
	st := &stall{entered: make(chan struct{}), release: make(chan struct{}), min: min}
	stallsMu.Lock()
	stalls[token] = st
	stallsMu.Unlock()
	t.Cleanup(func() {
		st.free()
		stallsMu.Lock()
		delete(stalls, token)
		stallsMu.Unlock()
	})
	return st
}

func (st *stall) free() {
	select {
	case <-st.release:
	default:
		close(st.release)
	}
}

func (st *stall) wait(t *testing.T) {
	t.Helper()
	select {
	case <-st.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the stalling command never ran")
	}
}

// handoffs counts the event loops' hand-overs (0 on the goroutine engine).
func (ts *testServer) handoffs() int64 {
	var n int64
	if ts.srv.ep != nil {
		for _, l := range ts.srv.ep.loops {
			n += l.handoffs.Load()
		}
	}
	return n
}

// TestLongCommandDoesNotStallOthers: while one connection runs a long
// command in the middle of a pipeline, every other connection — those of
// the same event loop included — is served; then the long command's
// connection gets all its replies in order (MULTI/EXEC included), stays
// open past the idle timeout it spent running, and its batch's version is
// released.
func TestLongCommandDoesNotStallOthers(t *testing.T) {
	ts := startServer(t, Config{IdleTimeout: 400 * time.Millisecond}, testData)
	v := ts.cur.Acquire()
	v.Release()
	baseRefs := v.Refs()
	st := newStall(t, "stall-1", 1200*time.Millisecond)
	a := dial(t, ts.addr)
	var req []byte
	req = append(req, cmdBytes("GET", "s")...)
	req = append(req, cmdBytes("ECHO", "stall-1")...)
	req = append(req, cmdBytes("GET", "num")...)
	req = append(req, cmdBytes("MULTI")...)
	req = append(req, cmdBytes("GET", "user:1")...)
	req = append(req, cmdBytes("KEYS", "user:*")...)
	req = append(req, cmdBytes("EXEC")...)
	req = append(req, cmdBytes("PING")...)
	if _, err := a.nc.Write(req); err != nil {
		t.Fatal(err)
	}
	st.wait(t)
	if got := v.Refs(); got != baseRefs+1 {
		t.Errorf("version refs during the batch = %d, want %d", got, baseRefs+1)
	}
	// More connections than loops: some share the stalled one's loop.
	n := 2*runtime.GOMAXPROCS(0) + 1
	loops := map[*loop]bool{}
	for i := range n {
		b := dial(t, ts.addr)
		if got := b.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("connection %d: PING = %q", i, got)
		}
		if got := b.do("GET s"); got != "$5\r\nhello\r\n" {
			t.Fatalf("connection %d: GET s = %q", i, got)
		}
		for _, c := range ts.srv.clients() {
			if c.ep != nil {
				loops[c.ep.fc.l] = true
			}
		}
	}
	if ts.srv.ep != nil {
		// Every loop served some of them: the stalled connection's too.
		if len(loops) != len(ts.srv.ep.loops) {
			t.Fatalf("connections on %d loops of %d", len(loops), len(ts.srv.ep.loops))
		}
		if ts.handoffs() == 0 {
			t.Error("no event loop was handed over")
		}
	}
	st.free()
	a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	want := []string{"$5\r\nhello\r\n", "$7\r\nstall-1\r\n", "$2\r\n42\r\n", "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n"}
	for i, w := range want {
		r, err := readReply(a.br)
		if err != nil || string(r) != w {
			t.Fatalf("reply %d = %q, %v; want %q", i, r, err, w)
		}
	}
	r, err := readReply(a.br)
	if err != nil || !strings.HasPrefix(string(r), "*2\r\n$5\r\nalice\r\n*3\r\n") {
		t.Fatalf("EXEC = %q, %v", r, err)
	}
	if r, err := readReply(a.br); err != nil || string(r) != "+PONG\r\n" {
		t.Fatalf("PING = %q, %v", r, err)
	}
	// Served again as usual, by the loop it went back to.
	if got := a.do("GET user:2"); got != "$3\r\nbob\r\n" {
		t.Fatalf("GET after the long batch = %q", got)
	}
	waitFor(t, "the version released", func() bool { return v.Refs() == baseRefs })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLongCommandsAcrossFullSocket: a pipeline with long commands (a stall,
// KEYS) whose replies far exceed the socket buffers, read late: the batch
// runs off the loop, waits for the socket, resumes on the loop, goes off
// it again; every reply arrives complete and in order.
func TestLongCommandsAcrossFullSocket(t *testing.T) {
	big := strings.Repeat("v", 200<<10)
	data := append([]testPair{{key: "big", value: big}}, testData...)
	ts := startServer(t, Config{OutputFlushSize: 64 << 10}, data)
	newStall(t, "stall-2", 200*time.Millisecond).free()
	newStall(t, "stall-3", 200*time.Millisecond).free()
	c := dial(t, ts.addr)
	const n = 60 // 12 MB of replies
	var req []byte
	for i := range n {
		req = append(req, cmdBytes("GET", "big")...)
		switch i {
		case 5:
			req = append(req, cmdBytes("ECHO", "stall-2")...)
		case 30:
			req = append(req, cmdBytes("KEYS", "user:1*")...)
		case 50:
			req = append(req, cmdBytes("ECHO", "stall-3")...)
		default:
			req = append(req, cmdBytes("ECHO", strconv.Itoa(i))...)
		}
	}
	pipelineBigReplies(t, c, req, n, big, func(i int, r []byte) {
		var want string
		switch i {
		case 5:
			want = "$7\r\nstall-2\r\n"
		case 30:
			want = "*2\r\n$6\r\nuser:1\r\n$7\r\nuser:10\r\n"
			if string(r) == "*2\r\n$7\r\nuser:10\r\n$6\r\nuser:1\r\n" {
				return // KEYS in store order
			}
		case 50:
			want = "$7\r\nstall-3\r\n"
		default:
			want = "$" + strconv.Itoa(len(strconv.Itoa(i))) + "\r\n" + strconv.Itoa(i) + "\r\n"
		}
		if string(r) != want {
			t.Fatalf("reply %d: %q; want %q", i, r, want)
		}
	})
	if ts.srv.ep != nil && ts.handoffs() == 0 {
		t.Error("no event loop was handed over")
	}
}

// TestKillDuringLongCommand: CLIENT KILL of a connection running a long
// command closes it once the command returned, and the server forgets it.
func TestKillDuringLongCommand(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	st := newStall(t, "stall-4", 0)
	a := dial(t, ts.addr)
	id := strings.TrimSuffix(strings.TrimPrefix(a.do("CLIENT ID"), ":"), "\r\n")
	a.nc.Write([]byte("ECHO stall-4\r\nPING\r\n"))
	st.wait(t)
	b := dial(t, ts.addr)
	if got := b.do("CLIENT KILL ID " + id); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL = %q", got)
	}
	st.free()
	a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(a.br)
	if err != nil && !isReset(err) {
		t.Fatalf("killed connection: %v after %q", err, rest)
	}
	if strings.Contains(string(rest), "PONG") {
		t.Errorf("the killed connection ran the command after the kill: %q", rest)
	}
	waitFor(t, "the killed connection to go", func() bool { return len(ts.srv.clients()) == 1 })
	if got := b.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING = %q", got)
	}
}

// TestShutdownWaitsForLongCommand: a graceful shutdown lets a connection
// running a long command (off its event loop) finish its batch and write
// the replies.
func TestShutdownWaitsForLongCommand(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	st := newStall(t, "stall-5", 0)
	a := dial(t, ts.addr)
	a.nc.Write([]byte("ECHO stall-5\r\nGET s\r\n"))
	st.wait(t)
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned during the batch: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	st.free()
	a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(a.br)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if want := "$7\r\nstall-5\r\n$5\r\nhello\r\n"; string(got) != want {
		t.Errorf("replies = %q, want %q", got, want)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// TestMayRunLong: what the loops hand off before running it.
func TestMayRunLong(t *testing.T) {
	c := &conn{}
	many := []string{"MGET"}
	for i := range longArgs + 1 {
		many = append(many, strconv.Itoa(i))
	}
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"GET", "k"}, false},
		{[]string{"keys", "*"}, true},
		{[]string{"KEYS", "a*"}, true},
		{[]string{"SCAN", "0"}, false},
		{[]string{"SCAN", "0", "COUNT", "100"}, false},
		{[]string{"scan", "0", "match", "x", "count", "1000000000"}, true},
		{[]string{"SCAN", "0", "COUNT", "99999999999999999999999"}, true},
		{[]string{"CLUSTER", "COUNTKEYSINSLOT", "5"}, true},
		{[]string{"cluster", "getkeysinslot", "5", "10"}, false},
		{[]string{"cluster", "getkeysinslot", "5", "100000"}, true},
		{[]string{"CLUSTER", "INFO"}, false},
		{[]string{"HRANDFIELD", "h", "-1000000"}, true},
		{[]string{"HRANDFIELD", "h", "5"}, false},
		{[]string{"EXEC"}, false},
		{many, true},
	}
	for _, tc := range cases {
		var args [][]byte
		for _, a := range tc.args {
			args = append(args, []byte(a))
		}
		if got := mayRunLong(c, args); got != tc.want {
			t.Errorf("mayRunLong(%.40q) = %v, want %v", tc.args, got, tc.want)
		}
	}
	c.multi = true
	if mayRunLong(c, [][]byte{[]byte("KEYS"), []byte("*")}) {
		t.Error("KEYS queued by MULTI is long")
	}
	c.queue = [][][]byte{{[]byte("GET"), []byte("k")}}
	if mayRunLong(c, [][]byte{[]byte("EXEC")}) {
		t.Error("EXEC of a GET is long")
	}
	c.queue = append(c.queue, [][]byte{[]byte("KEYS"), []byte("*")})
	if !mayRunLong(c, [][]byte{[]byte("exec")}) {
		t.Error("EXEC of KEYS is not long")
	}
}
