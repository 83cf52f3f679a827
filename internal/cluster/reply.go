package cluster

import (
	"strconv"
	"strings"

	"github.com/batchkv/batchkv/internal/resp"
)

// The replies below are Redis 7.0's (cluster.c) for a cluster of this
// shape with no failures: shard i's first endpoint is its master, the others
// its replicas. Since the topology is static they are built once per
// protocol (Replies) and copied out as raw bytes.

// Replies holds the encoded CLUSTER SLOTS and SHARDS replies and the text of
// CLUSTER INFO and NODES for one topology.
type Replies struct {
	slots, shards [2][]byte // by protocol: [0] RESP2, [1] RESP3
	Info, Nodes   string
}

// Replies builds the replies of t.
func (t *Topology) Replies() *Replies {
	r := &Replies{Info: t.info(), Nodes: t.nodes()}
	for i, proto := range []int{2, 3} {
		w := &resp.Writer{Proto: proto}
		t.writeSlots(w)
		r.slots[i] = append([]byte(nil), w.Bytes()...)
		w = &resp.Writer{Proto: proto}
		t.writeShards(w)
		r.shards[i] = append([]byte(nil), w.Bytes()...)
	}
	return r
}

func protoIndex(proto int) int {
	if proto == 3 {
		return 1
	}
	return 0
}

// Slots is the CLUSTER SLOTS reply in protocol proto.
func (r *Replies) Slots(proto int) []byte { return r.slots[protoIndex(proto)] }

// Shards is the CLUSTER SHARDS reply in protocol proto.
func (r *Replies) Shards(proto int) []byte { return r.shards[protoIndex(proto)] }

// writeSlots is clusterReplyMultiBulkSlots: one entry per contiguous range,
// in slot order, [start, end, master, replicas...], each node
// [endpoint, port, id, {metadata}].
func (t *Topology) writeSlots(w *resp.Writer) {
	w.Array(len(t.Shards))
	for _, sh := range t.Shards {
		w.Array(2 + len(sh.Nodes))
		w.Int(int64(sh.Slots.Start))
		w.Int(int64(sh.Slots.End))
		for _, n := range sh.Nodes {
			w.Array(4)
			w.BulkString(n.Host)
			w.Int(int64(n.Port))
			w.BulkString(n.ID)
			// Redis lists here the networking details that are not the
			// preferred endpoint: with IP endpoints and no hostnames,
			// none. With hostname endpoints Redis would add the node's IP,
			// which a static topology of DNS names does not know.
			w.Map(0)
		}
	}
}

// writeShards is CLUSTER SHARDS: per shard a map of "slots" (start, end
// pairs as integers, as 7.0 replies) and "nodes" (a map per node).
func (t *Topology) writeShards(w *resp.Writer) {
	w.Array(len(t.Shards))
	for _, sh := range t.Shards {
		w.Map(2)
		w.BulkString("slots")
		w.Array(2)
		w.Int(int64(sh.Slots.Start))
		w.Int(int64(sh.Slots.End))
		w.BulkString("nodes")
		w.Array(len(sh.Nodes))
		for _, n := range sh.Nodes {
			fields := 7
			if !n.IsIP() {
				fields++
			}
			w.Map(fields)
			w.BulkString("id")
			w.BulkString(n.ID)
			w.BulkString("port")
			w.Int(int64(n.Port))
			w.BulkString("ip")
			w.BulkString(n.Host)
			w.BulkString("endpoint")
			w.BulkString(n.Host)
			if !n.IsIP() {
				w.BulkString("hostname")
				w.BulkString(n.Host)
			}
			w.BulkString("role")
			if n.Replica == 0 {
				w.BulkString("master")
			} else {
				w.BulkString("replica")
			}
			w.BulkString("replication-offset")
			w.Int(0)
			// Redis says "loading" for a replica at offset 0; every node
			// here serves the same built version, so all are online.
			w.BulkString("health")
			w.BulkString("online")
		}
	}
}

// info is the CLUSTER INFO text of a healthy cluster (lines end in CRLF, as
// Redis's).
func (t *Topology) info() string {
	var b strings.Builder
	kv := func(k string, v int) {
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(v))
		b.WriteString("\r\n")
	}
	b.WriteString("cluster_state:ok\r\n")
	kv("cluster_slots_assigned", 16384)
	kv("cluster_slots_ok", 16384)
	kv("cluster_slots_pfail", 0)
	kv("cluster_slots_fail", 0)
	kv("cluster_known_nodes", t.KnownNodes())
	kv("cluster_size", len(t.Shards))
	kv("cluster_current_epoch", len(t.Shards))
	kv("cluster_my_epoch", t.Self.Shard+1)
	kv("cluster_stats_messages_sent", 0)
	kv("cluster_stats_messages_received", 0)
	kv("total_cluster_links_buffer_limit_exceeded", 0)
	return b.String()
}

// nodes is the CLUSTER NODES text: one line per node, "\n"-terminated,
//
//	<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slots>...
//
// The cluster bus port is 0: there is no bus. A shard's master has the
// config epoch shard+1; its replicas show their master's, as in Redis.
func (t *Topology) nodes() string {
	var b strings.Builder
	for _, sh := range t.Shards {
		master := sh.Nodes[0]
		for _, n := range sh.Nodes {
			b.WriteString(n.ID)
			b.WriteByte(' ')
			b.WriteString(n.Addr())
			b.WriteString("@0")
			if !n.IsIP() {
				b.WriteByte(',')
				b.WriteString(n.Host)
			}
			b.WriteByte(' ')
			if n == t.Self {
				b.WriteString("myself,")
			}
			if n.Replica == 0 {
				b.WriteString("master - ")
			} else {
				b.WriteString("slave ")
				b.WriteString(master.ID)
				b.WriteByte(' ')
			}
			b.WriteString("0 0 ")
			b.WriteString(strconv.Itoa(sh.Index + 1))
			b.WriteString(" connected")
			if n.Replica == 0 {
				b.WriteByte(' ')
				b.WriteString(strconv.Itoa(int(sh.Slots.Start)))
				if sh.Slots.End != sh.Slots.Start {
					b.WriteByte('-')
					b.WriteString(strconv.Itoa(int(sh.Slots.End)))
				}
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}
