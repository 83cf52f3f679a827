package server

import "testing"

func TestSmoke(t *testing.T) {
	ts := startServer(t, Config{}, testData)
	got := exchange(t, ts.addr, []byte("PING\r\n*2\r\n$3\r\nGET\r\n$1\r\ns\r\nhello 3\r\nget nope\r\nhgetall h\r\n"), 5, false)
	t.Logf("%q", got)
}
