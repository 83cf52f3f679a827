package server

import "github.com/batchkv/batchkv/internal/metrics"

// commandMetrics returns cmd's series, resolving them on its first call (so
// only commands clients use are exported) and never again.
func (s *Server) commandMetrics(cmd *command) *metrics.Command {
	p := &s.cmdMetrics[cmd.idx]
	if m := p.Load(); m != nil {
		return m
	}
	m := s.cfg.Metrics.Command(cmd.name)
	if !p.CompareAndSwap(nil, m) {
		return p.Load()
	}
	return m
}

// ConnStats returns the connection counters, for metrics.
func (s *Server) ConnStats() metrics.ConnStats {
	return metrics.ConnStats{
		Connected: s.nconns.Load(),
		Rejected:  s.stats.rejectedConns.Load(),
		NetInput:  s.stats.netInput.Load(),
		NetOutput: s.stats.netOutput.Load(),
	}
}
