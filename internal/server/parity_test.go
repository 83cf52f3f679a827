package server

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// parityCases are sessions sent to both batchkv-server and redis-server 7.0
// (a read-only replica holding the same data); every reply must be
// byte-identical. Each string is one request, written as a multibulk of its
// space-separated words unless it starts with "raw:" (sent as is; the
// number after "raw:N:" is how many replies it produces).
var parityCases = [][]string{
	// Strings.
	{"GET s", "GET nope", "GET empty", "GET num", "GET h", "GET", "GET a b"},
	{"MGET s nope h empty num", "MGET"},
	{"EXISTS s", "EXISTS s s nope h", "EXISTS", "TOUCH s h nope s"},
	{"TYPE s", "TYPE h", "TYPE nope", "TYPE"},
	{"TTL s", "TTL h", "TTL nope", "PTTL s", "PTTL nope", "EXPIRETIME s", "EXPIRETIME nope", "PEXPIRETIME h", "PEXPIRETIME nope", "TTL"},
	{"STRLEN s", "STRLEN nope", "STRLEN h", "STRLEN long", "STRLEN empty"},
	{"GETRANGE s 0 -1", "GETRANGE s 1 2", "GETRANGE s -3 -1", "GETRANGE s -1 -3", "GETRANGE s 10 20", "GETRANGE s 3 1",
		"GETRANGE s -100 100", "GETRANGE s 0 0", "GETRANGE nope 0 -1", "GETRANGE h 0 -1", "GETRANGE s x 1", "GETRANGE s 0 y",
		"GETRANGE empty 0 -1", "GETRANGE empty -1 -1", "GETRANGE s 2", "SUBSTR s 1 3", "SUBSTR nope 0 1", "GETRANGE s 9223372036854775807 -9223372036854775808"},
	{"DBSIZE"},
	{"GETBIT s 0", "GETBIT s 1", "GETBIT s 7", "GETBIT s 39", "GETBIT s 40", "GETBIT s 99999", "GETBIT nope 3", "GETBIT h 1", "GETBIT s -1",
		"GETBIT s x", "GETBIT nope x", "GETBIT s 4294967296", "GETBIT num 2", "GETBIT bin\x00\xff 9"},
	{"BITCOUNT s", "BITCOUNT nope", "BITCOUNT h", "BITCOUNT s 0 0", "BITCOUNT s 1 -1", "BITCOUNT s -2 -1", "BITCOUNT s -1 -2", "BITCOUNT s 0 -1 BIT",
		"BITCOUNT s 3 17 BIT", "BITCOUNT s 5 5 bit", "BITCOUNT s -9 -3 BIT", "BITCOUNT s 0 1 byte", "BITCOUNT s 0 1 foo", "BITCOUNT s 0", "BITCOUNT s x 1",
		"BITCOUNT nope x", "BITCOUNT s 1 y", "BITCOUNT s 0 1 BIT x", "BITCOUNT empty", "BITCOUNT empty 0 -1 BIT", "BITCOUNT long 10 500", "BITCOUNT s 100 200"},
	// Hashes.
	{"HGET h f1", "HGET h nope", "HGET nope f", "HGET s f", "HGET h", "HGET h f3"},
	{"HMGET h f1 nope f2", "HMGET nope a b", "HMGET s a", "HMGET h"},
	{"HGETALL h", "HGETALL h2", "HGETALL nope", "HGETALL s", "HGETALL"},
	{"HKEYS h", "HKEYS nope", "HKEYS s", "HVALS h", "HVALS nope", "HVALS s"},
	{"HLEN h", "HLEN nope", "HLEN s", "HEXISTS h f1", "HEXISTS h x", "HEXISTS nope x", "HEXISTS s x"},
	{"HSTRLEN h f1", "HSTRLEN h nope", "HSTRLEN nope f", "HSTRLEN s f", "HSTRLEN h f3"},
	{"HRANDFIELD nope", "HRANDFIELD s", "HRANDFIELD nope 3", "HRANDFIELD h 0", "HRANDFIELD h 10", "HRANDFIELD h 3 WITHVALUES",
		"HRANDFIELD h 10 withvalues", "HRANDFIELD h x", "HRANDFIELD h 1 foo", "HRANDFIELD h 1 withvalues x", "HRANDFIELD s 3",
		"HRANDFIELD nope -5 WITHVALUES", "HRANDFIELD h 9223372036854775807 WITHVALUES",
		"HRANDFIELD h -9223372036854775808", "HRANDFIELD nope -9223372036854775807 WITHVALUES", "ZRANDMEMBER nope -9223372036854775808"},
	{"HSCAN h 0", "HSCAN h 0 MATCH f*", "HSCAN h 0 MATCH x*", "HSCAN h 0 COUNT 1", "HSCAN nope 0", "HSCAN s 0", "HSCAN h x",
		"HSCAN h 0 COUNT 0", "HSCAN h 0 COUNT x", "HSCAN h 0 TYPE string", "HSCAN h 0 NOVALUES", "HSCAN h -1", "HSCAN h 0 MATCH"},
	// Keyspace scans (whole-keyspace order differs from Redis's; filters
	// that match one key do not).
	{"KEYS s", "KEYS nope*", "KEYS user:1?", "KEYS h[2]", "KEYS", "SCAN x", "SCAN 1x", "SCAN 99999999999999999999", "SCAN -", "SCAN 0 COUNT 0", "SCAN 0 COUNT x", "SCAN 0 FOO bar", "SCAN 0 MATCH"},
	{"SCAN 0 MATCH s COUNT 1000", "SCAN 0 TYPE nosuch COUNT 1000", "SCAN 0 TYPE STRING MATCH s COUNT 1000", "SCAN 0 TYPE list COUNT 1000", "SCAN 0 MATCH h? TYPE hash COUNT 1000 COUNT 2000", "SCAN 0 TYPE hash MATCH h2 COUNT 1000", "SCAN 0 MATCH nothing* COUNT 1000"},
	// Other types on our data.
	{"LRANGE s 0 -1", "LRANGE nope 0 -1", "LRANGE s x 1", "LLEN nope", "LLEN h", "LINDEX nope 0", "LINDEX s 0", "LINDEX nope x",
		"SMEMBERS nope", "SMEMBERS s", "SCARD nope", "SISMEMBER nope a", "SISMEMBER h a", "SMISMEMBER nope a b", "SMISMEMBER s a",
		"SRANDMEMBER nope", "SRANDMEMBER s", "SRANDMEMBER nope 3", "SRANDMEMBER nope x", "SRANDMEMBER s 2", "SRANDMEMBER nope -3", "SRANDMEMBER nope 1 2",
		"SRANDMEMBER nope -9223372036854775808", "SINTER nope", "SINTER nope s", "SINTER s nope", "SUNION nope nope2", "SUNION nope h", "SDIFF nope", "SDIFF h nope",
		"ZRANK nope a", "ZRANK s a", "ZREVRANK nope a", "ZREVRANK h a", "ZRANDMEMBER nope", "ZRANDMEMBER s", "ZRANDMEMBER nope 2", "ZRANDMEMBER nope 2 WITHSCORES",
		"ZRANDMEMBER nope 2 foo", "ZRANDMEMBER nope x", "ZRANDMEMBER s 2 withscores", "ZRANDMEMBER nope 1 withscores x",
		"ZCARD nope", "ZCARD s", "ZSCORE nope a", "ZSCORE h a", "ZMSCORE nope a b", "XLEN nope", "XLEN s"},
	{"ZRANGE nope 0 -1", "ZRANGE s 0 -1", "ZRANGE nope x 1", "ZRANGE nope 0 1 WITHSCORES", "ZRANGE nope 0 1 REV", "ZRANGE nope 0 1 REV REV",
		"ZRANGE nope 0 1 LIMIT 0 1", "ZRANGE nope 0 1 BYSCORE LIMIT 0 1", "ZRANGE nope (1 +inf BYSCORE", "ZRANGE nope a b BYSCORE", "ZRANGE nope - + BYLEX",
		"ZRANGE nope a b BYLEX", "ZRANGE nope [a (b BYLEX WITHSCORES", "ZRANGE nope 0 1 LIMIT x 1 BYSCORE", "ZRANGE nope 0 1 FOO", "ZRANGE nope 0 1 BYSCORE BYLEX",
		"ZRANGE h 0 1", "ZRANGE h -inf inf BYSCORE", "ZRANGE nope 1e3 -1.5e-2 BYSCORE REV", "ZRANGE nope nan 1 BYSCORE", "ZRANGE nope 1 LIMIT",
		"ZREVRANGE nope 0 -1", "ZREVRANGE nope 0 -1 REV", "ZREVRANGE s 0 1 WITHSCORES", "ZRANGEBYSCORE nope -inf +inf", "ZRANGEBYSCORE nope 0 x",
		"ZRANGEBYSCORE nope 0 1 BYSCORE", "ZRANGEBYSCORE s 0 1 LIMIT 0 2 WITHSCORES", "ZREVRANGEBYSCORE nope 1 0", "ZRANGEBYLEX nope - +", "ZRANGEBYLEX nope a +",
		"ZREVRANGEBYLEX nope + - LIMIT 0 1", "ZRANGEBYLEX s - + WITHSCORES", "ZCOUNT nope 0 1", "ZCOUNT nope x 1", "ZCOUNT s -inf +inf", "ZCOUNT nope (1 (2",
		"ZLEXCOUNT nope - +", "ZLEXCOUNT nope a +", "ZLEXCOUNT h [a [b", "ZCOUNT nope ' 1' 2", "ZCOUNT nope 0x10 1", "ZCOUNT nope 1e999 1", "ZCOUNT nope 0x1.8 -0X2", "ZCOUNT nope 1_0 2", "ZCOUNT nope 0x 1", "ZCOUNT nope .5 5."},
	// Writes: READONLY after the existence and arity checks.
	{"SET s x", "SET s", "DEL s", "DEL", "HSET h f v", "HSET h f", "INCR num", "EXPIRE s 10", "FLUSHDB", "FLUSHALL",
		"APPEND s x", "LPUSH l a", "SADD s a", "ZADD z 1 a", "XADD x * a b", "GETDEL s", "GETEX s", "HDEL h f1", "SETNX a b",
		"MSET a b c d", "RENAME s t", "COPY s t", "PERSIST s", "HINCRBY h f 1", "UNLINK s", "PFADD p a"},
	// Connection and server commands.
	{"PING", "PING hello", "PING a b", "ECHO x", "ECHO", "ECHO a b"},
	{"READONLY", "READWRITE", "ASKING", "READONLY x"},
	{"SELECT 0", "SELECT 1", "SELECT x", "SELECT 99999999999", "SELECT -1", "SELECT"},
	{"AUTH x", "AUTH a b", "AUTH default x", "AUTH a b c", "AUTH"},
	{"HELLO 4", "HELLO x", "HELLO 1", "HELLO 3 FOO", "HELLO 3 AUTH a", "HELLO 2 SETNAME", "HELLO 3 AUTH nobody x"},
	{"CLIENT SETNAME myname", "CLIENT GETNAME", "CLIENT SETNAME", "CLIENT FOO", "CLIENT", "CLIENT SETNAME bad\x01name", "CLIENT GETNAME", "CLIENT SETNAME ''"},
	{"CLIENT KILL 1.2.3.4:5", "CLIENT KILL ID 999999", "CLIENT KILL ID x", "CLIENT KILL FOO bar", "CLIENT KILL TYPE foo", "CLIENT LIST TYPE foo", "CLIENT LIST FOO"},
	{"COMMAND COUNT x", "COMMAND INFO get hgetall nosuch SET", "COMMAND INFO GET", "COMMAND DOCS get nosuch hget", "COMMAND FOO", "COMMAND INFO nosuch"},
	{"CONFIG GET maxclients", "CONFIG GET proto-max-bulk-len", "CONFIG GET nosuch", "CONFIG GET", "CONFIG FOO", "CONFIG SET x y", "CONFIG REWRITE", "CONFIG SET", "CONFIG GET maxclient?", "CONFIG GET MAXCLIENTS"},
	{"CLIENT KILL ID abc 48", "CLIENT KILL ID 0", "CLIENT KILL ID -1 TYPE normal", "CLIENT KILL TYPE master FOO", "CLIENT KILL MAXAGE 10",
		"CLIENT KILL TYPE pubsub ID 1", "CLIENT KILL USER nosuch ID x", "CLIENT KILL ID 99999 SKIPME maybe",
		"HELLO 2 AUTH nosuch pw 40", "HELLO 3 AUTH nosuch pw SETNAME", "HELLO 3 SETNAME a\x01b AUTH default x", "CLIENT LIST ID 0 x",
		"CLIENT LIST TYPE pubsub x", "CLIENT LIST TYPE normal x", "CLIENT LIST ID", "CLIENT LIST TYPE", "CLIENT LIST ID 0 0 -1", "CLIENT LIST x y"},
	// Subcommand metadata. Nested subcommands (COMMAND INFO client) and
	// several matches (COMMAND LIST FILTERBY, a CONFIG GET of several
	// parameters) come in the order of a hashtable Redis seeds randomly per
	// process, so these cases each produce one entry.
	{"COMMAND INFO config|get CLIENT|LIST client|setinfo config|nosuch a|b|c client|", "COMMAND DOCS config|get function|flush xgroup|create",
		"COMMAND LIST FILTERBY PATTERN config|g*", "COMMAND LIST FILTERBY PATTERN CLIENT|GETN?ME", "COMMAND LIST FILTERBY ACLCAT nosuch",
		"COMMAND LIST FILTERBY PATTERN FUNCTION", "COMMAND INFO xgroup|setid", "FUNCTION DELETE x", "XGROUP CREATE s g $", "function|delete x",
		"FUNCTION", "FUNCTION NOSUCH", "XGROUP CREATE s", "CONFIG GET hash-max-listpack-entries", "CONFIG GET zset-max-ziplist-entries",
		"CONFIG GET set-max-intset-entries", "CONFIG GET hash-max-ziplist-entries", "INFO cluster"},
	{"COMMAND HELP", "CLIENT HELP", "CONFIG HELP", "SLOWLOG HELP", "command help", "COMMAND HELP x", "CLIENT HELP x", "CONFIG GET"},
	{"SLOWLOG HELP", "SLOWLOG FOO", "SLOWLOG GET x", "SLOWLOG", "SLOWLOG GET -2", "SLOWLOG LEN x", "SLOWLOG RESET x", "SLOWLOG GET 1 2"},
	{"TIME x", "DBSIZE x", "ROLE x", "RANDOMKEY x", "COMMAND LIST x", "COMMAND LIST FILTERBY FOO x", "COMMAND LIST FILTERBY MODULE x",
		"COMMAND DOCS nosuch", "COMMAND GETKEYS", "CLIENT ID x", "CLIENT GETNAME x", "CLIENT INFO x", "CLIENT KILL", "CLIENT LIST ID x",
		"CLIENT LIST ID 0", "CLIENT LIST ID 99999", "CLIENT LIST TYPE master", "QUIT"},
	{"HELLO 3", "CLIENT LIST ID 99999", "TIME x", "SLOWLOG GET 0", "CLIENT GETNAME", "CLIENT SETNAME n", "CLIENT GETNAME"},
	{"FOO", "FOO a b", "foo 'a b' c", "GETT s", "info x y z blah"},
	{"FOO " + strings.Repeat("x", 200) + " y", "FOO " + strings.Repeat("a", 60) + " " + strings.Repeat("b", 60) + " " + strings.Repeat("c", 60) + " d",
		"FOO a\x00b c", "fo\x00o x", "FOO a\r\nb", "CLIENT fo\x00o", "CLIENT " + strings.Repeat("z", 200), strings.Repeat("Q", 200),
		"GET bin\x00\xff", "hGeT h f1", "MGET bin\x00\xff s", "GET " + strings.Repeat("k", 100000)},
	// Transactions.
	{"MULTI", "GET s", "HGET h f1", "EXEC"},
	{"MULTI", "GET s", "SET s x", "EXEC"},
	{"MULTI", "GET s", "FOO", "EXEC"},
	{"MULTI", "GET", "GET s", "EXEC"},
	{"MULTI", "MULTI", "GET s", "EXEC"},
	{"EXEC", "DISCARD", "MULTI", "DISCARD", "DISCARD"},
	{"EXEC x", "MULTI", "EXEC x", "EXEC", "DISCARD x"},
	{"MULTI", "WATCH s", "EXEC"},
	{"WATCH s", "MULTI", "GET s", "EXEC", "UNWATCH", "WATCH", "UNWATCH x"},
	{"MULTI", "GET nope", "HGETALL h", "MGET s nope", "EXEC"},
	{"MULTI", "PING", "ECHO x", "DBSIZE", "EXEC"},
	{"MULTI", "CLIENT NOSUCH", "GET s", "EXEC"},
	{"HELLO 3", "MULTI", "GET s", "HGETALL h", "EXEC"},
	// RESP3.
	{"HELLO 3", "GET nope", "MGET s nope", "HGETALL h", "HGETALL nope", "HMGET h f1 x", "HKEYS h", "HRANDFIELD h 10 WITHVALUES",
		"HRANDFIELD nope", "HSCAN h 0", "CLIENT GETNAME", "COMMAND INFO get nosuch", "COMMAND DOCS hget", "SMEMBERS nope",
		"ZSCORE nope a", "LINDEX nope 0", "CONFIG GET maxclients", "SET a b", "FOO", "HGET h nope", "EXISTS s", "TYPE h"},
	{"HELLO 3", "HELLO 2", "GET nope", "HGETALL h"},
	// Inline parsing.
	{`raw:1:GET "s"` + "\r\n", `raw:1:GET 's'` + "\r\n", `raw:1:ECHO "a\x41\n\"b"` + "\r\n", `raw:1:ECHO 'it\'s'` + "\r\n",
		"raw:1:   ECHO    spaced   \r\n", "raw:1:ECHO a\n", "raw:1:\r\n\r\nPING\r\n", "raw:1:*0\r\nPING\r\n", "raw:1:*-1\r\nPING\r\n",
		`raw:1:ECHO "\xZZ"` + "\r\n", `raw:1:ECHO "a\tb\\c"` + "\r\n"},
	{"raw:3:*2\r\n$3\r\nGET\r\n$1\r\ns\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n*1\r\n$4\r\nping\r\n"},
}

func parityRequest(line string) (req []byte, n int) {
	if rest, ok := strings.CutPrefix(line, "raw:"); ok {
		num, body, _ := strings.Cut(rest, ":")
		n = int(num[0] - '0')
		return []byte(body), n
	}
	var args []string
	for _, w := range strings.Split(line, " ") {
		if w == "''" {
			w = ""
		}
		args = append(args, w)
	}
	return cmdBytes(args...), 1
}

func TestParityWithRedis(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	ref := redisServer(t, testData)
	// Every session in RESP2, then again after HELLO 3.
	var sessions [][]string
	for _, session := range parityCases {
		sessions = append(sessions, session, append([]string{"HELLO 3"}, session...))
	}
	for _, session := range sessions {
		var req []byte
		n := 0
		for _, line := range session {
			r, k := parityRequest(line)
			req = append(req, r...)
			n += k
		}
		got := normalize(exchange(t, ts.addr, req, n, false))
		want := normalize(exchange(t, ref, req, n, false))
		if !bytes.Equal(got, want) {
			t.Errorf("session %q:\n got %q\nwant %q", session, got, want)
			for i, line := range session {
				r, k := parityRequest(line)
				if k != 1 {
					continue
				}
				g, w := normalize(exchange(t, ts.addr, r, 1, false)), normalize(exchange(t, ref, r, 1, false))
				if !bytes.Equal(g, w) {
					t.Errorf("  first difference at %d %q:\n   got %q\n  want %q", i, line, g, w)
					break
				}
			}
		}
	}
}

var helloID = regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`)

// normalize hides what legitimately differs between the two servers: the
// client id in HELLO, and the role (the reference is a replica so that it
// is read-only; batchkv reports itself as a master, as a standalone server).
func normalize(b []byte) []byte {
	b = helloID.ReplaceAllLiteral(b, []byte("$2\r\nid\r\n:ID\r\n"))
	return bytes.ReplaceAll(b, []byte("$4\r\nrole\r\n$7\r\nreplica\r\n"), []byte("$4\r\nrole\r\n$6\r\nmaster\r\n"))
}

// closingCases end with the server closing the connection: protocol errors
// (answered, then closed) and QUIT. Each is raw bytes and the number of
// replies before the close.
var closingCases = []struct {
	req string
	n   int
}{
	{"*2000000000000\r\n", 1},
	{"*2147483648\r\n", 1},
	{"*1\r\n$536870913\r\n", 1},
	{"*1\r\n$-1\r\n", 1},
	{"*1\r\n$x\r\n", 1},
	{"*1\r\nx\r\n", 1},
	{"*1\r\n\r\n", 1},
	{"*x\r\n", 1},
	{"*\r\n", 1},
	{"*1\r\n$01\r\na\r\n", 1},
	{"*1\r\n$+1\r\na\r\n", 1},
	{"*-0\r\n", 1},
	{"PING\r\nGET \"a\r\n", 2},
	{"ECHO 'a'b\r\n", 1},
	{"ECHO \"a\"b\r\n", 1},
	{"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\nPING\r\n", 3},
	{"QUIT\r\nPING\r\n", 1},
	{"quit extra args\r\nPING\r\n", 1},
	{"*1\r\n$4\r\nquit\r\n", 1},
	{"MULTI\r\nGET s\r\nQUIT\r\n", 3},
}

func TestParityClosing(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	ref := redisServer(t, testData)
	for _, tc := range closingCases {
		got := exchange(t, ts.addr, []byte(tc.req), tc.n, true)
		want := exchange(t, ref, []byte(tc.req), tc.n, true)
		if !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.req, got, want)
		}
	}
}

var authCases = [][]string{
	{"GET s", "PING", "FOO", "GET", "AUTH wrong", "AUTH default wrong", "AUTH nobody secret", "GET s", "AUTH secret", "GET s"},
	{"HELLO 3", "HELLO 3 AUTH default wrong", "HELLO 3 AUTH default secret SETNAME x", "CLIENT GETNAME", "GET s"},
	// HELLO applies each option as it reads it: SETNAME before the NOAUTH
	// check, AUTH before a later syntax error.
	{"HELLO 3 SETNAME myname", "HELLO 2 AUTH default secret FOO", "PING", "CLIENT GETNAME"},
	{"HELLO 3 SETNAME a\x01b AUTH default wrong", "HELLO 3 AUTH default wrong SETNAME a\x01b", "HELLO 3 SETNAME", "GET s"},
	{"AUTH default secret", "RESET", "GET s", "MULTI"},
	{"MULTI", "EXEC", "QUIT"},
	{"AUTH secret", "MGET s a b c d e f g h i j k"},
	{"SET a b", "COMMAND COUNT", "CLIENT ID", "ECHO x", "SELECT 0", "CONFIG GET maxclients", "INFO", "HELLO"},
}

var authClosingCases = []struct {
	req string
	n   int
}{
	{"*11\r\n", 1},
	{"*2\r\n$4\r\nECHO\r\n$16385\r\n", 1},
}

func TestParityAuth(t *testing.T) {
	ts := startServer(t, Config{RequirePass: "secret"}, testData)
	ref := redisServer(t, testData, "secret")
	for _, session := range authCases {
		var req []byte
		n := 0
		for _, line := range session {
			r, k := parityRequest(line)
			req = append(req, r...)
			n += k
		}
		got := normalize(exchange(t, ts.addr, req, n, false))
		want := normalize(exchange(t, ref, req, n, false))
		if !bytes.Equal(got, want) {
			t.Errorf("session %q:\n got %q\nwant %q", session, got, want)
		}
	}
	for _, tc := range authClosingCases {
		got := exchange(t, ts.addr, []byte(tc.req), tc.n, true)
		want := exchange(t, ref, []byte(tc.req), tc.n, true)
		if !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.req, got, want)
		}
	}
}

// CONFIG GET of a glob returns Redis's matches in the order of a hashtable
// Redis seeds randomly per process: compared as a set of name/value pairs,
// for globs whose every match Redis has batchkv also knows.
func TestParityConfigGlobs(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	ref := redisServer(t, testData)
	pairs := func(b []byte) []string {
		lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
		var out []string
		for i := 2; i+2 < len(lines); i += 4 {
			out = append(out, lines[i]+"="+lines[i+2])
		}
		slices.Sort(out)
		return out
	}
	for _, glob := range []string{"*max-*-entries*", "hash-max-*", "zset-max-*", "set-max-*", "list-*", "stream-node-*", "*-ziplist-*", "*listpack*"} {
		req := cmdBytes("CONFIG", "GET", glob)
		got, want := pairs(exchange(t, ts.addr, req, 1, false)), pairs(exchange(t, ref, req, 1, false))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("CONFIG GET %s = %q, want %q", glob, got, want)
		}
	}
}
