package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"sort"
	"strconv"
	"strings"
	"time"
)

func cmdPing(c *conn, args [][]byte) {
	switch len(args) {
	case 1:
		c.w.Simple("PONG")
	case 2:
		c.w.Bulk(args[1])
	default:
		c.errorReply("ERR wrong number of arguments for 'ping' command")
	}
}

func cmdEcho(c *conn, args [][]byte) { c.w.Bulk(args[1]) }

func cmdQuit(c *conn, _ [][]byte) {
	c.w.OK()
	c.quit = true
}

func cmdReset(c *conn, _ [][]byte) {
	c.discard()
	c.w.Proto = 2
	c.proto.Store(2)
	c.mu.Lock()
	c.name = ""
	c.mu.Unlock()
	c.authed = c.s.cfg.RequirePass == ""
	c.w.Simple("RESET")
}

func (c *conn) discard() {
	c.multi, c.multiErr = false, false
	c.queue, c.queued = nil, 0
	c.watching, c.watched = false, nil
}

// checkPassword reports whether user/pass authenticate as Redis's default
// user: with no requirepass the default user is "nopass" and any password is
// accepted; other users do not exist. Compared in constant time: SHA-256
// digests of both, so that not even the password's length leaks (subtle's
// comparison returns at once on a length mismatch).
func (c *conn) checkPassword(user, pass []byte) bool {
	if string(user) != "default" {
		return false
	}
	want := c.s.cfg.RequirePass
	if want == "" {
		return true
	}
	got, exp := sha256.Sum256(pass), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1
}

const wrongPass = "WRONGPASS invalid username-password pair or user is disabled."

func cmdAuth(c *conn, args [][]byte) {
	if len(args) > 3 {
		c.errorReply("ERR syntax error")
		return
	}
	user, pass := []byte("default"), args[len(args)-1]
	if len(args) == 2 {
		if c.s.cfg.RequirePass == "" {
			c.errorReply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
	} else {
		user = args[1]
	}
	if !c.checkPassword(user, pass) {
		c.logger().Info("authentication failed")
		c.errorReply(wrongPass)
		return
	}
	c.authed = true
	c.w.OK()
}

func cmdHello(c *conn, args [][]byte) {
	var ver int64
	next := 1
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			c.errorReply("ERR Protocol version is not an integer or out of range")
			return
		}
		next++
		if v < 2 || v > 3 {
			c.errorReply("NOPROTO unsupported protocol version")
			return
		}
		ver = v
	}
	// As Redis 7.0's helloCommand, each option takes effect as it is read:
	// AUTH authenticates (and stays authenticated when a later option is a
	// syntax error), SETNAME renames, even before the NOAUTH check below.
	for j := next; j < len(args); j++ {
		more := len(args) - 1 - j
		switch opt := args[j]; {
		case strings.EqualFold(string(opt), "auth") && more >= 2:
			if !c.checkPassword(args[j+1], args[j+2]) {
				c.logger().Info("authentication failed")
				c.errorReply(wrongPass)
				return
			}
			c.authed = true
			j += 2
		case strings.EqualFold(string(opt), "setname") && more >= 1:
			if !c.setName(args[j+1]) {
				return
			}
			j++
		default:
			c.errorReply("ERR Syntax error in HELLO option '" + cString(opt) + "'")
			return
		}
	}
	if !c.authed {
		c.errorReply("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if ver != 0 {
		c.w.Proto = int(ver)
		c.proto.Store(int32(ver))
	}
	c.w.Map(7)
	c.w.BulkString("server")
	c.w.BulkString("redis")
	c.w.BulkString("version")
	c.w.BulkString(redisVersion)
	c.w.BulkString("proto")
	c.w.Int(int64(c.w.Proto))
	c.w.BulkString("id")
	c.w.Int(c.id)
	c.w.BulkString("mode")
	c.w.BulkString("standalone")
	c.w.BulkString("role")
	c.w.BulkString("master")
	c.w.BulkString("modules")
	c.w.Array(0)
}

// redisVersion is the Redis version batchkv-server is compatible with and
// reports.
const redisVersion = "7.0.15"

func cmdSelect(c *conn, args [][]byte) {
	id, ok := parseInt(args[1])
	if !ok {
		c.errorReply("ERR value is not an integer or out of range")
		return
	}
	if id < -1<<31 || id > 1<<31-1 {
		c.errorReply("ERR value is out of range, value must between -2147483648 and 2147483647")
		return
	}
	if id != 0 {
		// The dataset is database 0; there are no others.
		c.errorReply("ERR DB index is out of range")
		return
	}
	c.w.OK()
}

// cmdNoCluster is READONLY, READWRITE and ASKING: OK in cluster mode (every
// node serves its slots' reads either way), else Redis's error.
func cmdNoCluster(c *conn, _ [][]byte) {
	if c.s.cfg.Cluster != nil {
		c.w.OK()
		return
	}
	c.errorReply("ERR This instance has cluster support disabled")
}

func cmdClientID(c *conn, _ [][]byte) { c.w.Int(c.id) }

func cmdClientGetname(c *conn, _ [][]byte) {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name == "" {
		c.w.Null()
		return
	}
	c.w.BulkString(name)
}

// validAttr is Redis's check for client names and library attributes:
// printable ASCII without spaces.
func validAttr(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func (c *conn) setName(name []byte) bool {
	if !validAttr(name) {
		c.errorReply("ERR Client names cannot contain spaces, newlines or special characters.")
		return false
	}
	c.mu.Lock()
	c.name = string(name)
	c.mu.Unlock()
	return true
}

func cmdClientSetname(c *conn, args [][]byte) {
	if c.setName(args[2]) {
		c.w.OK()
	}
}

// cmdClientSetinfo is CLIENT SETINFO as Redis 7.2 documents it.
// cmdClientSetinfo is Redis 7.2's clientSetinfoCommand (7.0 lacks it): the
// attribute is matched with strcasecmp and named in errors as the client
// spelled it; the value is checked as a C string (validateClientAttr).
func cmdClientSetinfo(c *conn, args [][]byte) {
	given := cString(args[2])
	attr := strings.ToLower(given)
	if attr != "lib-name" && attr != "lib-ver" {
		c.errorReply("ERR Unrecognized option '" + given + "'")
		return
	}
	if !validAttr([]byte(cString(args[3]))) {
		c.errorReply("ERR " + given + " cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	if attr == "lib-name" {
		c.libName = string(args[3])
	} else {
		c.libVer = string(args[3])
	}
	c.mu.Unlock()
	c.w.OK()
}

func cmdClientInfo(c *conn, _ [][]byte) {
	c.w.Verbatim("txt", c.info(nil, c))
}

// cmdClientList parses as Redis 7.0's CLIENT LIST: exactly TYPE <type>, or
// ID followed by ids (one line per id found, in the order given, repeats
// included), or nothing.
func cmdClientList(c *conn, args [][]byte) {
	switch {
	case len(args) == 2:
	case len(args) == 4 && strings.EqualFold(string(args[2]), "type"):
		switch strings.ToLower(string(args[3])) {
		case "normal":
		case "master", "replica", "slave", "pubsub":
			c.w.Verbatim("txt", nil)
			return
		default:
			c.errorReply("ERR Unknown client type '" + cString(args[3]) + "'")
			return
		}
	case len(args) > 3 && strings.EqualFold(string(args[2]), "id"):
		var b []byte
		clients := c.s.clients()
		for _, a := range args[3:] {
			id, ok := parseInt(a)
			if !ok {
				c.errorReply("ERR Invalid client ID")
				return
			}
			for _, o := range clients {
				if o.id == id {
					b = o.info(b, c)
					break
				}
			}
		}
		c.w.Verbatim("txt", b)
		return
	default:
		c.errorReply("ERR syntax error")
		return
	}
	// Redis lists its clients in connection order, that is by id.
	clients := c.s.clients()
	sort.Slice(clients, func(i, j int) bool { return clients[i].id < clients[j].id })
	var b []byte
	for _, o := range clients {
		b = o.info(b, c)
	}
	c.w.Verbatim("txt", b)
}

// info appends the CLIENT LIST line of o (self is the connection asking).
func (o *conn) info(b []byte, self *conn) []byte {
	now := time.Now()
	o.mu.Lock()
	name, lib, ver := o.name, o.libName, o.libVer
	o.mu.Unlock()
	cmd := "NULL"
	if lc := o.lastCmd.Load(); lc != nil {
		cmd = lc.name
	}
	flags := "N"
	multi := -1
	if o == self && o.multi {
		flags = "x"
		multi = len(o.queue)
	}
	b = append(b, "id="...)
	b = strconv.AppendInt(b, o.id, 10)
	b = append(b, " addr="+o.raddr+" laddr="+o.laddr+" fd=0 name="+name+" age="...)
	b = strconv.AppendInt(b, int64(now.Sub(o.created)/time.Second), 10)
	b = append(b, " idle="...)
	b = strconv.AppendInt(b, int64(now.Sub(time.Unix(0, o.lastAt.Load()))/time.Second), 10)
	b = append(b, " flags="+flags+" db=0 sub=0 psub=0 ssub=0 multi="...)
	b = strconv.AppendInt(b, int64(multi), 10)
	b = append(b, " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd="+cmd+" user=default redir=-1 resp="...)
	b = strconv.AppendInt(b, int64(o.proto.Load()), 10)
	b = append(b, " lib-name="+lib+" lib-ver="+ver+"\n"...)
	return b
}

func cmdClientKill(c *conn, args [][]byte) {
	if len(args) == 3 {
		// Old form: CLIENT KILL addr:port.
		for _, o := range c.s.clients() {
			if o.raddr == string(args[2]) {
				c.kill(o)
				c.w.OK()
				return
			}
		}
		c.errorReply("ERR No such client")
		return
	}
	// Redis 7.0's new form: each option is checked as it is read (an
	// option without a value is a syntax error when reached), so an earlier
	// bad value wins over a later missing one. MAXAGE is Redis 7.4's.
	var id int64
	var addr, laddr string
	skipme, otherType := true, false
	for i := 2; i < len(args); i += 2 {
		opt := strings.ToLower(string(args[i]))
		if i+1 >= len(args) {
			c.errorReply("ERR syntax error")
			return
		}
		v := args[i+1]
		switch opt {
		case "id":
			n, ok := parseInt(v)
			if !ok || n <= 0 {
				c.errorReply("ERR client-id should be greater than 0")
				return
			}
			id = n
		case "addr":
			addr = string(v)
		case "laddr":
			laddr = string(v)
		case "skipme":
			switch strings.ToLower(string(v)) {
			case "yes":
				skipme = true
			case "no":
				skipme = false
			default:
				c.errorReply("ERR syntax error")
				return
			}
		case "type":
			t := strings.ToLower(string(v))
			if t != "normal" && t != "master" && t != "replica" && t != "slave" && t != "pubsub" {
				c.errorReply("ERR Unknown client type '" + cString(v) + "'")
				return
			}
			// Every client here is a normal one.
			otherType = t != "normal"
		case "user":
			if string(v) != "default" {
				c.errorReply("ERR No such user '" + cString(v) + "'")
				return
			}
		default:
			c.errorReply("ERR syntax error")
			return
		}
	}
	if otherType {
		c.w.Int(0)
		return
	}
	n := 0
	for _, o := range c.s.clients() {
		if id != 0 && o.id != id || addr != "" && o.raddr != addr || laddr != "" && o.laddr != laddr {
			continue
		}
		if o == c && skipme {
			continue
		}
		c.kill(o)
		n++
	}
	c.w.Int(int64(n))
}

// kill closes o's connection; o's goroutine notices and exits. Killing the
// asking connection takes effect after its reply.
func (c *conn) kill(o *conn) {
	o.killed.Store(true)
	if o == c {
		c.quit = true
		return
	}
	o.nc.Close()
}

func cmdMulti(c *conn, _ [][]byte) {
	if c.multi {
		c.errorReply("ERR MULTI calls can not be nested")
		return
	}
	c.multi = true
	c.w.OK()
}

func cmdDiscard(c *conn, _ [][]byte) {
	if !c.multi {
		c.errorReply("ERR DISCARD without MULTI")
		return
	}
	c.discard()
	c.w.OK()
}

func cmdWatch(c *conn, _ [][]byte) {
	if c.multi {
		c.errorReply("ERR WATCH inside MULTI is not allowed")
		return
	}
	if !c.watching {
		// The data of a version never changes: a watched key "may have
		// changed" exactly when the live version differs at EXEC.
		c.watching, c.watched = true, c.v
	}
	c.w.OK()
}

func cmdUnwatch(c *conn, _ [][]byte) {
	c.watching, c.watched = false, nil
	c.w.OK()
}

func cmdExec(c *conn, _ [][]byte) {
	if !c.multi {
		c.errorReply("ERR EXEC without MULTI")
		return
	}
	queue, failed := c.queue, c.multiErr
	aborted := c.watching && c.watched != c.v
	c.discard()
	if failed {
		c.errorReply("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	if aborted {
		c.w.NullArray()
		return
	}
	c.w.Array(len(queue))
	for _, args := range queue {
		cmd, _ := lookup(args)
		if cmd.flags&flagLoading == 0 && c.v == nil {
			c.errorReply("LOADING Redis is loading the dataset in memory")
			continue
		}
		c.lastCmd.Store(cmd)
		cmd.run(c, args)
	}
}
