package server

import (
	"flag"
	"net"

	"go.uber.org/zap"
)

// tlsOptions are batchkv-server's TLS flags for the Redis port.
//
// Scaffolding for the reliability/security work (issue 7): filled in there.
type tlsOptions struct{}

func (o *tlsOptions) register(fs *flag.FlagSet) {}

// wrap returns ln serving TLS when it is configured, else ln itself.
func (o *tlsOptions) wrap(ln net.Listener, log *zap.Logger) (net.Listener, error) {
	return ln, nil
}
