package server

import (
	"math"
	"strconv"
	"strings"
)

// Sorted-set range reads on a dataset that holds no sorted sets: Redis 7.0's
// zrangeGenericCommand checks options, then the range, then the key; we do
// the same and answer WRONGTYPE for an existing key, else the empty result.

type zrangeKind int

const (
	zrangeAuto zrangeKind = iota
	zrangeRank
	zrangeScore
	zrangeLex
)

func zrangeHandler(kind zrangeKind, rev bool) func(*conn, [][]byte) {
	return func(c *conn, args [][]byte) { c.zrange(args, kind, rev) }
}

func (c *conn) zrange(args [][]byte, kind zrangeKind, rev bool) {
	dirSet := rev || kind != zrangeAuto
	withScores, limit := false, false
	for j := 4; j < len(args); j++ {
		left := len(args) - j - 1
		switch opt := strings.ToLower(string(args[j])); {
		case opt == "withscores":
			withScores = true
		case opt == "limit" && left >= 2:
			_, ok1 := parseInt(args[j+1])
			if !ok1 {
				c.errorReply(errNotInt)
				return
			}
			if _, ok2 := parseInt(args[j+2]); !ok2 {
				c.errorReply(errNotInt)
				return
			}
			limit = true
			j += 2
		case !dirSet && !rev && opt == "rev":
			rev = true
		case kind == zrangeAuto && opt == "bylex":
			kind = zrangeLex
		case kind == zrangeAuto && opt == "byscore":
			kind = zrangeScore
		default:
			c.errorReply(errSyntax)
			return
		}
	}
	if kind == zrangeAuto {
		kind = zrangeRank
	}
	if limit && kind == zrangeRank {
		c.errorReply("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return
	}
	if withScores && kind == zrangeLex {
		c.errorReply("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return
	}
	lo, hi := args[2], args[3]
	if rev && kind != zrangeRank {
		lo, hi = hi, lo
	}
	switch kind {
	case zrangeRank:
		_, ok1 := parseInt(lo)
		if !ok1 {
			c.errorReply(errNotInt)
			return
		}
		if _, ok2 := parseInt(hi); !ok2 {
			c.errorReply(errNotInt)
			return
		}
	case zrangeScore:
		if !validScoreBound(lo) || !validScoreBound(hi) {
			c.errorReply("ERR min or max is not a float")
			return
		}
	case zrangeLex:
		if !validLexBound(lo) || !validLexBound(hi) {
			c.errorReply("ERR min or max not valid string range item")
			return
		}
	}
	if c.otherTypeMissing(args[1]) {
		c.w.Array(0)
	}
}

// validScoreBound is zslParseRange's check of one bound: an optional "("
// then a number strtod reads completely (not NaN).
func validScoreBound(b []byte) bool {
	s := cString(b)
	if len(s) != len(b) {
		return false
	}
	s = strings.TrimPrefix(s, "(")
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "inf", "infinity":
		return true
	}
	if strings.Contains(s, "_") {
		return false // Go's ParseFloat takes digit separators, strtod does not
	}
	if u := strings.ToLower(strings.TrimLeft(s, "+-")); strings.HasPrefix(u, "0x") && !strings.Contains(u, "p") {
		s += "p0" // strtod reads hex floats without an exponent; Go needs one
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if ok := asNumErr(err, &ne); ok && ne.Err == strconv.ErrRange {
			return true // strtod saturates to ±HUGE_VAL
		}
		return false
	}
	return !math.IsNaN(f)
}

func asNumErr(err error, target **strconv.NumError) bool {
	ne, ok := err.(*strconv.NumError)
	if ok {
		*target = ne
	}
	return ok
}

// validLexBound is zslParseLexRange's check: "+", "-", or "(" / "[" then
// anything.
func validLexBound(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case '+', '-':
		return len(b) == 1
	case '(', '[':
		return true
	}
	return false
}

func cmdZCount(c *conn, args [][]byte) {
	if !validScoreBound(args[2]) || !validScoreBound(args[3]) {
		c.errorReply("ERR min or max is not a float")
		return
	}
	cmdCountOther(c, args)
}

func cmdZLexCount(c *conn, args [][]byte) {
	if !validLexBound(args[2]) || !validLexBound(args[3]) {
		c.errorReply("ERR min or max not valid string range item")
		return
	}
	cmdCountOther(c, args)
}
