package server

// handlers maps each command (and "container|subcommand") batchkv serves to
// its implementation. Every name must have Redis 7.0 metadata in
// commands_gen.go (regenerate with go generate after adding one); write
// commands need no handler: they answer READONLY.
func handlers() map[string]func(*conn, [][]byte) {
	h := map[string]func(*conn, [][]byte){
		"ping": cmdPing, "echo": cmdEcho, "quit": cmdQuit, "reset": cmdReset, "hello": cmdHello,
		"auth": cmdAuth, "select": cmdSelect,
		"client|id": cmdClientID, "client|getname": cmdClientGetname, "client|setname": cmdClientSetname,
		"client|setinfo": cmdClientSetinfo, "client|info": cmdClientInfo, "client|list": cmdClientList,
		"client|kill": cmdClientKill,
		"multi":       cmdMulti, "exec": cmdExec, "discard": cmdDiscard, "watch": cmdWatch, "unwatch": cmdUnwatch,
		"readonly": cmdNoCluster, "readwrite": cmdNoCluster, "asking": cmdNoCluster,

		"command": cmdCommand, "command|count": cmdCommandCount, "command|info": cmdCommandInfo,
		"command|docs": cmdCommandDocs, "command|list": cmdCommandList,
		"info": cmdInfo, "config|get": cmdConfigGet, "config|set": cmdConfigSet,
		"config|rewrite": cmdConfigRewrite, "config|resetstat": cmdConfigResetstat,
		"time": cmdTime, "dbsize": cmdDBSize, "role": cmdRole,
		"slowlog|get": cmdSlowlogGet, "slowlog|len": cmdSlowlogLen, "slowlog|reset": cmdSlowlogReset,
		"slowlog|help": cmdHelp, "client|help": cmdHelp, "command|help": cmdHelp, "config|help": cmdHelp,

		"get": cmdGet, "mget": cmdMGet, "exists": cmdExists, "touch": cmdExists, "type": cmdType,
		"ttl": cmdTTL, "pttl": cmdTTL, "expiretime": cmdTTL, "pexpiretime": cmdTTL,
		"strlen": cmdStrlen, "getrange": cmdGetrange, "substr": cmdGetrange,
		"getbit": cmdGetbit, "bitcount": cmdBitcount,
		"randomkey": cmdRandomkey, "scan": cmdScan, "keys": cmdKeys,

		"hget": cmdHGet, "hmget": cmdHMGet, "hgetall": cmdHGetall, "hkeys": cmdHKeys, "hvals": cmdHVals,
		"hlen": cmdHLen, "hexists": cmdHExists, "hstrlen": cmdHStrlen, "hrandfield": cmdHRandfield,
		"hscan": cmdHScan,

		"lrange": cmdLRange, "llen": cmdCountOther, "lindex": cmdLIndex, "smembers": cmdEmptyOther,
		"scard": cmdCountOther, "sismember": cmdCountOther, "smismember": cmdSMIsmember,
		"zcard": cmdCountOther, "zscore": cmdNullOther, "zmscore": cmdZMScore, "xlen": cmdCountOther,
		"sinter": cmdSetAlgebra, "sunion": cmdSetAlgebra, "sdiff": cmdSetAlgebra, "zrank": cmdNullOther, "zrevrank": cmdNullOther,
		"zrange": zrangeHandler(zrangeAuto, false), "zrevrange": zrangeHandler(zrangeRank, true),
		"zrangebyscore": zrangeHandler(zrangeScore, false), "zrevrangebyscore": zrangeHandler(zrangeScore, true),
		"zrangebylex": zrangeHandler(zrangeLex, false), "zrevrangebylex": zrangeHandler(zrangeLex, true),
		"zcount": cmdZCount, "zlexcount": cmdZLexCount,
		"srandmember": cmdRandMemberOther, "zrandmember": cmdRandMemberOther,
	}
	for name, run := range clusterHandlers() {
		h[name] = run
	}
	return h
}
