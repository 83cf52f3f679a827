package server

//go:generate go run ./gencommands -out commands_gen.go

// commandMeta is one command's metadata as redis-server 7.0.15 reports it,
// captured by gencommands: the raw COMMAND INFO entry and COMMAND DOCS pair in
// both protocols, plus the arity, flags and ACL categories the dispatcher and
// COMMAND LIST FILTERBY check.
//
// redisCommands holds the top-level commands batchkv-server knows, that is
// every command it answers with anything but "unknown command": the commands
// it serves, every write command (they answer READONLY) and the containers
// with write subcommands (FUNCTION, XGROUP). Plain COMMAND, COMMAND COUNT,
// COMMAND LIST, COMMAND INFO and COMMAND DOCS all describe exactly this set,
// each entry byte-identical to Redis 7.0's, containers with all of Redis's
// nested subcommands (element 10), including the ones we answer with
// "unknown subcommand" (CLIENT PAUSE, ...): the entry is Redis's, and
// redis-py's RedisCluster needs every command it sends listed in that layout.
// COMMAND LIST names the subcommands as parent|sub, as Redis 7.0 does; CLIENT
// SETINFO (Redis 7.2) has no 7.0 metadata and so is not listed.
type commandMeta struct {
	Name       string
	Arity      int
	Flags      []string
	Categories []string // "@read", ...: COMMAND LIST FILTERBY ACLCAT
	// Info2/Info3: the command's COMMAND INFO entry (10 elements);
	// Docs2/Docs3: its name followed by its COMMAND DOCS map.
	Info2, Info3, Docs2, Docs3 string
	// Help is the raw reply to "<container> HELP" for the containers we
	// serve (CLIENT, COMMAND, CONFIG, SLOWLOG).
	Help string
	// Subcommands are a container's, in Redis's order; their own entries
	// answer COMMAND INFO/DOCS parent|sub.
	Subcommands []subcommandMeta
}

// subcommandMeta is a subcommand's metadata ("client|setname"); it has no
// subcommands of its own.
type subcommandMeta = commandMeta
