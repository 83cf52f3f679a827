package syncer

// The coordinated activation of sharded versions (docs/CLUSTER.md
// "Coordinated swap"): once its shard of version v is installed, the syncer
// writes its ready marker, polls the markers of every shard, and when each
// shard has at least ReadyReplicas of them writes the manifest naming v with
// the activation time every syncer of the dataset computes identically from
// the same objects (publish.ActivationTime). The server opens and warms v at
// once and swaps at that time.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/batchkv/batchkv/internal/manifest"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/store"
)

// coordinate activates the installed shard of t together with the other
// shards. done is the action to report once the manifest names t. Without
// a live version (a new volume) there is nothing to be consistent with: the
// version activates at once. Otherwise the pass polls the markers every
// ReadyPoll for up to Interval and then ends with ActionWaiting (Run starts
// the next pass at once, which resolves the target again: a newer version
// or a pin replaces the one waiting).
func (s *Syncer) coordinate(ctx context.Context, t *target, cur *manifest.Manifest, res Result, done Action) (Result, error) {
	v, o := t.version, s.opts
	wrote, err := publish.WriteReady(ctx, s.src, publish.Marker{Version: v, Shard: o.Shard, Count: t.set.Count, Node: o.Node,
		ReadyAt: o.Now().UTC()})
	if err != nil {
		return res, failure(KindSource, fmt.Errorf("syncer: %w (syncers of sharded datasets need write access to %s/%s)",
			err, s.src, publish.ReadyPrefix(v)))
	}
	if wrote {
		s.log.Info("ready marker written", zap.String(keyVersion, v), zap.String("key", publish.ReadyKey(v, o.Shard, o.Node)))
	}
	if cur == nil {
		if err := s.writeManifest(t, ""); err != nil {
			return res, err
		}
		s.pending = ""
		s.stats.Waiting.Store(0)
		s.log.Info("first version on this volume: live at once, without waiting for the other shards", zap.String(keyVersion, v))
		res.Action = done
		return res, nil
	}
	deadline := o.Now().Add(o.Interval)
	for {
		rd, err := publish.ReadReadiness(ctx, s.src, v, t.set.Count)
		if err != nil {
			return res, failure(KindSource, fmt.Errorf("syncer: %w", err))
		}
		if at, ok := publish.ActivationTime(t.set, rd, o.ReadyReplicas, o.ActivateDelay, t.pointer); ok {
			return s.activate(t, cur, res, done, at, rd)
		}
		missing := rd.Missing(o.ReadyReplicas)
		s.waiting(v, missing, rd)
		res.Missing = missing
		if !o.Now().Before(deadline) {
			res.Action = ActionWaiting
			return res, nil
		}
		if err := sleep(ctx, o.ReadyPoll); err != nil {
			return res, err
		}
	}
}

// waitingLogEvery is how often an unchanged wait is logged again.
const waitingLogEvery = 5 * time.Minute

// waiting records and reports that v waits for the missing shards: a log
// line when the missing set changes (and at least once a pass), the
// Waiting/Missing stats always.
func (s *Syncer) waiting(v string, missing []int, rd *publish.Readiness) {
	if s.pending != v || s.stats.Waiting.Load() == 0 {
		s.stats.WaitingSince.Store(s.opts.Now().UnixNano())
	}
	s.pending = v
	s.stats.Waiting.Store(1)
	m := slices.Clone(missing)
	s.stats.Missing.Store(&m)
	key := fmt.Sprint(v, missing)
	now := s.opts.Now()
	if key == s.lastMissing && now.Sub(s.lastMissingLog) < waitingLogEvery {
		return
	}
	s.lastMissing, s.lastMissingLog = key, now
	ready := make(map[string][]string, len(rd.Nodes))
	for i, nodes := range rd.Nodes {
		if len(nodes) > 0 {
			ready[publish.ShardDir(i)] = nodes
		}
	}
	s.log.Warn("version installed, waiting for other shards: the live version keeps serving",
		zap.String(keyVersion, v), zap.Ints("missing_shards", missing), zap.Int("ready_replicas", s.opts.ReadyReplicas),
		zap.Any("ready_nodes", ready), zap.Time("waiting_since", time.Unix(0, s.stats.WaitingSince.Load()).UTC()))
}

// activate writes the manifest naming t with activation time at.
func (s *Syncer) activate(t *target, cur *manifest.Manifest, res Result, done Action, at time.Time, rd *publish.Readiness) (Result, error) {
	v := t.version
	now := s.opts.Now()
	late := !at.After(now)
	if err := s.writeManifest(t, cur.Version, at); err != nil {
		return res, err
	}
	wasPending := s.pending == v
	if wasPending && s.stats.Waiting.Load() != 0 {
		s.log.Info("all shards ready", zap.String(keyVersion, v),
			zap.Duration("waited", now.Sub(time.Unix(0, s.stats.WaitingSince.Load()))))
	}
	if wasPending {
		done = ActionInstalled // installed by an earlier pass that waited
	}
	s.pending, s.lastMissing = "", ""
	s.stats.Waiting.Store(0)
	s.stats.Missing.Store(nil)
	s.stats.ActivateAt.Store(at.UnixNano())
	s.stats.Activations.Add(1)
	if done == ActionActivated {
		s.stats.Rollbacks.Add(1)
	}
	ready, _ := rd.ReadyAt(s.opts.ReadyReplicas)
	if late {
		s.stats.Late.Add(1)
		s.log.Warn("late: the shards' activation time has passed, this shard goes live at once", zap.String(keyVersion, v),
			zap.Time("activate_at", at), zap.Duration("late_by", now.Sub(at)), zap.Time("ready_at", ready))
	} else {
		s.log.Info("coordinated activation scheduled", zap.String(keyVersion, v), zap.Time("activate_at", at),
			zap.Duration("in", at.Sub(now)), zap.Time("ready_at", ready), zap.Bool("pinned", t.pointer != nil))
	}
	res.Action, res.ActivateAt, res.Late = done, at, late
	return res, nil
}

// checkInstalledShard refuses a version on disk that is another shard's (a
// volume reused with another --shard).
func checkInstalledShard(root string, t *target) error {
	m, err := store.ReadMeta(manifest.VersionDir(root, t.version))
	if err != nil {
		return failure(KindMetadata, fmt.Errorf("syncer: installed version %s: %w", t.version, err))
	}
	if m.Shard == nil || t.rel.Meta.Shard == nil || *m.Shard != *t.rel.Meta.Shard {
		return failure(KindShard, fmt.Errorf("%w: %s holds version %s as %s, this syncer serves %s: use a volume of this shard",
			ErrShard, root, t.version, shardString(m.Shard), shardString(t.rel.Meta.Shard)))
	}
	return nil
}

func shardString(sh *store.Shard) string {
	if sh == nil {
		return "unsharded"
	}
	return fmt.Sprintf("shard %d of %d (slots %d-%d)", sh.Index, sh.Count, sh.SlotStart, sh.SlotEnd)
}
