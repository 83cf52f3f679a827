// Package metrics provides batchkv's observability endpoints: a Prometheus
// registry with the server's and the syncer's metrics, and the HTTP listener
// that serves /metrics, /healthz, /readyz and (optionally) /debug/pprof/.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Default listen addresses of the metrics endpoints.
const (
	DefaultServerAddr = "127.0.0.1:9121"
	DefaultSyncerAddr = "127.0.0.1:9122"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
// Each daemon has its own (not the global default one), so that tests and
// libraries cannot add stray series.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// EndpointOptions configures Serve.
type EndpointOptions struct {
	// Addr is HOST:PORT to listen on (port 0 picks one; see Endpoint.Addr).
	Addr string
	// Registry is what /metrics exposes.
	Registry *prometheus.Registry
	// Ready reports readiness for /readyz: nil is ready (200), an error is
	// not ready (503, with the error as a one-line reason). Nil Ready: always ready.
	Ready func() error
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof  bool
	Logger *zap.Logger
}

// Endpoint is a running metrics listener.
type Endpoint struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on opts.Addr and serves the endpoints in a goroutine owned
// by the returned Endpoint (stopped by Close). A listen error is returned:
// Kubernetes probes this port, so a daemon must not run without it.
func Serve(opts EndpointOptions) (*Endpoint, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(log), Registry: opts.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, oneLine(err.Error()))
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", opts.Addr, err)
	}
	e := &Endpoint{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	log.Info("metrics listening", zap.String("addr", ln.Addr().String()), zap.Bool("pprof", opts.Pprof))
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", zap.Error(err))
		}
	}()
	return e, nil
}

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// Close stops the endpoint, letting requests in flight finish for up to a
// second, and waits for its goroutine.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if err != nil {
		e.srv.Close()
	}
	<-e.done
	return err
}

func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return s[:i]
		}
	}
	return s
}
