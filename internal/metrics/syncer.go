package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SyncerState is what the syncer reports at each scrape.
type SyncerState struct {
	VersionsSeen, Installs, BytesDownloaded, FreeBytes int64
	// LastSuccess is zero until a pass ends with the target live.
	LastSuccess time.Time
	// Failures counts failed passes by kind; every kind of Kinds is exported.
	Failures map[string]int64
	// LiveVersion is the version the manifest names ("" without one).
	LiveVersion string

	// Coordinated activation (sharded syncers only; exported when Sharded).
	Sharded bool
	// Waiting: a version is installed and waits for other shards since
	// WaitingSince; MissingShards are the shards without enough ready
	// markers.
	Waiting       bool
	WaitingSince  time.Time
	MissingShards []int
	// ActivateAt is the last activation time written to the manifest.
	ActivateAt time.Time
	// LateActivations counts activations whose time had passed when this
	// syncer learnt it; Activations all coordinated activations.
	LateActivations, Activations int64
}

// Syncer is batchkv-syncer's metrics.
type Syncer struct {
	downloads *prometheus.HistogramVec
}

var (
	descSeen     = prometheus.NewDesc("batchkv_syncer_versions_seen_total", "Distinct target versions the source named (one per change of target).", nil, nil)
	descInstalls = prometheus.NewDesc("batchkv_syncer_installs_total", "Versions downloaded, verified and installed.", nil, nil)
	descBytes    = prometheus.NewDesc("batchkv_syncer_downloaded_bytes_total", "Bytes received from the source (retries included).", nil, nil)
	descFree     = prometheus.NewDesc("batchkv_syncer_free_disk_bytes", "Free space on the root's filesystem at the last check.", nil, nil)
	descLastOK   = prometheus.NewDesc("batchkv_syncer_last_success_timestamp_seconds", "Unix time a pass last ended with the target version live (absent before the first).", nil, nil)
	descFailures = prometheus.NewDesc("batchkv_syncer_failures_total", "Failed passes (and GC runs) by kind.", []string{"kind"}, nil)
	descLive     = prometheus.NewDesc("batchkv_syncer_live_version_info", "The version the manifest names (1; absent without a manifest).", []string{"version"}, nil)

	descWaiting      = prometheus.NewDesc("batchkv_syncer_activation_waiting", "1 while an installed version waits for other shards to be ready (the old version keeps serving), else 0.", nil, nil)
	descWaitingSince = prometheus.NewDesc("batchkv_syncer_activation_waiting_since_timestamp_seconds", "Unix time the current wait for other shards began (absent when not waiting).", nil, nil)
	descMissing      = prometheus.NewDesc("batchkv_syncer_activation_missing_shard", "1 for each shard without enough ready markers while waiting (absent otherwise).", []string{"shard"}, nil)
	descActivateAt   = prometheus.NewDesc("batchkv_syncer_activate_at_timestamp_seconds", "Unix time of the last coordinated activation written to the manifest.", nil, nil)
	descLate         = prometheus.NewDesc("batchkv_syncer_late_activations_total", "Coordinated activations whose time had already passed when this syncer learnt it: this shard went live late.", nil, nil)
	descActivations  = prometheus.NewDesc("batchkv_syncer_activations_total", "Coordinated activations written to the manifest.", nil, nil)
)

// NewSyncer registers the syncer's metrics with reg: kinds are the failure
// kinds (each exported from 0), state is read at each scrape.
func NewSyncer(reg prometheus.Registerer, kinds []string, state func() SyncerState) *Syncer {
	m := &Syncer{downloads: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "batchkv_syncer_download_duration_seconds", Help: "Wall time of a pass's download (the parts it was missing), by result (ok, error).",
		Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 12), // 100ms … ~6h
	}, []string{"result"})}
	reg.MustRegister(m.downloads, syncerCollector{kinds: kinds, state: state})
	return m
}

// OnDownload is a syncer.Options.OnDownload hook.
func (m *Syncer) OnDownload(d time.Duration, _ int64, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.downloads.WithLabelValues(result).Observe(d.Seconds())
}

type syncerCollector struct {
	kinds []string
	state func() SyncerState
}

func (syncerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSeen, descInstalls, descBytes, descFree, descLastOK, descFailures, descLive,
		descWaiting, descWaitingSince, descMissing, descActivateAt, descLate, descActivations} {
		ch <- d
	}
}

func (c syncerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	ch <- prometheus.MustNewConstMetric(descSeen, prometheus.CounterValue, float64(st.VersionsSeen))
	ch <- prometheus.MustNewConstMetric(descInstalls, prometheus.CounterValue, float64(st.Installs))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.BytesDownloaded))
	ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(st.FreeBytes))
	if !st.LastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastOK, prometheus.GaugeValue, float64(st.LastSuccess.UnixNano())/1e9)
	}
	for _, k := range c.kinds {
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.Failures[k]), k)
	}
	if st.LiveVersion != "" {
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, 1, st.LiveVersion)
	}
	if !st.Sharded {
		return
	}
	waiting := 0.0
	if st.Waiting {
		waiting = 1
		if !st.WaitingSince.IsZero() {
			ch <- prometheus.MustNewConstMetric(descWaitingSince, prometheus.GaugeValue, float64(st.WaitingSince.UnixNano())/1e9)
		}
		for _, i := range st.MissingShards {
			ch <- prometheus.MustNewConstMetric(descMissing, prometheus.GaugeValue, 1, strconv.Itoa(i))
		}
	}
	ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, waiting)
	if !st.ActivateAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descActivateAt, prometheus.GaugeValue, float64(st.ActivateAt.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(st.LateActivations))
	ch <- prometheus.MustNewConstMetric(descActivations, prometheus.CounterValue, float64(st.Activations))
}
