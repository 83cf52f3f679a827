package slot_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/redistest"
	"github.com/batchkv/batchkv/internal/slot"
)

// TestOfMatchesRedisCluster asks a real redis-server started with
// cluster-enabled for CLUSTER KEYSLOT of keys covering every hashtag rule
// (tags, empty tags, unclosed braces, nested braces, binary bytes) and a
// random sample, and compares with slot.Of.
func TestOfMatchesRedisCluster(t *testing.T) {
	r := redistest.StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c, err := redistest.Dial(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := []string{
		"", "foo", "bar", "123456789", "{", "}", "{}", "}{", "{}{}", "{{}}", "{a", "a}", "a{}", "a{}b", "{}a",
		"{a}", "a{b}c", "{a}{b}", "{}{a}", "{{a}}", "{a{b}}", "x{}{y}", "foo{{bar}}zap", "foo{bar}{zap}",
		"{user1000}.following", "{user1000}.followers", "user1000", "\x00", "{\x00}", "\xff{\xfe}\xfd",
		"{ }", "{\r\n}", strings.Repeat("k", 1000), "{" + strings.Repeat("t", 300) + "}x",
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab{}\x00\xff")
	for range 300 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		keys = append(keys, string(b))
	}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("%064x", rnd.Uint64()*uint64(i+1)))
	}
	var batch []byte
	for _, k := range keys {
		batch = redistest.AppendCommand(batch, []byte("CLUSTER"), []byte("KEYSLOT"), []byte(k))
	}
	if err := c.Send(batch); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		raw, err := c.ReadReply()
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		if !strings.HasPrefix(s, ":") || !strings.HasSuffix(s, "\r\n") {
			t.Fatalf("CLUSTER KEYSLOT %q answered %q", k, s)
		}
		want, err := strconv.Atoi(s[1 : len(s)-2])
		if err != nil {
			t.Fatal(err)
		}
		if got := slot.Of([]byte(k)); int(got) != want {
			t.Errorf("Of(%q) = %d, redis-server says %d", k, got, want)
		}
	}
}
