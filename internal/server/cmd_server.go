package server

import (
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batchkv/batchkv/internal/buildinfo"
)

// sortedMeta is the captured metadata of the top-level commands we know, in
// name order (COMMAND, COMMAND COUNT, COMMAND LIST); metaByName also holds
// every subcommand by its parent|sub name (COMMAND INFO, COMMAND DOCS). See
// commandMeta for which commands these are and why.
var sortedMeta, metaByName = func() ([]*commandMeta, map[string]*commandMeta) {
	out := make([]*commandMeta, len(redisCommands))
	byName := map[string]*commandMeta{}
	for i := range redisCommands {
		m := &redisCommands[i]
		out[i] = m
		byName[m.Name] = m
		for j := range m.Subcommands {
			byName[m.Subcommands[j].Name] = &m.Subcommands[j]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, byName
}()

func (c *conn) writeInfo(m *commandMeta) {
	if c.w.Proto == 3 {
		c.w.RawString(m.Info3)
	} else {
		c.w.RawString(m.Info2)
	}
}

func cmdCommand(c *conn, _ [][]byte) {
	c.w.Array(len(sortedMeta))
	for _, m := range sortedMeta {
		c.writeInfo(m)
	}
}

func cmdCommandCount(c *conn, _ [][]byte) { c.w.Int(int64(len(sortedMeta))) }

// metaFor looks a name up as Redis's lookupCommandBySds: "get" or
// "config|get", case-insensitively; nil for a command we do not know.
func metaFor(name []byte) *commandMeta {
	return metaByName[strings.ToLower(string(name))]
}

func cmdCommandInfo(c *conn, args [][]byte) {
	if len(args) == 2 {
		cmdCommand(c, args)
		return
	}
	c.w.Array(len(args) - 2)
	for _, name := range args[2:] {
		if m := metaFor(name); m != nil {
			c.writeInfo(m)
		} else {
			c.w.Null()
		}
	}
}

func cmdCommandDocs(c *conn, args [][]byte) {
	var ms []*commandMeta
	if len(args) == 2 {
		ms = sortedMeta
	} else {
		for _, name := range args[2:] {
			if m := metaFor(name); m != nil {
				ms = append(ms, m)
			}
		}
	}
	c.w.Map(len(ms))
	for _, m := range ms {
		if c.w.Proto == 3 {
			c.w.RawString(m.Docs3)
		} else {
			c.w.RawString(m.Docs2)
		}
	}
}

// cmdCommandList is Redis 7.0's COMMAND LIST: every command and, after each
// container, its subcommands as parent|sub, optionally filtered by a
// case-insensitive glob on that full name or by ACL category.
func cmdCommandList(c *conn, args [][]byte) {
	keep := func(*commandMeta) bool { return true }
	if len(args) > 2 {
		if len(args) != 5 || !strings.EqualFold(string(args[2]), "filterby") {
			c.errorReply(errSyntax)
			return
		}
		arg := strings.ToLower(string(args[4]))
		switch strings.ToLower(string(args[3])) {
		case "pattern":
			keep = func(m *commandMeta) bool { return globMatch([]byte(arg), []byte(m.Name)) }
		case "module":
			keep = func(*commandMeta) bool { return false } // no modules
		case "aclcat":
			keep = func(m *commandMeta) bool { return slices.Contains(m.Categories, "@"+arg) }
		default:
			c.errorReply(errSyntax)
			return
		}
	}
	var names []string
	for _, m := range sortedMeta {
		if keep(m) {
			names = append(names, m.Name)
		}
		for i := range m.Subcommands {
			if keep(&m.Subcommands[i]) {
				names = append(names, m.Subcommands[i].Name)
			}
		}
	}
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
}

func cmdTime(c *conn, _ [][]byte) {
	now := time.Now()
	c.w.Array(2)
	c.w.BulkInt(now.Unix())
	c.w.BulkInt(int64(now.Nanosecond() / 1000))
}

func cmdDBSize(c *conn, _ [][]byte) { c.w.Int(c.v.DB.Meta().Keys) }

func cmdRole(c *conn, _ [][]byte) {
	c.w.Array(3)
	c.w.BulkString("master")
	c.w.Int(0)
	c.w.Array(0)
}

// configParams are the parameters CONFIG GET knows, with their values. A
// glob's matches come out in this order: Redis's own order is a walk of a
// hashtable keyed with a per-process random seed (two redis-servers differ),
// so no fixed order is Redis's.
func (s *Server) configParams() [][2]string {
	cfg := s.cfg
	timeout := int64(cfg.IdleTimeout / time.Second)
	port := "6379"
	if i := strings.LastIndexByte(cfg.Addr, ':'); i >= 0 {
		port = cfg.Addr[i+1:]
	}
	bind := "* -::*"
	if i := strings.LastIndexByte(cfg.Addr, ':'); i > 0 {
		bind = cfg.Addr[:i]
	}
	return [][2]string{
		{"bind", bind},
		{"port", port},
		{"maxclients", strconv.Itoa(cfg.MaxClients)},
		{"timeout", strconv.FormatInt(timeout, 10)},
		{"proto-max-bulk-len", strconv.FormatInt(cfg.ProtoMaxBulkLen, 10)},
		{"client-query-buffer-limit", strconv.FormatInt(cfg.ClientQueryBufferLimit, 10)},
		{"client-output-buffer-limit", "normal " + strconv.FormatInt(cfg.OutputBufferLimit, 10) + " 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"},
		{"requirepass", cfg.RequirePass},
		{"databases", "1"},
		{"maxmemory", "0"},
		{"maxmemory-policy", "noeviction"},
		{"appendonly", "no"},
		{"save", ""},
		{"cluster-enabled", map[bool]string{false: "no", true: "yes"}[cfg.Cluster != nil]},
		{"replica-read-only", "yes"},
		{"slave-read-only", "yes"},
		{"slowlog-log-slower-than", strconv.FormatInt(int64(cfg.SlowlogSlowerThan/time.Microsecond), 10)},
		{"slowlog-max-len", strconv.Itoa(cfg.SlowlogMaxLen)},
		// Redis 7.0's encoding defaults (with their ziplist aliases, which
		// Redis lists as parameters of their own).
		{"hash-max-listpack-entries", "512"},
		{"hash-max-listpack-value", "64"},
		{"hash-max-ziplist-entries", "512"},
		{"hash-max-ziplist-value", "64"},
		{"set-max-intset-entries", "512"},
		{"zset-max-listpack-entries", "128"},
		{"zset-max-listpack-value", "64"},
		{"zset-max-ziplist-entries", "128"},
		{"zset-max-ziplist-value", "64"},
		{"list-max-listpack-size", "-2"},
		{"list-max-ziplist-size", "-2"},
		{"list-compress-depth", "0"},
		{"stream-node-max-bytes", "4096"},
		{"stream-node-max-entries", "100"},
		{"tcp-keepalive", "300"},
		{"io-threads", "1"},
		{"lua-time-limit", "5000"},
		{"busy-reply-threshold", "5000"},
		{"notify-keyspace-events", ""},
		{"protected-mode", "no"},
		{"dir", "/"},
	}
}

func cmdConfigGet(c *conn, args [][]byte) {
	params := c.s.configParams()
	seen := map[string]bool{}
	var out [][2]string
	for _, pat := range args[2:] {
		if !strings.ContainsAny(string(pat), "[*?") {
			// Redis looks a plain name up directly and echoes it as given.
			name := strings.ToLower(string(pat))
			for _, p := range params {
				if p[0] == name && !seen[name] {
					seen[name] = true
					out = append(out, [2]string{string(pat), p[1]})
				}
			}
			continue
		}
		lp := []byte(strings.ToLower(string(pat)))
		for _, p := range params {
			if !seen[p[0]] && globMatch(lp, []byte(p[0])) {
				seen[p[0]] = true
				out = append(out, p)
			}
		}
	}
	c.w.Map(len(out))
	for _, p := range out {
		c.w.BulkString(p[0])
		c.w.BulkString(p[1])
	}
}

func cmdConfigSet(c *conn, args [][]byte) {
	if len(args)%2 != 0 {
		c.errorReply("ERR wrong number of arguments for 'config|set' command")
		return
	}
	name := strings.ToLower(string(args[2]))
	for _, p := range c.s.configParams() {
		if p[0] == name {
			c.errorReply("ERR CONFIG SET failed (possibly related to argument '" + name + "') - batchkv-server is configured at start-up only")
			return
		}
	}
	c.errorReply("ERR Unknown option or number of arguments for CONFIG SET - '" + cString(args[2]) + "'")
}

func cmdConfigRewrite(c *conn, _ [][]byte) {
	c.errorReply("ERR The server is running without a config file")
}

func cmdConfigResetstat(c *conn, _ [][]byte) {
	st := &c.s.stats
	st.commandsProcessed.Store(0)
	st.connectionsReceived.Store(0)
	st.rejectedConns.Store(0)
	st.netInput.Store(0)
	st.netOutput.Store(0)
	st.keyspaceHits.Store(0)
	st.keyspaceMisses.Store(0)
	st.errorReplies.Store(0)
	c.w.OK()
}

// slowlog keeps the slowest recent commands, as Redis's slowlog.
type slowlog struct {
	mu      sync.Mutex
	maxLen  int
	nextID  int64
	entries []slowEntry // newest first
}

type slowEntry struct {
	id       int64
	at       int64 // unix seconds
	micros   int64
	args     []string
	addr     string
	name     string
	argsMore int
}

func (l *slowlog) add(c *conn, args [][]byte, d time.Duration) {
	// Redis keeps at most 32 arguments of 128 bytes each.
	e := slowEntry{at: time.Now().Unix(), micros: int64(d / time.Microsecond), addr: c.raddr}
	c.mu.Lock()
	e.name = c.name
	c.mu.Unlock()
	n := len(args)
	if n > 32 {
		n = 31
		e.argsMore = len(args) - 31
	}
	for _, a := range args[:n] {
		if len(a) > 128 {
			e.args = append(e.args, string(a[:128])+"... ("+strconv.Itoa(len(a)-128)+" more bytes)")
		} else {
			e.args = append(e.args, string(a))
		}
	}
	if e.argsMore > 0 {
		e.args = append(e.args, "... ("+strconv.Itoa(e.argsMore)+" more arguments)")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e.id = l.nextID
	l.nextID++
	l.entries = append([]slowEntry{e}, l.entries...)
	if len(l.entries) > l.maxLen {
		l.entries = l.entries[:l.maxLen]
	}
}

func cmdSlowlogGet(c *conn, args [][]byte) {
	count := int64(10)
	if len(args) > 3 {
		c.errorReply("ERR unknown subcommand or wrong number of arguments for '" + cString(args[1]) + "'. Try SLOWLOG HELP.")
		return
	}
	if len(args) == 3 {
		n, ok := parseInt(args[2])
		if !ok || n < -1 {
			c.errorReply("ERR count should be greater than or equal to -1")
			return
		}
		count = n
	}
	l := &c.s.slowlog
	l.mu.Lock()
	es := l.entries
	if count >= 0 && int64(len(es)) > count {
		es = es[:count]
	}
	es = append([]slowEntry(nil), es...)
	l.mu.Unlock()
	c.w.Array(len(es))
	for _, e := range es {
		c.w.Array(6)
		c.w.Int(e.id)
		c.w.Int(e.at)
		c.w.Int(e.micros)
		c.w.Array(len(e.args))
		for _, a := range e.args {
			c.w.BulkString(a)
		}
		c.w.BulkString(e.addr)
		c.w.BulkString(e.name)
	}
}

func cmdSlowlogLen(c *conn, _ [][]byte) {
	l := &c.s.slowlog
	l.mu.Lock()
	n := len(l.entries)
	l.mu.Unlock()
	c.w.Int(int64(n))
}

func cmdSlowlogReset(c *conn, _ [][]byte) {
	l := &c.s.slowlog
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
	c.w.OK()
}

// cmdHelp answers CLIENT/COMMAND/CONFIG/SLOWLOG HELP with Redis 7.0's text,
// captured by gencommands.
func cmdHelp(c *conn, args [][]byte) {
	c.w.RawString(metaByName[strings.ToLower(string(args[0]))].Help)
}

// infoSections are INFO's sections in Redis's order; "default" and "all"
// include all of them, as do "everything" (no modules or commandstats here).
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace", "dataset"}

func cmdInfo(c *conn, args [][]byte) {
	want := map[string]bool{}
	if len(args) == 1 {
		want["default"] = true
	}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := want["default"] || want["all"] || want["everything"]
	var b []byte
	for _, sec := range infoSections {
		if !all && !want[sec] {
			continue
		}
		if len(b) > 0 {
			b = append(b, "\r\n"...)
		}
		b = c.infoSection(b, sec)
	}
	c.w.Verbatim("txt", b)
}

func kv(b []byte, k string, v string) []byte {
	return append(append(append(append(b, k...), ':'), v...), "\r\n"...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (c *conn) infoSection(b []byte, sec string) []byte {
	s := c.s
	now := time.Now()
	switch sec {
	case "server":
		b = append(b, "# Server\r\n"...)
		b = kv(b, "redis_version", redisVersion)
		b = kv(b, "redis_git_sha1", "00000000")
		b = kv(b, "redis_git_dirty", "0")
		b = kv(b, "redis_build_id", "batchkv")
		b = kv(b, "redis_mode", "standalone")
		b = kv(b, "os", runtime.GOOS+" "+runtime.GOARCH)
		b = kv(b, "arch_bits", "64")
		b = kv(b, "multiplexing_api", "go")
		b = kv(b, "process_id", itoa(int64(os.Getpid())))
		b = kv(b, "run_id", runID)
		b = kv(b, "tcp_port", s.configParams()[1][1])
		b = kv(b, "server_time_usec", itoa(now.UnixMicro()))
		up := int64(now.Sub(s.start) / time.Second)
		b = kv(b, "uptime_in_seconds", itoa(up))
		b = kv(b, "uptime_in_days", itoa(up/86400))
		b = kv(b, "executable", executable)
		b = kv(b, "config_file", "")
		b = kv(b, "batchkv_version", buildinfo.Version)
	case "clients":
		b = append(b, "# Clients\r\n"...)
		b = kv(b, "connected_clients", itoa(s.nconns.Load()))
		b = kv(b, "cluster_connections", "0")
		b = kv(b, "maxclients", itoa(int64(s.cfg.MaxClients)))
		b = kv(b, "blocked_clients", "0")
		b = kv(b, "tracking_clients", "0")
		b = kv(b, "clients_in_timeout_table", "0")
	case "memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b = append(b, "# Memory\r\n"...)
		b = kv(b, "used_memory", itoa(int64(ms.HeapAlloc)))
		b = kv(b, "used_memory_rss", itoa(residentBytes(int64(ms.Sys))))
		b = kv(b, "maxmemory", "0")
		b = kv(b, "maxmemory_human", "0B")
		b = kv(b, "maxmemory_policy", "noeviction")
		b = kv(b, "mem_allocator", "go")
		if s.cfg.Cache != nil {
			// batchkv's own: what the block cache holds of the resident
			// memory (docs/OPERATIONS.md, "Memory").
			cs := s.cfg.Cache()
			b = kv(b, "batchkv_block_cache_bytes", itoa(cs.BlockBytes))
			b = kv(b, "batchkv_block_cache_budget", itoa(cs.BlockBudget))
			b = kv(b, "batchkv_block_cache_blocks", itoa(int64(cs.Blocks)))
			b = kv(b, "batchkv_block_cache_loads", itoa(cs.Loads))
			b = kv(b, "batchkv_block_cache_evictions", itoa(cs.Evictions))
			b = kv(b, "batchkv_pebble_cache_bytes", itoa(cs.PebbleBytes))
			b = kv(b, "batchkv_pebble_cache_budget", itoa(cs.PebbleBudget))
		}
	case "persistence":
		b = append(b, "# Persistence\r\n"...)
		loading := "0"
		if c.v == nil && !s.cur.Live() {
			loading = "1"
		}
		b = kv(b, "loading", loading)
		b = kv(b, "async_loading", "0")
		b = kv(b, "rdb_changes_since_last_save", "0")
		b = kv(b, "rdb_bgsave_in_progress", "0")
		b = kv(b, "aof_enabled", "0")
		b = kv(b, "aof_rewrite_in_progress", "0")
	case "stats":
		st := &s.stats
		b = append(b, "# Stats\r\n"...)
		b = kv(b, "total_connections_received", itoa(st.connectionsReceived.Load()))
		b = kv(b, "total_commands_processed", itoa(st.commandsProcessed.Load()))
		b = kv(b, "total_net_output_bytes", itoa(st.netOutput.Load()))
		b = kv(b, "rejected_connections", itoa(st.rejectedConns.Load()))
		b = kv(b, "expired_keys", "0")
		b = kv(b, "evicted_keys", "0")
		b = kv(b, "keyspace_hits", itoa(st.keyspaceHits.Load()))
		b = kv(b, "keyspace_misses", itoa(st.keyspaceMisses.Load()))
		b = kv(b, "total_error_replies", itoa(st.errorReplies.Load()))
	case "replication":
		b = append(b, "# Replication\r\n"...)
		b = kv(b, "role", "master")
		b = kv(b, "connected_slaves", "0")
		b = kv(b, "master_failover_state", "no-failover")
		b = kv(b, "master_replid", runID)
		b = kv(b, "master_repl_offset", "0")
	case "cpu":
		b = append(b, "# CPU\r\n"...)
		b = cpuInfo(b)
	case "cluster":
		b = append(b, "# Cluster\r\n"...)
		if c.s.cfg.Cluster != nil {
			b = kv(b, "cluster_enabled", "1")
		} else {
			b = kv(b, "cluster_enabled", "0")
		}
	case "keyspace":
		b = append(b, "# Keyspace\r\n"...)
		if db := c.infoDB(); db != nil && db.Keys > 0 {
			b = kv(b, "db0", "keys="+itoa(db.Keys)+",expires=0,avg_ttl=0")
		}
	case "dataset":
		b = append(b, "# Dataset\r\n"...)
		var st SwapStats
		if s.cfg.Stats != nil {
			st = s.cfg.Stats()
		}
		if m := c.infoDB(); m != nil {
			b = kv(b, "dataset", m.Name)
			b = kv(b, "version", m.Version)
			b = kv(b, "keys", itoa(m.Keys))
			b = kv(b, "strings", itoa(m.Strings))
			b = kv(b, "hashes", itoa(m.Hashes))
			b = kv(b, "built_at", m.BuiltAt.UTC().Format(time.RFC3339))
		} else {
			b = kv(b, "dataset", "")
			b = kv(b, "version", "")
			b = kv(b, "keys", "0")
			b = kv(b, "strings", "0")
			b = kv(b, "hashes", "0")
		}
		if !st.LoadedAt.IsZero() {
			b = kv(b, "loaded_at", st.LoadedAt.UTC().Format(time.RFC3339))
		} else {
			b = kv(b, "loaded_at", c.loadedAt())
		}
		b = kv(b, "swaps", itoa(st.Swaps))
		b = kv(b, "swap_failures", itoa(st.SwapFailures))
		b = kv(b, "previous_version", st.PreviousVersion)
	}
	return b
}
