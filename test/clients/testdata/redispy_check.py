"""redis-py against a server: reads, a MULTI/EXEC pipeline, a refused write.

Usage: redispy_check.py HOST PORT
Prints one line per check and exits non-zero on the first failure.
"""
import sys

import redis

host, port = sys.argv[1], int(sys.argv[2])
r = redis.Redis(host=host, port=port, socket_timeout=10)


def check(name, got, want):
    if got != want:
        print("FAIL %s: got %r, want %r" % (name, got, want))
        sys.exit(1)
    print("ok %s" % name)


check("get", r.get("user:1:name"), b"alice")
check("get binary", r.get(b"bin:\x00\xff"), b"\x00\r\n\xff")
check("get missing", r.get("missing"), None)
check("mget", r.mget(["user:1:name", "missing", "ctr:1"]), [b"alice", None, b"42"])
check("hgetall", r.hgetall("feat:{user:1}"), {b"clicks": b"10", b"views": b"200", b"score": b"-3"})
check("hget", r.hget("feat:{user:1}", "views"), b"200")
check("exists", r.exists("user:1:name", "missing", "feat:{user:1}"), 2)
check("type", r.type("feat:{user:1}"), b"hash")

# pipeline() defaults to a transaction: MULTI, +QUEUED per command, EXEC.
p = r.pipeline()
p.get("user:1:name").hget("feat:{user:1}", "clicks").hgetall("feat:{user:2}").get("missing")
check("pipeline (MULTI/EXEC)", p.execute(), [b"alice", b"10", {b"a": b"1"}, None])

p = r.pipeline(transaction=False)
p.get("ctr:1").exists("ctr:1")
check("pipeline (no transaction)", p.execute(), [b"42", 1])

try:
    r.set("user:1:name", "mallory")
except redis.exceptions.ReadOnlyError as e:
    check("write refused", str(e), "You can't write against a read only replica.")
else:
    print("FAIL write: no ReadOnlyError")
    sys.exit(1)
check("unchanged after write", r.get("user:1:name"), b"alice")

keys = set(r.scan_iter(count=50))
check("scan_iter", len(keys), int(sys.argv[3]) if len(sys.argv) > 3 else len(keys))
print("PASS")
