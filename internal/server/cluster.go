package server

import (
	"flag"

	"github.com/batchkv/batchkv/internal/store"
)

// ClusterConfig is the static cluster topology a server in cluster mode
// serves one shard of. Nil Config.Cluster: standalone mode.
//
// Scaffolding for the cluster-mode work (issue 5): filled in there.
type ClusterConfig struct{}

// clusterOptions are batchkv-server's cluster-mode flags.
type clusterOptions struct{}

func (o *clusterOptions) register(fs *flag.FlagSet) {}

// apply sets cfg.Cluster from the flags, and returns the check every version
// must pass before it is served (nil: none).
func (o *clusterOptions) apply(cfg *Config, lookup func(string) (string, bool)) (func(store.Meta) error, error) {
	return nil, nil
}

// clusterRedirect is dispatch's cluster check, run after authentication and
// before READONLY and LOADING as Redis's processCommand orders them: it
// answers -MOVED / -CROSSSLOT itself and returns true when cmd must not run
// here.
func (c *conn) clusterRedirect(cmd *command, args [][]byte) bool {
	return false
}
