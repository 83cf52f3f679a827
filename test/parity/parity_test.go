package parity

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			return n
		}
		panic(fmt.Sprintf("%s=%q: %v", name, v, err))
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
		panic(fmt.Sprintf("%s=%q: %v", name, v, err))
	}
	return def
}

func seedFromEnv(t testing.TB) uint64 {
	if v := os.Getenv("PARITY_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PARITY_SEED=%q: %v", v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// pair is the reference and the target under test, serving the same model.
type pair struct {
	m        *model
	ref, tgt string // addresses
	target   string // "batchkv" or "redis"
	chk      *checker
	writes   []writeCommand
	known    map[string]bool
}

// startReference starts a redis-server holding m as a read-only replica.
// One database, so SELECT 1 fails as it does on batchkv.
func startReference(t testing.TB, m *model) string {
	r := redistest.StartRedis(t, "--databases", "1")
	redistest.Load(t, r.Addr, m.entries)
	redistest.MakeReadOnlyReplica(t, r.Addr)
	return r.Addr
}

// setup starts both servers for m. target "redis" compares two redis-servers
// (the suite's self-check); altered, if set, changes the target's data.
func setup(t testing.TB, m *model, target string, altered *model) *pair {
	t.Helper()
	p := &pair{m: m, target: target}
	p.ref = startReference(t, m)
	tm := m
	if altered != nil {
		tm = altered
	}
	switch target {
	case "redis":
		p.tgt = startReference(t, tm)
	case "batchkv":
		p.tgt = redistest.StartBatchkv(t, writeDataset(t, tm)).Addr
	default:
		t.Fatalf("PARITY_TARGET=%q: want batchkv or redis", target)
	}
	p.writes, p.known = commandTable(t, p.ref)
	p.chk = newChecker(t, m, p.ref)
	p.chk.setinfo72 = target == "batchkv"
	p.chk.spec = map[string]bool{}
	for _, n := range specCommands {
		p.chk.spec[n] = true
	}
	for _, w := range p.writes {
		p.chk.spec[w.name] = true
	}
	return p
}

// specCommands are the commands of SPEC §7 outside cluster mode, as redis
// names them in COMMAND (subcommands as parent|sub).
var specCommands = strings.Fields(`ping echo quit reset hello auth select
	client client|setname client|getname client|id client|info client|list client|kill
	command command|count command|info command|docs command|list info config config|get
	time dbsize role slowlog slowlog|get slowlog|len slowlog|reset
	get mget exists type ttl pttl expiretime pexpiretime strlen getrange substr touch randomkey scan keys
	hget hmget hgetall hkeys hvals hlen hexists hstrlen hrandfield hscan
	multi exec discard watch unwatch`)

// commandTable asks the reference for its commands: every name it knows and
// the write commands (with arity) that batchkv must refuse with READONLY.
func commandTable(t testing.TB, addr string) ([]writeCommand, map[string]bool) {
	c, err := redistest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.DoString("COMMAND")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	var writes []writeCommand
	for _, e := range redistest.MustParse(got).Elems {
		name := string(e.Elems[0].Str)
		known[name] = true
		isWrite := slices.ContainsFunc(e.Elems[2].Elems, func(f *redistest.Reply) bool { return string(f.Str) == "write" })
		if isWrite && len(e.Elems[9].Elems) == 0 {
			writes = append(writes, writeCommand{name, int(e.Elems[1].Int)})
		}
	}
	slices.SortFunc(writes, func(a, b writeCommand) int { return strings.Compare(a.name, b.name) })
	if len(writes) < 50 {
		t.Fatalf("only %d write commands in COMMAND", len(writes))
	}
	return writes, known
}

// newChecker returns a checker that asks the reference (on its own
// connection) for the expected sets, caching them.
func newChecker(t testing.TB, m *model, ref string) *checker {
	c, err := redistest.Dial(ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	keys := map[string]map[string]bool{}
	hscans := map[string]map[string]string{}
	return &checker{
		m: m,
		refKeys: func(pattern []byte) map[string]bool {
			if s, ok := keys[string(pattern)]; ok {
				return s
			}
			got, err := c.Do([]byte("KEYS"), pattern)
			if err != nil {
				t.Fatalf("reference KEYS: %v", err)
			}
			s := map[string]bool{}
			for _, e := range redistest.MustParse(got).Elems {
				s[string(e.Str)] = true
			}
			keys[string(pattern)] = s
			return s
		},
		refHScan: func(key, pattern []byte) map[string]string {
			id := string(key) + "\x00" + string(pattern)
			if s, ok := hscans[id]; ok {
				return s
			}
			s := map[string]string{}
			cursor := []byte("0")
			for i := 0; i < 100000; i++ {
				got, err := c.Do([]byte("HSCAN"), key, cursor, []byte("MATCH"), pattern, []byte("COUNT"), []byte("1000"))
				if err != nil {
					t.Fatalf("reference HSCAN: %v", err)
				}
				r := redistest.MustParse(got)
				if r.IsError() {
					break // not a hash: nothing may be returned
				}
				for j := 0; j+1 < len(r.Elems[1].Elems); j += 2 {
					s[string(r.Elems[1].Elems[j].Str)] = string(r.Elems[1].Elems[j+1].Str)
				}
				if cursor = r.Elems[0].Str; string(cursor) == "0" {
					break
				}
			}
			hscans[id] = s
			return s
		},
	}
}

// difference is one command whose replies differ.
type difference struct {
	session, unit int
	mode          string // single, pipeline, multi, quit
	proto         int
	cmd           *command
	context       []*command // the unit's earlier commands (pipeline, multi)
	ref, tgt      []byte
	reason        string
}

func (d difference) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "session %d unit %d, %s, RESP%d: %s\n", d.session, d.unit, d.mode, d.proto, d.reason)
	for _, c := range d.context {
		fmt.Fprintf(&sb, "      (before: %s)\n", showArgs(c.args))
	}
	fmt.Fprintf(&sb, "  command: %s\n", showArgs(d.cmd.args))
	fmt.Fprintf(&sb, "  redis:   %s\n", redistest.Escape(d.ref))
	fmt.Fprintf(&sb, "  target:  %s", redistest.Escape(d.tgt))
	return sb.String()
}

// result is what a run compared.
type result struct {
	commands int
	byMode   map[string]int
	byCheck  map[check]int
	diffs    []difference
	sessions int
}

// runConfig bounds a run.
type runConfig struct {
	seed     uint64
	commands int
	budget   time.Duration
	only     int // run only this session (-1: all)
}

// run sends generated sessions to both servers until cfg.commands commands
// were compared or the budget is spent. Each session is a fresh pair of
// connections in RESP2 or RESP3 with a deterministic stream of units (single
// commands, pipelines, transactions), generated from seed and session index.
func (p *pair) run(t testing.TB, cfg runConfig) *result {
	res := &result{byMode: map[string]int{}, byCheck: map[check]int{}}
	deadline := time.Now().Add(cfg.budget)
	for s := 0; res.commands < cfg.commands && time.Now().Before(deadline); s++ {
		if cfg.only >= 0 && s != cfg.only {
			if s > cfg.only {
				break
			}
			continue
		}
		p.session(t, cfg.seed, s, res, deadline, cfg.commands)
		res.sessions++
	}
	return res
}

// conns is one connection to each server.
type conns struct{ ref, tgt *redistest.Conn }

func (p *pair) dial(t testing.TB) *conns {
	r, err := redistest.Dial(p.ref)
	if err != nil {
		t.Fatal(err)
	}
	g, err := redistest.Dial(p.tgt)
	if err != nil {
		r.Close()
		t.Fatalf("dial target: %v", err)
	}
	return &conns{r, g}
}

func (c *conns) close() { c.ref.Close(); c.tgt.Close() }

// exchange sends the commands of one unit to a server (all at once when
// pipelined) and reads one reply per command.
func exchange(c *redistest.Conn, cmds []*command, pipelined bool) ([][]byte, error) {
	out := make([][]byte, 0, len(cmds))
	if pipelined {
		var buf []byte
		for _, cmd := range cmds {
			buf = redistest.AppendCommand(buf, cmd.args...)
		}
		if err := c.Send(buf); err != nil {
			return out, err
		}
		for range cmds {
			r, err := c.ReadReply()
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	for _, cmd := range cmds {
		r, err := c.Do(cmd.args...)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

const unitsPerSession = 60

func (p *pair) session(t testing.TB, seed uint64, s int, res *result, deadline time.Time, limit int) {
	g := newGen(seed+uint64(s)*0x9e3779b97f4a7c15, p.m, p.writes, p.known)
	c := p.dial(t)
	defer func() { c.close() }()
	proto := 2
	record := func(u int, mode string, cmd *command, ctx []*command, ref, tgt []byte, why string) {
		res.diffs = append(res.diffs, difference{s, u, mode, proto, cmd, ctx, ref, tgt, why})
	}
	if g.r.IntN(2) == 0 {
		hello := &command{args: b("HELLO", "3"), check: checkHello}
		if !p.unit(c, s, -1, "single", []*command{hello}, false, res, record) {
			return
		}
		proto = 3
	}
	for u := 0; u < unitsPerSession && res.commands < limit && time.Now().Before(deadline); u++ {
		var cmds []*command
		mode, pipelined := "single", false
		switch k := g.r.IntN(100); {
		case k < 55:
			cmds = []*command{g.next()}
		case k < 80:
			mode, pipelined = "pipeline", true
			for i := 0; i < 1+g.r.IntN(100); i++ {
				cmds = append(cmds, g.next())
			}
		case k == 94:
			// Megabytes of replies in one pipeline: output buffering.
			mode, pipelined = "pipeline", true
			for i := 0; i < 10+g.r.IntN(20); i++ {
				cmds = append(cmds, g.cmd("GET", []byte(g.pick("big:1MiB", "big:307200", "big:65536", "big:1024"))))
			}
		case k < 95:
			mode = "multi"
			cmds = g.multi()
			pipelined = g.r.IntN(2) == 0
		case k < 97:
			cmds = []*command{g.cmd("RESET")}
		default:
			// QUIT ends the session: compare everything up to the close.
			cmd := g.cmd("QUIT")
			if g.r.IntN(3) == 0 {
				cmd.args = append(cmd.args, []byte("extra"))
			}
			p.quit(c, cmd, s, u, res, record)
			return
		}
		if !p.unit(c, s, u, mode, cmds, pipelined, res, record) {
			return
		}
		for _, cmd := range cmds { // track the protocol for the reports
			name := strings.ToUpper(string(cmd.args[0]))
			switch {
			case name == "RESET":
				proto = 2
			case name == "HELLO" && len(cmd.args) > 1 && (string(cmd.args[1]) == "2" || string(cmd.args[1]) == "3"):
				proto = int(cmd.args[1][0] - '0') // approximate: a later failing option leaves it
			}
		}
	}
}

// unit runs one unit on both servers and compares the replies; false when a
// connection broke (the session ends).
func (p *pair) unit(c *conns, s, u int, mode string, cmds []*command, pipelined bool, res *result,
	record func(int, string, *command, []*command, []byte, []byte, string)) bool {
	refR, refErr := exchange(c.ref, cmds, pipelined)
	tgtR, tgtErr := exchange(c.tgt, cmds, pipelined)
	for i, cmd := range cmds {
		var ctx []*command
		if mode != "single" && i > 0 {
			ctx = cmds[max(0, i-5):i]
		}
		switch {
		case i >= len(refR):
			record(u, mode, cmd, ctx, nil, nil, fmt.Sprintf("reference failed: %v", refErr))
			return false
		case i >= len(tgtR):
			record(u, mode, cmd, ctx, refR[i], nil, fmt.Sprintf("target failed: %v", tgtErr))
			return false
		}
		res.commands++
		res.byMode[mode]++
		res.byCheck[cmd.check]++
		if why := p.chk.compare(cmd, refR[i], tgtR[i]); why != "" {
			record(u, mode, cmd, ctx, refR[i], tgtR[i], why)
		}
	}
	return refErr == nil && tgtErr == nil
}

// quit sends QUIT to both and compares all bytes until each closes.
func (p *pair) quit(c *conns, cmd *command, s, u int, res *result,
	record func(int, string, *command, []*command, []byte, []byte, string)) {
	read := func(conn *redistest.Conn) ([]byte, bool) {
		if err := conn.Send(redistest.AppendCommand(nil, cmd.args...)); err != nil {
			return []byte(err.Error()), false
		}
		got, closed, err := conn.ReadUntilClose(3*time.Second, 5*time.Second)
		if err != nil {
			got = append(got, err.Error()...)
		}
		return got, closed
	}
	ref, refClosed := read(c.ref)
	tgt, tgtClosed := read(c.tgt)
	res.commands++
	res.byMode["quit"]++
	switch {
	case !bytes.Equal(ref, tgt):
		record(u, "quit", cmd, nil, ref, tgt, "bytes until close differ")
	case refClosed != tgtClosed:
		record(u, "quit", cmd, nil, ref, tgt, fmt.Sprintf("closed=%v, redis closed=%v", tgtClosed, refClosed))
	}
}

// replay sends one command alone on fresh connections (after HELLO 3 when
// it ran in RESP3) and tells whether it still differs: the minimal
// reproduction, or a note that it needs its session's context.
func (p *pair) replay(t testing.TB, d difference) string {
	if d.mode == "quit" || d.cmd.check == checkExec {
		return "needs its session: rerun with the PARITY_SEED and PARITY_SESSION above"
	}
	c := p.dial(t)
	defer c.close()
	var pre []*command
	if d.proto == 3 {
		pre = append(pre, &command{args: b("HELLO", "3"), check: checkHello})
	}
	cmds := append(pre, d.cmd)
	ref, err1 := exchange(c.ref, cmds, false)
	tgt, err2 := exchange(c.tgt, cmds, false)
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("replay failed: %v / %v", err1, err2)
	}
	if p.chk.compare(d.cmd, ref[len(ref)-1], tgt[len(tgt)-1]) == "" {
		return "does not differ alone: rerun with the PARITY_SEED and PARITY_SESSION above"
	}
	var raw []byte
	for _, c := range cmds {
		raw = redistest.AppendCommand(raw, c.args...)
	}
	return fmt.Sprintf("reproduces alone on a fresh connection; request bytes %s", redistest.Escape(raw))
}

// report logs a run and fails the test on differences. With p set, each
// shown difference is replayed alone for a minimal reproduction.
func report(t testing.TB, seed uint64, target string, res *result, took time.Duration, p ...*pair) {
	t.Helper()
	maxShown := envInt("PARITY_MAX_DIFFS", 20)
	for i, d := range res.diffs {
		if i == maxShown {
			t.Errorf("… and %d more differences", len(res.diffs)-maxShown)
			break
		}
		repro := ""
		if len(p) > 0 && os.Getenv("PARITY_REPRO") != "0" && i < 50 {
			repro = "\n  repro:   " + p[0].replay(t, d)
		}
		t.Errorf("difference %d/%d (PARITY_SEED=%d PARITY_SESSION=%d):\n%s%s", i+1, len(res.diffs), seed, d.session, d, repro)
	}
	var checks []string
	for c := exact; c <= checkExec; c++ {
		if n := res.byCheck[c]; n > 0 {
			checks = append(checks, fmt.Sprintf("%d:%d", c, n))
		}
	}
	t.Logf("parity summary: target=%s seed=%d commands=%d sessions=%d differences=%d time=%v modes=%v checks(id:count)=%s",
		target, seed, res.commands, res.sessions, len(res.diffs), took.Round(time.Millisecond), res.byMode, strings.Join(checks, " "))
}

func TestParity(t *testing.T) {
	seed := seedFromEnv(t)
	target := os.Getenv("PARITY_TARGET")
	if target == "" {
		target = "batchkv"
	}
	t.Logf("PARITY_SEED=%d PARITY_TARGET=%s", seed, target)
	start := time.Now()
	m := genModel(seed, envInt("PARITY_KEYS", 20000))
	p := setup(t, m, target, nil)
	t.Logf("setup: %d keys (%d strings, %d hashes, %d big) in %v", len(m.all), len(m.strs), len(m.hashes), len(m.big), time.Since(start).Round(time.Millisecond))

	t.Run("commands", func(t *testing.T) {
		cfg := runConfig{
			seed:     seed,
			commands: envInt("PARITY_COMMANDS", 24000),
			budget:   envDuration("PARITY_BUDGET", 60*time.Second),
			only:     envInt("PARITY_SESSION", -1),
		}
		start := time.Now()
		res := p.run(t, cfg)
		report(t, seed, target, res, time.Since(start), p)
		if cfg.only < 0 && res.commands < min(cfg.commands, 1000) {
			t.Errorf("only %d commands compared within %v", res.commands, cfg.budget)
		}
	})
	t.Run("metadata", func(t *testing.T) { testCommandMetadata(t, p) })
	t.Run("scan", func(t *testing.T) { testFullScans(t, p) })
	t.Run("protocol", func(t *testing.T) { testProtocolErrors(t, p) })
	t.Run("fragmented", func(t *testing.T) { testFragmented(t, p, seed) })
}
