// Package images tests the container images without a Docker engine: it
// parses Dockerfile.server and Dockerfile.syncer, checks what an image must
// be (multi-stage, static, non-root, labelled, no HEALTHCHECK), and runs the
// build stage's RUN line itself — the Makefile's build-static target — so
// the Dockerfiles cannot rot unnoticed.
package images

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is where the Dockerfiles and the Makefile are.
const repoRoot = "../.."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, …
	args string
}

// stage is one FROM … and what follows it.
type stage struct {
	from, name string
	ins        []instruction
}

// parse reads a Dockerfile into stages. Comments and blank lines are
// dropped; a line ending in a backslash continues on the next.
func parse(b []byte) ([]stage, error) {
	var stages []stage
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continuation
			continue
		}
		if rest, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(strings.TrimSpace(rest) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				return nil, fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", n, in.args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue // global build arguments
			}
			return nil, fmt.Errorf("line %d: %s before FROM", n, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("a continuation line at the end")
	}
	return stages, sc.Err()
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

var (
	// The final stage: distroless static (nonroot) or scratch, nothing with
	// a shell or a libc.
	finalImage = regexp.MustCompile(`^(gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?|scratch)$`)
	buildImage = regexp.MustCompile(`^golang:(\d+\.\d+)(\.\d+)?-[a-z]+(@sha256:[0-9a-f]{64})?$`)
	numericUID = regexp.MustCompile(`^([0-9]+)(:([0-9]+))?$`)
	goVersion  = regexp.MustCompile(`(?m)^go (\d+\.\d+)`)
	label      = regexp.MustCompile(`([a-z0-9.\-]+)="([^"]*)"`)
)

// checkDockerfile checks Dockerfile.<cmd> (b) against go.mod (gomod): it
// returns the build stage's RUN line, and what is wrong.
func checkDockerfile(cmd string, b, gomod []byte) (buildLine string, problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	stages, err := parse(b)
	if err != nil {
		bad("Dockerfile.%s: %v", cmd, err)
		return "", problems
	}
	if len(stages) < 2 {
		bad("Dockerfile.%s: %d stages, want a build stage and a final stage", cmd, len(stages))
		return "", problems
	}
	for _, st := range stages {
		if len(st.all("HEALTHCHECK")) > 0 {
			// Kubernetes ignores it; the probes are in the manifests.
			bad("Dockerfile.%s: HEALTHCHECK (use the /healthz and /readyz probes instead)", cmd)
		}
	}
	build, final := stages[0], stages[len(stages)-1]

	// The build stage: the Go of go.mod, the Makefile's build line.
	m := buildImage.FindStringSubmatch(build.from)
	if m == nil || build.name == "" {
		bad("Dockerfile.%s: build stage FROM %s AS %s: want golang:X.Y-… AS name", cmd, build.from, build.name)
		return "", problems
	}
	if gm := goVersion.FindSubmatch(gomod); gm == nil || string(gm[1]) != m[1] {
		bad("Dockerfile.%s: builds with Go %s, go.mod says %s", cmd, m[1], gm)
	}
	runs := build.all("RUN")
	for _, r := range runs {
		if strings.Contains(r.args, "build-static") {
			buildLine = r.args
		}
	}
	out := "/out/batchkv-" + cmd
	want := "make build-static CMD=" + cmd + " VERSION=${VERSION} OUT=" + out
	if buildLine != want {
		bad("Dockerfile.%s: build line %q, want %q (the Makefile's build-static target)", cmd, buildLine, want)
		return "", problems
	}
	for _, r := range runs {
		if r.args != buildLine && r.args != "go mod download" {
			bad("Dockerfile.%s:%d: RUN %s: the build stage runs only `go mod download` and the build line", cmd, r.line, r.args)
		}
	}

	// The final stage: static base, the binary only, non-root, labelled.
	if !finalImage.MatchString(final.from) {
		bad("Dockerfile.%s: final stage FROM %s: want gcr.io/distroless/static…:nonroot or scratch", cmd, final.from)
	}
	for _, in := range final.ins {
		switch in.cmd {
		case "RUN", "ADD":
			bad("Dockerfile.%s:%d: %s in the final stage (it has no shell; copy from the build stage)", cmd, in.line, in.cmd)
		}
	}
	copies := final.all("COPY")
	wantCopy := fmt.Sprintf("--from=%s %s /batchkv-%s", build.name, out, cmd)
	if len(copies) != 1 || copies[0].args != wantCopy {
		bad("Dockerfile.%s: final stage COPY %v, want exactly COPY %s", cmd, copies, wantCopy)
	}
	if eps := final.all("ENTRYPOINT"); len(eps) != 1 || eps[0].args != fmt.Sprintf(`["/batchkv-%s"]`, cmd) {
		bad("Dockerfile.%s: ENTRYPOINT %v, want [\"/batchkv-%s\"] (exec form)", cmd, eps, cmd)
	}
	users := final.all("USER")
	if len(users) != 1 {
		bad("Dockerfile.%s: final stage USER %v, want one", cmd, users)
	} else if u := numericUID.FindStringSubmatch(users[0].args); u == nil {
		bad("Dockerfile.%s: USER %s: want a numeric UID[:GID] (Kubernetes' runAsNonRoot cannot check a name)", cmd, users[0].args)
	} else if uid, _ := strconv.Atoi(u[1]); uid == 0 || u[3] == "0" {
		bad("Dockerfile.%s: USER %s: want non-root", cmd, users[0].args)
	} else if u[1] != "65532" {
		// The manifests run both containers as 65532 so the server can lock
		// the syncer's version directories: keep them in step.
		bad("Dockerfile.%s: USER %s: the manifests run as 65532", cmd, users[0].args)
	}
	labels := map[string]string{}
	for _, l := range final.all("LABEL") {
		for _, m := range label.FindAllStringSubmatch(l.args, -1) {
			labels[m[1]] = m[2]
		}
	}
	for _, k := range []string{"title", "description", "version", "licenses"} {
		if labels["org.opencontainers.image."+k] == "" {
			bad("Dockerfile.%s: label org.opencontainers.image.%s missing", cmd, k)
		}
	}
	if got := labels["org.opencontainers.image.title"]; got != "batchkv-"+cmd {
		bad("Dockerfile.%s: image title %q", cmd, got)
	}
	if got := labels["org.opencontainers.image.version"]; got != "${VERSION}" {
		bad("Dockerfile.%s: image version label %q, want ${VERSION} (the build's)", cmd, got)
	}
	return buildLine, problems
}

// dockerfile reads and checks Dockerfile.<cmd>, failing t on any problem.
func dockerfile(t *testing.T, cmd string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile."+cmd))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	line, problems := checkDockerfile(cmd, b, gomod)
	for _, p := range problems {
		t.Error(p)
	}
	if line == "" {
		t.FailNow()
	}
	return line
}

// checkStatic fails unless path is a statically linked ELF executable: no
// program interpreter, no dynamic section (distroless/static has no libc).
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		t.Errorf("%s: ELF type %v, want ET_EXEC (static, not PIE)", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: program header %v: dynamically linked", path, p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Errorf("%s: has a .dynamic section", path)
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s: imports %v (%v)", path, libs, err)
	}
}

func TestImages(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is required: %v", err)
	}
	for _, cmd := range []string{"server", "syncer"} {
		t.Run(cmd, func(t *testing.T) {
			line := dockerfile(t, cmd)
			// Run the build line as the Dockerfile does, with the version
			// argument set and the output redirected into a temp dir.
			version := "imagetest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			bin := filepath.Join(t.TempDir(), "batchkv-"+cmd)
			line = strings.ReplaceAll(line, "${VERSION}", version)
			line = strings.ReplaceAll(line, "OUT=/out/batchkv-"+cmd, "OUT="+bin)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, "sh", "-c", line)
			c.Dir = repoRoot
			// As in golang:*-bookworm: CGO would be on by default there.
			c.Env = append(os.Environ(), "CGO_ENABLED=1")
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
			checkStatic(t, bin)
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(version)) {
				t.Errorf("the binary does not carry VERSION=%s (the Makefile's -ldflags -X)", version)
			}

			// It runs: --help exits 0 and prints its usage.
			hc := exec.CommandContext(ctx, bin, "--help")
			hc.Env = []string{} // no BATCHKV_* from the test's environment
			out, err := hc.CombinedOutput()
			if err != nil {
				t.Fatalf("%s --help: %v\n%s", bin, err, out)
			}
			if !strings.Contains(string(out), "Usage: batchkv-"+cmd) || !strings.Contains(string(out), "[$BATCHKV_ROOT]") {
				t.Errorf("%s --help printed:\n%s", bin, out)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		stages   int
		err      bool
	}{
		{"two stages", "ARG X\nFROM a AS b\nRUN x \\\n  y\n# c\nFROM c\nUSER 1\n", 2, false},
		{"comment in continuation", "FROM a\nRUN x \\\n# note\n  y\n", 1, false},
		{"instruction before FROM", "RUN x\nFROM a\n", 0, true},
		{"bad FROM", "FROM a b\n", 0, true},
		{"dangling continuation", "FROM a\nRUN x \\\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parse([]byte(tc.in))
			if (err != nil) != tc.err || len(st) != tc.stages {
				t.Fatalf("parse: %d stages, %v; want %d, error %v", len(st), err, tc.stages, tc.err)
			}
		})
	}
	st, _ := parse([]byte("FROM a AS b\nRUN x \\\n  y\n"))
	if got := st[0].ins[0].args; got != "x y" {
		t.Errorf("continuation joined as %q", got)
	}
}

// TestCheckDockerfileRejects makes sure each rule can fail: every mutation
// of the real Dockerfile.server must be reported.
func TestCheckDockerfileRejects(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile.server"))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if _, p := checkDockerfile("server", b, gomod); len(p) > 0 {
		t.Fatalf("Dockerfile.server: %v", p)
	}
	for _, tc := range []struct{ name, old, new string }{
		{"root user", "USER 65532:65532", "USER 0:0"},
		{"named user", "USER 65532:65532", "USER nonroot"},
		{"healthcheck", "ENTRYPOINT", "HEALTHCHECK CMD [\"/batchkv-server\"]\nENTRYPOINT"},
		{"final base with a shell", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12"},
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot\n", ""},
		{"build line drifts", "RUN make build-static CMD=server", "RUN go build -o /out/batchkv-server ./cmd/server #"},
		{"missing label", "org.opencontainers.image.licenses", "org.example.licenses"},
		{"other Go", "golang:1.26-bookworm", "golang:1.25-bookworm"},
		{"run in final", "USER 65532:65532", "RUN true\nUSER 65532:65532"},
	} {
		if !bytes.Contains(b, []byte(tc.old)) {
			t.Fatalf("%s: Dockerfile.server has no %q", tc.name, tc.old)
		}
		mutated := bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1)
		if _, p := checkDockerfile("server", mutated, gomod); len(p) == 0 {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
