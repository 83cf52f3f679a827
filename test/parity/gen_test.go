package parity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// command is one generated command and how its replies are compared.
type command struct {
	args  [][]byte
	check check
	// key is the hash HGETALL/HKEYS/HVALS/HSCAN/HRANDFIELD read.
	key []byte
	// pattern and typeFilter are SCAN's and HSCAN's MATCH and TYPE.
	pattern    []byte
	typeFilter string
	// count and withValues are HRANDFIELD's arguments.
	count      int64
	hasCount   bool
	withValues bool
	// subs are the commands queued before an EXEC.
	subs []*command
}

// writeCommand is a write command of redis-server: batchkv must answer it
// with its arity error or READONLY.
type writeCommand struct {
	name  string
	arity int
}

// gen generates commands from a seeded source, over a model.
type gen struct {
	r      *rand.Rand
	m      *model
	writes []writeCommand
	known  map[string]bool // every command name redis knows
}

func newGen(seed uint64, m *model, writes []writeCommand, known map[string]bool) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, 0x706172697479)), m: m, writes: writes, known: known}
}

func (g *gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// name returns a command name in random case (commands are case-insensitive).
func (g *gen) name(n string) []byte {
	switch g.r.IntN(6) {
	case 0:
		return []byte(strings.ToLower(n))
	case 1:
		b := []byte(n)
		for i := range b {
			if g.r.IntN(2) == 0 {
				b[i] = strings.ToLower(string(b[i]))[0]
			}
		}
		return b
	}
	return []byte(n)
}

// key returns a key: mostly existing, sometimes missing or odd.
func (g *gen) key() []byte {
	switch k := g.r.IntN(100); {
	case k < 3:
		return g.m.special[g.r.IntN(len(g.m.special))]
	case k < 70:
		return g.m.all[g.r.IntN(len(g.m.all))]
	case k < 80:
		return []byte(fmt.Sprintf("missing:%d", g.r.IntN(1000)))
	case k < 85:
		return randBytes(g.r, g.r.IntN(8))
	case k < 90:
		return g.m.strs[g.r.IntN(len(g.m.strs))]
	default:
		return g.m.hashes[g.r.IntN(len(g.m.hashes))]
	}
}

func (g *gen) hashKey() []byte {
	switch k := g.r.IntN(100); {
	case k < 60:
		return g.m.hashes[g.r.IntN(len(g.m.hashes))]
	case k < 80:
		return g.m.big[g.r.IntN(len(g.m.big))]
	default:
		return g.key()
	}
}

func (g *gen) strKey() []byte {
	if g.r.IntN(5) == 0 {
		return g.key()
	}
	return g.m.strs[g.r.IntN(len(g.m.strs))]
}

// field returns a field of the hash at key (if it is one), or another field.
func (g *gen) field(key []byte) []byte {
	if it := g.m.items[string(key)]; it != nil && len(it.fields) > 0 && g.r.IntN(5) > 0 {
		return it.fields[g.r.IntN(len(it.fields))][0]
	}
	return []byte(g.pick("f0", "f1", "missing", "", "a", "long", "field:1", "\x00"))
}

// interesting integers, valid and not, as Redis parses them.
var ints = []string{"0", "1", "-1", "2", "3", "5", "10", "-2", "-5", "-10", "100", "-100", "1000",
	"2147483647", "-2147483648", "4294967296", "9223372036854775807", "-9223372036854775807",
	"-9223372036854775808", "9223372036854775808", "18446744073709551615", "99999999999999999999",
	"abc", "", "1.5", " 1", "1 ", "+1", "0x10", "1e3", "-0", "007", "\x00", "--1", "1a"}

func (g *gen) int() []byte {
	if g.r.IntN(2) == 0 {
		return []byte(strconv.Itoa(g.r.IntN(200) - 50))
	}
	return []byte(g.pick(ints...))
}

// patterns for KEYS, SCAN MATCH and HSCAN MATCH, glob corner cases included.
var patterns = []string{"*", "ctr:*", "ctr:1*", "feat:*", "*{user:1*", "{user:*}:name", "h*", "hash:*",
	"str:?", "str:??", "[a-c]*", "[^a-z]*", "[!c]tr:*", "*:1", "\\*", "*\\", "[", "[]", "[a-", "wide:*",
	"big:*", "", "\x00*", "empty*", "f*", "f1?", "field:1*", "nomatch*", "*[0-9]", "[\\]]*", "e[m]pty", "?"}

func (g *gen) pattern() []byte { return []byte(g.pick(patterns...)) }

func (g *gen) keys(min int) [][]byte {
	n := min + g.r.IntN(5)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.key()
	}
	return out
}

// cmd builds a command from a name and argument list.
func (g *gen) cmd(name string, args ...[]byte) *command {
	return &command{args: append([][]byte{g.name(name)}, args...)}
}

func b(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}

// next returns one command outside transactions and connection control.
func (g *gen) next() *command {
	c := g.data()
	if g.r.IntN(12) == 0 {
		g.mutate(c)
	}
	classify(c)
	return c
}

// mutate breaks a command: one argument dropped, added, or replaced by junk.
func (g *gen) mutate(c *command) {
	switch g.r.IntN(3) {
	case 0:
		if len(c.args) > 1 {
			c.args = c.args[:len(c.args)-1]
		}
	case 1:
		c.args = append(c.args, g.pick2())
	default:
		if len(c.args) > 1 {
			c.args[1+g.r.IntN(len(c.args)-1)] = g.pick2()
		}
	}
}

// classify derives how a command's replies are compared from its arguments,
// so that a mutated command is still compared by the right rule. Error
// replies are compared exactly whatever the rule.
func classify(c *command) {
	if c.check == checkExec {
		return
	}
	c.check, c.key, c.pattern, c.typeFilter, c.hasCount, c.withValues = exact, nil, nil, "", false, false
	sub := ""
	if len(c.args) > 1 {
		sub = strings.ToUpper(string(c.args[1]))
	}
	switch strings.ToUpper(string(c.args[0])) {
	case "HRANDFIELD":
		if len(c.args) < 2 || len(c.args) > 4 {
			return
		}
		c.check, c.key = checkHRandField, c.args[1]
		if c.hasCount = len(c.args) > 2; c.hasCount {
			n, err := strconv.ParseInt(string(c.args[2]), 10, 64)
			if err != nil || n == math.MinInt64 {
				c.check = exact // an error reply
			}
			if n < -1000 && n > math.MinInt64 {
				// A negative count asks for exactly |count| fields: keep
				// replies small (-2^31 would be 2 billion elements).
				n, c.args[2] = -1000, []byte("-1000")
			}
			c.count = n
			c.withValues = len(c.args) > 3 && strings.EqualFold(string(c.args[3]), "WITHVALUES")
		}
	case "SCAN":
		c.check = checkScan
		c.pattern, c.typeFilter = scanOptions(c.args)
	case "HSCAN":
		if len(c.args) >= 3 {
			c.check, c.key = checkHScan, c.args[1]
			c.pattern, _ = scanOptions(c.args)
		}
	case "KEYS":
		c.check = checkKeys
	case "RANDOMKEY":
		c.check = checkRandomKey
	case "HGETALL", "HKEYS", "HVALS":
		if len(c.args) == 2 {
			c.check, c.key = checkHashOrder, c.args[1]
		}
	case "TIME":
		c.check = checkTime
	case "ROLE":
		c.check = checkRole
	case "INFO":
		c.check = checkInfo
	case "HELLO":
		c.check = checkHello
	case "CONFIG":
		if sub == "GET" {
			c.check = checkConfigGet
		}
	case "CLIENT":
		switch sub {
		case "ID":
			c.check = checkClientID
		case "SETINFO":
			c.check = checkClientSetinfo
		case "INFO", "LIST":
			c.check = checkClientList
		}
	case "COMMAND":
		switch sub {
		case "":
			c.check = checkCommandAll
		case "INFO":
			c.check = checkCommandInfo
		case "LIST":
			c.check = checkCommandSet
		case "DOCS":
			c.check = checkCommandDocs
		case "COUNT":
			c.check = checkCommandCount
		}
	case "SLOWLOG":
		if sub == "GET" || sub == "LEN" {
			c.check = checkSlowlog
		}
	}
}

func (g *gen) pick2() []byte {
	switch g.r.IntN(4) {
	case 0:
		return g.int()
	case 1:
		return randBytes(g.r, g.r.IntN(10))
	case 2:
		return []byte(g.pick("MATCH", "COUNT", "TYPE", "WITHVALUES", "NOVALUES", "withscores", ""))
	}
	return g.key()
}

// scanOptions finds the last MATCH and TYPE of a SCAN or HSCAN.
func scanOptions(args [][]byte) (pattern []byte, typ string) {
	start := 2 // SCAN cursor [options]
	if strings.EqualFold(string(args[0]), "HSCAN") {
		start = 3 // HSCAN key cursor [options]
	}
	for i := start; i+1 < len(args); i++ {
		switch strings.ToUpper(string(args[i])) {
		case "MATCH":
			pattern = args[i+1]
			i++
		case "TYPE":
			typ = string(args[i+1])
			i++
		case "COUNT":
			i++
		}
	}
	return pattern, typ
}

// data returns a command of the data and server families of SPEC §7, a
// write command, or an unknown command.
func (g *gen) data() *command {
	switch k := g.r.IntN(1000); {
	case k < 90:
		return g.cmd("GET", g.strKey())
	case k < 130:
		return g.cmd("MGET", g.keys(1)...)
	case k < 160:
		return g.cmd("EXISTS", g.keys(1)...)
	case k < 190:
		return g.cmd("TYPE", g.key())
	case k < 200:
		return g.cmd(g.pick("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"), g.key())
	case k < 220:
		return g.cmd("STRLEN", g.strKey())
	case k < 260:
		return g.cmd(g.pick("GETRANGE", "SUBSTR"), g.strKey(), g.int(), g.int())
	case k < 275:
		return g.cmd("TOUCH", g.keys(1)...)
	case k < 285:
		return &command{args: [][]byte{g.name("RANDOMKEY")}, check: checkRandomKey}
	case k < 320:
		return g.scan()
	case k < 330:
		return &command{args: [][]byte{g.name("KEYS"), g.pattern()}, check: checkKeys}
	case k < 345:
		return g.cmd("DBSIZE")
	case k < 405:
		key := g.hashKey()
		return g.cmd("HGET", key, g.field(key))
	case k < 435:
		key := g.hashKey()
		args := [][]byte{key}
		for i := 0; i < 1+g.r.IntN(5); i++ {
			args = append(args, g.field(key))
		}
		return g.cmd("HMGET", args...)
	case k < 485:
		key := g.hashKey()
		c := g.cmd(g.pick("HGETALL", "HKEYS", "HVALS"), key)
		c.check, c.key = checkHashOrder, key
		return c
	case k < 505:
		return g.cmd("HLEN", g.hashKey())
	case k < 525:
		key := g.hashKey()
		return g.cmd(g.pick("HEXISTS", "HSTRLEN"), key, g.field(key))
	case k < 560:
		return g.hrandfield()
	case k < 590:
		return g.hscan()
	case k < 640:
		return g.write()
	case k < 660:
		return g.unknown()
	case k < 680:
		return g.cmd("PING", [][]byte{nil, []byte("hello"), randBytes(g.r, 5)}[g.r.IntN(3)])
	case k < 690:
		return g.cmd("PING")
	case k < 700:
		return g.cmd("ECHO", randBytes(g.r, g.r.IntN(20)))
	case k < 710:
		return g.cmd("SELECT", []byte(g.pick("0", "1", "-1", "abc", "16", "")))
	case k < 720:
		return &command{args: [][]byte{g.name("TIME")}, check: checkTime}
	case k < 725:
		return &command{args: [][]byte{g.name("ROLE")}, check: checkRole}
	case k < 735:
		return g.info()
	case k < 750:
		return g.config()
	case k < 790:
		return g.client()
	case k < 830:
		return g.commandCmd()
	case k < 845:
		return g.slowlog()
	case k < 865:
		return g.auth()
	case k < 885:
		return g.hello()
	case k < 895:
		return g.cmd(g.pick("WATCH", "UNWATCH"), g.keys(0)...)
	case k < 900:
		return g.cmd(g.pick("EXEC", "DISCARD")) // outside MULTI: errors
	default:
		// More of the most common reads, with mutations.
		c := g.cmd("GET", g.key())
		return c
	}
}

func (g *gen) scan() *command {
	c := g.cmd("SCAN", []byte(g.pick("0", "0", "0", "1", "123456", "abc", "-1", "18446744073709551615", "18446744073709551616", "")))
	c.check = checkScan
	for i := 0; i < g.r.IntN(4); i++ {
		switch g.r.IntN(3) {
		case 0:
			c.args = append(c.args, g.name("MATCH"), g.pattern())
		case 1:
			c.args = append(c.args, g.name("COUNT"), []byte(g.pick("1", "10", "100", "1000", "0", "-1", "abc")))
		default:
			c.args = append(c.args, g.name("TYPE"), []byte(g.pick("string", "hash", "HASH", "list", "none", "zset", "")))
		}
	}
	c.pattern, c.typeFilter = scanOptions(c.args)
	return c
}

func (g *gen) hscan() *command {
	key := g.hashKey()
	c := g.cmd("HSCAN", key, []byte(g.pick("0", "0", "0", "1", "abc", "-1", "99")))
	c.check, c.key = checkHScan, key
	for i := 0; i < g.r.IntN(3); i++ {
		if g.r.IntN(2) == 0 {
			c.args = append(c.args, g.name("MATCH"), g.pattern())
		} else {
			c.args = append(c.args, g.name("COUNT"), []byte(g.pick("1", "10", "1000", "0", "-1", "x")))
		}
	}
	c.pattern, _ = scanOptions(c.args)
	return c
}

func (g *gen) hrandfield() *command {
	key := g.hashKey()
	c := g.cmd("HRANDFIELD", key)
	c.check, c.key = checkHRandField, key
	if g.r.IntN(4) == 0 {
		return c
	}
	n := []string{"0", "1", "3", "5", "-1", "-3", "-7", "200", "-200", "1000", "-9223372036854775807",
		"-9223372036854775808", "9223372036854775807", "abc", ""}[g.r.IntN(15)]
	c.args = append(c.args, []byte(n))
	if g.r.IntN(2) == 0 {
		c.args = append(c.args, []byte(g.pick("WITHVALUES", "withvalues", "WITHVALUE", "x")))
	}
	return c
}

func (g *gen) write() *command {
	w := g.writes[g.r.IntN(len(g.writes))]
	n := w.arity - 1
	if w.arity < 0 {
		n = -w.arity - 1 + g.r.IntN(3)
	}
	switch g.r.IntN(6) {
	case 0:
		n = max(0, n-1) // too few
	case 1:
		n++ // too many (accepted when the arity is variable)
	}
	c := g.cmd(strings.ToUpper(w.name))
	for i := 0; i < n; i++ {
		c.args = append(c.args, g.pick2())
	}
	return c
}

func (g *gen) unknown() *command {
	var name []byte
	for {
		switch g.r.IntN(4) {
		case 0:
			name = []byte(g.pick("FOOBAR", "getx", "hgetall2", "", "CLUSTERX", "GET\x00", "hello world"))
		case 1:
			name = randBytes(g.r, 1+g.r.IntN(10))
		default:
			name = randText(g.r, 1+g.r.IntN(12))
		}
		if !g.known[strings.ToLower(string(name))] {
			break
		}
	}
	c := &command{args: [][]byte{name}}
	for i := 0; i < g.r.IntN(4); i++ {
		c.args = append(c.args, g.pick2())
	}
	if g.r.IntN(10) == 0 {
		c.args = append(c.args, []byte(strings.Repeat("x", 200))) // the error cuts args at 128 bytes
	}
	return c
}

func (g *gen) info() *command {
	c := &command{args: [][]byte{g.name("INFO")}, check: checkInfo}
	for i := 0; i < g.r.IntN(3); i++ {
		c.args = append(c.args, []byte(g.pick("server", "clients", "memory", "stats", "replication",
			"keyspace", "persistence", "cpu", "all", "default", "everything", "KEYSPACE", "nosuch")))
	}
	return c
}

func (g *gen) config() *command {
	if g.r.IntN(8) == 0 {
		return g.cmd("CONFIG", []byte(g.pick("", "nosuch", "GET")))
	}
	c := &command{args: [][]byte{g.name("CONFIG"), g.name("GET")}, check: checkConfigGet}
	for i := 0; i < 1+g.r.IntN(3); i++ {
		c.args = append(c.args, []byte(g.pick("maxmemory", "databases", "timeout", "maxclients",
			"proto-max-bulk-len", "client-query-buffer-limit", "save", "appendonly", "port", "bind",
			"hash-max-listpack-entries", "requirepass", "cluster-enabled", "nosuch", "max*", "*max-*-entries*")))
	}
	return c
}

func (g *gen) client() *command {
	switch g.r.IntN(12) {
	case 0, 1:
		return g.cmd("CLIENT", []byte("SETNAME"), []byte(g.pick("conn-a", "worker_1", "", "has space", "nl\n", "x")))
	case 2, 3:
		return g.cmd("CLIENT", []byte(g.pick("GETNAME", "getname")))
	case 4:
		return &command{args: [][]byte{g.name("CLIENT"), []byte("ID")}, check: checkClientID}
	case 5:
		return &command{args: [][]byte{g.name("CLIENT"), []byte(g.pick("INFO", "info"))}, check: checkClientList}
	case 6:
		c := &command{args: [][]byte{g.name("CLIENT"), []byte("LIST")}, check: checkClientList}
		if g.r.IntN(3) == 0 {
			c.args = append(c.args, b(g.pick("TYPE", "ID"), g.pick("normal", "pubsub", "abc", "0"))...)
		}
		return c
	case 7:
		return g.cmd("CLIENT", b("SETINFO", g.pick("lib-name", "lib-ver", "LIB-NAME", "other"), g.pick("go-redis(,go1.26)", "9.23.0", "a b", ""))...)
	case 8:
		// Filters that match no client of the test (never this connection).
		return g.cmd("CLIENT", b(strings.Fields(g.pick(
			"KILL 10.255.255.1:1", "KILL ID 999999999", "KILL ADDR 10.255.255.1:1", "KILL LADDR 10.255.255.1:1",
			"KILL USER nosuch", "KILL ID abc", "KILL TYPE pubsub", "KILL SKIPME yes ID 999999999",
			"KILL", "KILL FOO bar", "KILL ID"))...)...)
	case 9:
		return g.cmd("CLIENT", []byte(g.pick("", "nosuch", "HELP-ME")))
	default:
		return g.cmd("CLIENT")
	}
}

func (g *gen) commandCmd() *command {
	switch g.r.IntN(8) {
	case 0:
		return &command{args: [][]byte{g.name("COMMAND")}, check: checkCommandAll}
	case 1:
		return g.cmd("COMMAND", []byte("COUNT"))
	case 2, 3:
		c := g.cmd("COMMAND", []byte(g.pick("INFO", "info")))
		c.check = checkCommandInfo
		for i := 0; i < g.r.IntN(4); i++ {
			c.args = append(c.args, []byte(g.pick("get", "GET", "hgetall", "scan", "set", "mget", "nosuch",
				"client", "client|list", "config|get", "hello", "ping", "exec", "hrandfield")))
		}
		return c
	case 4:
		return g.cmd("COMMAND", b("DOCS", g.pick("get", "hget", "nosuch", "scan", "mget"))...)
	case 5:
		c := &command{args: [][]byte{g.name("COMMAND"), []byte("LIST")}, check: checkCommandSet}
		if g.r.IntN(2) == 0 {
			c.args = append(c.args, b("FILTERBY", g.pick("PATTERN", "ACLCAT", "MODULE", "bad"), g.pick("h*", "read", "x", "*get*"))...)
		}
		return c
	case 6:
		// (COMMAND GETKEYS and HELP are outside SPEC §7.)
		return g.cmd("COMMAND", b(g.pick("nosuch", "COUNT", "INFO"), g.pick("get", "x", ""))...)
	default:
		return g.cmd("COMMAND", []byte(g.pick("nosuch", "")))
	}
}

func (g *gen) slowlog() *command {
	switch g.r.IntN(5) {
	case 0:
		return &command{args: [][]byte{g.name("SLOWLOG"), []byte("GET")}, check: checkSlowlog}
	case 1:
		return &command{args: b("SLOWLOG", "GET", g.pick("1", "-1", "0", "abc", "10")), check: checkSlowlog}
	case 2:
		return &command{args: b("SLOWLOG", "LEN"), check: checkSlowlog}
	case 3:
		return g.cmd("SLOWLOG", []byte(g.pick("RESET", "nosuch", "HELP", "")))
	}
	return g.cmd("SLOWLOG")
}

func (g *gen) auth() *command {
	return g.cmd("AUTH", b(strings.Fields([]string{"x", "default x", "nosuch x", "a b c", ""}[g.r.IntN(5)])...)...)
}

func (g *gen) hello() *command {
	c := &command{args: [][]byte{g.name("HELLO")}, check: checkHello}
	switch g.r.IntN(10) {
	case 0:
	case 1, 2, 3:
		c.args = append(c.args, []byte(g.pick("2", "3")))
	case 4:
		c.args = append(c.args, b(g.pick("2", "3"), "SETNAME", g.pick("n1", "bad name", ""))...)
	case 5:
		c.args = append(c.args, b(g.pick("2", "3"), "AUTH", "default", "pw")...)
	case 6:
		c.args = append(c.args, b(g.pick("2", "3"), "AUTH", "nosuch", "pw")...)
	case 7:
		c.args = append(c.args, []byte(g.pick("1", "4", "0", "-1", "abc", "")))
	case 8:
		c.args = append(c.args, b(g.pick("2", "3"), g.pick("SETNAME", "AUTH", "nosuch"))...)
	default:
		c.args = append(c.args, b("3", "AUTH", "default")...)
	}
	return c
}

// multi returns a transaction: MULTI, queued commands (some invalid, which
// abort it), then EXEC or DISCARD — with an optional WATCH first and the odd
// nested MULTI or WATCH inside.
func (g *gen) multi() []*command {
	var out []*command
	if g.r.IntN(4) == 0 {
		out = append(out, g.cmd("WATCH", g.keys(1)...))
	}
	out = append(out, g.cmd("MULTI"))
	var queued []*command
	inTx := true
	for i := 0; i < g.r.IntN(8); i++ {
		var c *command
		switch k := g.r.IntN(30); {
		case k == 0:
			c = g.cmd("MULTI")
		case k == 1:
			c = g.cmd("WATCH", g.key())
		case k == 2:
			c = g.write()
		case k == 3:
			c = g.unknown()
		case k == 4:
			c = g.cmd("RESET") // ends the transaction: EXEC then fails
		default:
			c = g.next()
			// Not queued: connection state (HELLO, AUTH), replies too big to
			// be worth it, and CLIENT SETINFO, which 7.0 rejects at queueing
			// (EXECABORT) while batchkv, like 7.2, queues it.
			for c.check == checkHello || c.check == checkCommandAll || c.check == checkCommandSet || c.check == checkCommandDocs ||
				c.check == checkClientSetinfo ||
				strings.EqualFold(string(c.args[0]), "AUTH") || isTxControl(c) {
				c = g.next()
			}
		}
		out = append(out, c)
		switch name := strings.ToUpper(string(c.args[0])); {
		case name == "RESET":
			inTx, queued = false, nil
		case name == "MULTI" && !inTx:
			inTx = true
		case inTx && !isTxControl(c):
			queued = append(queued, c)
		}
	}
	if g.r.IntN(6) == 0 {
		out = append(out, g.cmd("DISCARD"))
	} else {
		out = append(out, &command{args: [][]byte{g.name("EXEC")}, check: checkExec, subs: queued})
	}
	return out
}

// isTxControl reports whether c runs immediately inside MULTI instead of
// being queued.
func isTxControl(c *command) bool {
	switch strings.ToUpper(string(c.args[0])) {
	case "MULTI", "EXEC", "DISCARD", "WATCH", "QUIT", "RESET": // (RESET: discards)
		return true
	}
	return false
}
