package hostile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/store"
	"github.com/batchkv/batchkv/test/hostile/harness"
)

// TestAuthParity: with a password from a file or from the environment,
// batchkv-server answers the unauthenticated and wrong-password cases
// byte-for-byte as redis-server 7 with requirepass does.
func TestAuthParity(t *testing.T) {
	const pass = "s3cret-p@ss"
	// redistest waits for a PONG: the password is set once it runs.
	r := redistest.StartRedis(t)
	redistest.Load(t, r.Addr, []store.Entry{{Key: []byte("k"), Value: store.AppendString(nil, []byte("v"))}})
	admin, err := redistest.Dial(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := admin.DoString("CONFIG", "SET", "requirepass", pass); err != nil || string(got) != "+OK\r\n" {
		t.Fatalf("CONFIG SET requirepass: %q, %v", got, err)
	}
	admin.Close()
	passFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two copies: Pebble locks a directory against a second process.
	fromFile := harness.StartServer(t, "--dataset", smallDataset(t, "k", "v"), "--requirepass-file", passFile)
	fromEnv := harness.StartServerEnv(t, []string{"BATCHKV_REQUIREPASS=" + pass}, "--dataset", smallDataset(t, "k", "v"))
	sessions := [][][]string{
		{{"GET", "k"}, {"AUTH", "wrong"}, {"GET", "k"}, {"AUTH", pass}, {"PING"}},
		{{"AUTH", "default", "wrong"}, {"AUTH", "nobody", pass}, {"AUTH", "default", pass}, {"PING"}},
		{{"HELLO", "3"}, {"HELLO", "3", "AUTH", "default", "wrong"}, {"HELLO", "2", "AUTH", "default", pass}},
		{{"PING"}, {"AUTH"}, {"AUTH", "a", "b", "c"}, {"CLIENT", "ID"}, {"QUIT"}},
	}
	for i, sess := range sessions {
		want := run(t, r.Addr, pass, sess)
		if i == 0 && (want[0] != redistest.Escape([]byte("-NOAUTH Authentication required.\r\n")) || want[1] != redistest.Escape([]byte("-WRONGPASS invalid username-password pair or user is disabled.\r\n"))) {
			t.Fatalf("redis-server did not answer as expected: %q", want)
		}
		for name, addr := range map[string]string{"requirepass-file": fromFile.Addr, "BATCHKV_REQUIREPASS": fromEnv.Addr} {
			got := run(t, addr, pass, sess)
			for j := range sess {
				if sess[j][0] == "HELLO" && j == 2 || sess[j][0] == "CLIENT" {
					continue // server identity and client ids differ
				}
				if got[j] != want[j] {
					t.Errorf("%s: session %d, %q: got %s, redis-server %s", name, i, sess[j], got[j], want[j])
				}
			}
		}
	}
}

// run sends each command of sess on one connection and returns the replies
// escaped; a closed connection reads as "<closed>".
func run(t *testing.T, addr, pass string, sess [][]string) []string {
	t.Helper()
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(5 * time.Second)
	var out []string
	for _, cmd := range sess {
		got, err := c.DoString(cmd...)
		if err != nil {
			out = append(out, "<closed>")
			continue
		}
		out = append(out, redistest.Escape(got))
	}
	return out
}
