package server

import (
	"strings"

	"go.uber.org/zap"
)

// Command flags (from Redis's metadata) the dispatcher checks.
type cmdFlags uint16

const (
	flagWrite   cmdFlags = 1 << iota // answers READONLY
	flagLoading                      // runs while no version is live
	flagNoAuth                       // runs before AUTH
	flagNoMulti                      // refused inside MULTI
)

// command is one entry of the command table.
type command struct {
	name  string // full lower-case name: "get", "client|setname"
	arity int
	flags cmdFlags
	run   func(c *conn, args [][]byte)
	// subs holds a container command's subcommands by lower-case name.
	subs map[string]*command
	// meta is Redis's metadata; nil only for extraSubcommands (newer than
	// Redis 7.0, so absent from COMMAND).
	meta *commandMeta
	// idx numbers the command and subcommand entries from 0 to
	// numCommands-1: a server's per-command metrics are a slice by idx.
	idx int
}

// maxNameLen bounds command names looked up; longer ones are unknown.
const maxNameLen = 32

// commands is the command table: Redis's metadata for every command we know,
// and our handler (nil for write commands: READONLY).
var commands map[string]*command

// numCommands counts the entries of commands, subcommands included.
var numCommands int

func init() {
	commands = buildCommands()
	for _, cmd := range commands {
		cmd.idx = numCommands
		numCommands++
		for _, sc := range cmd.subs {
			sc.idx = numCommands
			numCommands++
		}
	}
}

func parseFlags(fs []string) cmdFlags {
	var f cmdFlags
	for _, s := range fs {
		switch s {
		case "write":
			f |= flagWrite
		case "loading":
			f |= flagLoading
		case "no_auth":
			f |= flagNoAuth
		case "no_multi":
			f |= flagNoMulti
		}
	}
	return f
}

func buildCommands() map[string]*command {
	t := map[string]*command{}
	for i := range redisCommands {
		m := &redisCommands[i]
		cmd := &command{name: m.Name, arity: m.Arity, flags: parseFlags(m.Flags), meta: m}
		if len(m.Subcommands) > 0 {
			cmd.subs = map[string]*command{}
			for j := range m.Subcommands {
				sm := &m.Subcommands[j]
				_, sub, _ := strings.Cut(sm.Name, "|")
				cmd.subs[sub] = &command{name: sm.Name, arity: sm.Arity, flags: parseFlags(sm.Flags), meta: sm}
			}
		}
		t[m.Name] = cmd
	}
	// SPEC §6: until a version is live these work (Redis itself refuses
	// PING and ECHO while loading).
	for _, name := range []string{"ping", "echo", "hello", "auth", "info", "client", "command", "config", "time", "quit", "reset", "select", "role"} {
		cmd := t[name]
		cmd.flags |= flagLoading
		for _, sc := range cmd.subs {
			sc.flags |= flagLoading
		}
	}
	for name, run := range handlers() {
		parent, sub, isSub := strings.Cut(name, "|")
		p := t[parent]
		if p == nil {
			panic("server: handler for a command without metadata: " + name)
		}
		if !isSub {
			p.run = run
			continue
		}
		sc := p.subs[sub]
		if sc == nil {
			// CLIENT SETINFO is Redis 7.2's; 7.0 has no metadata for it.
			sc = extraSubcommands[name]
			if sc == nil {
				panic("server: handler for an unknown subcommand: " + name)
			}
			p.subs[sub] = sc
		}
		sc.run = run
	}
	return t
}

// extraSubcommands are subcommands newer than Redis 7.0 that clients send.
var extraSubcommands = map[string]*command{
	// go-redis v9 and redis-py 5 pipeline CLIENT SETINFO after HELLO.
	"client|setinfo": {name: "client|setinfo", arity: 4, flags: flagLoading},
}

// lowerName lower-cases b into buf without allocating.
func lowerName(buf *[maxNameLen]byte, b []byte) ([]byte, bool) {
	if len(b) > maxNameLen {
		return nil, false
	}
	for i, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return buf[:len(b)], true
}

// lookup finds the command for args, resolving a container's subcommand.
// For an unknown subcommand it returns the container and sub=false.
func lookup(args [][]byte) (cmd *command, subUnknown bool) {
	var buf [maxNameLen]byte
	name, ok := lowerName(&buf, args[0])
	if !ok {
		return nil, false
	}
	cmd = commands[string(name)]
	if cmd == nil || cmd.subs == nil || len(args) == 1 {
		return cmd, false
	}
	sub, ok := lowerName(&buf, args[1])
	if !ok {
		return cmd, true
	}
	sc := cmd.subs[string(sub)]
	if sc == nil {
		return cmd, true
	}
	// A subcommand Redis has but we do not serve (CLIENT PAUSE, COMMAND
	// GETKEYS...) is still checked for arity first, then refused in
	// dispatch as an unknown subcommand.
	return sc, false
}

// dispatch runs one command as Redis's processCommand does: existence, arity,
// authentication, MULTI rules, READONLY, LOADING, then queue or call. It
// returns the command it ran: nil when it refused or queued it.
func (c *conn) dispatch(args [][]byte) (ran *command) {
	mark := c.w.Len()
	defer c.recoverCommand(mark, args)
	cmd, subUnknown := lookup(args)
	c.rejecting = cmd
	switch {
	case cmd == nil:
		c.reject(unknownCommand(args))
		return nil
	case subUnknown:
		c.reject("ERR unknown subcommand '" + cTrunc(args[1], 128) + "'. Try " + strings.ToUpper(cString(args[0])) + " HELP.")
		return nil
	case cmd.arity > 0 && len(args) != cmd.arity || len(args) < -cmd.arity:
		c.reject("ERR wrong number of arguments for '" + cmd.name + "' command")
		return nil
	case !c.authed && cmd.flags&flagNoAuth == 0:
		c.reject("NOAUTH Authentication required.")
		return nil
	case c.multi && cmd.flags&flagNoMulti != 0:
		c.reject("ERR Command not allowed inside a transaction")
		return nil
	case c.s.cfg.Cluster != nil && c.clusterRedirect(cmd, args):
		return nil
	case cmd.flags&flagWrite != 0:
		c.reject("READONLY You can't write against a read only replica.")
		return nil
	case cmd.flags&flagLoading == 0 && !c.live():
		c.reject("LOADING Redis is loading the dataset in memory")
		return nil
	}
	if cmd.run == nil {
		// A subcommand Redis has and we do not serve: refused like an
		// unknown one (also inside MULTI, where it dooms the transaction).
		if len(args) < 2 {
			c.reject(unknownCommand(args))
			return nil
		}
		c.reject("ERR unknown subcommand '" + cTrunc(args[1], 128) + "'. Try " + strings.ToUpper(cString(args[0])) + " HELP.")
		return nil
	}
	if c.multi {
		switch cmd.name {
		case "exec", "discard", "multi", "watch", "quit", "reset":
		default:
			// Queued commands count against the query buffer limit, as
			// Redis counts the MULTI state (they are requests not yet run).
			for _, a := range args {
				c.queued += int64(len(a)) + 16
			}
			if c.queued > c.s.cfg.ClientQueryBufferLimit {
				c.logger().Warn("closing client whose MULTI queue reached the query buffer limit",
					zap.Int64("limit", c.s.cfg.ClientQueryBufferLimit))
				c.killed.Store(true)
				return nil
			}
			c.queue = append(c.queue, copyArgs(args))
			c.w.Simple("QUEUED")
			return nil
		}
	}
	c.lastCmd.Store(cmd)
	ran = cmd
	cmd.run(c, args)
	return ran
}

// live reports whether a version is available to this command: the batch's
// acquired one, or (queueing inside MULTI) the server's.
func (c *conn) live() bool {
	if c.multi {
		return c.s.cur.Live()
	}
	return c.v != nil
}

// reject answers an error for a command refused before it ran; inside MULTI
// it also dooms the transaction (Redis's flagTransaction).
//
// A refused EXEC aborts the transaction with the reason, as Redis's
// execCommandAbort: "EXECABORT Transaction discarded because of: <reason>"
// (the reason without its "ERR " code, which Redis's checks never add).
func (c *conn) reject(msg string) {
	if c.multi {
		c.multiErr = true
	}
	if c.rejecting != nil && c.rejecting.name == "exec" {
		c.discard()
		c.errorReply("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(msg, "ERR "))
		return
	}
	c.errorReply(msg)
}

// errorReply is the one place error replies are written.
func (c *conn) errorReply(msg string) {
	c.s.stats.errorReplies.Add(1)
	if m := c.s.cfg.Metrics; m != nil {
		m.ErrorReply(msg)
	}
	c.w.Error(msg)
}

func copyArgs(args [][]byte) [][]byte {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		out[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	return out
}

// cString is b as C sees it: up to its first NUL byte.
func cString(b []byte) string {
	for i, ch := range b {
		if ch == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// cTrunc is printf's %.Ns of b.
func cTrunc(b []byte, n int) string {
	s := cString(b)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// unknownCommand formats Redis 7.0's unknown command error.
func unknownCommand(args [][]byte) string {
	var sb strings.Builder
	for _, a := range args[1:] {
		if sb.Len() >= 128 {
			break
		}
		n := 128 - sb.Len()
		sb.WriteByte('\'')
		sb.WriteString(cTrunc(a, n))
		sb.WriteString("' ")
	}
	return "ERR unknown command '" + cTrunc(args[0], 128) + "', with args beginning with: " + sb.String()
}
