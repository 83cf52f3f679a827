package diff

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// value is one key's value as read from one side.
type value struct {
	typ  string            // TYPE's reply: string, hash, set, list, zset, none, …
	str  string            // string
	hash map[string]string // hash
	list []string          // list; set (sorted); zset as member, score pairs in rank order
}

// supported reports whether values of type typ are read and compared.
func supported(typ string) bool {
	switch typ {
	case "string", "hash", "set", "list", "zset":
		return true
	}
	return false
}

// queueFetch queues the command that reads a key of type typ on p.
func queueFetch(ctx context.Context, p redis.Pipeliner, key, typ string) redis.Cmder {
	switch typ {
	case "string":
		return p.Get(ctx, key)
	case "hash":
		return p.HGetAll(ctx, key)
	case "set":
		return p.SMembers(ctx, key)
	case "list":
		return p.LRange(ctx, key, 0, -1)
	case "zset":
		return p.ZRangeWithScores(ctx, key, 0, -1)
	}
	return nil
}

// fetched turns the reply of queueFetch's command into a value. A key that
// vanished between TYPE and the read is a value of type none.
func fetched(typ string, c redis.Cmder) (value, error) {
	v := value{typ: typ}
	if err := c.Err(); err == redis.Nil {
		return value{typ: "none"}, nil
	} else if err != nil {
		return v, err
	}
	switch c := c.(type) {
	case *redis.StringCmd:
		v.str = c.Val()
	case *redis.MapStringStringCmd:
		v.hash = c.Val()
		if len(v.hash) == 0 {
			v.typ = "none"
		}
	case *redis.StringSliceCmd:
		v.list = c.Val()
		if typ == "set" {
			slices.Sort(v.list)
		}
		if len(v.list) == 0 {
			v.typ = "none"
		}
	case *redis.ZSliceCmd:
		for _, z := range c.Val() {
			v.list = append(v.list, fmt.Sprint(z.Member), strconv.FormatFloat(z.Score, 'g', -1, 64))
		}
		if len(v.list) == 0 {
			v.typ = "none"
		}
	}
	return v, nil
}

// equal compares two values of the same type: hashes as maps (field order
// is not defined), sets as sorted members.
func equal(a, b value) bool {
	switch a.typ {
	case "string":
		return a.str == b.str
	case "hash":
		return maps.Equal(a.hash, b.hash)
	default:
		return slices.Equal(a.list, b.list)
	}
}

// shown is how many bytes of a key, field or value a description shows.
const shown = 48

// quote renders s escaped and truncated for a report line.
func quote(s string) string {
	if len(s) <= shown {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:shown]) + fmt.Sprintf("…(%d bytes)", len(s))
}

// describe renders a value short. other, when it is a value of the same
// type, points the description at the first element where they differ.
func describe(v value, other *value) string {
	switch v.typ {
	case "none":
		return "(missing)"
	case "string":
		return fmt.Sprintf("string %s", quote(v.str))
	case "hash":
		d := fmt.Sprintf("hash (%d fields)", len(v.hash))
		if other != nil && other.typ == "hash" {
			for _, f := range slices.Sorted(maps.Keys(v.hash)) {
				ov, ok := other.hash[f]
				if !ok {
					return d + fmt.Sprintf(", field %s = %s (not on the other side)", quote(f), quote(v.hash[f]))
				}
				if ov != v.hash[f] {
					return d + fmt.Sprintf(", field %s = %s", quote(f), quote(v.hash[f]))
				}
			}
			for _, f := range slices.Sorted(maps.Keys(other.hash)) {
				if _, ok := v.hash[f]; !ok {
					return d + fmt.Sprintf(", no field %s", quote(f))
				}
			}
			return d
		}
		for _, f := range slices.Sorted(maps.Keys(v.hash)) {
			return d + fmt.Sprintf(", first field %s = %s", quote(f), quote(v.hash[f]))
		}
		return d
	case "set", "list", "zset":
		n := len(v.list)
		if v.typ == "zset" {
			n /= 2
		}
		d := fmt.Sprintf("%s (%d elements)", v.typ, n)
		i := 0
		if other != nil && other.typ == v.typ {
			for i < len(v.list) && i < len(other.list) && v.list[i] == other.list[i] {
				i++
			}
		}
		switch {
		case i >= len(v.list):
		case v.typ == "zset": // member, score pairs
			i -= i % 2
			d += fmt.Sprintf(", rank %d: %s score %s", i/2, quote(v.list[i]), v.list[i+1])
		default:
			d += fmt.Sprintf(", element %d: %s", i, quote(v.list[i]))
		}
		return d
	}
	return "type " + v.typ
}

// describeErr renders an error short.
func describeErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return "error: " + strings.TrimSpace(s)
}
