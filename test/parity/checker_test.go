package parity

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/store"
)

// testChecker is a checker over a tiny model whose reference answers come
// from the model itself.
func testChecker() *checker {
	m := &model{items: map[string]*item{}}
	m.add(&item{key: []byte("s"), typ: store.TypeString, str: []byte("v")})
	m.add(&item{key: []byte("small"), typ: store.TypeHash, fields: [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("b"), []byte("2")}}})
	m.add(&item{key: []byte("big"), typ: store.TypeHash, fields: [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte("b"), []byte(strings.Repeat("x", 65))}}})
	return &checker{
		m:         m,
		spec:      map[string]bool{"get": true},
		setinfo72: true,
		refKeys: func(pattern []byte) map[string]bool {
			if string(pattern) == "s*" {
				return map[string]bool{"s": true, "small": true}
			}
			return map[string]bool{"s": true, "small": true, "big": true}
		},
		refHScan: func(key, pattern []byte) map[string]string {
			out := map[string]string{}
			for _, fv := range m.items[string(key)].fields {
				out[string(fv[0])] = string(fv[1])
			}
			return out
		},
	}
}

func bulk(s ...string) string {
	out := ""
	for _, x := range s {
		out += "$" + strconv.Itoa(len(x)) + "\r\n" + x + "\r\n"
	}
	return out
}

func arr(n int, body string) string { return "*" + strconv.Itoa(n) + "\r\n" + body }

// TestCheckerDetects plants differences and accepted variations: a
// comparator that accepted everything would fail here.
func TestCheckerDetects(t *testing.T) {
	c := testChecker()
	big := strings.Repeat("x", 65)
	tests := []struct {
		name     string
		cmd      *command
		ref, tgt string
		ok       bool
	}{
		{"exact equal", &command{args: b("GET", "s")}, "$1\r\nv\r\n", "$1\r\nv\r\n", true},
		{"exact value differs", &command{args: b("GET", "s")}, "$1\r\nv\r\n", "$1\r\nw\r\n", false},
		{"exact RESP3 null vs RESP2 null", &command{args: b("GET", "x")}, "_\r\n", "$-1\r\n", false},
		{"error text differs", &command{args: b("GET")}, "-ERR wrong number of arguments for 'get' command\r\n", "-ERR wrong number of arguments\r\n", false},
		{"small hash reordered", &command{args: b("HGETALL", "small"), check: checkHashOrder, key: []byte("small")},
			arr(4, bulk("a", "1", "b", "2")), arr(4, bulk("b", "2", "a", "1")), false},
		{"big hash reordered", &command{args: b("HGETALL", "big"), check: checkHashOrder, key: []byte("big")},
			arr(4, bulk("a", "1", "b", big)), arr(4, bulk("b", big, "a", "1")), true},
		{"big hash pairs swapped", &command{args: b("HGETALL", "big"), check: checkHashOrder, key: []byte("big")},
			arr(4, bulk("a", "1", "b", big)), arr(4, bulk("a", big, "b", "1")), false},
		{"big hash RESP3 map reordered", &command{args: b("HGETALL", "big"), check: checkHashOrder, key: []byte("big")},
			"%2\r\n" + bulk("a", "1", "b", big), "%2\r\n" + bulk("b", big, "a", "1"), true},
		{"big hash keys missing one", &command{args: b("HKEYS", "big"), check: checkHashOrder, key: []byte("big")},
			arr(2, bulk("a", "b")), arr(1, bulk("a")), false},
		{"KEYS as a set", &command{args: b("KEYS", "*"), check: checkKeys}, arr(2, bulk("s", "small")), arr(2, bulk("small", "s")), true},
		{"KEYS missing a key", &command{args: b("KEYS", "*"), check: checkKeys}, arr(2, bulk("s", "small")), arr(1, bulk("small")), false},
		{"SCAN foreign key", &command{args: b("SCAN", "0"), check: checkScan}, arr(2, bulk("0")+arr(1, bulk("s"))), arr(2, bulk("0")+arr(1, bulk("nokey"))), false},
		{"SCAN key not matching", &command{args: b("SCAN", "0", "MATCH", "s*"), check: checkScan, pattern: []byte("s*")},
			arr(2, bulk("0")+arr(0, "")), arr(2, bulk("5")+arr(1, bulk("big"))), false},
		{"SCAN wrong type", &command{args: b("SCAN", "0", "TYPE", "hash"), check: checkScan, typeFilter: "hash"},
			arr(2, bulk("0")+arr(0, "")), arr(2, bulk("7")+arr(1, bulk("s"))), false},
		{"SCAN other cursor", &command{args: b("SCAN", "0"), check: checkScan}, arr(2, bulk("3")+arr(1, bulk("s"))), arr(2, bulk("99")+arr(1, bulk("big"))), true},
		{"SCAN cursor not a number", &command{args: b("SCAN", "0"), check: checkScan}, arr(2, bulk("3")+arr(0, "")), arr(2, bulk("x")+arr(0, "")), false},
		{"HSCAN incomplete from 0", &command{args: b("HSCAN", "small", "0"), check: checkHScan, key: []byte("small")},
			arr(2, bulk("0")+arr(4, bulk("a", "1", "b", "2"))), arr(2, bulk("0")+arr(2, bulk("a", "1"))), false},
		{"HSCAN wrong value", &command{args: b("HSCAN", "small", "0"), check: checkHScan, key: []byte("small")},
			arr(2, bulk("0")+arr(4, bulk("a", "1", "b", "2"))), arr(2, bulk("0")+arr(4, bulk("a", "1", "b", "3"))), false},
		{"RANDOMKEY member", &command{args: b("RANDOMKEY"), check: checkRandomKey}, bulk("s"), bulk("big"), true},
		{"RANDOMKEY not a key", &command{args: b("RANDOMKEY"), check: checkRandomKey}, bulk("s"), bulk("zzz"), false},
		{"HRANDFIELD positive count repeats", &command{args: b("HRANDFIELD", "small", "2"), check: checkHRandField, key: []byte("small"), hasCount: true, count: 2},
			arr(2, bulk("a", "b")), arr(2, bulk("a", "a")), false},
		{"HRANDFIELD short", &command{args: b("HRANDFIELD", "small", "5"), check: checkHRandField, key: []byte("small"), hasCount: true, count: 5},
			arr(2, bulk("a", "b")), arr(1, bulk("a")), false},
		{"HRANDFIELD negative may repeat", &command{args: b("HRANDFIELD", "small", "-3"), check: checkHRandField, key: []byte("small"), hasCount: true, count: -3},
			arr(3, bulk("a", "b", "a")), arr(3, bulk("b", "b", "b")), true},
		{"HRANDFIELD wrong value", &command{args: b("HRANDFIELD", "small", "1", "WITHVALUES"), check: checkHRandField, key: []byte("small"), hasCount: true, count: 1, withValues: true},
			arr(2, bulk("a", "1")), arr(2, bulk("a", "2")), false},
		{"HRANDFIELD RESP3 pairs", &command{args: b("HRANDFIELD", "small", "-2", "WITHVALUES"), check: checkHRandField, key: []byte("small"), hasCount: true, count: -2, withValues: true},
			arr(2, arr(2, bulk("a", "1"))+arr(2, bulk("a", "1"))), arr(2, arr(2, bulk("b", "2"))+arr(2, bulk("a", "1"))), true},
		{"semantic command, error differs", &command{args: b("SCAN", "x"), check: checkScan}, "-ERR invalid cursor\r\n", "-ERR bad cursor\r\n", false},
		{"semantic command, type differs", &command{args: b("TIME"), check: checkTime}, arr(2, bulk("1", "2")), "+OK\r\n", false},
		{"INFO lacks a section", &command{args: b("INFO"), check: checkInfo}, bulk("# Server\r\na:1\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\n"), bulk("# Server\r\na:2\r\n"), false},
		{"INFO key count differs", &command{args: b("INFO"), check: checkInfo}, bulk("# Keyspace\r\ndb0:keys=3,expires=0\r\n"), bulk("# Keyspace\r\ndb0:keys=4,expires=0\r\n"), false},
		{"INFO values differ", &command{args: b("INFO"), check: checkInfo}, bulk("# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n"), bulk("# Dataset\r\nx:y\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\n"), true},
		{"EXEC element differs", &command{args: b("EXEC"), check: checkExec, subs: []*command{{args: b("GET", "s")}, {args: b("RANDOMKEY"), check: checkRandomKey}}},
			arr(2, bulk("v", "s")), arr(2, bulk("w", "s")), false},
		{"EXEC random element accepted", &command{args: b("EXEC"), check: checkExec, subs: []*command{{args: b("GET", "s")}, {args: b("RANDOMKEY"), check: checkRandomKey}}},
			arr(2, bulk("v", "s")), arr(2, bulk("v", "big")), true},
		{"COMMAND as a set", &command{args: b("COMMAND"), check: checkCommandAll}, arr(2, arr(1, bulk("get"))+arr(1, bulk("set"))), arr(2, arr(1, bulk("set"))+arr(1, bulk("get"))), true},
		{"COMMAND lacks a SPEC command", &command{args: b("COMMAND"), check: checkCommandAll}, arr(2, arr(1, bulk("get"))+arr(1, bulk("set"))), arr(1, arr(1, bulk("set"))), false},
		{"COMMAND subset", &command{args: b("COMMAND"), check: checkCommandAll}, arr(2, arr(1, bulk("get"))+arr(1, bulk("zadd"))), arr(1, arr(1, bulk("get"))), true},
		{"COMMAND entry differs", &command{args: b("COMMAND"), check: checkCommandAll}, arr(1, arr(2, bulk("get")+":2\r\n")), arr(1, arr(2, bulk("get")+":3\r\n")), false},
		{"COMMAND INFO nil for a SPEC command", &command{args: b("COMMAND", "INFO", "get"), check: checkCommandInfo}, arr(1, arr(2, bulk("get")+":2\r\n")), arr(1, "$-1\r\n"), false},
		{"COMMAND INFO nil for another command", &command{args: b("COMMAND", "INFO", "zadd"), check: checkCommandInfo}, arr(1, arr(2, bulk("zadd")+":2\r\n")), arr(1, "$-1\r\n"), true},
		{"COMMAND COUNT too big", &command{args: b("COMMAND", "COUNT"), check: checkCommandCount}, ":240\r\n", ":241\r\n", false},
		{"COMMAND COUNT subset", &command{args: b("COMMAND", "COUNT"), check: checkCommandCount}, ":240\r\n", ":167\r\n", true},
		{"CLIENT SETINFO as 7.2", &command{args: b("CLIENT", "SETINFO", "lib-name", "go-redis"), check: checkClientSetinfo}, "-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n", "+OK\r\n", true},
		{"CLIENT SETINFO bad value", &command{args: b("CLIENT", "SETINFO", "lib-ver", "a b"), check: checkClientSetinfo}, "-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n", "+OK\r\n", false},
		{"CONFIG GET wrong value", &command{args: b("CONFIG", "GET", "hash-max-listpack-entries"), check: checkConfigGet}, arr(2, bulk("hash-max-listpack-entries", "512")), arr(2, bulk("hash-max-listpack-entries", "128")), false},
		{"CONFIG GET port differs", &command{args: b("CONFIG", "GET", "port"), check: checkConfigGet}, arr(2, bulk("port", "1")), arr(2, bulk("port", "2")), true},
		{"CONFIG GET lacks a known parameter", &command{args: b("CONFIG", "GET", "save"), check: checkConfigGet}, arr(2, bulk("save", "")), arr(0, ""), false},
		{"CONFIG GET other names", &command{args: b("CONFIG", "GET", "*"), check: checkConfigGet}, arr(2, bulk("port", "1")), arr(2, bulk("bind", "1")), false},
		{"INFO lacks Modules", &command{args: b("INFO"), check: checkInfo}, bulk("# Server\r\na:1\r\n\r\n# Modules\r\n"), bulk("# Server\r\na:2\r\n"), true},
	}
	for _, tc := range tests {
		why := c.compare(tc.cmd, []byte(tc.ref), []byte(tc.tgt))
		if (why == "") != tc.ok {
			t.Errorf("%s: compare = %q, want ok=%v", tc.name, why, tc.ok)
		}
	}
}

// TestClassifyAfterMutation checks that commands keep the right rule when
// their arguments change, so a random reply is never compared byte for byte.
func TestClassifyAfterMutation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want check
	}{
		{[]string{"hrandfield", "h"}, checkHRandField},
		{[]string{"HRANDFIELD", "h", "abc"}, exact},
		{[]string{"HRANDFIELD", "h", "5", "WITHVALUES", "x"}, exact},
		{[]string{"command"}, checkCommandAll},
		{[]string{"COMMAND", "docs"}, checkCommandDocs},
		{[]string{"COMMAND", "COUNT"}, checkCommandCount},
		{[]string{"COMMAND", "HELP"}, exact},
		{[]string{"hgetall", "k"}, checkHashOrder},
		{[]string{"HGETALL", "k", "x"}, exact},
		{[]string{"client", "id"}, checkClientID},
		{[]string{"CLIENT", "GETNAME"}, exact},
		{[]string{"SCAN", "0", "MATCH"}, checkScan},
		{[]string{"HSCAN", "h"}, exact},
	} {
		c := &command{args: b(tc.args...)}
		classify(c)
		if c.check != tc.want {
			t.Errorf("classify(%q) = %d, want %d", tc.args, c.check, tc.want)
		}
	}
	// A huge negative count is reduced so that no reply has billions of
	// elements.
	c := &command{args: b("HRANDFIELD", "h", "-2147483648")}
	classify(c)
	if c.count != -1000 || string(c.args[2]) != "-1000" {
		t.Errorf("HRANDFIELD -2^31 kept as %q", c.args[2])
	}
}

// TestPlantedDifferences runs the whole suite against a second redis-server
// whose data was altered: the run must report differences, among them the
// key count.
func TestPlantedDifferences(t *testing.T) {
	const seed = 7
	m := genModel(seed, 3000)
	altered := genModel(seed, 3000)
	for i, k := range altered.strs {
		if i%5 == 0 {
			it := altered.items[string(k)]
			it.str = append([]byte("changed:"), it.str...)
		}
	}
	for _, k := range altered.hashes {
		it := altered.items[string(k)]
		if !it.big && len(it.fields) > 1 { // listpack order is compared exactly
			it.fields[0], it.fields[1] = it.fields[1], it.fields[0]
		}
	}
	// And one key fewer.
	rebuilt := &model{items: map[string]*item{}}
	for _, k := range altered.all[1:] {
		rebuilt.add(altered.items[string(k)])
	}
	p := setup(t, m, "redis", rebuilt)
	res := p.run(t, runConfig{seed: seed, commands: 3000, budget: 30 * time.Second, only: -1})
	var dbsize, get, hgetall bool
	for _, d := range res.diffs {
		switch strings.ToUpper(string(d.cmd.args[0])) {
		case "DBSIZE":
			dbsize = true
		case "GET":
			get = true
		case "HGETALL":
			hgetall = true
		}
	}
	t.Logf("planted: %d differences in %d commands (DBSIZE %v, GET %v, HGETALL %v)", len(res.diffs), res.commands, dbsize, get, hgetall)
	if !dbsize || !get || !hgetall {
		t.Errorf("planted differences not all detected: DBSIZE %v, GET %v, HGETALL %v", dbsize, get, hgetall)
	}
}

// TestSelfCheck compares redis-server with redis-server on the same data:
// the suite must find no difference there, or a rule is wrong about Redis.
func TestSelfCheck(t *testing.T) {
	seed := seedFromEnv(t)
	t.Logf("PARITY_SEED=%d", seed)
	m := genModel(seed, 3000)
	p := setup(t, m, "redis", nil)
	start := time.Now()
	res := p.run(t, runConfig{seed: seed, commands: 4000, budget: 30 * time.Second, only: -1})
	report(t, seed, "redis", res, time.Since(start))
}
