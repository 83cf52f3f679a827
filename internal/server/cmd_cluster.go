package server

import (
	"errors"

	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// clusterHandlers are the CLUSTER subcommands batchkv serves (docs/CLUSTER.md);
// its other subcommands (ADDSLOTS, FAILOVER, ...) answer "unknown
// subcommand". In standalone mode each answers Redis's "cluster support
// disabled".
func clusterHandlers() map[string]func(*conn, [][]byte) {
	h := map[string]func(*conn, [][]byte){
		"cluster|info": cmdClusterInfo, "cluster|slots": cmdClusterSlots, "cluster|shards": cmdClusterShards,
		"cluster|nodes": cmdClusterNodes, "cluster|myid": cmdClusterMyID, "cluster|keyslot": cmdClusterKeyslot,
		"cluster|countkeysinslot": cmdClusterCountKeysInSlot, "cluster|getkeysinslot": cmdClusterGetKeysInSlot,
		"cluster|help": cmdHelp,
	}
	for name, run := range h {
		h[name] = clusterOnly(run)
	}
	return h
}

func clusterOnly(run func(*conn, [][]byte)) func(*conn, [][]byte) {
	return func(c *conn, args [][]byte) {
		if c.s.cfg.Cluster == nil {
			c.errorReply("ERR This instance has cluster support disabled")
			return
		}
		run(c, args)
	}
}

func cmdClusterInfo(c *conn, _ [][]byte) {
	c.w.Verbatim("txt", []byte(c.s.cfg.Cluster.Replies().Info))
}

func cmdClusterNodes(c *conn, _ [][]byte) {
	c.w.Verbatim("txt", []byte(c.s.cfg.Cluster.Replies().Nodes))
}

func cmdClusterSlots(c *conn, _ [][]byte) {
	c.w.Raw(c.s.cfg.Cluster.Replies().Slots(c.w.Proto))
}

func cmdClusterShards(c *conn, _ [][]byte) {
	c.w.Raw(c.s.cfg.Cluster.Replies().Shards(c.w.Proto))
}

func cmdClusterMyID(c *conn, _ [][]byte) {
	c.w.BulkString(c.s.cfg.Cluster.Topology.Self.ID)
}

func cmdClusterKeyslot(c *conn, args [][]byte) {
	c.w.Int(int64(slot.Of(args[2])))
}

// The keys of a slot are a contiguous range of the store's order prefixes;
// slots of other shards are empty here, as on a Redis node.
func slotBounds(s uint16) (lo, hi uint64) {
	lo = store.SlotOrder(s)
	if s < slot.Count-1 {
		hi = store.SlotOrder(s + 1)
	}
	return lo, hi // hi 0: to the end
}

func cmdClusterCountKeysInSlot(c *conn, args [][]byte) {
	s, ok := parseInt(args[2])
	if !ok {
		c.errorReply(errNotInt)
		return
	}
	if s < 0 || s >= slot.Count {
		c.errorReply("ERR Invalid slot")
		return
	}
	n, err := c.v.DB.CountSlot(uint16(s))
	if err != nil {
		c.storeError(err)
		return
	}
	c.w.Int(n)
}

var errEnough = errors.New("enough keys")

func cmdClusterGetKeysInSlot(c *conn, args [][]byte) {
	s, ok := parseInt(args[2])
	if !ok {
		c.errorReply(errNotInt)
		return
	}
	max, ok := parseInt(args[3])
	if !ok {
		c.errorReply(errNotInt)
		return
	}
	if s < 0 || s >= slot.Count || max < 0 {
		c.errorReply("ERR Invalid slot or number of keys")
		return
	}
	var keys [][]byte
	if max > 0 {
		lo, hi := slotBounds(uint16(s))
		_, err := c.v.DB.ScanRange(lo, hi, int(min(max, 1<<30)), func(key []byte, _ store.Value) error {
			if int64(len(keys)) >= max {
				return errEnough
			}
			keys = append(keys, append([]byte(nil), key...))
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			c.storeError(err)
			return
		}
	}
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.Bulk(k)
	}
}
