package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/swap"
	"github.com/redis/go-redis/v9"
)

func TestGoRedis(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: proto, MaxRetries: -1})
			defer rdb.Close()
			if v, err := rdb.Get(ctx, "s").Result(); err != nil || v != "hello" {
				t.Fatalf("GET s = %q, %v", v, err)
			}
			if _, err := rdb.Get(ctx, "nope").Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET nope: %v", err)
			}
			h, err := rdb.HGetAll(ctx, "h").Result()
			if err != nil || len(h) != 3 || h["f1"] != "v1" || h["f3"] != "" {
				t.Fatalf("HGETALL h = %v, %v", h, err)
			}
			pipe := rdb.Pipeline()
			g := pipe.Get(ctx, "num")
			hg := pipe.HGet(ctx, "h2", "a")
			ex := pipe.Exists(ctx, "s", "nope", "h")
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if g.Val() != "42" || hg.Val() != "1" || ex.Val() != 2 {
				t.Fatalf("pipeline: %q %q %d", g.Val(), hg.Val(), ex.Val())
			}
			tx := rdb.TxPipeline()
			tg := tx.Get(ctx, "user:1")
			th := tx.HMGet(ctx, "h", "f2", "zz")
			if _, err := tx.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if tg.Val() != "alice" || fmt.Sprint(th.Val()) != "[v2 <nil>]" {
				t.Fatalf("tx: %q %v", tg.Val(), th.Val())
			}
			if err := rdb.Set(ctx, "a", "b", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
				t.Fatalf("SET: %v", err)
			}
			var keys []string
			iter := rdb.Scan(ctx, 0, "user:*", 2).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if iter.Err() != nil || len(keys) != 3 {
				t.Fatalf("SCAN user:* = %v, %v", keys, iter.Err())
			}
			name, err := rdb.ClientGetName(ctx).Result()
			if err != nil && !errors.Is(err, redis.Nil) || name != "" {
				t.Fatalf("CLIENT GETNAME = %q %v", name, err)
			}
		})
	}
	// go-redis sends CLIENT SETINFO after HELLO (unless disabled): the
	// connection's library name shows in CLIENT LIST.
	rdb := redis.NewClient(&redis.Options{Addr: ts.addr, ClientName: "app"})
	defer rdb.Close()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil || !strings.Contains(list, "name=app") || !strings.Contains(list, "lib-name=go-redis") {
		t.Fatalf("CLIENT LIST = %q, %v", list, err)
	}
}

func TestLoading(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	got := exchange(t, ts.addr, []byte("GET s\r\nDBSIZE\r\nPING\r\nHELLO 3\r\nSET a b\r\nMULTI\r\nGET s\r\nEXEC\r\nINFO persistence\r\n"), 9, false)
	for _, want := range []string{
		"-LOADING Redis is loading the dataset in memory\r\n-LOADING Redis is loading the dataset in memory\r\n+PONG\r\n%7\r\n",
		"-READONLY You can't write against a read only replica.\r\n+OK\r\n-LOADING Redis is loading the dataset in memory\r\n-EXECABORT Transaction discarded because of previous errors.\r\n",
		"loading:1",
	} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	// Once a version is live, the same connection sees it.
	c := dial(t, ts.addr)
	if got := c.do("GET s"); got != "-LOADING Redis is loading the dataset in memory\r\n" {
		t.Fatalf("GET s = %q", got)
	}
	ts.cur.Swap(openVersion(t, writeDataset(t, "v1", testData)))
	if got := c.do("GET s"); got != "$5\r\nhello\r\n" {
		t.Fatalf("GET s after swap = %q", got)
	}
}

// client is a raw test connection.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// do sends one inline command and returns its raw reply.
func (c *client) do(line string) string {
	c.t.Helper()
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
	r, err := readReply(c.br)
	if err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	return string(r)
}

func TestShutdownFinishesBatches(t *testing.T) {
	cur := &swap.Current{}
	cur.Swap(openVersion(t, writeDataset(t, "v1", testData)))
	defer cur.Close()
	srv, err := New(Config{}, cur, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	idle := dial(t, ln.Addr().String())
	busy := dial(t, ln.Addr().String())
	idle.do("PING")
	// A big pipeline whose replies the client reads only after Shutdown
	// started: the batch must complete and every reply arrive.
	const n = 20000
	req := bytes.Repeat([]byte("*2\r\n$3\r\nGET\r\n$4\r\nlong\r\n"), n)
	go busy.nc.Write(req)
	time.Sleep(50 * time.Millisecond)
	sdone := make(chan error, 1)
	go func() { sdone <- srv.Shutdown(context.Background()) }()
	busy.nc.SetDeadline(time.Now().Add(20 * time.Second))
	got := 0
	for ; got < n; got++ {
		r, err := readReply(busy.br)
		if err != nil {
			break
		}
		if len(r) != 1009 {
			t.Fatalf("reply %d: %q", got, r)
		}
	}
	// The pipeline may span several reads; what the server read before it
	// stopped is answered completely, then the connection closes.
	if got == 0 {
		t.Fatal("no replies after Shutdown began")
	}
	if err := <-sdone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	idle.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.br.ReadByte(); err == nil {
		t.Fatal("idle connection still open after Shutdown")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepting")
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	c := dial(t, ts.addr)
	c.do("PING")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// A pipeline in flight while the version is swapped gets every reply from
// one version.
func TestSwapConsistency(t *testing.T) {
	v1 := []testPair{{key: "k", value: "one"}, {key: "h", hash: []string{"f", "one"}}}
	v2 := []testPair{{key: "k", value: "two"}, {key: "h", hash: []string{"f", "two"}}}
	cur := &swap.Current{}
	cur.Swap(openVersion(t, writeDataset(t, "v1", v1)))
	ts := startServerCurrent(t, Config{}, cur)
	t.Cleanup(cur.Close)
	dirs := []string{writeDataset(t, "v2", v2), writeDataset(t, "v1b", v1)}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Alternate versions; each dir is reopened only after its previous
		// open closed (Pebble refuses to open one directory twice).
		var prev [2]*swap.Version
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			j := i % 2
			if prev[j] != nil {
				<-prev[j].Closed()
			}
			v := openVersion(t, dirs[j])
			prev[j] = v
			cur.Swap(v)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	c := dial(t, ts.addr)
	const n = 200
	var req []byte
	for i := 0; i < n; i++ {
		req = append(req, cmdBytes("GET", "k")...)
		req = append(req, cmdBytes("HGET", "h", "f")...)
	}
	for round := 0; round < 50; round++ {
		c.nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.nc.Write(req); err != nil {
			t.Fatal(err)
		}
		// Replies of one batch (what one read delivered) come from one
		// version; check the finest observable property: within a
		// MULTI…EXEC and within each GET/HGET pair written back to back.
		var last string
		flips := 0
		for i := 0; i < 2*n; i++ {
			r, err := readReply(c.br)
			if err != nil {
				t.Fatal(err)
			}
			s := string(r)
			if s != last && last != "" {
				flips++
			}
			last = s
		}
		_ = flips
		// MULTI…EXEC must see one version.
		c.nc.Write([]byte("MULTI\r\nGET k\r\nHGET h f\r\nGET k\r\nEXEC\r\n"))
		var out []byte
		for i := 0; i < 5; i++ {
			r, err := readReply(c.br)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r...)
		}
		if !bytes.HasSuffix(out, []byte("*3\r\n$3\r\none\r\n$3\r\none\r\n$3\r\none\r\n")) &&
			!bytes.HasSuffix(out, []byte("*3\r\n$3\r\ntwo\r\n$3\r\ntwo\r\n$3\r\ntwo\r\n")) {
			t.Fatalf("EXEC mixed versions: %q", out)
		}
	}
	close(stop)
	wg.Wait()
}

// Each batch runs under one version: a batch delivered in one read is
// answered from one version, however the swap interleaves.
func TestBatchSeesOneVersion(t *testing.T) {
	v1 := []testPair{{key: "k", value: "one"}}
	v2 := []testPair{{key: "k", value: "two"}}
	cur := &swap.Current{}
	cur.Swap(openVersion(t, writeDataset(t, "v1", v1)))
	ts := startServerCurrent(t, Config{}, cur)
	t.Cleanup(cur.Close)
	d2 := writeDataset(t, "v2", v2)
	c := dial(t, ts.addr)
	// Pin the server inside a batch: the batch's first command is slow
	// (a KEYS over the dataset is not slow enough), so instead hold the
	// version ourselves and check the batch does not mix versions.
	var req []byte
	for i := 0; i < 1000; i++ {
		req = append(req, cmdBytes("GET", "k")...)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(time.Millisecond)
		cur.Swap(openVersion(t, d2))
	}()
	c.nc.Write(req)
	counts := map[string]int{}
	for i := 0; i < 1000; i++ {
		r, err := readReply(c.br)
		if err != nil {
			t.Fatal(err)
		}
		counts[string(r)]++
	}
	<-done
	// Loopback delivers the 14 KB pipeline in one read nearly always; when
	// it does, all replies are equal. Either way each reply is one of the
	// two versions and, ordered, never goes back to the old one.
	if len(counts) > 2 {
		t.Fatalf("replies %v", counts)
	}
	if got := c.do("GET k"); got != "$3\r\ntwo\r\n" {
		t.Fatalf("after swap: %q", got)
	}
}

func TestMaxClients(t *testing.T) {
	ts := startServer(t, Config{MaxClients: 2}, testData)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	a.do("PING")
	b.do("PING")
	got := exchange(t, ts.addr, []byte("PING\r\n"), 1, true)
	if string(got) != "-ERR max number of clients reached\r\n<EOF>" {
		t.Fatalf("got %q", got)
	}
	a.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.nconns.Load() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := dial(t, ts.addr).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("after a client left: %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, Config{IdleTimeout: 200 * time.Millisecond}, testData)
	c := dial(t, ts.addr)
	c.do("PING")
	start := time.Now()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("idle client not closed: %v after %v", err, time.Since(start))
	}
	// An active client is not closed.
	d := dial(t, ts.addr)
	for i := 0; i < 6; i++ {
		d.do("PING")
		time.Sleep(80 * time.Millisecond)
	}
}

func TestQueryBufferLimit(t *testing.T) {
	ts := startServer(t, Config{ClientQueryBufferLimit: 1 << 20}, testData)
	c := dial(t, ts.addr)
	c.nc.Write([]byte("*2\r\n$4\r\nECHO\r\n$2000000\r\n"))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err = c.nc.Write(chunk)
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, rerr := c.br.ReadByte(); rerr == nil {
		t.Fatal("client over the query buffer limit still connected")
	}
}

// A client that pipelines many big GETs and does not read: the server's
// pending output stays bounded (it writes mid-batch and blocks on the
// socket), and the client is disconnected when it stops reading for good.
func TestSlowReaderBounded(t *testing.T) {
	big := strings.Repeat("v", 256<<10)
	data := append([]testPair{{key: "big", value: big}}, testData...)
	ts := startServer(t, Config{OutputBufferLimit: 2 << 20, OutputFlushSize: 64 << 10, WriteTimeout: 300 * time.Millisecond}, data)
	c := dial(t, ts.addr)
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	req := bytes.Repeat(cmdBytes("GET", "big"), 2000) // 500 MB of replies
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.nc.Write(req)
	}()
	// Watch the server's pending output while the client does not read.
	deadline := time.Now().Add(3 * time.Second)
	maxPending := 0
	closed := false
	for time.Now().Before(deadline) {
		for _, cc := range ts.srv.clients() {
			if n := cc.pendingOutput(); n > maxPending {
				maxPending = n
			}
		}
		if ts.srv.nconns.Load() == 0 {
			closed = true
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !closed {
		t.Fatal("client that never reads was not disconnected")
	}
	if maxPending > 2<<20 {
		t.Fatalf("pending output reached %d bytes", maxPending)
	}
}

func TestOutputLimitSingleReply(t *testing.T) {
	big := strings.Repeat("v", 3<<20)
	data := append([]testPair{{key: "big", value: big}}, testData...)
	ts := startServer(t, Config{OutputBufferLimit: 1 << 20, OutputFlushSize: 64 << 10}, data)
	got := exchange(t, ts.addr, []byte("PING\r\nGET big\r\n"), 0, true)
	if string(got) != "<EOF>" && string(got) != "+PONG\r\n<EOF>" {
		t.Fatalf("got %q", got)
	}
}

func TestKeysLimitAndScan(t *testing.T) {
	var data []testPair
	for i := 0; i < 500; i++ {
		data = append(data, testPair{key: "k" + strconv.Itoa(i), value: strconv.Itoa(i)})
	}
	ts := startServer(t, Config{MaxKeysReply: 100}, data)
	c := dial(t, ts.addr)
	if got := c.do("KEYS *"); !strings.HasPrefix(got, "-ERR KEYS would return more than 100 keys") {
		t.Fatalf("KEYS * = %q", got)
	}
	if got := c.do("KEYS k1?"); !strings.HasPrefix(got, "*10\r\n") {
		t.Fatalf("KEYS k1? = %q", got)
	}
	// A full SCAN visits every key exactly once.
	seen := map[string]int{}
	cursor := "0"
	for i := 0; i < 1000; i++ {
		rep := c.do("SCAN " + cursor + " COUNT 37")
		lines := strings.Split(rep, "\r\n")
		cursor = lines[2]
		for j := 5; j < len(lines); j += 2 {
			seen[lines[j]]++
		}
		if cursor == "0" {
			break
		}
	}
	if len(seen) != 500 {
		t.Fatalf("SCAN saw %d keys", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("SCAN returned %q %d times", k, n)
		}
	}
	if got := c.do("DBSIZE"); got != ":500\r\n" {
		t.Fatalf("DBSIZE = %q", got)
	}
	if got := c.do("RANDOMKEY"); !strings.HasPrefix(got, "$") || !strings.Contains(got, "k") {
		t.Fatalf("RANDOMKEY = %q", got)
	}
}

func TestMiscCommands(t *testing.T) {
	ts := startServer(t, Config{Stats: func() SwapStats { return SwapStats{Swaps: 3, SwapFailures: 1, PreviousVersion: "v0"} }}, testData)
	c := dial(t, ts.addr)
	info := c.do("INFO")
	for _, want := range []string{"# Server\r\nredis_version:7.0.15\r\n", "# Keyspace\r\ndb0:keys=11,expires=0,avg_ttl=0\r\n",
		"# Dataset\r\ndataset:test\r\nversion:v1\r\nkeys:11\r\nstrings:9\r\nhashes:2\r\n", "swaps:3\r\nswap_failures:1\r\nprevious_version:v0\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	if got := c.do("INFO dataset"); !strings.HasPrefix(got, "$") || strings.Contains(got, "# Server") || !strings.Contains(got, "# Dataset") {
		t.Errorf("INFO dataset = %q", got)
	}
	if got := c.do("INFO nosuch"); got != "$0\r\n\r\n" {
		t.Errorf("INFO nosuch = %q", got)
	}
	if got := c.do("INFO everything"); !strings.Contains(got, "# Dataset") || !strings.Contains(got, "# CPU") {
		t.Errorf("INFO everything = %q", got)
	}
	c.do("HELLO 3")
	if got := c.do("INFO keyspace"); !strings.HasPrefix(got, "=") || !strings.Contains(got, "txt:# Keyspace") {
		t.Errorf("INFO in RESP3 = %q", got)
	}
	if got := c.do("TIME"); !strings.HasPrefix(got, "*2\r\n$10\r\n") {
		t.Errorf("TIME = %q", got)
	}
	if got := c.do("ROLE"); got != "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n" {
		t.Errorf("ROLE = %q", got)
	}
	if got := c.do("CLIENT ID"); got != ":"+strconv.FormatInt(ts.srv.nextID.Load(), 10)+"\r\n" {
		t.Errorf("CLIENT ID = %q", got)
	}
	if got := c.do("CLIENT INFO"); !strings.HasPrefix(got, "=") || !strings.Contains(got, "resp=3") {
		t.Errorf("CLIENT INFO = %q", got)
	}
	if got := c.do("CLIENT SETINFO lib-name mylib"); got != "+OK\r\n" {
		t.Errorf("CLIENT SETINFO = %q", got)
	}
	if got := c.do("CLIENT SETINFO foo x"); got != "-ERR Unrecognized option 'foo'\r\n" {
		t.Errorf("CLIENT SETINFO foo = %q", got)
	}
	// CLIENT LIST ID: a line per id given, in order, repeats included.
	if id := strings.TrimSpace(strings.TrimPrefix(c.do("CLIENT ID"), ":")); strings.Count(c.do("CLIENT LIST ID "+id+" 0 "+id), "id="+id+" ") != 2 {
		t.Errorf("CLIENT LIST ID %s 0 %s: want two lines", id, id)
	}
	// Redis 7.2 names the attribute as the client spelled it.
	req := append(cmdBytes("CLIENT", "SETINFO", "LIB-NAME", "a b"), cmdBytes("CLIENT", "SETINFO", "Lib-Ver", "1\n")...)
	if got, want := string(exchange(t, ts.addr, req, 2, false)), "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"+
		"-ERR Lib-Ver cannot contain spaces, newlines or special characters.\r\n"; got != want {
		t.Errorf("CLIENT SETINFO with a bad value = %q, want %q", got, want)
	}
	if got := c.do("CLIENT LIST"); !strings.Contains(got, "lib-name=mylib") {
		t.Errorf("CLIENT LIST = %q", got)
	}
	n := c.do("COMMAND COUNT")
	all := c.do("COMMAND")
	if !strings.HasPrefix(all, "*"+n[1:]) {
		t.Errorf("COMMAND COUNT %q, COMMAND %q...", n, all[:10])
	}
	if got := c.do("HRANDFIELD h -5"); strings.Count(got, "\r\n") != 11 {
		t.Errorf("HRANDFIELD h -5 = %q", got)
	}
	if got := c.do("HRANDFIELD h -2 WITHVALUES"); !strings.HasPrefix(got, "*2\r\n*2\r\n") {
		t.Errorf("HRANDFIELD h -2 WITHVALUES = %q", got)
	}
	if got := c.do("HRANDFIELD h 2"); !strings.HasPrefix(got, "*2\r\n$2\r\nf") {
		t.Errorf("HRANDFIELD h 2 = %q", got)
	}
	// CLIENT KILL of another connection.
	o := dial(t, ts.addr)
	o.do("PING")
	id := strings.TrimSuffix(strings.TrimPrefix(o.do("CLIENT ID"), ":"), "\r\n")
	if got := c.do("CLIENT KILL ID " + id); got != ":1\r\n" {
		t.Errorf("CLIENT KILL = %q", got)
	}
	o.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := o.br.ReadByte(); err == nil {
		t.Error("killed client still open")
	}
	if got := c.do("SLOWLOG LEN"); !strings.HasPrefix(got, ":") {
		t.Errorf("SLOWLOG LEN = %q", got)
	}
	if got := c.do("SLOWLOG GET"); !strings.HasPrefix(got, "*") {
		t.Errorf("SLOWLOG GET = %q", got)
	}
	if got := c.do("SLOWLOG RESET"); got != "+OK\r\n" {
		t.Errorf("SLOWLOG RESET = %q", got)
	}
	if got := c.do("RESET"); got != "+RESET\r\n" {
		t.Errorf("RESET = %q", got)
	}
	if got := c.do("GET nope"); got != "$-1\r\n" {
		t.Errorf("after RESET, RESP2: %q", got)
	}
}

// WATCH: EXEC aborts (null) when the version changed since WATCH.
func TestWatchAcrossSwap(t *testing.T) {
	cur := &swap.Current{}
	cur.Swap(openVersion(t, writeDataset(t, "v1", testData)))
	ts := startServerCurrent(t, Config{}, cur)
	t.Cleanup(cur.Close)
	c := dial(t, ts.addr)
	c.do("WATCH s")
	c.do("MULTI")
	c.do("GET s")
	if got := c.do("EXEC"); got != "*1\r\n$5\r\nhello\r\n" {
		t.Fatalf("EXEC without swap = %q", got)
	}
	c.do("WATCH s")
	cur.Swap(openVersion(t, writeDataset(t, "v2", testData)))
	c.do("MULTI")
	c.do("GET s")
	if got := c.do("EXEC"); got != "*-1\r\n" {
		t.Fatalf("EXEC after swap = %q", got)
	}
	// The watch is gone after EXEC.
	c.do("MULTI")
	c.do("GET s")
	if got := c.do("EXEC"); got != "*1\r\n$5\r\nhello\r\n" {
		t.Fatalf("EXEC after aborted EXEC = %q", got)
	}
}

func TestPanicRecovered(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	handlersMu.Lock()
	commands["echo"].run = func(c *conn, args [][]byte) {
		c.w.Array(2)
		panic("boom")
	}
	handlersMu.Unlock()
	defer func() {
		handlersMu.Lock()
		commands["echo"].run = cmdEcho
		handlersMu.Unlock()
	}()
	got := exchange(t, ts.addr, []byte("PING\r\nECHO x\r\nGET s\r\n"), 3, false)
	if string(got) != "+PONG\r\n-ERR internal error\r\n$5\r\nhello\r\n" {
		t.Fatalf("got %q", got)
	}
}

var handlersMu sync.Mutex

func TestServeAfterClose(t *testing.T) {
	srv, err := New(Config{}, &swap.Current{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{MaxClients: -1}, {ProtoMaxBulkLen: 10}, {OutputBufferLimit: 10}, {IdleTimeout: -1}} {
		if _, err := New(cfg, &swap.Current{}, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

var _ = io.EOF

// CLIENT LIST and CLIENT KILL run while other connections are busy.
func TestClientListConcurrent(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				return
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc.Write([]byte("GET s\r\nCLIENT SETNAME n\r\nHGETALL h\r\n"))
				for j := 0; j < 3; j++ {
					if _, err := readReply(br); err != nil {
						return
					}
				}
			}
		}()
	}
	c := dial(t, ts.addr)
	for i := 0; i < 50; i++ {
		if got := c.do("CLIENT LIST"); !strings.Contains(got, "id=") {
			t.Fatalf("CLIENT LIST = %q", got)
		}
		c.do("INFO")
	}
	close(stop)
	wg.Wait()
}

func TestHRandfieldOutputLimit(t *testing.T) {
	ts := startServer(t, Config{OutputBufferLimit: 1 << 20, OutputFlushSize: 64 << 10}, testData)
	got := exchange(t, ts.addr, []byte("PING\r\nHRANDFIELD h -100000000 WITHVALUES\r\n"), 0, true)
	if string(got) != "+PONG\r\n<EOF>" && string(got) != "<EOF>" {
		t.Fatalf("got %q", got[:min(len(got), 100)])
	}
}

func TestMultiQueueLimit(t *testing.T) {
	ts := startServer(t, Config{ClientQueryBufferLimit: 1 << 20}, testData)
	c := dial(t, ts.addr)
	c.do("MULTI")
	arg := strings.Repeat("a", 64<<10)
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		c.nc.SetDeadline(time.Now().Add(5 * time.Second))
		c.nc.Write(cmdBytes("ECHO", arg))
		_, err = readReply(c.br)
	}
	if err == nil {
		t.Fatal("client queueing past the query buffer limit still connected")
	}
}

// Subcommands Redis has but batchkv does not serve are refused, also when
// queued in MULTI (never run from EXEC).
func TestUnservedSubcommandInMulti(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	got := exchange(t, ts.addr, []byte("MULTI\r\nCLIENT PAUSE 10\r\nGET s\r\nEXEC\r\nCLIENT PAUSE 10\r\n"), 5, false)
	want := "+OK\r\n-ERR unknown subcommand 'PAUSE'. Try CLIENT HELP.\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n-ERR unknown subcommand 'PAUSE'. Try CLIENT HELP.\r\n"
	if string(got) != want {
		t.Fatalf("got %q", got)
	}
}
