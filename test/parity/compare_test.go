package parity

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/redistest"
)

// check says how the two replies to a command are compared.
type check int

const (
	exact check = iota // byte for byte
	checkHello
	checkInfo
	checkClientList
	checkClientID
	checkTime
	checkRole
	checkConfigGet
	checkCommandAll
	checkCommandSet
	checkCommandInfo
	checkCommandDocs
	checkCommandCount
	checkClientSetinfo
	checkSlowlog
	checkRandomKey
	checkKeys
	checkScan
	checkHScan
	checkHRandField
	checkHashOrder
	checkExec
)

// deviation is one reply batchkv may give differently from redis-server,
// and why. Every check other than exact must be listed here; the README's
// list of differences is generated from (or checked against) this table.
type deviation struct {
	command string
	check   check
	reason  string
}

// Deviations lists the replies compared by meaning instead of bytes. Error
// replies are always compared byte for byte, whatever the command.
var Deviations = []deviation{
	{"SCAN", checkScan, "cursors are batchkv's own (stateless key order); a full iteration returns exactly the key set, MATCH/TYPE/COUNT honoured"},
	{"HSCAN", checkHScan, "cursors and chunking differ; every pair returned is in the hash and matches MATCH, a single-call iteration is complete"},
	{"KEYS", checkKeys, "key order differs: compared as a set"},
	{"RANDOMKEY", checkRandomKey, "random: a key of the dataset, nil only when it is empty"},
	{"HRANDFIELD", checkHRandField, "random: fields of the hash; positive count distinct and min(count, len) long, negative count exactly |count| long"},
	{"HGETALL/HKEYS/HVALS", checkHashOrder, "for hashes redis keeps in a hashtable (>512 fields or a field/value >64 bytes) its order is arbitrary: compared as sets; small hashes byte for byte"},
	{"HELLO", checkHello, "server id, version and role differ: same keys and proto"},
	{"INFO", checkInfo, "values differ: the standard sections redis prints are present (not Modules/Errorstats/Commandstats/Latencystats), db0 key count equal"},
	{"CLIENT LIST/INFO", checkClientList, "ids, addresses and ages differ: one id=… line per client"},
	{"CLIENT ID", checkClientID, "connection ids differ: an integer"},
	{"TIME", checkTime, "clock: two integer strings within 5 s of redis's"},
	{"ROLE", checkRole, "the reference is a replica of a closed port: an array naming a role"},
	{"CONFIG GET", checkConfigGet, "batchkv knows a subset of parameters: every name it returns is redis's, the commonly read ones (configKnown) are present, their values equal except port/bind"},
	{"COMMAND", checkCommandAll, "batchkv lists the commands it knows (served, refused writes, containers of write subcommands), redis all 240, in hashtable order: each entry equals redis's (nested subcommands as a set), every SPEC command is present; TestParity/metadata checks COUNT, LIST, INFO and DOCS agree with it"},
	{"COMMAND COUNT", checkCommandCount, "counts batchkv's subset: at most redis's count, at least the top-level SPEC commands"},
	{"COMMAND INFO", checkCommandInfo, "entries in the order asked equal redis's (subcommands compared as a set); nil only for commands outside SPEC §7; without names as COMMAND"},
	{"COMMAND LIST", checkCommandSet, "a subset of redis's list in any order, containing every SPEC command"},
	{"COMMAND DOCS", checkCommandDocs, "a subset of redis's docs in any order, every doc equal to redis's, SPEC commands present"},
	{"CLIENT SETINFO", checkClientSetinfo, "a redis 7.2 command that 7.0 lacks (go-redis sends it); compared with 7.2's replies"},
	{"SLOWLOG", checkSlowlog, "entries depend on timing: the reply type only"},
	{"EXEC", checkExec, "each queued command's reply is compared by its own rule"},
}

// checker compares replies. refKeys answers KEYS pattern on the reference
// (for checking SCAN results without a second glob implementation);
// refHScan answers the complete HSCAN of a hash with a pattern.
type checker struct {
	m *model
	// spec holds the lower-case names (and parent|sub names) of the commands
	// batchkv must handle: SPEC §7 and every write command.
	spec map[string]bool
	// setinfo72: the target implements CLIENT SETINFO as redis 7.2 does
	// (batchkv); a redis-server 7.0 target is compared exactly.
	setinfo72 bool
	refKeys   func(pattern []byte) map[string]bool
	refHScan  func(key, pattern []byte) map[string]string
}

// compare returns "" when tgt is an acceptable reply given ref, else why not.
func (c *checker) compare(cmd *command, ref, tgt []byte) string {
	if cmd.check == checkClientSetinfo && c.setinfo72 {
		if want := setinfo72(cmd.args); string(tgt) != want {
			return fmt.Sprintf("CLIENT SETINFO: want redis 7.2's %s", redistest.Escape([]byte(want)))
		}
		return ""
	}
	if bytes.Equal(ref, tgt) {
		return ""
	}
	if cmd.check == exact {
		return "bytes differ"
	}
	a, errA := redistest.Parse(ref)
	b, errB := redistest.Parse(tgt)
	if errA != nil || errB != nil {
		return fmt.Sprintf("unparsable reply: %v / %v", errA, errB)
	}
	if a.IsError() || b.IsError() {
		return "bytes differ (error replies are compared exactly)"
	}
	if a.Kind != b.Kind || a.Null != b.Null {
		return fmt.Sprintf("reply type %q null=%v, want %q null=%v", b.Kind, b.Null, a.Kind, a.Null)
	}
	switch cmd.check {
	case checkHello:
		ka, kb := mapKeys(a), mapKeys(b)
		if !slices.Equal(ka, kb) {
			return fmt.Sprintf("HELLO keys %q, want %q", kb, ka)
		}
		for _, k := range []string{"proto", "mode"} {
			if mapGet(a, k) != mapGet(b, k) {
				return fmt.Sprintf("HELLO %s = %s, want %s", k, mapGet(b, k), mapGet(a, k))
			}
		}
	case checkInfo:
		ta, tb := string(a.Text()), string(b.Text())
		for _, l := range strings.Split(ta, "\r\n") {
			if strings.HasPrefix(l, "# ") && infoSections[l[2:]] && !strings.Contains(tb, l+"\r\n") {
				return fmt.Sprintf("INFO lacks section %q", l)
			}
			if strings.HasPrefix(l, "db0:") {
				want := l[:strings.IndexByte(l+",", ',')+1]
				if !strings.Contains(tb, want) {
					return fmt.Sprintf("INFO lacks %q", want)
				}
			}
		}
		for _, l := range strings.Split(strings.TrimRight(tb, "\r\n"), "\r\n") {
			if l != "" && !strings.HasPrefix(l, "# ") && !strings.Contains(l, ":") {
				return fmt.Sprintf("INFO line %q is neither a header nor key:value", l)
			}
		}
	case checkClientList:
		for _, l := range strings.Split(strings.TrimRight(string(b.Text()), "\n"), "\n") {
			for _, f := range []string{"id=", " addr=", " fd=", " name=", " db=", " cmd="} {
				if !strings.Contains(" "+l, " "+strings.TrimSpace(f)) {
					return fmt.Sprintf("client line %q lacks %q", l, f)
				}
			}
		}
	case checkClientID:
		if b.Int <= 0 {
			return "CLIENT ID not positive"
		}
	case checkTime:
		if len(a.Elems) != 2 || len(b.Elems) != 2 {
			return "TIME is not two elements"
		}
		sa, e1 := strconv.ParseInt(string(a.Elems[0].Str), 10, 64)
		sb, e2 := strconv.ParseInt(string(b.Elems[0].Str), 10, 64)
		us, e3 := strconv.ParseInt(string(b.Elems[1].Str), 10, 64)
		if e1 != nil || e2 != nil || e3 != nil || us < 0 || us >= 1e6 || b.Elems[0].Kind != '$' {
			return "TIME elements are not integer strings"
		}
		if d := sa - sb; d > 5 || d < -5 {
			return fmt.Sprintf("TIME %d s from redis's", d)
		}
	case checkRole:
		if len(b.Elems) == 0 || !slices.Contains([]string{"master", "slave"}, string(b.Elems[0].Str)) {
			return "ROLE does not name a role"
		}
	case checkConfigGet:
		ra, rb := mapOf(a), mapOf(b)
		for k, v := range rb {
			av, ok := ra[k]
			switch {
			case !ok:
				return fmt.Sprintf("CONFIG GET returned %q, which redis did not", k)
			case configValues[k] && av != v:
				return fmt.Sprintf("CONFIG GET %s = %s, redis says %s", k, v, av)
			}
		}
		for k := range ra {
			if _, ok := rb[k]; !ok && configKnown[k] {
				return fmt.Sprintf("CONFIG GET lacks %q", k)
			}
		}
	case checkCommandAll:
		return c.commandSubset(a, b)
	case checkCommandCount:
		// COUNT counts top-level commands: spec's parent|sub names are
		// inside their parent's entry.
		top := 0
		for name := range c.spec {
			if !strings.Contains(name, "|") {
				top++
			}
		}
		if b.Int > a.Int || b.Int < int64(top) {
			return fmt.Sprintf("COMMAND COUNT %d, want between %d (SPEC) and %d (redis)", b.Int, top, a.Int)
		}
	case checkCommandInfo:
		if len(cmd.args) <= 2 { // COMMAND INFO without names: every command
			return c.commandSubset(a, b)
		}
		if len(a.Elems) != len(b.Elems) {
			return "COMMAND INFO lengths differ"
		}
		for i := range a.Elems {
			name := strings.ToLower(string(cmd.args[2+i]))
			if b.Elems[i].Null && !c.spec[name] {
				continue // a command batchkv does not handle
			}
			if commandEntry(a.Elems[i]) != commandEntry(b.Elems[i]) {
				return fmt.Sprintf("COMMAND INFO %s differs", name)
			}
		}
	case checkCommandDocs:
		// Subcommand docs are a hashtable walk (a flat array in RESP2): the
		// docs are compared with every level unordered.
		da, db := mapOfUnordered(a), mapOfUnordered(b)
		for k, v := range db {
			if da[k] != v {
				return fmt.Sprintf("COMMAND DOCS %s differs from redis's", k)
			}
		}
		for k := range da {
			if _, ok := db[k]; !ok && c.spec[k] {
				return fmt.Sprintf("COMMAND DOCS lacks %s", k)
			}
		}
	case checkCommandSet:
		la, lb := mapOfList(a), mapOfList(b)
		for k := range lb {
			if !la[k] {
				return fmt.Sprintf("COMMAND LIST has %q, which redis does not", k)
			}
		}
		if len(cmd.args) == 2 { // no filter: everything batchkv handles
			for k := range c.spec {
				if !lb[k] && la[k] {
					return fmt.Sprintf("COMMAND LIST lacks %q", k)
				}
			}
		}
	case checkClientSetinfo:
		return "bytes differ"
	case checkKeys:
		if a.Canonical(true) != b.Canonical(true) {
			return "differ as sets"
		}
	case checkSlowlog:
		// Same type is all that can be compared.
	case checkRandomKey:
		if !b.Null && c.m.items[string(b.Str)] == nil {
			return fmt.Sprintf("RANDOMKEY %q is not a key", b.Str)
		}
	case checkScan:
		return c.scan(cmd, b)
	case checkHScan:
		return c.hscan(cmd, b)
	case checkHRandField:
		return c.hrandfield(cmd, b)
	case checkHashOrder:
		it := c.m.items[string(cmd.key)]
		if it == nil || !it.big {
			return "bytes differ (hash in listpack order)"
		}
		if pa, ok := a.Pairs(); ok && strings.EqualFold(string(cmd.args[0]), "HGETALL") && a.Kind == '*' {
			if pb, _ := b.Pairs(); !slices.Equal(pa, pb) {
				return "HGETALL pairs differ as a set"
			}
			return ""
		}
		if a.Canonical(true) != b.Canonical(true) {
			return "differ as sets"
		}
	case checkExec:
		if len(a.Elems) != len(cmd.subs) || len(b.Elems) != len(cmd.subs) {
			return fmt.Sprintf("EXEC replied %d elements, want %d", len(b.Elems), len(a.Elems))
		}
		for i, sub := range cmd.subs {
			if d := c.compare(sub, raw(a.Elems[i]), raw(b.Elems[i])); d != "" {
				return fmt.Sprintf("EXEC element %d (%s): %s", i, showArgs(sub.args), d)
			}
		}
	default:
		return fmt.Sprintf("no rule for check %d", cmd.check)
	}
	return ""
}

func (c *checker) scan(cmd *command, b *redistest.Reply) string {
	if len(b.Elems) != 2 || b.Elems[1].Kind != '*' {
		return "SCAN reply is not [cursor, keys]"
	}
	if _, err := strconv.ParseUint(string(b.Elems[0].Str), 10, 64); err != nil || b.Elems[0].Kind != '$' {
		return fmt.Sprintf("SCAN cursor %q is not an integer string", b.Elems[0].Str)
	}
	pattern := cmd.pattern
	if pattern == nil {
		pattern = []byte("*")
	}
	allowed := c.refKeys(pattern)
	seen := map[string]bool{}
	for _, k := range b.Elems[1].Elems {
		it := c.m.items[string(k.Str)]
		switch {
		case it == nil:
			return fmt.Sprintf("SCAN returned %q, not a key", k.Str)
		case seen[string(k.Str)]:
			return fmt.Sprintf("SCAN returned %q twice in one reply", k.Str)
		case !allowed[string(k.Str)]:
			return fmt.Sprintf("SCAN returned %q, which does not match %q", k.Str, pattern)
		case cmd.typeFilter != "" && !strings.EqualFold(cmd.typeFilter, it.typ.String()):
			return fmt.Sprintf("SCAN TYPE %s returned a %s", cmd.typeFilter, it.typ)
		}
		seen[string(k.Str)] = true
	}
	return ""
}

func (c *checker) hscan(cmd *command, b *redistest.Reply) string {
	if len(b.Elems) != 2 || b.Elems[1].Kind != '*' || len(b.Elems[1].Elems)%2 != 0 {
		return "HSCAN reply is not [cursor, field/value pairs]"
	}
	cursor := string(b.Elems[0].Str)
	if _, err := strconv.ParseUint(cursor, 10, 64); err != nil {
		return fmt.Sprintf("HSCAN cursor %q is not an integer string", cursor)
	}
	pattern := cmd.pattern
	if pattern == nil {
		pattern = []byte("*")
	}
	want := c.refHScan(cmd.key, pattern)
	got := map[string]bool{}
	for i := 0; i < len(b.Elems[1].Elems); i += 2 {
		f, v := b.Elems[1].Elems[i].Str, b.Elems[1].Elems[i+1].Str
		wv, ok := want[string(f)]
		switch {
		case !ok:
			return fmt.Sprintf("HSCAN returned field %q, not in the hash or not matching %q", f, pattern)
		case wv != string(v):
			return fmt.Sprintf("HSCAN field %q = %q, want %q", f, v, wv)
		case got[string(f)]:
			return fmt.Sprintf("HSCAN returned %q twice in one reply", f)
		}
		got[string(f)] = true
	}
	if string(cmd.args[2]) == "0" && cursor == "0" && len(got) != len(want) {
		return fmt.Sprintf("HSCAN from 0 ended after %d of %d fields", len(got), len(want))
	}
	return ""
}

func (c *checker) hrandfield(cmd *command, b *redistest.Reply) string {
	it := c.m.items[string(cmd.key)]
	if it == nil || it.typ != 2 {
		return "HRANDFIELD of a key that is not a hash differs"
	}
	values := map[string]string{}
	for _, fv := range it.fields {
		values[string(fv[0])] = string(fv[1])
	}
	if !cmd.hasCount {
		if _, ok := values[string(b.Str)]; !ok {
			return fmt.Sprintf("HRANDFIELD returned %q, not a field", b.Str)
		}
		return ""
	}
	var fields []string
	for i := 0; i < len(b.Elems); i++ {
		e := b.Elems[i]
		switch {
		case cmd.withValues && e.Kind == '*' && len(e.Elems) == 2: // RESP3 pairs
			f, v := string(e.Elems[0].Str), string(e.Elems[1].Str)
			if values[f] != v {
				return fmt.Sprintf("HRANDFIELD pair %q=%q is not in the hash", f, v)
			}
			fields = append(fields, f)
		case cmd.withValues: // RESP2 flat
			if i+1 >= len(b.Elems) {
				return "HRANDFIELD WITHVALUES odd length"
			}
			f, v := string(e.Str), string(b.Elems[i+1].Str)
			if values[f] != v {
				return fmt.Sprintf("HRANDFIELD pair %q=%q is not in the hash", f, v)
			}
			fields = append(fields, f)
			i++
		default:
			fields = append(fields, string(e.Str))
		}
	}
	for _, f := range fields {
		if _, ok := values[f]; !ok {
			return fmt.Sprintf("HRANDFIELD returned %q, not a field", f)
		}
	}
	wantLen := int64(len(it.fields))
	if cmd.count >= 0 {
		wantLen = min(cmd.count, wantLen)
		if s := slices.Compact(slices.Sorted(slices.Values(fields))); len(s) != len(fields) {
			return "HRANDFIELD with a positive count repeated a field"
		}
	} else if cmd.count != math.MinInt64 {
		wantLen = -cmd.count
	}
	if int64(len(fields)) != wantLen {
		return fmt.Sprintf("HRANDFIELD returned %d fields, want %d", len(fields), wantLen)
	}
	return ""
}

// mapKeys returns the sorted keys of a RESP3 map or RESP2 flat key/value array.
func mapKeys(r *redistest.Reply) []string {
	var keys []string
	for i := 0; i+1 < len(r.Elems); i += 2 {
		keys = append(keys, string(r.Elems[i].Str))
	}
	slices.Sort(keys)
	return keys
}

func mapGet(r *redistest.Reply, key string) string {
	for i := 0; i+1 < len(r.Elems); i += 2 {
		if string(r.Elems[i].Str) == key {
			return r.Elems[i+1].String()
		}
	}
	return "<missing>"
}

// infoSections are the INFO sections batchkv must print when redis does.
var infoSections = map[string]bool{"Server": true, "Clients": true, "Memory": true, "Persistence": true,
	"Stats": true, "Replication": true, "CPU": true, "Cluster": true, "Keyspace": true}

// configKnown are parameters clients and tools read (redis-benchmark reads
// save and appendonly): CONFIG GET must return them.
var configKnown = map[string]bool{"maxmemory": true, "databases": true, "timeout": true, "maxclients": true,
	"proto-max-bulk-len": true, "client-query-buffer-limit": true, "save": true, "appendonly": true,
	"port": true, "bind": true, "requirepass": true, "cluster-enabled": true,
	"hash-max-listpack-entries": true, "hash-max-listpack-value": true}

// configValues are parameters whose values must equal redis's.
var configValues = map[string]bool{"maxmemory": true, "databases": true, "timeout": true, "maxclients": true,
	"proto-max-bulk-len": true, "client-query-buffer-limit": true, "save": true, "appendonly": true,
	"requirepass": true, "cluster-enabled": true, "hash-max-listpack-entries": true,
	"hash-max-listpack-value": true, "hash-max-ziplist-entries": true, "hash-max-ziplist-value": true}

// setinfo72 is redis 7.2's reply to CLIENT SETINFO (7.0 has no such command).
func setinfo72(args [][]byte) string {
	if len(args) != 4 {
		return "-ERR wrong number of arguments for 'client|setinfo' command\r\n"
	}
	// 7.2's clientSetinfoCommand sees its arguments as C strings (strcasecmp,
	// %s, validateClientAttr stop at a NUL byte); addReplyErrorFormat turns
	// CR and LF into spaces.
	cstr := func(b []byte) []byte {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return b[:i]
		}
		return b
	}
	attr := strings.NewReplacer("\r", " ", "\n", " ").Replace(string(cstr(args[2])))
	val := cstr(args[3])
	if !strings.EqualFold(attr, "lib-name") && !strings.EqualFold(attr, "lib-ver") {
		return fmt.Sprintf("-ERR Unrecognized option '%s'\r\n", attr)
	}
	for _, ch := range val {
		if ch < '!' || ch > '~' {
			return fmt.Sprintf("-ERR %s cannot contain spaces, newlines or special characters.\r\n", attr)
		}
	}
	return "+OK\r\n"
}

// commandSubset checks a COMMAND reply of batchkv against redis's: every
// entry equal to redis's entry of that name, every SPEC command present.
func (c *checker) commandSubset(a, b *redistest.Reply) string {
	ref := map[string]string{}
	for _, e := range a.Elems {
		if len(e.Elems) > 0 {
			ref[string(e.Elems[0].Str)] = commandEntry(e)
		}
	}
	got := map[string]bool{}
	for _, e := range b.Elems {
		if len(e.Elems) == 0 {
			return "COMMAND entry is not an array"
		}
		name := string(e.Elems[0].Str)
		if ref[name] != commandEntry(e) {
			return fmt.Sprintf("COMMAND entry %q differs from redis's", name)
		}
		got[name] = true
	}
	for name := range c.spec {
		if _, inRedis := ref[name]; inRedis && !got[name] {
			return fmt.Sprintf("COMMAND lacks %q", name)
		}
	}
	return ""
}

// mapOf renders a RESP3 map or RESP2 flat pair list as name → canonical value.
func mapOf(r *redistest.Reply) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(r.Elems); i += 2 {
		out[string(r.Elems[i].Str)] = r.Elems[i+1].Canonical(false)
	}
	return out
}

func mapOfUnordered(r *redistest.Reply) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(r.Elems); i += 2 {
		out[string(r.Elems[i].Str)] = r.Elems[i+1].Canonical(true)
	}
	return out
}

func mapOfList(r *redistest.Reply) map[string]bool {
	out := map[string]bool{}
	for _, e := range r.Elems {
		out[string(e.Str)] = true
	}
	return out
}

// commandEntry renders a COMMAND entry with its subcommands (element 10,
// a hashtable walk in redis) sorted, sets and maps canonicalised.
func commandEntry(e *redistest.Reply) string {
	if e.Kind != '*' || len(e.Elems) != 10 {
		return e.Canonical(false)
	}
	parts := make([]string, 0, 10)
	for _, x := range e.Elems[:9] {
		parts = append(parts, x.Canonical(false))
	}
	var subs []string
	for _, s := range e.Elems[9].Elems {
		subs = append(subs, commandEntry(s))
	}
	slices.Sort(subs)
	return "*[" + strings.Join(parts, " ") + " *[" + strings.Join(subs, " ") + "]]"
}

// raw re-encodes a parsed reply (for the elements of EXEC, which the
// per-command rules take as bytes). It only needs to be faithful for
// comparing: equal inputs give equal bytes, different ones different bytes.
func raw(r *redistest.Reply) []byte {
	var b []byte
	if r.Attr != nil {
		b = append(b, raw(r.Attr)...)
		b[0] = '|'
	}
	switch {
	case r.Null && (r.Kind == '$' || r.Kind == '*'):
		return append(b, r.Kind, '-', '1', '\r', '\n')
	case r.Kind == '_':
		return append(b, "_\r\n"...)
	case r.Kind == ':':
		return append(b, fmt.Sprintf(":%d\r\n", r.Int)...)
	case r.IsAggregate():
		n := len(r.Elems)
		if r.Kind == '%' {
			n /= 2
		}
		b = append(b, fmt.Sprintf("%c%d\r\n", r.Kind, n)...)
		for _, e := range r.Elems {
			b = append(b, raw(e)...)
		}
		return b
	case r.Kind == '$' || r.Kind == '!' || r.Kind == '=':
		b = append(b, fmt.Sprintf("%c%d\r\n", r.Kind, len(r.Str))...)
		b = append(b, r.Str...)
		return append(b, '\r', '\n')
	default:
		b = append(b, r.Kind)
		b = append(b, r.Str...)
		return append(b, '\r', '\n')
	}
}

// showArgs renders a command for a failure message: each argument Go-quoted
// (so binary arguments are visible), long ones shortened.
func showArgs(args [][]byte) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if len(a) > 80 {
			parts[i] = strconv.Quote(string(a[:60])) + fmt.Sprintf("…(%d bytes)", len(a))
			continue
		}
		parts[i] = strconv.Quote(string(a))
	}
	return strings.Join(parts, " ")
}

func TestDeviationsTable(t *testing.T) {
	seen := map[check]bool{}
	for _, d := range Deviations {
		if d.command == "" || d.reason == "" || d.check == exact {
			t.Errorf("incomplete deviation %+v", d)
		}
		seen[d.check] = true
		t.Logf("| %s | %s |", d.command, d.reason)
	}
	for c := exact + 1; c <= checkExec; c++ {
		if !seen[c] {
			t.Errorf("check %d is used without a line in Deviations", c)
		}
	}
}
