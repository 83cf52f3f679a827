package server

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/parity.golden from a live redis-server 7.0")

// goldenFile holds redis-server 7.0.15's replies to every parity session,
// so the parity tables also run where redis-server is not installed. Format:
// per session, one `> "request"` line per request (Go-quoted), one
// `< "reply"` line per reply, then a blank line.
const goldenFile = "testdata/parity.golden"

func paritySessions() [][]string {
	var sessions [][]string
	for _, session := range parityCases {
		sessions = append(sessions, session, append([]string{"HELLO 3"}, session...))
	}
	return sessions
}

func sessionRequest(session []string) ([]byte, int) {
	var req []byte
	n := 0
	for _, line := range session {
		r, k := parityRequest(line)
		req = append(req, r...)
		n += k
	}
	return req, n
}

// splitReplies splits n concatenated raw replies.
func splitReplies(t testing.TB, b []byte, n int) []string {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(b))
	out := make([]string, n)
	for i := range out {
		r, err := readReply(br)
		if err != nil {
			t.Fatalf("reply %d of %q: %v", i, b, err)
		}
		out[i] = string(r)
	}
	return out
}

func formatGolden(sessions [][]string, replies [][]string) []byte {
	var b bytes.Buffer
	for i, s := range sessions {
		for _, line := range s {
			fmt.Fprintf(&b, "> %s\n", strconv.Quote(line))
		}
		for _, r := range replies[i] {
			fmt.Fprintf(&b, "< %s\n", strconv.Quote(r))
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// TestParityGolden checks batchkv-server against Redis's recorded replies;
// -update records them again from a live redis-server (a read-only replica
// holding the same data).
func TestParityGolden(t *testing.T) {
	sessions := paritySessions()
	if *update {
		ref := redisServer(t, testData)
		var replies [][]string
		for _, s := range sessions {
			req, n := sessionRequest(s)
			replies = append(replies, splitReplies(t, normalize(exchange(t, ref, req, n, false)), n))
		}
		os.MkdirAll(filepath.Dir(goldenFile), 0o755)
		if err := os.WriteFile(goldenFile, formatGolden(sessions, replies), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{}, testData)
	var replies [][]string
	for _, s := range sessions {
		req, n := sessionRequest(s)
		replies = append(replies, splitReplies(t, normalize(exchange(t, ts.addr, req, n, false)), n))
	}
	got := formatGolden(sessions, replies)
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) && i < len(wl); i++ {
		if gl[i] != wl[i] {
			t.Fatalf("%s:%d differs (or the sessions changed: run with -update):\n got %s\nwant %s", goldenFile, i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("%s: %d lines, got %d (run with -update if the sessions changed)", goldenFile, len(wl), len(gl))
}
