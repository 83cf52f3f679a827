package server

import (
	"errors"
	"io"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/batchkv/batchkv/internal/resp"
	"github.com/batchkv/batchkv/internal/store"
	"go.uber.org/zap"
)

const (
	errWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt    = "ERR value is not an integer or out of range"
	errSyntax    = "ERR syntax error"
)

func parseInt(b []byte) (int64, bool) { return resp.ParseInt(b) }

// lookupKey reads key from the batch's version. found is false for a
// missing key; on a storage error the error reply is written and ok is
// false. The caller closes closer when found.
func (c *conn) lookupKey(key []byte) (v store.Value, closer io.Closer, found, ok bool) {
	v, closer, err := c.get(key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.s.stats.keyspaceMisses.Add(1)
			return v, nil, false, true
		}
		c.storeError(err)
		return v, nil, false, false
	}
	c.s.stats.keyspaceHits.Add(1)
	c.s.cfg.Sampler.Observe(key) // nil-safe; one cheap random number per read
	return v, closer, true, true
}

func (c *conn) storeError(err error) {
	c.logger().Error("storage read failed", zap.Error(err))
	c.errorReply("ERR " + err.Error())
}

func cmdGet(c *conn, args [][]byte) {
	v, cl, found, ok := c.lookupKey(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Null()
		return
	}
	if v.Type == store.TypeString {
		c.w.Bulk(v.Data)
	} else {
		c.errorReply(errWrongType)
	}
	cl.Close()
}

func cmdMGet(c *conn, args [][]byte) {
	c.w.Array(len(args) - 1)
	for _, k := range args[1:] {
		v, cl, err := c.get(k)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				c.logger().Error("storage read failed", zap.Error(err))
			}
			c.w.Null()
			continue
		}
		if v.Type == store.TypeString {
			c.w.Bulk(v.Data)
		} else {
			c.w.Null()
		}
		cl.Close()
	}
}

// cmdExists is EXISTS and TOUCH: the number of the given keys that exist,
// repeats counted.
func cmdExists(c *conn, args [][]byte) {
	var n int64
	for _, k := range args[1:] {
		ok, err := c.has(k)
		if err != nil {
			c.storeError(err)
			return
		}
		if ok {
			n++
		}
	}
	c.w.Int(n)
}

func cmdType(c *conn, args [][]byte) {
	v, cl, found, ok := c.lookupKey(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Simple("none")
		return
	}
	c.w.Simple(v.Type.String())
	cl.Close()
}

// cmdTTL is TTL, PTTL, EXPIRETIME and PEXPIRETIME: keys never expire.
func cmdTTL(c *conn, args [][]byte) {
	ok, err := c.has(args[1])
	if err != nil {
		c.storeError(err)
		return
	}
	if ok {
		c.w.Int(-1)
	} else {
		c.w.Int(-2)
	}
}

func cmdStrlen(c *conn, args [][]byte) {
	v, cl, found, ok := c.lookupKey(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	if v.Type == store.TypeString {
		c.w.Int(int64(len(v.Data)))
	} else {
		c.errorReply(errWrongType)
	}
	cl.Close()
}

// cmdGetrange is GETRANGE and SUBSTR, with Redis 7.0's index rules.
func cmdGetrange(c *conn, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.errorReply(errNotInt)
		return
	}
	v, cl, found, ok := c.lookupKey(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.BulkString("")
		return
	}
	defer cl.Close()
	if v.Type != store.TypeString {
		c.errorReply(errWrongType)
		return
	}
	n := int64(len(v.Data))
	if start < 0 && end < 0 && start > end {
		c.w.BulkString("")
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if start < 0 {
		start = 0
	}
	if end < 0 {
		end = 0
	}
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		c.w.BulkString("")
		return
	}
	c.w.Bulk(v.Data[start : end+1])
}

func cmdRandomkey(c *conn, _ [][]byte) {
	k, err := c.v.DB.RandomKey(rand.Uint64())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.w.Null()
			return
		}
		c.storeError(err)
		return
	}
	c.w.Bulk(k)
}

// parseCursor is Redis 7.0's parseScanCursorOrReply: strtoul(3) of the
// whole argument, no leading space, no overflow; "-1" wraps around and ""
// is 0, as in Redis.
func parseCursor(b []byte) (uint64, bool) {
	s := cString(b)
	if s != "" && isCSpace(s[0]) {
		return 0, false
	}
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
		if s == "" {
			return 0, false
		}
	}
	if s == "" {
		return 0, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

type scanOpts struct {
	count   int64
	pattern []byte // nil: all
	typ     string // "": all
	hasType bool
}

// parseScanOpts parses SCAN/HSCAN options from args as Redis 7.0 does.
func (c *conn) parseScanOpts(args [][]byte, allowType bool) (scanOpts, bool) {
	o := scanOpts{count: 10}
	for i := 0; i < len(args); {
		j := len(args) - i
		opt := strings.ToLower(string(args[i]))
		switch {
		case opt == "count" && j >= 2:
			n, ok := parseInt(args[i+1])
			if !ok {
				c.errorReply(errNotInt)
				return o, false
			}
			if n < 1 {
				c.errorReply(errSyntax)
				return o, false
			}
			o.count = n
			i += 2
		case opt == "match" && j >= 2:
			o.pattern = args[i+1]
			if len(o.pattern) == 1 && o.pattern[0] == '*' {
				o.pattern = nil
			}
			i += 2
		case opt == "type" && allowType && j >= 2:
			o.typ, o.hasType = strings.ToLower(string(args[i+1])), true
			i += 2
		default:
			c.errorReply(errSyntax)
			return o, false
		}
	}
	return o, true
}

func cmdScan(c *conn, args [][]byte) {
	cursor, ok := parseCursor(args[1])
	if !ok {
		c.errorReply("ERR invalid cursor")
		return
	}
	o, ok := c.parseScanOpts(args[2:], true)
	if !ok {
		return
	}
	count := o.count
	if count > 1<<20 {
		count = 1 << 20
	}
	var keys [][]byte
	var buf []byte
	next, err := c.v.DB.Scan(cursor, int(count), func(key []byte, v store.Value) error {
		if o.pattern != nil && !globMatch(o.pattern, key) {
			return nil
		}
		if o.hasType && v.Type.String() != o.typ {
			return nil
		}
		buf = append(buf, key...)
		keys = append(keys, buf[len(buf)-len(key):])
		return nil
	})
	if err != nil {
		c.storeError(err)
		return
	}
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(next, 10))
	c.w.Array(len(keys))
	off := 0
	for _, k := range keys {
		c.w.Bulk(buf[off : off+len(k)])
		off += len(k)
	}
}

var errTooManyKeys = errors.New("too many keys")

func cmdKeys(c *conn, args [][]byte) {
	pattern := args[1]
	all := len(pattern) == 1 && pattern[0] == '*'
	max := c.s.cfg.MaxKeysReply
	var buf []byte
	var lens []int
	_, err := c.v.DB.Scan(0, 1<<62, func(key []byte, _ store.Value) error {
		if !all && !globMatch(pattern, key) {
			return nil
		}
		if len(lens) >= max {
			return errTooManyKeys
		}
		buf = append(buf, key...)
		lens = append(lens, len(key))
		return nil
	})
	if errors.Is(err, errTooManyKeys) {
		c.errorReply("ERR KEYS would return more than " + strconv.Itoa(max) + " keys (max-keys-reply); use SCAN")
		return
	}
	if err != nil {
		c.storeError(err)
		return
	}
	c.w.Array(len(lens))
	off := 0
	for _, n := range lens {
		c.w.Bulk(buf[off : off+n])
		off += n
	}
}

// lookupHash reads a hash key. found is false when missing; ok is false when
// an error reply (WRONGTYPE, storage) was written.
func (c *conn) lookupHash(key []byte) (h store.Hash, closer io.Closer, found, ok bool) {
	v, cl, found, ok := c.lookupKey(key)
	if !ok || !found {
		return nil, nil, false, ok
	}
	if v.Type != store.TypeHash {
		cl.Close()
		c.errorReply(errWrongType)
		return nil, nil, false, false
	}
	return v.Hash(), cl, true, true
}

func (c *conn) corrupt(err error) {
	c.storeError(err)
}

func cmdHGet(c *conn, args [][]byte) {
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Null()
		return
	}
	defer cl.Close()
	v, has, err := h.Get(args[2])
	switch {
	case err != nil:
		c.corrupt(err)
	case has:
		c.w.Bulk(v)
	default:
		c.w.Null()
	}
}

func cmdHMGet(c *conn, args [][]byte) {
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	fields := args[2:]
	if found {
		defer cl.Close()
	}
	mark := c.w.Len()
	c.w.Array(len(fields))
	for _, f := range fields {
		if !found {
			c.w.Null()
			continue
		}
		v, has, err := h.Get(f)
		if err != nil {
			c.w.Truncate(mark)
			c.corrupt(err)
			return
		}
		if has {
			c.w.Bulk(v)
		} else {
			c.w.Null()
		}
	}
}

// hashReply writes a hash's fields and/or values.
func (c *conn) hashReply(args [][]byte, fields, values bool) {
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		if fields && values {
			c.w.Map(0)
		} else {
			c.w.Array(0)
		}
		return
	}
	defer cl.Close()
	n, err := h.Len()
	if err != nil {
		c.corrupt(err)
		return
	}
	mark := c.w.Len()
	if fields && values {
		c.w.Map(n)
	} else {
		c.w.Array(n)
	}
	err = h.Range(func(f, v []byte) bool {
		if fields {
			c.w.Bulk(f)
		}
		if values {
			c.w.Bulk(v)
		}
		return true
	})
	if err != nil {
		c.w.Truncate(mark)
		c.corrupt(err)
	}
}

func cmdHGetall(c *conn, args [][]byte) { c.hashReply(args, true, true) }
func cmdHKeys(c *conn, args [][]byte)   { c.hashReply(args, true, false) }
func cmdHVals(c *conn, args [][]byte)   { c.hashReply(args, false, true) }

func cmdHLen(c *conn, args [][]byte) {
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	defer cl.Close()
	n, err := h.Len()
	if err != nil {
		c.corrupt(err)
		return
	}
	c.w.Int(int64(n))
}

func cmdHExists(c *conn, args [][]byte) {
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	defer cl.Close()
	_, has, err := h.Get(args[2])
	if err != nil {
		c.corrupt(err)
		return
	}
	if has {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

func cmdHStrlen(c *conn, args [][]byte) {
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	defer cl.Close()
	v, _, err := h.Get(args[2])
	if err != nil {
		c.corrupt(err)
		return
	}
	c.w.Int(int64(len(v)))
}

type fieldValue struct{ f, v []byte }

func hashEntries(h store.Hash) ([]fieldValue, error) {
	var out []fieldValue
	err := h.Range(func(f, v []byte) bool {
		out = append(out, fieldValue{f, v})
		return true
	})
	return out, err
}

// cmdHRandfield follows Redis 7.0's hrandfieldCommand and
// hrandfieldWithCountCommand.
func cmdHRandfield(c *conn, args [][]byte) {
	if len(args) == 2 {
		h, cl, found, ok := c.lookupHash(args[1])
		if !ok {
			return
		}
		if !found {
			c.w.Null()
			return
		}
		defer cl.Close()
		es, err := hashEntries(h)
		if err != nil {
			c.corrupt(err)
			return
		}
		if len(es) == 0 {
			c.w.Null()
			return
		}
		c.w.Bulk(es[rand.IntN(len(es))].f)
		return
	}
	l, ok := c.parseRandCount(args[2])
	if !ok {
		return
	}
	withValues := false
	if len(args) > 4 || len(args) == 4 && !strings.EqualFold(string(args[3]), "withvalues") {
		c.errorReply(errSyntax)
		return
	} else if len(args) == 4 {
		withValues = true
		if l < -(1<<63-1)/2 || l > (1<<63-1)/2 {
			c.errorReply("ERR value is out of range")
			return
		}
	}
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Array(0)
		return
	}
	defer cl.Close()
	es, err := hashEntries(h)
	if err != nil {
		c.corrupt(err)
		return
	}
	if l == 0 || len(es) == 0 {
		c.w.Array(0)
		return
	}
	writeN := func(n int) {
		if withValues && c.w.Proto == 2 {
			c.w.Array(2 * n)
		} else {
			c.w.Array(n)
		}
	}
	writeOne := func(e fieldValue) {
		if withValues && c.w.Proto == 3 {
			c.w.Array(2)
		}
		c.w.Bulk(e.f)
		if withValues {
			c.w.Bulk(e.v)
		}
	}
	if l < 0 {
		// Negative count: -l picks, repeats allowed. Bounded by the output
		// limit as any reply.
		n := -l
		mark := c.w.Len()
		writeN(int(min(n, 1<<62)))
		for i := int64(0); i < n; i++ {
			if i%1024 == 0 && c.overOutputLimit(mark) {
				return
			}
			writeOne(es[rand.IntN(len(es))])
		}
		return
	}
	if l >= int64(len(es)) {
		writeN(len(es))
		for _, e := range es {
			writeOne(e)
		}
		return
	}
	rand.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	writeN(int(l))
	for _, e := range es[:l] {
		writeOne(e)
	}
}

// cmdHScan returns the whole hash in one step (cursor 0), as Redis does for
// every hash small enough for its listpack encoding; MATCH filters.
func cmdHScan(c *conn, args [][]byte) {
	if _, ok := parseCursor(args[2]); !ok {
		c.errorReply("ERR invalid cursor")
		return
	}
	h, cl, found, ok := c.lookupHash(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.RawString("*2\r\n$1\r\n0\r\n*0\r\n")
		return
	}
	defer cl.Close()
	o, ok := c.parseScanOpts(args[3:], false)
	if !ok {
		return
	}
	es, err := hashEntries(h)
	if err != nil {
		c.corrupt(err)
		return
	}
	n := 0
	for _, e := range es {
		if o.pattern == nil || globMatch(o.pattern, e.f) {
			n++
		}
	}
	c.w.Array(2)
	c.w.BulkString("0")
	c.w.Array(2 * n)
	for _, e := range es {
		if o.pattern == nil || globMatch(o.pattern, e.f) {
			c.w.Bulk(e.f)
			c.w.Bulk(e.v)
		}
	}
}

// Read commands of the types the dataset never holds (lists, sets, sorted
// sets, streams): WRONGTYPE on an existing key, the empty answer on a
// missing one, after the argument checks Redis makes first.

// otherType writes WRONGTYPE and returns false when key exists.
func (c *conn) otherTypeMissing(key []byte) bool {
	has, err := c.has(key)
	if err != nil {
		c.storeError(err)
		return false
	}
	if has {
		c.errorReply(errWrongType)
		return false
	}
	return true
}

func cmdCountOther(c *conn, args [][]byte) {
	if c.otherTypeMissing(args[1]) {
		c.w.Int(0)
	}
}

func cmdEmptyOther(c *conn, args [][]byte) {
	if c.otherTypeMissing(args[1]) {
		c.w.Set(0)
	}
}

func cmdNullOther(c *conn, args [][]byte) {
	if c.otherTypeMissing(args[1]) {
		c.w.Null()
	}
}

func cmdLRange(c *conn, args [][]byte) {
	_, ok1 := parseInt(args[2])
	_, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.errorReply(errNotInt)
		return
	}
	if c.otherTypeMissing(args[1]) {
		c.w.Array(0)
	}
}

// cmdLIndex: Redis looks the key up before parsing the index, so a
// missing key answers null whatever the index.
func cmdLIndex(c *conn, args [][]byte) {
	if c.otherTypeMissing(args[1]) {
		c.w.Null()
	}
}

func cmdSMIsmember(c *conn, args [][]byte) {
	if c.otherTypeMissing(args[1]) {
		c.w.Array(len(args) - 2)
		for range args[2:] {
			c.w.Int(0)
		}
	}
}

func cmdZMScore(c *conn, args [][]byte) {
	if c.otherTypeMissing(args[1]) {
		c.w.Array(len(args) - 2)
		for range args[2:] {
			c.w.Null()
		}
	}
}

// overOutputLimit checks, while a command builds a long reply, that the
// pending output stays within the hard limit; beyond it the reply is
// dropped and the client disconnected (as Redis's client-output-buffer-limit
// does), before the reply can grow memory further.
func (c *conn) overOutputLimit(mark int) bool {
	if int64(c.w.Len()) <= c.s.cfg.OutputBufferLimit {
		return false
	}
	c.logger().Warn("closing client over the output buffer limit",
		zap.Int("pending", c.w.Len()), zap.Int64("limit", c.s.cfg.OutputBufferLimit))
	c.w.Truncate(mark)
	c.killed.Store(true)
	return true
}

// cmdGetbit is Redis 7.0's getbitCommand: the offset is checked first, then
// the key (missing: 0).
func cmdGetbit(c *conn, args [][]byte) {
	off, ok := parseInt(args[2])
	if !ok || off < 0 || off>>3 >= c.s.cfg.ProtoMaxBulkLen {
		c.errorReply("ERR bit offset is not an integer or out of range")
		return
	}
	v, cl, found, ok := c.lookupKey(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	defer cl.Close()
	if v.Type != store.TypeString {
		c.errorReply(errWrongType)
		return
	}
	byteIdx, bit := off>>3, 7-uint(off&7)
	if byteIdx < int64(len(v.Data)) && v.Data[byteIdx]&(1<<bit) != 0 {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

// cmdBitcount is Redis 7.0's bitcountCommand (BYTE and BIT ranges).
func cmdBitcount(c *conn, args [][]byte) {
	v, cl, found, ok := c.lookupKey(args[1])
	if !ok {
		return
	}
	if !found {
		c.w.Int(0)
		return
	}
	defer cl.Close()
	if v.Type != store.TypeString {
		c.errorReply(errWrongType)
		return
	}
	p := v.Data
	var start, end int64
	var firstMask, lastMask byte
	switch len(args) {
	case 4, 5:
		total := int64(len(p))
		var ok1, ok2 bool
		if start, ok1 = parseInt(args[2]); !ok1 {
			c.errorReply(errNotInt)
			return
		}
		if end, ok2 = parseInt(args[3]); !ok2 {
			c.errorReply(errNotInt)
			return
		}
		if start < 0 && end < 0 && start > end {
			c.w.Int(0)
			return
		}
		isBit := false
		if len(args) == 5 {
			switch strings.ToLower(string(args[4])) {
			case "bit":
				isBit = true
			case "byte":
			default:
				c.errorReply(errSyntax)
				return
			}
		}
		if isBit {
			total <<= 3
		}
		if start < 0 {
			start += total
		}
		if end < 0 {
			end += total
		}
		start, end = max(start, 0), max(end, 0)
		if end >= total {
			end = total - 1
		}
		if isBit && start <= end {
			firstMask = ^byte((1 << (8 - (start & 7))) - 1)
			lastMask = byte((1 << (7 - (end & 7))) - 1)
			start >>= 3
			end >>= 3
		}
	case 2:
		start, end = 0, int64(len(p))-1
	default:
		c.errorReply(errSyntax)
		return
	}
	if start > end {
		c.w.Int(0)
		return
	}
	n := 0
	for _, b := range p[start : end+1] {
		n += bits.OnesCount8(b)
	}
	if firstMask != 0 {
		n -= bits.OnesCount8(p[start] & firstMask)
	}
	if lastMask != 0 {
		n -= bits.OnesCount8(p[end] & lastMask)
	}
	c.w.Int(int64(n))
}

// cmdSetAlgebra is SINTER, SUNION and SDIFF: every existing key is of the
// wrong type; with all keys missing the result is the empty set.
func cmdSetAlgebra(c *conn, args [][]byte) {
	for _, k := range args[1:] {
		if !c.otherTypeMissing(k) {
			return
		}
	}
	c.w.Set(0)
}

// cmdRandMemberOther is SRANDMEMBER and ZRANDMEMBER on keys that are never
// sets or sorted sets: the count is checked first, as Redis does.
func cmdRandMemberOther(c *conn, args [][]byte) {
	if len(args) == 2 {
		cmdNullOther(c, args)
		return
	}
	if _, ok := c.parseRandCount(args[2]); !ok {
		return
	}
	if len(args) > 4 || len(args) == 4 && !strings.EqualFold(string(args[3]), "withscores") {
		c.errorReply(errSyntax)
		return
	}
	if c.otherTypeMissing(args[1]) {
		c.w.Array(0)
	}
}

// parseRandCount parses the count of HRANDFIELD, SRANDMEMBER and
// ZRANDMEMBER as Redis's getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX).
func (c *conn) parseRandCount(b []byte) (int64, bool) {
	n, ok := parseInt(b)
	if !ok {
		c.errorReply(errNotInt)
		return 0, false
	}
	if n < -(1<<63 - 1) {
		c.errorReply("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return 0, false
	}
	return n, true
}
