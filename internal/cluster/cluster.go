// Package cluster is batchkv's static Redis Cluster topology: N shards, each
// holding the contiguous hash-slot range slot.Split(N)[i] and served by one or
// more replica endpoints. Every server of the cluster computes the same
// topology from the same flags (node IDs are derived from the endpoints), so
// CLUSTER SLOTS, SHARDS and NODES agree wherever a client asks, and keys of
// another shard are redirected with -MOVED as a Redis Cluster node does.
//
// There is no cluster bus, no failover and no resharding: the topology is
// fixed for the life of the process, as the dataset's sharding is fixed when
// it is built (docs/CLUSTER.md).
package cluster

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// ErrTopology reports cluster flags that do not describe a usable topology.
var ErrTopology = errors.New("cluster: invalid topology")

// ErrWrongShard reports a dataset version built for another place in the
// cluster than the server's.
var ErrWrongShard = errors.New("cluster: version is not this server's shard")

// Node is one server of the cluster: a replica endpoint of one shard.
type Node struct {
	// ID is 40 lower-case hex characters derived from the endpoint (NodeID).
	ID string
	// Host is the announced host: an IP address or a DNS name.
	Host string
	Port int
	// Shard is the index of the shard it serves; Replica its position among
	// that shard's endpoints (0 is reported as the shard's master).
	Shard, Replica int
}

// Addr is host:port, as MOVED and CLUSTER NODES print it (IPv6 in brackets
// only where Redis brackets it: nowhere, Redis prints ip:port as is).
func (n *Node) Addr() string { return n.Host + ":" + strconv.Itoa(n.Port) }

// IsIP reports whether Host is an IP address (else a hostname is announced,
// as Redis 7 does with cluster-preferred-endpoint-type hostname).
func (n *Node) IsIP() bool { return net.ParseIP(n.Host) != nil }

// Shard is one shard: its slot range and its replicas' endpoints.
type Shard struct {
	Index int
	Slots slot.Range
	Nodes []*Node
}

// Topology is the whole cluster as seen from one server (Self).
type Topology struct {
	Shards []*Shard
	// Self is this server's node.
	Self *Node
	// owner maps each hash slot to its shard index.
	owner [slot.Count]uint16
}

// NodeID derives the 40-hex node ID of the endpoint host:port. Every server
// computes the same ID for the same endpoint; an endpoint that moves gets a
// new ID, as a Redis node that is reset does.
func NodeID(host string, port int) string {
	sum := sha1.Sum([]byte("batchkv-cluster-node\x00" + host + ":" + strconv.Itoa(port)))
	return hex.EncodeToString(sum[:])
}

// splitHostPort parses host:port with a port in 1..65535.
func splitHostPort(ep string) (string, int, error) {
	host, p, err := net.SplitHostPort(ep)
	if err != nil {
		return "", 0, fmt.Errorf("%w: endpoint %q: %v", ErrTopology, ep, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%w: endpoint %q: port must be 1..65535", ErrTopology, ep)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w: endpoint %q: empty host", ErrTopology, ep)
	}
	if !validHost(host) {
		return "", 0, fmt.Errorf("%w: endpoint %q: the host must be an IP address or a DNS name", ErrTopology, ep)
	}
	return host, port, nil
}

// validHost reports whether host is an IP address or a DNS name (letters,
// digits, '-', '_', '.'). The host goes verbatim into -MOVED and into CLUSTER
// NODES, whose fields are separated by spaces: anything else would corrupt
// what clients parse (found by FuzzTopology).
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	if len(host) > 253 {
		return false
	}
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ParseNodes parses --cluster-nodes: shards separated by ",", each shard's
// replica endpoints (host:port) separated by "+". Shard i of the result is
// shard i of the cluster.
func ParseNodes(s string) ([][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: no shards", ErrTopology)
	}
	var out [][]string
	for i, sh := range strings.Split(s, ",") {
		var eps []string
		for _, ep := range strings.Split(sh, "+") {
			ep = strings.TrimSpace(ep)
			if ep == "" {
				return nil, fmt.Errorf("%w: shard %d has an empty endpoint", ErrTopology, i)
			}
			eps = append(eps, ep)
		}
		out = append(out, eps)
	}
	return out, nil
}

// New builds the topology of len(shards) shards, shards[i] holding shard i's
// replica endpoints (host:port), as seen by the server at endpoint self,
// which must be one of shard selfShard's endpoints.
func New(shards [][]string, selfShard int, self string) (*Topology, error) {
	n := len(shards)
	if n < 1 || n > slot.Count {
		return nil, fmt.Errorf("%w: %d shards (1..%d)", ErrTopology, n, slot.Count)
	}
	if selfShard < 0 || selfShard >= n {
		return nil, fmt.Errorf("%w: shard %d of %d", ErrTopology, selfShard, n)
	}
	ranges := slot.Split(n)
	t := &Topology{}
	seen := map[string]bool{}
	for i, eps := range shards {
		if len(eps) == 0 {
			return nil, fmt.Errorf("%w: shard %d has no endpoint", ErrTopology, i)
		}
		sh := &Shard{Index: i, Slots: ranges[i]}
		for r, ep := range eps {
			host, port, err := splitHostPort(ep)
			if err != nil {
				return nil, err
			}
			addr := host + ":" + strconv.Itoa(port)
			if seen[addr] {
				return nil, fmt.Errorf("%w: endpoint %s listed twice", ErrTopology, addr)
			}
			seen[addr] = true
			sh.Nodes = append(sh.Nodes, &Node{ID: NodeID(host, port), Host: host, Port: port, Shard: i, Replica: r})
		}
		for s := int(sh.Slots.Start); s <= int(sh.Slots.End); s++ {
			t.owner[s] = uint16(i)
		}
		t.Shards = append(t.Shards, sh)
	}
	host, port, err := splitHostPort(self)
	if err != nil {
		return nil, fmt.Errorf("announced endpoint: %w", err)
	}
	for _, nd := range t.Shards[selfShard].Nodes {
		if nd.Host == host && nd.Port == port {
			t.Self = nd
		}
	}
	if t.Self == nil {
		return nil, fmt.Errorf("%w: this server (%s:%d) is not an endpoint of shard %d (%s)",
			ErrTopology, host, port, selfShard, strings.Join(shards[selfShard], "+"))
	}
	return t, nil
}

// DefaultSelf picks this server's endpoint among shard selfShard's when none
// is announced: the first whose port is listenPort.
func DefaultSelf(shards [][]string, selfShard, listenPort int) (string, error) {
	if selfShard < 0 || selfShard >= len(shards) {
		return "", fmt.Errorf("%w: shard %d of %d", ErrTopology, selfShard, len(shards))
	}
	for _, ep := range shards[selfShard] {
		if _, port, err := splitHostPort(ep); err == nil && port == listenPort {
			return ep, nil
		}
	}
	return "", fmt.Errorf("%w: no endpoint of shard %d (%s) has the listen port %d: give --cluster-announce",
		ErrTopology, selfShard, strings.Join(shards[selfShard], "+"), listenPort)
}

// Kubernetes describes the StatefulSet form of the topology: N×R pods named
// StatefulSet-o behind the headless Service, pod o serving shard o mod N as
// replica o div N.
type Kubernetes struct {
	Shards, Replicas int
	StatefulSet      string
	Service          string
	Namespace        string // default "default"
	Domain           string // default "cluster.local"
	Port             int
	// Pod is this pod's name (StatefulSet-o, from $HOSTNAME).
	Pod string
}

// Endpoint is pod o's stable DNS name and port.
func (k *Kubernetes) Endpoint(o int) string {
	return fmt.Sprintf("%s-%d.%s.%s.svc.%s:%d", k.StatefulSet, o, k.Service, k.Namespace, k.Domain, k.Port)
}

// Ordinal parses the pod's ordinal from its name.
func (k *Kubernetes) Ordinal() (int, error) {
	prefix := k.StatefulSet + "-"
	if !strings.HasPrefix(k.Pod, prefix) {
		return 0, fmt.Errorf("%w: pod name %q is not %s<ordinal> (StatefulSet %q)", ErrTopology, k.Pod, prefix, k.StatefulSet)
	}
	o, err := strconv.Atoi(k.Pod[len(prefix):])
	if err != nil || o < 0 || strconv.Itoa(o) != k.Pod[len(prefix):] {
		return 0, fmt.Errorf("%w: pod name %q: no ordinal after %q", ErrTopology, k.Pod, prefix)
	}
	return o, nil
}

// Topology builds the topology this pod sees.
func (k *Kubernetes) Topology() (*Topology, error) {
	if k.Namespace == "" {
		k.Namespace = "default"
	}
	if k.Domain == "" {
		k.Domain = "cluster.local"
	}
	switch {
	case k.Shards < 1 || k.Shards > slot.Count:
		return nil, fmt.Errorf("%w: --cluster-shards %d (1..%d)", ErrTopology, k.Shards, slot.Count)
	case k.Replicas < 1:
		return nil, fmt.Errorf("%w: --cluster-replicas %d < 1", ErrTopology, k.Replicas)
	case k.StatefulSet == "" || k.Service == "":
		return nil, fmt.Errorf("%w: the Kubernetes form needs --cluster-statefulset and --cluster-service", ErrTopology)
	case k.Port < 1 || k.Port > 65535:
		return nil, fmt.Errorf("%w: listen port %d: the Kubernetes form needs a fixed port in --addr", ErrTopology, k.Port)
	}
	o, err := k.Ordinal()
	if err != nil {
		return nil, err
	}
	if o >= k.Shards*k.Replicas {
		return nil, fmt.Errorf("%w: pod ordinal %d is beyond --cluster-shards %d × --cluster-replicas %d (raise --cluster-replicas on every pod when scaling the StatefulSet)",
			ErrTopology, o, k.Shards, k.Replicas)
	}
	shards := make([][]string, k.Shards)
	for i := range shards {
		for r := range k.Replicas {
			shards[i] = append(shards[i], k.Endpoint(i+k.Shards*r))
		}
	}
	return New(shards, o%k.Shards, k.Endpoint(o))
}

// ShardOf returns the shard holding hash slot s.
func (t *Topology) ShardOf(s uint16) *Shard { return t.Shards[t.owner[s&(slot.Count-1)]] }

// Local reports whether hash slot s is served here.
func (t *Topology) Local(s uint16) bool { return int(t.owner[s&(slot.Count-1)]) == t.Self.Shard }

// Master is the node MOVED redirects hash slot s to: its shard's first
// endpoint, the one CLUSTER SLOTS lists first.
func (t *Topology) Master(s uint16) *Node { return t.ShardOf(s).Nodes[0] }

// MySlots is this server's slot range.
func (t *Topology) MySlots() slot.Range { return t.Shards[t.Self.Shard].Slots }

// KnownNodes counts the nodes of the cluster.
func (t *Topology) KnownNodes() int {
	n := 0
	for _, sh := range t.Shards {
		n += len(sh.Nodes)
	}
	return n
}

// Moved is the -MOVED error (without the leading '-') for hash slot s, as
// Redis's clusterRedirectClient formats it.
func (t *Topology) Moved(s uint16) string {
	return "MOVED " + strconv.Itoa(int(s)) + " " + t.Master(s).Addr()
}

// CheckMeta is the check a dataset version passes before this server serves
// it: built as this server's shard of a cluster of the same size.
func (t *Topology) CheckMeta(m store.Meta) error {
	want := t.MySlots()
	sh := m.Shard
	switch {
	case sh == nil:
		return fmt.Errorf("%w: version %s is not sharded; this server is shard %d of %d", ErrWrongShard, m.Version, t.Self.Shard, len(t.Shards))
	case sh.Index != t.Self.Shard || sh.Count != len(t.Shards):
		return fmt.Errorf("%w: version %s is shard %d of %d; this server is shard %d of %d", ErrWrongShard, m.Version, sh.Index, sh.Count, t.Self.Shard, len(t.Shards))
	case sh.SlotStart != want.Start || sh.SlotEnd != want.End:
		return fmt.Errorf("%w: version %s holds slots %d-%d; this server serves %d-%d", ErrWrongShard, m.Version, sh.SlotStart, sh.SlotEnd, want.Start, want.End)
	}
	return nil
}
