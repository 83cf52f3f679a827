package cluster

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/resp"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

const threeByTwo = "10.0.0.1:7000+10.0.0.4:7000,10.0.0.2:7000+10.0.0.5:7000,10.0.0.3:7000+10.0.0.6:7000"

func mustTopology(t *testing.T, nodes string, shard int, self string) *Topology {
	t.Helper()
	shards, err := ParseNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	top, err := New(shards, shard, self)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestNewThreeShards(t *testing.T) {
	top := mustTopology(t, threeByTwo, 1, "10.0.0.5:7000")
	if top.Self.Shard != 1 || top.Self.Replica != 1 || top.Self.Host != "10.0.0.5" {
		t.Fatalf("self = %+v", top.Self)
	}
	// redis-cli --cluster create's split for three masters.
	want := []slot.Range{{Start: 0, End: 5460}, {Start: 5461, End: 10922}, {Start: 10923, End: 16383}}
	for i, sh := range top.Shards {
		if sh.Slots != want[i] || len(sh.Nodes) != 2 {
			t.Errorf("shard %d: %+v", i, sh)
		}
	}
	if got := top.KnownNodes(); got != 6 {
		t.Errorf("KnownNodes = %d", got)
	}
	// "foo" is slot 12182 (shard 2), "bar" 5061 (shard 0), "hello" 866.
	if top.Local(12182) || top.Local(5061) || !top.Local(5461) || !top.Local(10922) || top.Local(10923) {
		t.Error("Local is wrong at a range edge")
	}
	if got, want := top.Moved(slot.Of([]byte("foo"))), "MOVED 12182 10.0.0.3:7000"; got != want {
		t.Errorf("Moved = %q, want %q", got, want)
	}
	// Every server computes the same IDs.
	other := mustTopology(t, threeByTwo, 2, "10.0.0.3:7000")
	for i := range top.Shards {
		for r := range top.Shards[i].Nodes {
			if a, b := top.Shards[i].Nodes[r].ID, other.Shards[i].Nodes[r].ID; a != b || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(a) {
				t.Errorf("node %d/%d: IDs %q and %q", i, r, a, b)
			}
		}
	}
	if top.Shards[0].Nodes[0].ID == top.Shards[0].Nodes[1].ID {
		t.Error("two endpoints share an ID")
	}
}

func TestNewRejects(t *testing.T) {
	for _, tt := range []struct {
		nodes string
		shard int
		self  string
	}{
		{threeByTwo, 3, "10.0.0.1:7000"},                 // no shard 3
		{threeByTwo, 0, "10.0.0.2:7000"},                 // an endpoint of shard 1
		{"a:1,a:1", 0, "a:1"},                            // listed twice
		{"a:0", 0, "a:0"},                                // port 0
		{"a", 0, "a"},                                    // no port
		{"a:1,,b:2", 0, "a:1"},                           // empty shard
		{"a:1+,b:2", 0, "a:1"},                           // empty endpoint
		{"a:1,b:2", 0, "a:70000"},                        // bad announce
		{":1,b:2", 0, ":1"},                              // empty host
		{"a:1,b:2", -1, "a:1"},                           // negative shard
		{"127.0.0.1:1+127.0.0.1:2", 0, "127.0.0.1:3"},    // not one of them
		{"127.0.0.1:1+127.0.0.1:2", 0, "127.0.0.2:1"},    // same port, other host
		{"127.0.0.1:1+127.0.0.1:x", 0, "127.0.0.1:1"},    // port not a number
		{"127.0.0.1:1 + 127.0.0.1:2", 0, "127.0.0.1:1x"}, // bad announce
	} {
		shards, err := ParseNodes(tt.nodes)
		if err == nil {
			_, err = New(shards, tt.shard, tt.self)
		}
		if !errors.Is(err, ErrTopology) {
			t.Errorf("%q shard %d self %q: err = %v, want ErrTopology", tt.nodes, tt.shard, tt.self, err)
		}
	}
}

func TestDefaultSelf(t *testing.T) {
	shards, _ := ParseNodes("h1:7000+h2:7001,h3:7000+h4:7001")
	if got, err := DefaultSelf(shards, 1, 7001); err != nil || got != "h4:7001" {
		t.Errorf("DefaultSelf = %q, %v", got, err)
	}
	if _, err := DefaultSelf(shards, 1, 7002); !errors.Is(err, ErrTopology) {
		t.Errorf("DefaultSelf with no matching port: %v", err)
	}
}

func TestKubernetes(t *testing.T) {
	k := Kubernetes{Shards: 3, Replicas: 2, StatefulSet: "kv", Service: "kv-headless", Namespace: "prod", Port: 6379, Pod: "kv-4"}
	top, err := k.Topology()
	if err != nil {
		t.Fatal(err)
	}
	// Pod 4 serves shard 4 mod 3 = 1 as replica 4 div 3 = 1; shard 1's pods
	// are 1 and 4.
	if top.Self.Shard != 1 || top.Self.Replica != 1 || top.Self.Host != "kv-4.kv-headless.prod.svc.cluster.local" {
		t.Fatalf("self = %+v", top.Self)
	}
	var got []string
	for _, n := range top.Shards[1].Nodes {
		got = append(got, n.Addr())
	}
	if strings.Join(got, " ") != "kv-1.kv-headless.prod.svc.cluster.local:6379 kv-4.kv-headless.prod.svc.cluster.local:6379" {
		t.Errorf("shard 1 = %v", got)
	}
	for _, bad := range []Kubernetes{
		{Shards: 3, Replicas: 2, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "kv-6"},     // beyond N×R
		{Shards: 3, Replicas: 2, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "other-1"},  // not the StatefulSet's
		{Shards: 3, Replicas: 2, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "kv-01"},    // not an ordinal
		{Shards: 3, Replicas: 2, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "kv-"},      // no ordinal
		{Shards: 3, Replicas: 2, StatefulSet: "kv", Service: "s", Port: 0, Pod: "kv-1"},        // no fixed port
		{Shards: 0, Replicas: 2, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "kv-1"},     // no shards
		{Shards: 3, Replicas: 0, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "kv-1"},     // no replicas
		{Shards: 3, Replicas: 1, StatefulSet: "kv", Service: "", Port: 6379, Pod: "kv-1"},      // no service
		{Shards: 3, Replicas: 1, StatefulSet: "kv", Service: "s", Port: 6379, Pod: "kv-redis"}, // name with a dash, no ordinal
	} {
		if _, err := bad.Topology(); !errors.Is(err, ErrTopology) {
			t.Errorf("%+v: err = %v, want ErrTopology", bad, err)
		}
	}
}

func TestCheckMeta(t *testing.T) {
	top := mustTopology(t, threeByTwo, 1, "10.0.0.2:7000")
	ok := store.Meta{Version: "v1", Shard: &store.Shard{Index: 1, Count: 3, SlotStart: 5461, SlotEnd: 10922}}
	if err := top.CheckMeta(ok); err != nil {
		t.Fatal(err)
	}
	for _, sh := range []*store.Shard{
		nil,
		{Index: 0, Count: 3, SlotStart: 0, SlotEnd: 5460},
		{Index: 1, Count: 4, SlotStart: 5461, SlotEnd: 10922},
		{Index: 1, Count: 3, SlotStart: 5460, SlotEnd: 10922},
	} {
		m := ok
		m.Shard = sh
		if err := top.CheckMeta(m); !errors.Is(err, ErrWrongShard) {
			t.Errorf("shard %+v: err = %v", sh, err)
		}
	}
}

// TestSlotsReplyLayout checks CLUSTER SLOTS against the bytes a real 3-master
// Redis 7.0 cluster answers (captured with IDs in place), RESP2 and RESP3.
func TestSlotsReplyLayout(t *testing.T) {
	top := mustTopology(t, "127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003", 0, "127.0.0.1:17001")
	r := top.Replies()
	id := func(i int) string { return top.Shards[i].Nodes[0].ID }
	node := func(port string, i int, emptyMap string) string {
		return "*4\r\n$9\r\n127.0.0.1\r\n:" + port + "\r\n$40\r\n" + id(i) + "\r\n" + emptyMap
	}
	for _, tt := range []struct {
		proto    int
		emptyMap string
	}{{2, "*0\r\n"}, {3, "%0\r\n"}} {
		want := "*3\r\n" +
			"*3\r\n:0\r\n:5460\r\n" + node("17001", 0, tt.emptyMap) +
			"*3\r\n:5461\r\n:10922\r\n" + node("17002", 1, tt.emptyMap) +
			"*3\r\n:10923\r\n:16383\r\n" + node("17003", 2, tt.emptyMap)
		if got := string(r.Slots(tt.proto)); got != want {
			t.Errorf("RESP%d CLUSTER SLOTS\n got %q\nwant %q", tt.proto, got, want)
		}
	}
	// One shard's CLUSTER SHARDS entry, as 7.0 answers it (RESP2).
	w := &resp.Writer{Proto: 2}
	w.Raw(r.Shards(2))
	wantShard0 := "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\n" + id(0) +
		"\r\n$4\r\nport\r\n:17001\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n" +
		"$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
	if got := string(w.Bytes()); !strings.HasPrefix(got, wantShard0) {
		t.Errorf("CLUSTER SHARDS\n got %q\nwant prefix %q", got, wantShard0)
	}
	if !strings.Contains(r.Info, "cluster_state:ok\r\n") || !strings.Contains(r.Info, "cluster_known_nodes:3\r\n") ||
		!strings.HasSuffix(r.Info, "total_cluster_links_buffer_limit_exceeded:0\r\n") {
		t.Errorf("CLUSTER INFO:\n%s", r.Info)
	}
	wantNodes := id(0) + " 127.0.0.1:17001@0 myself,master - 0 0 1 connected 0-5460\n" +
		id(1) + " 127.0.0.1:17002@0 master - 0 0 2 connected 5461-10922\n" +
		id(2) + " 127.0.0.1:17003@0 master - 0 0 3 connected 10923-16383\n"
	if r.Nodes != wantNodes {
		t.Errorf("CLUSTER NODES\n got %q\nwant %q", r.Nodes, wantNodes)
	}
}

func TestRepliesWithReplicasAndHostnames(t *testing.T) {
	k := Kubernetes{Shards: 2, Replicas: 2, StatefulSet: "kv", Service: "svc", Port: 6379, Pod: "kv-3"}
	top, err := k.Topology()
	if err != nil {
		t.Fatal(err)
	}
	r := top.Replies()
	lines := strings.Split(strings.TrimSuffix(r.Nodes, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("CLUSTER NODES has %d lines:\n%s", len(lines), r.Nodes)
	}
	// Shard 1 = pods 1 (master) and 3 (replica, myself).
	m := top.Shards[1].Nodes[0]
	want := top.Self.ID + " kv-3.svc.default.svc.cluster.local:6379@0,kv-3.svc.default.svc.cluster.local myself,slave " + m.ID + " 0 0 2 connected"
	if lines[3] != want {
		t.Errorf("CLUSTER NODES line\n got %q\nwant %q", lines[3], want)
	}
	slots := string(r.Slots(2))
	if !strings.HasPrefix(slots, "*2\r\n*4\r\n:0\r\n:8191\r\n*4\r\n$34\r\nkv-0.svc.default.svc.cluster.local\r\n:6379\r\n") {
		t.Errorf("CLUSTER SLOTS = %q", slots)
	}
	if !strings.Contains(string(r.Shards(3)), "$8\r\nhostname\r\n$34\r\nkv-3.svc.default.svc.cluster.local\r\n$4\r\nrole\r\n$7\r\nreplica\r\n") {
		t.Errorf("CLUSTER SHARDS = %q", r.Shards(3))
	}
}
