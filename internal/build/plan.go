package build

import (
	"fmt"

	"github.com/batchkv/batchkv/internal/slot"
	"github.com/batchkv/batchkv/internal/store"
)

// plan is the layout of a build's output: the shards it writes and the
// partitions each shard is merged from. A partition is a contiguous range of
// hash slots inside one shard, so partition boundaries fall on shard
// boundaries and each shard's database is written from its own partitions
// (no pass over the input per shard).
type plan struct {
	sharded bool
	count   int // shards in the dataset (1 when unsharded)
	shards  []shardPlan
	parts   []partPlan
	// part maps a hash slot to its partition; -1 for the slots of shards
	// this build does not write (--shard I).
	part [slot.Count]int32
}

// shardPlan is one shard this build writes: partitions first..first+n-1.
type shardPlan struct {
	index    int
	slots    slot.Range
	first, n int
}

// partPlan is one partition: its shard (an index into plan.shards) and slots.
type partPlan struct {
	shard int
	slots slot.Range
}

// newPlan lays out a build of shards shards (0: unsharded), of only shard
// only (-1: all of them), cutting the slots written into about partitions
// partitions: each shard written gets an equal share (at least one, at most
// one per slot).
func newPlan(shards, only, partitions int) (*plan, error) {
	p := &plan{sharded: shards > 0, count: max(shards, 1)}
	if shards < 0 || shards > slot.Count {
		return nil, fmt.Errorf("build: %d shards: want 1 to %d", shards, slot.Count)
	}
	ranges := []slot.Range{{Start: 0, End: slot.Count - 1}}
	if shards > 0 {
		ranges = slot.Split(shards)
	}
	built := make([]int, 0, len(ranges))
	switch {
	case only < 0:
		for i := range ranges {
			built = append(built, i)
		}
	case shards == 0:
		return nil, fmt.Errorf("build: a single shard (%d) asked of an unsharded build", only)
	case only >= shards:
		return nil, fmt.Errorf("build: shard %d of %d does not exist (shards are numbered 0 to %d)", only, shards, shards-1)
	default:
		built = append(built, only)
	}
	for i := range p.part {
		p.part[i] = -1
	}
	per := max(1, (partitions+len(built)-1)/len(built))
	for si, idx := range built {
		r := ranges[idx]
		nslots := int(r.End) - int(r.Start) + 1
		k := min(per, nslots)
		sp := shardPlan{index: idx, slots: r, first: len(p.parts), n: k}
		for j := range k {
			start := int(r.Start) + nslots*j/k
			end := int(r.Start) + nslots*(j+1)/k - 1
			for s := start; s <= end; s++ {
				p.part[s] = int32(len(p.parts))
			}
			p.parts = append(p.parts, partPlan{shard: si, slots: slot.Range{Start: uint16(start), End: uint16(end)}})
		}
		p.shards = append(p.shards, sp)
	}
	return p, nil
}

// partitionOf returns the partition of an order prefix (-1: not built).
func (p *plan) partitionOf(order uint64) int { return int(p.part[store.OrderSlot(order)]) }
