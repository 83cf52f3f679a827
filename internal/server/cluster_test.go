package server

import (
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/cluster"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

func TestCommandKeys(t *testing.T) {
	for _, tt := range []struct {
		args string
		want string
	}{
		{"get a", "a"},
		{"mget a b c", "a b c"},
		{"exists a", "a"},
		{"hget h f", "h"},
		{"ping", ""},
		{"cluster keyslot a", ""},
		{"client setname a", ""},
		{"set a b", "a"},
		{"mset a 1 b 2", "a b"},
		{"bitop and d a b", "d a b"},
		{"zunionstore d 2 a b weights 1 2", "d a b"},
		{"zunionstore d 5 a b", ""}, // bad numkeys: no keys, the command reports it
		{"lmpop 2 a b left", "a b"},
		{"blmpop 0 1 a left", "a"},
		{"watch a b", "a b"},
		{"zrange z 0 -1", "z"},
	} {
		var args [][]byte
		for _, a := range strings.Fields(tt.args) {
			args = append(args, []byte(a))
		}
		cmd, _ := lookup(args)
		if cmd == nil {
			t.Fatalf("%s: no command", tt.args)
		}
		var got []string
		commandKeys(cmd, args, func(k []byte) bool { got = append(got, string(k)); return true })
		if strings.Join(got, " ") != tt.want {
			t.Errorf("keys of %q = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func applyCluster(t *testing.T, args []string, env map[string]string) (*Config, func(store.Meta) error, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o clusterOptions
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Addr: "0.0.0.0:6379"}
	check, err := o.apply(cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return cfg, check, err
}

func TestClusterOptions(t *testing.T) {
	cfg, check, err := applyCluster(t, nil, nil)
	if err != nil || cfg.Cluster != nil || check != nil {
		t.Fatalf("no cluster flags: %v %v", cfg.Cluster, err)
	}
	cfg, check, err = applyCluster(t, []string{"--cluster-shard", "1", "--cluster-nodes", "a:6379+b:6379,c:6379+d:6379"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if self := cfg.Cluster.Topology.Self; self.Addr() != "c:6379" {
		t.Errorf("default announce = %s, want the shard's first endpoint on the listen port", self.Addr())
	}
	if err := check(store.Meta{Shard: &store.Shard{Index: 1, Count: 2, SlotStart: 8192, SlotEnd: 16383}}); err != nil {
		t.Error(err)
	}
	if err := check(store.Meta{}); err == nil {
		t.Error("an unsharded version passed the check")
	}
	cfg, _, err = applyCluster(t, []string{"--cluster-shard", "1", "--cluster-nodes", "a:6379+b:6379,c:6379+d:6379", "--cluster-announce", "d:6379"}, nil)
	if err != nil || cfg.Cluster.Topology.Self.Addr() != "d:6379" {
		t.Errorf("--cluster-announce d:6379: %v", err)
	}
	cfg, _, err = applyCluster(t, []string{"--cluster-shards", "2", "--cluster-replicas", "2", "--cluster-statefulset", "kv", "--cluster-service", "kvh"},
		map[string]string{"HOSTNAME": "kv-2", "POD_NAMESPACE": "data"})
	if err != nil {
		t.Fatal(err)
	}
	if self := cfg.Cluster.Topology.Self; self.Addr() != "kv-2.kvh.data.svc.cluster.local:6379" || self.Shard != 0 || self.Replica != 1 {
		t.Errorf("Kubernetes self = %+v", self)
	}
	for _, bad := range [][]string{
		{"--cluster-shard", "0"},
		{"--cluster-nodes", "a:1"},
		{"--cluster-shard", "0", "--cluster-nodes", "a:1"}, // no endpoint on port 6379
		{"--cluster-shard", "0", "--cluster-nodes", "a:6379", "--cluster-shards", "1"},
		{"--cluster-shards", "2", "--cluster-replicas", "1", "--cluster-statefulset", "kv", "--cluster-service", "s"}, // $HOSTNAME unset
	} {
		if _, _, err := applyCluster(t, bad, nil); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: err = %v, want a usage error", bad, err)
		}
	}
}

// TestClusterDispatch runs a cluster-mode server in process (shard 0 of 2)
// with several clients at once (make test-race runs it with -race):
// redirection, CROSSSLOT, MULTI/EXEC, CLUSTER replies; and a standalone
// server's refusals.
func TestClusterDispatch(t *testing.T) {
	top, err := cluster.New([][]string{{"127.0.0.1:7001"}, {"127.0.0.1:7002"}}, 0, "127.0.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Cluster: &ClusterConfig{Topology: top}}, testData)
	var local, remote []string // string keys of testData by shard
	for _, p := range testData {
		if p.hash != nil {
			continue
		}
		if top.Local(slot.Of([]byte(p.key))) {
			local = append(local, p.key)
		} else {
			remote = append(remote, p.key)
		}
	}
	if len(local) < 2 || len(remote) < 1 {
		t.Fatalf("testData needs 2 local and 1 remote string keys: %v %v", local, remote)
	}
	value := map[string]string{}
	for _, p := range testData {
		value[p.key] = p.value
	}
	bulk := func(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
	l0, l1, r0 := local[0], local[1], remote[0]
	moved := "-MOVED " + strconv.Itoa(int(slot.Of([]byte(r0)))) + " 127.0.0.1:7002\r\n"
	const cross = "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
	if slot.Of([]byte(l0)) == slot.Of([]byte(l1)) {
		t.Fatalf("%q and %q share a slot", l0, l1)
	}
	cases := []struct {
		args [][]string
		want string
	}{
		{[][]string{{"GET", l0}}, bulk(value[l0])},
		{[][]string{{"GET", r0}}, moved},
		{[][]string{{"SET", r0, "x"}}, moved},
		{[][]string{{"SET", l0, "x"}}, "-READONLY You can't write against a read only replica.\r\n"},
		{[][]string{{"MGET", l0, l1}}, cross},
		{[][]string{{"MGET", l0, l0}}, "*2\r\n" + bulk(value[l0]) + bulk(value[l0])},
		{[][]string{{"MULTI"}, {"GET", l0}, {"GET", l1}, {"EXEC"}}, "+OK\r\n+QUEUED\r\n+QUEUED\r\n" + cross},
		{[][]string{{"MULTI"}, {"GET", r0}, {"GET", l0}, {"EXEC"}}, "+OK\r\n" + moved + "+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{[][]string{{"MULTI"}, {"GET", l0}, {"EXEC"}}, "+OK\r\n+QUEUED\r\n*1\r\n" + bulk(value[l0])},
		{[][]string{{"READONLY"}, {"READWRITE"}, {"ASKING"}}, "+OK\r\n+OK\r\n+OK\r\n"},
		{[][]string{{"CLUSTER", "MYID"}}, bulk(top.Self.ID)},
		{[][]string{{"CLUSTER", "KEYSLOT", "foo"}}, ":12182\r\n"},
		{[][]string{{"CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(int(slot.Of([]byte(l0))))}}, ":1\r\n"},
		{[][]string{{"CLUSTER", "GETKEYSINSLOT", strconv.Itoa(int(slot.Of([]byte(l0)))), "5"}}, "*1\r\n" + bulk(l0)},
		{[][]string{{"CLUSTER", "SLOTS"}}, string(top.Replies().Slots(2))},
		{[][]string{{"PING"}}, "+PONG\r\n"},
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, tc := range cases {
				var req []byte
				for _, a := range tc.args {
					req = appendCmd(req, a...)
				}
				if got := string(exchange(t, ts.addr, req, len(tc.args), false)); got != tc.want {
					t.Errorf("%q:\n got %q\nwant %q", tc.args, got, tc.want)
				}
			}
		})
	}
	wg.Wait()

	solo := startServer(t, Config{}, testData)
	const disabled = "-ERR This instance has cluster support disabled\r\n"
	req := appendCmd(appendCmd(appendCmd(nil, "CLUSTER", "INFO"), "READONLY"), "CLUSTER", "SLOTS")
	if got := string(exchange(t, solo.addr, req, 3, false)); got != disabled+disabled+disabled {
		t.Errorf("standalone: %q", got)
	}
	if got := string(exchange(t, solo.addr, appendCmd(nil, "GET", r0), 1, false)); got != bulk(value[r0]) {
		t.Errorf("standalone GET %s = %q", r0, got)
	}
}
