package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/batchkv/batchkv/internal/gen"
)

// keySet is the generated dataset's keys, split by type so that GET asks only
// for strings and HGETALL only for hashes. Fixed-size arrays: 64 bytes a key,
// no pointers for the garbage collector to chase.
type keySet struct {
	strings [][KeyLen]byte
	hashes  [][KeyLen]byte
}

func (k *keySet) forCommand(cmd string) [][KeyLen]byte {
	if cmd == CmdHGETALL {
		return k.hashes
	}
	return k.strings
}

// loadRedis writes records 0..n-1 of the dataset of seed into the server at
// addr with pipelined SET and HSET (fields in order), and returns the keys.
func loadRedis(ctx context.Context, addr string, seed uint64, n int64) (*keySet, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("bench: load redis: %w", err)
	}
	defer c.Close()
	// Bounded: a server that stops reading fails the load instead of hanging.
	if err := c.SetDeadline(time.Now().Add(10 * time.Minute)); err != nil {
		return nil, fmt.Errorf("bench: load redis: %w", err)
	}
	ks := &keySet{
		strings: make([][KeyLen]byte, 0, n*62/100),
		hashes:  make([][KeyLen]byte, 0, n*42/100),
	}
	// The replies are read by a second goroutine while this one writes, so
	// the server never waits for the client.
	const batch = 1000
	pending := make(chan int, 64)
	readErr := make(chan error, 1)
	go func() { // owned by loadRedis: it closes pending and waits on readErr
		r := bufio.NewReaderSize(c, 64<<10)
		for cnt := range pending {
			for range cnt {
				kind, _, err := skipReply(r, 0)
				if err == nil && kind == '-' {
					err = fmt.Errorf("error reply")
				}
				if err != nil {
					readErr <- fmt.Errorf("bench: load redis: %w", err)
					for range pending { // let the writer finish
					}
					return
				}
			}
		}
		readErr <- nil
	}()
	w := bufio.NewWriterSize(c, 256<<10)
	buf := make([]byte, 0, 4096)
	var werr error
	cnt := 0
	for i := int64(0); i < n && werr == nil; i++ {
		if i&0xffff == 0 && ctx.Err() != nil {
			werr = ctx.Err()
			break
		}
		rec := gen.RecordAt(seed, i)
		var k [KeyLen]byte
		if copy(k[:], rec.Key) != KeyLen || len(rec.Key) != KeyLen {
			werr = fmt.Errorf("bench: generated key %q is not %d bytes", rec.Key, KeyLen)
			break
		}
		buf = buf[:0]
		if rec.Fields == nil {
			ks.strings = append(ks.strings, k)
			buf = appendArrayHeader(buf, 3)
			buf = appendBulk(buf, "SET")
			buf = appendBulk(buf, rec.Key)
			buf = appendBulk(buf, rec.Value)
		} else {
			ks.hashes = append(ks.hashes, k)
			buf = appendArrayHeader(buf, 2+2*len(rec.Fields))
			buf = appendBulk(buf, "HSET")
			buf = appendBulk(buf, rec.Key)
			for _, f := range rec.Fields {
				buf = appendBulk(buf, f.Name)
				buf = appendBulk(buf, strconv.FormatInt(f.Value, 10))
			}
		}
		if _, werr = w.Write(buf); werr != nil {
			break
		}
		cnt++
		if cnt == batch || i == n-1 {
			if werr = w.Flush(); werr != nil {
				break
			}
			pending <- cnt
			cnt = 0
		}
	}
	close(pending)
	if rerr := <-readErr; rerr != nil {
		return nil, rerr
	}
	if werr != nil {
		return nil, fmt.Errorf("bench: load redis: %w", werr)
	}
	return ks, nil
}

func appendArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}
