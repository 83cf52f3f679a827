package server

import (
	"flag"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/batchkv/batchkv/internal/cli"
	"github.com/batchkv/batchkv/internal/cluster"
	"github.com/batchkv/batchkv/internal/resp"
	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// ClusterConfig is the static cluster topology a server in cluster mode
// serves one shard of (docs/CLUSTER.md). Nil Config.Cluster: standalone mode.
type ClusterConfig struct {
	// Topology is the cluster and this server's place in it.
	Topology *cluster.Topology

	once    sync.Once
	replies *cluster.Replies
}

// Replies returns the CLUSTER SLOTS/SHARDS/INFO/NODES replies, built once.
func (cc *ClusterConfig) Replies() *cluster.Replies {
	cc.once.Do(func() { cc.replies = cc.Topology.Replies() })
	return cc.replies
}

// clusterOptions are batchkv-server's cluster-mode flags: the explicit form
// (--cluster-shard, --cluster-nodes, --cluster-announce) or the Kubernetes
// StatefulSet form (--cluster-shards, --cluster-replicas,
// --cluster-statefulset, --cluster-service, ...).
type clusterOptions struct {
	shard    int
	nodes    string
	announce string

	k8s cluster.Kubernetes
}

func (o *clusterOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&o.shard, "cluster-shard", -1, "cluster mode: the index of the shard this server serves (with --cluster-nodes)")
	fs.StringVar(&o.nodes, "cluster-nodes", "", "cluster mode: every shard's replica endpoints, shards separated by ',' and a shard's replicas by '+': h:p+h:p,h:p+h:p,... (shard i holds the slot range i of N equal ranges)")
	fs.StringVar(&o.announce, "cluster-announce", "", "cluster mode: this server's endpoint among its shard's in --cluster-nodes (default: the first whose port is the --addr port)")
	fs.IntVar(&o.k8s.Shards, "cluster-shards", 0, "cluster mode, Kubernetes form: number of shards N; pod <statefulset>-o serves shard o mod N")
	fs.IntVar(&o.k8s.Replicas, "cluster-replicas", 0, "cluster mode, Kubernetes form: replicas R per shard (the StatefulSet has N×R pods)")
	fs.StringVar(&o.k8s.StatefulSet, "cluster-statefulset", "", "cluster mode, Kubernetes form: the StatefulSet's name (this pod is named <statefulset>-<ordinal>, from $HOSTNAME)")
	fs.StringVar(&o.k8s.Service, "cluster-service", "", "cluster mode, Kubernetes form: the headless Service giving each pod a DNS name")
	fs.StringVar(&o.k8s.Namespace, "cluster-namespace", "", "cluster mode, Kubernetes form: the namespace (default: $POD_NAMESPACE, else \"default\")")
	fs.StringVar(&o.k8s.Domain, "cluster-domain", "cluster.local", "cluster mode, Kubernetes form: the cluster's DNS domain")
}

// apply sets cfg.Cluster from the flags, and returns the check every version
// must pass before it is served (nil: none).
func (o *clusterOptions) apply(cfg *Config, lookup func(string) (string, bool)) (func(store.Meta) error, error) {
	explicit := o.nodes != "" || o.shard >= 0 || o.announce != ""
	k8s := o.k8s.Shards != 0 || o.k8s.Replicas != 0 || o.k8s.StatefulSet != "" || o.k8s.Service != "" || o.k8s.Namespace != ""
	if !explicit && !k8s {
		return nil, nil
	}
	if explicit && k8s {
		return nil, cli.UsageError("give either --cluster-shard/--cluster-nodes or the Kubernetes form (--cluster-shards, --cluster-replicas, --cluster-statefulset, --cluster-service), not both")
	}
	port := 0
	if _, p, err := net.SplitHostPort(cfg.Addr); err == nil {
		port, _ = strconv.Atoi(p)
	}
	var t *cluster.Topology
	var err error
	if explicit {
		if o.nodes == "" || o.shard < 0 {
			return nil, cli.UsageError("cluster mode needs both --cluster-shard and --cluster-nodes")
		}
		shards, err := cluster.ParseNodes(o.nodes)
		if err != nil {
			return nil, cli.UsageError("--cluster-nodes: %v", err)
		}
		self := o.announce
		if self == "" {
			if self, err = cluster.DefaultSelf(shards, o.shard, port); err != nil {
				return nil, cli.UsageError("%v", err)
			}
		}
		if t, err = cluster.New(shards, o.shard, self); err != nil {
			return nil, cli.UsageError("%v", err)
		}
	} else {
		k := o.k8s
		k.Port = port
		if lookup != nil {
			k.Pod, _ = lookup("HOSTNAME")
			if k.Namespace == "" {
				k.Namespace, _ = lookup("POD_NAMESPACE")
			}
		}
		if t, err = k.Topology(); err != nil {
			return nil, cli.UsageError("%v", err)
		}
	}
	cfg.Cluster = &ClusterConfig{Topology: t}
	return t.CheckMeta, nil
}

// keyRange is a command's keys as COMMAND INFO's legacy triple describes
// them (first key, last key, step; last < 0 counts from the end), plus, for
// the commands whose key count is an argument, where that count is.
type keyRange struct {
	first, last, step int
	// numkeys > 0: args[numkeys] is the number of keys, which follow it
	// (after a destination key at args[1] when dest is set).
	numkeys int
	dest    bool
}

var keyRanges struct {
	once sync.Once
	byID []keyRange // by command.idx
}

// movableKeys are the commands whose keys follow a numkeys argument
// (Redis's getkeys_proc for them).
var movableKeys = map[string]keyRange{
	"zunionstore": {numkeys: 2, dest: true}, "zinterstore": {numkeys: 2, dest: true}, "zdiffstore": {numkeys: 2, dest: true},
	"lmpop": {numkeys: 1}, "zmpop": {numkeys: 1}, "blmpop": {numkeys: 2}, "bzmpop": {numkeys: 2},
}

func buildKeyRanges() {
	keyRanges.byID = make([]keyRange, numCommands)
	set := func(cmd *command) {
		if cmd.meta == nil {
			return
		}
		kr, ok := movableKeys[cmd.name]
		if !ok {
			kr = parseKeyRange(cmd.meta.Info2)
		}
		keyRanges.byID[cmd.idx] = kr
	}
	for _, cmd := range commands {
		set(cmd)
		for _, sc := range cmd.subs {
			set(sc)
		}
	}
}

// parseKeyRange reads elements 4-6 of a RESP2 COMMAND INFO entry:
// *10 $name :arity *F +flag... :first :last :step ...
func parseKeyRange(info string) keyRange {
	lines := strings.SplitN(info, "\r\n", 40)
	// lines: *10, $n, name, :arity, *F, F flags, :first, :last, :step
	if len(lines) < 5 || !strings.HasPrefix(lines[4], "*") {
		return keyRange{}
	}
	nf, err := strconv.Atoi(lines[4][1:])
	if err != nil || len(lines) < 8+nf {
		return keyRange{}
	}
	num := func(s string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(s, ":"))
		return n
	}
	return keyRange{first: num(lines[5+nf]), last: num(lines[6+nf]), step: num(lines[7+nf])}
}

// commandKeys calls fn with each key of args (Redis's getKeysFromCommand
// for the commands batchkv knows); fn returns false to stop.
func commandKeys(cmd *command, args [][]byte, fn func(key []byte) bool) {
	keyRanges.once.Do(buildKeyRanges)
	kr := keyRanges.byID[cmd.idx]
	if kr.numkeys > 0 {
		if kr.numkeys >= len(args) {
			return
		}
		n, ok := resp.ParseInt(args[kr.numkeys])
		first := kr.numkeys + 1
		// Redis returns no keys for a bad count: the command then reports it.
		if !ok || n < 1 || n > int64(len(args)-first) {
			return
		}
		if kr.dest && !fn(args[1]) {
			return
		}
		for i := first; i < first+int(n); i++ {
			if !fn(args[i]) {
				return
			}
		}
		return
	}
	if kr.first <= 0 || kr.step <= 0 {
		return
	}
	last := kr.last
	if last < 0 {
		last += len(args)
	}
	if kr.first >= len(args) || last >= len(args) || last < kr.first {
		return
	}
	for i := kr.first; i <= last; i += kr.step {
		if !fn(args[i]) {
			return
		}
	}
}

// clusterRedirect is dispatch's cluster check, run after authentication and
// before READONLY and LOADING as Redis's processCommand orders them: it
// answers -MOVED / -CROSSSLOT itself and returns true when cmd must not run
// here.
//
// As Redis's getNodeByQuery: a command whose keys hash to different slots
// gets -CROSSSLOT; one whose slot another shard holds gets -MOVED to that
// shard's master; inside MULTI such a command is refused and dooms the
// transaction (EXECABORT at EXEC), and EXEC checks the keys of all the queued
// commands together (all in one slot, or -CROSSSLOT and the transaction is
// discarded). Every node serves the reads of its own slots, READONLY sent or
// not: all nodes are read-only replicas of a built dataset.
func (c *conn) clusterRedirect(cmd *command, args [][]byte) bool {
	t := c.s.cfg.Cluster.Topology
	var first []byte
	s, cross := uint16(0), false
	check := func(key []byte) bool {
		if first == nil {
			first, s = key, slot.Of(key)
			return true
		}
		if string(key) != string(first) && slot.Of(key) != s {
			cross = true
			return false
		}
		return true
	}
	isExec := cmd.name == "exec"
	if isExec {
		if !c.multi {
			return false
		}
		for _, q := range c.queue {
			qcmd, _ := lookup(q)
			if qcmd != nil {
				commandKeys(qcmd, q, check)
			}
			if cross {
				break
			}
		}
	} else {
		commandKeys(cmd, args, check)
	}
	var msg string
	switch {
	case cross:
		msg = "CROSSSLOT Keys in request don't hash to the same slot"
	case first == nil || t.Local(s):
		return false
	default:
		msg = t.Moved(s)
	}
	if isExec {
		// Redis discards the transaction and answers the redirection
		// itself, without EXECABORT.
		c.discard()
		c.errorReply(msg)
		return true
	}
	c.reject(msg)
	return true
}
