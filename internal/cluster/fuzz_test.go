package cluster

import (
	"strconv"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/slot"
)

// FuzzTopology feeds --cluster-nodes values (from the command line or a
// ConfigMap) through ParseNodes and New: never a panic, and any topology
// accepted assigns every hash slot to exactly one shard in order, each shard
// its slot.Split range, with well-formed endpoints, unique 40-hex node IDs and
// a MOVED text Redis clients parse.
func FuzzTopology(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
		"a:1+b:2,c:3+d:4",
		"[::1]:6379",
		"h:0", "h:65536", "h:-1", "h:1,,h:2", "h:1+", "h:1,h:1", " h:1 , h:2 ",
		"batchkv-0.batchkv-nodes.ns.svc.cluster.local:6379+batchkv-3.batchkv-nodes.ns.svc.cluster.local:6379",
		"h", ":1", "h:1:2", "[::1]:1+[::1]:2", "h:01",
	} {
		f.Add(s, 0)
	}
	f.Fuzz(func(t *testing.T, nodes string, selfShard int) {
		shards, err := ParseNodes(nodes)
		if err != nil {
			return
		}
		if len(shards) > 64 {
			return // bounded work per input; the range arithmetic is tested in New's unit tests
		}
		if selfShard < 0 || selfShard >= len(shards) {
			selfShard = 0
		}
		topo, err := New(shards, selfShard, shards[selfShard][0])
		if err != nil {
			return
		}
		ranges := slot.Split(len(shards))
		if len(topo.Shards) != len(shards) || topo.Self == nil || topo.Self.Shard != selfShard {
			t.Fatalf("%q: %d shards, self %+v", nodes, len(topo.Shards), topo.Self)
		}
		ids := map[string]bool{}
		for i, sh := range topo.Shards {
			if sh.Index != i || sh.Slots != ranges[i] || len(sh.Nodes) != len(shards[i]) {
				t.Fatalf("%q: shard %d = %+v, want slots %+v and %d nodes", nodes, i, sh, ranges[i], len(shards[i]))
			}
			for _, n := range sh.Nodes {
				if len(n.ID) != 40 || strings.Trim(n.ID, "0123456789abcdef") != "" || ids[n.ID] {
					t.Fatalf("%q: node id %q malformed or repeated", nodes, n.ID)
				}
				ids[n.ID] = true
				if n.Port < 1 || n.Port > 65535 || n.Host == "" || strings.ContainsAny(n.Host, " \r\n") {
					t.Fatalf("%q: endpoint %q:%d", nodes, n.Host, n.Port)
				}
			}
		}
		for s := 0; s < slot.Count; s++ {
			sh := topo.ShardOf(uint16(s))
			if !sh.Slots.Contains(uint16(s)) {
				t.Fatalf("%q: slot %d owned by shard %d (%+v)", nodes, s, sh.Index, sh.Slots)
			}
			if topo.Local(uint16(s)) != (sh.Index == selfShard) {
				t.Fatalf("%q: Local(%d) wrong", nodes, s)
			}
		}
		for _, s := range []uint16{0, 5461, 16383} {
			f := strings.Fields(topo.Moved(s))
			if len(f) != 3 || f[0] != "MOVED" || f[1] != strconv.Itoa(int(s)) {
				t.Fatalf("%q: Moved(%d) = %q", nodes, s, topo.Moved(s))
			}
			i := strings.LastIndexByte(f[2], ':')
			if p, err := strconv.Atoi(f[2][i+1:]); i < 1 || err != nil || p != topo.Master(s).Port {
				t.Fatalf("%q: Moved(%d) = %q: endpoint does not parse", nodes, s, topo.Moved(s))
			}
		}
	})
}
