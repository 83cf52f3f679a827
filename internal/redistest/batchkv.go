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

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// ServerBinary returns the path of a batchkv-server built from this checkout
// (once per test process), or of $BATCHKV_TEST_SERVER_BIN.
func ServerBinary() (string, error) {
	built.once.Do(func() {
		if p := os.Getenv(ServerBinEnv); p != "" {
			built.bin = p
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			built.err = err
			return
		}
		built.dir, built.err = os.MkdirTemp("", "batchkv-server-*")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "batchkv-server")
		cmd := exec.Command("go", "build", "-o", built.bin, "./cmd/server")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("redistest: go build ./cmd/server: %v\n%s", err, out)
		}
	})
	return built.bin, built.err
}

// Cleanup removes the binary built by ServerBinary. Call it from TestMain
// after m.Run (see Main).
func Cleanup() {
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
