package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ServerBinEnv names a prebuilt batchkv-server binary to use instead of
// building ./cmd/server (CI builds once and shares it).
const ServerBinEnv = "BATCHKV_TEST_SERVER_BIN"

// Server is a batchkv-server process started for a test.
type Server struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string
	p    *child
}

// Output returns what the server has logged so far.
func (s *Server) Output() string { return s.p.Output() }

// Exited reports whether the server process has exited, and its error.
func (s *Server) Exited() (bool, error) { return s.p.Exited() }

// binEnv names, per command under ./cmd, a prebuilt binary to use instead
// of building one.
var binEnv = map[string]string{"server": ServerBinEnv, "syncer": "BATCHKV_TEST_SYNCER_BIN"}

var built struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*builtBin
}

type builtBin struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of ./cmd/<name> built from this checkout (once per
// test process and name; CGO_ENABLED=0, as the images build it), or of the
// prebuilt binary its environment variable names (BATCHKV_TEST_SERVER_BIN,
// BATCHKV_TEST_SYNCER_BIN). Cleanup removes what it built.
func Binary(name string) (string, error) {
	built.mu.Lock()
	if built.bins == nil {
		built.bins = map[string]*builtBin{}
	}
	b := built.bins[name]
	if b == nil {
		b = &builtBin{}
		built.bins[name] = b
	}
	built.mu.Unlock()
	b.once.Do(func() {
		if env := binEnv[name]; env != "" && os.Getenv(env) != "" {
			b.path = os.Getenv(env)
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			b.err = err
			return
		}
		built.mu.Lock()
		if built.dir == "" {
			built.dir, b.err = os.MkdirTemp("", "batchkv-bin-*")
		}
		dir := built.dir
		built.mu.Unlock()
		if b.err != nil {
			return
		}
		b.path = filepath.Join(dir, "batchkv-"+name)
		if name == "batchkv" {
			b.path = filepath.Join(dir, "batchkv")
		}
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("redistest: go build ./cmd/%s: %v\n%s", name, err, out)
		}
	})
	return b.path, b.err
}

// ServerBinary returns the path of a batchkv-server built from this checkout
// (once per test process), or of $BATCHKV_TEST_SERVER_BIN.
func ServerBinary() (string, error) { return Binary("server") }

// Cleanup removes the binaries built by Binary. Call it from TestMain after
// m.Run (see Main).
func Cleanup() {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// Main runs the tests and removes the built server afterwards:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// ModuleRoot returns the directory of the enclosing go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("redistest: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("redistest: not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// StartBatchkv runs batchkv-server on a free port of 127.0.0.1 serving the
// built version in datasetDir, waits until it answers PING, and stops it when
// the test ends (its output is logged if the test failed).
func StartBatchkv(t testing.TB, datasetDir string, extraArgs ...string) *Server {
	t.Helper()
	bin, err := ServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "batchkv-server", bin, func(port int) []string {
		// Tests run many servers at once: a free metrics port each, and no
		// Kubernetes drain period on SIGTERM (extraArgs may override both).
		args := []string{"--addr", "127.0.0.1:" + strconv.Itoa(port), "--dataset", datasetDir,
			"--metrics-addr", "127.0.0.1:0", "--shutdown-drain", "0"}
		return append(args, extraArgs...)
	})
	return &Server{Addr: p.addr, p: p}
}
