"""redis-py's RedisCluster against a batchkv cluster (3 shards x 2 replicas).

Usage: redispy_cluster.py HOST PORT NKEYS KEY_ON_SHARD_0
The data is test/cluster's: key:<i> = v<i> for i < NKEYS, hashes h:<i>,
{user:<u>}:name/email/plan. Prints one line per check, exits non-zero on the
first failure, and prints PASS at the end.
"""
import sys

import redis
from redis.cluster import RedisCluster

host, port, nkeys, key0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def check(name, got, want):
    if got != want:
        print("FAIL %s: got %r, want %r" % (name, got, want))
        sys.exit(1)
    print("ok %s" % name)


# Start-up: COMMAND (every entry in Redis's 10-element layout) and CLUSTER SLOTS.
rc = RedisCluster(host=host, port=port, socket_timeout=10)
check("nodes", len(rc.get_nodes()), 6)
check("primaries", len(rc.get_primaries()), 3)
check("replicas", len(rc.get_replicas()), 3)

check("get", rc.get("key:1"), b"v1")
check("get missing", rc.get("missing:1"), None)
check("hgetall", rc.hgetall("h:3"), {b"name": b"n3", b"score": b"9"})
check("mget hashtag", rc.mget("{user:2}:name", "{user:2}:email", "{user:2}:plan"),
      [b"name-2", b"email-2", b"plan-2"])
check("mget_nonatomic across shards", rc.mget_nonatomic(["key:1", "key:2", "key:3", "missing"]),
      [b"v1", b"v2", b"v3", None])
check("keyslot", rc.keyslot("{user1000}.following"), 3443)
check("cluster keyslot", rc.cluster_keyslot("{user1000}.following"), 3443)

# Every key, by pipelines of 1,000 commands spanning all shards.
for start in range(0, nkeys, 1000):
    end = min(start + 1000, nkeys)
    p = rc.pipeline()
    for i in range(start, end):
        p.get("key:%d" % i)
    got = p.execute()
    check("pipeline %d-%d" % (start, end - 1), got, [b"v%d" % i for i in range(start, end)])

# Reads from replicas (READONLY sent by redis-py).
rr = RedisCluster(host=host, port=port, socket_timeout=10, read_from_replicas=True)
p = rr.pipeline()
for i in range(1000):
    p.get("key:%d" % i)
check("replica pipeline", p.execute(), [b"v%d" % i for i in range(1000)])
check("replica get", rr.get("key:7"), b"v7")

# Writes are refused on every node.
try:
    rc.set(key0, "x")
    check("set refused", "no error", "READONLY")
except redis.exceptions.ReadOnlyError:
    check("set refused", "READONLY", "READONLY")
check("value unchanged", rc.get(key0), b"v" + key0.split(":")[1].encode())

print("PASS")
