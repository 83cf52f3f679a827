package metrics

import (
	"strings"
	"time"

	"github.com/batchkv/batchkv/internal/swap"
	"github.com/prometheus/client_golang/prometheus"
)

// commandBuckets span a cached GET (tens of µs) to a slow KEYS or SCAN.
var commandBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5, 2}

// swapBuckets span opening a small version (ms) to warming a large one (minutes).
var swapBuckets = prometheus.ExponentialBuckets(0.01, 3, 11) // 10ms … ~10 min

// errorKinds are the error codes counted under their own label: the first
// word of every error reply the server writes. Anything else is "other",
// so the label's cardinality is bounded whatever a handler writes.
var errorKinds = []string{"ERR", "WRONGTYPE", "READONLY", "LOADING", "NOAUTH", "NOPROTO", "WRONGPASS",
	"EXECABORT", "NOPERM", "BUSY", "MOVED", "ASK", "CROSSSLOT", "CLUSTERDOWN", "TRYAGAIN"}

// Error kinds that are not an error reply's first word.
const (
	KindProtocol = "protocol" // a request the protocol reader refused (the client is then closed)
	KindOther    = "other"
)

// Server is batchkv-server's metrics. The per-command path touches only
// Command's pre-resolved children (a counter and a histogram: a few atomic
// adds), never a label lookup.
type Server struct {
	commands  *prometheus.CounterVec
	durations *prometheus.HistogramVec

	errors   map[string]prometheus.Counter
	other    prometheus.Counter
	protocol prometheus.Counter

	swaps        prometheus.Counter
	swapFailures prometheus.Counter
	swapDuration prometheus.Histogram
	warmup       prometheus.Histogram
}

// Command is one command's series, resolved once per command name.
type Command struct {
	Calls    prometheus.Counter
	Duration prometheus.Observer
}

// Observe records one call that took d.
func (c *Command) Observe(d time.Duration) {
	c.Calls.Inc()
	c.Duration.Observe(d.Seconds())
}

// NewServer registers the server's metrics with reg.
func NewServer(reg prometheus.Registerer) *Server {
	m := &Server{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "batchkv_commands_total", Help: "Commands run, by command (lower-case; subcommands as container|sub). Refused commands count in batchkv_errors_total only.",
		}, []string{"command"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "batchkv_command_duration_seconds", Help: "Time to run a command, reply appended (EXEC includes its queued commands).",
			Buckets: commandBuckets,
		}, []string{"command"}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "batchkv_swaps_total", Help: "Versions made live (the first one included).",
		}),
		swapFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "batchkv_swap_failures_total", Help: "Versions the manifest named that could not be opened, validated or warmed.",
		}),
		swapDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "batchkv_swap_duration_seconds", Help: "Time from noticing a new manifest to the version being live (open, validate, warm, swap).",
			Buckets: swapBuckets,
		}),
		warmup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "batchkv_warmup_duration_seconds", Help: "Time spent warming a version (index and filter blocks, sampled hot keys) before it went live.",
			Buckets: swapBuckets,
		}),
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "batchkv_errors_total", Help: "Error replies by their first word (ERR, WRONGTYPE, LOADING…); kind=\"protocol\" counts requests refused by the protocol reader.",
	}, []string{"kind"})
	m.errors = make(map[string]prometheus.Counter, len(errorKinds))
	for _, k := range errorKinds {
		m.errors[k] = errs.WithLabelValues(k)
	}
	m.other = errs.WithLabelValues(KindOther)
	m.protocol = errs.WithLabelValues(KindProtocol)
	reg.MustRegister(m.commands, m.durations, errs, m.swaps, m.swapFailures, m.swapDuration, m.warmup)
	return m
}

// Command returns the series of the command named name. Call it once per
// command and keep the result: it does the label lookups.
func (m *Server) Command(name string) *Command {
	return &Command{Calls: m.commands.WithLabelValues(name), Duration: m.durations.WithLabelValues(name)}
}

// ErrorReply counts an error reply by its first word.
func (m *Server) ErrorReply(msg string) {
	kind, _, _ := strings.Cut(msg, " ")
	if c := m.errors[kind]; c != nil {
		c.Inc()
		return
	}
	m.other.Inc()
}

// ProtocolError counts a request the protocol reader refused.
func (m *Server) ProtocolError() { m.protocol.Inc() }

// OnSwap is a swap.Options.OnSwap hook.
func (m *Server) OnSwap(st swap.Stats, d time.Duration, err error) {
	if err != nil {
		m.swapFailures.Inc()
		return
	}
	m.swaps.Inc()
	m.swapDuration.Observe(d.Seconds())
	if st.Warmup > 0 {
		m.warmup.Observe(st.Warmup.Seconds())
	}
}

// ConnStats are the server's connection counters, read at each scrape.
type ConnStats struct {
	Connected, Rejected, NetInput, NetOutput int64
}

// Dataset describes the live version, read at each scrape.
type Dataset struct {
	Name, Version string
	BuiltAt       time.Time
	Keys          int64
	// Open counts versions open: the live one and replaced ones still
	// draining.
	Open int
}

// Cache describes the block cache, read at each scrape.
type Cache struct {
	BlockBytes, BlockBudget, Blocks, Loads, Evictions int64
	PebbleBytes                                       int64
}

// ServerState is what the server reports at each scrape; live is false
// while no version is live. Cache may be nil.
type ServerState struct {
	Conns   func() ConnStats
	Dataset func() (d Dataset, live bool)
	Cache   func() Cache
}

var (
	descConnected = prometheus.NewDesc("batchkv_connected_clients", "Client connections open.", nil, nil)
	descRejected  = prometheus.NewDesc("batchkv_rejected_connections_total", "Connections refused at maxclients.", nil, nil)
	descNetIn     = prometheus.NewDesc("batchkv_net_input_bytes_total", "Bytes read from clients.", nil, nil)
	descNetOut    = prometheus.NewDesc("batchkv_net_output_bytes_total", "Bytes written to clients.", nil, nil)
	descInfo      = prometheus.NewDesc("batchkv_dataset_info", "The live dataset version (1; absent while none is live).", []string{"dataset", "version"}, nil)
	descAge       = prometheus.NewDesc("batchkv_dataset_version_age_seconds", "Now minus the live version's built_at.", nil, nil)
	descKeys      = prometheus.NewDesc("batchkv_dataset_keys", "Keys in the live version.", nil, nil)
	descOpen      = prometheus.NewDesc("batchkv_open_versions", "Versions open: the live one and replaced ones still draining.", nil, nil)

	descCacheBytes     = prometheus.NewDesc("batchkv_block_cache_bytes", "Memory held by decoded data blocks in the point-lookup cache.", nil, nil)
	descCacheBudget    = prometheus.NewDesc("batchkv_block_cache_budget_bytes", "The point-lookup cache's budget (--cache-bytes less Pebble's share).", nil, nil)
	descCacheBlocks    = prometheus.NewDesc("batchkv_block_cache_blocks", "Decoded data blocks in the point-lookup cache.", nil, nil)
	descCacheLoads     = prometheus.NewDesc("batchkv_block_cache_loads_total", "Data blocks read from disk into the point-lookup cache (cache misses).", nil, nil)
	descCacheEvictions = prometheus.NewDesc("batchkv_block_cache_evictions_total", "Data blocks dropped from the point-lookup cache to stay within its budget.", nil, nil)
	descPebbleCache    = prometheus.NewDesc("batchkv_pebble_cache_bytes", "Memory in use by Pebble's own block cache (scans).", nil, nil)
)

// RegisterState registers a collector reading st at each scrape.
func (m *Server) RegisterState(reg prometheus.Registerer, st ServerState) {
	reg.MustRegister(stateCollector(st))
}

type stateCollector ServerState

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descRejected, descNetIn, descNetOut, descInfo, descAge, descKeys, descOpen,
		descCacheBytes, descCacheBudget, descCacheBlocks, descCacheLoads, descCacheEvictions, descPebbleCache} {
		ch <- d
	}
}

func (s stateCollector) Collect(ch chan<- prometheus.Metric) {
	c := s.Conns()
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, float64(c.Connected))
	ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(c.Rejected))
	ch <- prometheus.MustNewConstMetric(descNetIn, prometheus.CounterValue, float64(c.NetInput))
	ch <- prometheus.MustNewConstMetric(descNetOut, prometheus.CounterValue, float64(c.NetOutput))
	if s.Cache != nil {
		cs := s.Cache()
		ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(cs.BlockBytes))
		ch <- prometheus.MustNewConstMetric(descCacheBudget, prometheus.GaugeValue, float64(cs.BlockBudget))
		ch <- prometheus.MustNewConstMetric(descCacheBlocks, prometheus.GaugeValue, float64(cs.Blocks))
		ch <- prometheus.MustNewConstMetric(descCacheLoads, prometheus.CounterValue, float64(cs.Loads))
		ch <- prometheus.MustNewConstMetric(descCacheEvictions, prometheus.CounterValue, float64(cs.Evictions))
		ch <- prometheus.MustNewConstMetric(descPebbleCache, prometheus.GaugeValue, float64(cs.PebbleBytes))
	}
	d, live := s.Dataset()
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(d.Open))
	if !live {
		return
	}
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, d.Name, d.Version)
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(d.Keys))
	if !d.BuiltAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, time.Since(d.BuiltAt).Seconds())
	}
}
