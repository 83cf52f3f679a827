package server

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/cli"
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
