//go:build !linux

package server

func (ep *epConn) handOver(c *conn) {}
