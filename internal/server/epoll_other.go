//go:build !linux

package server

import (
	"errors"
	"net"
)

// Without epoll every connection takes the goroutine path.

const epollSupported = false

type epConn struct{}

func (ep *epConn) flush(c *conn) (ok, suspend bool) { return c.flush(), false }

type fdConn struct{ net.Conn }

type epollEngine struct{}

func startEpoll(s *Server, n int) (*epollEngine, error) {
	return nil, errors.New("server: epoll is only supported on Linux")
}

func (e *epollEngine) stop() {}

func (e *epollEngine) detach(tc *net.TCPConn) (*fdConn, error) {
	return nil, errors.New("server: epoll is only supported on Linux")
}

func (e *epollEngine) attach(c *conn, fc *fdConn) {}

func (e *epollEngine) serveConn(c *conn, fc *fdConn) {}

func closeUnserved(nc net.Conn) { nc.Close() }
