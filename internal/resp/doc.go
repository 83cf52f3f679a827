// Package resp is batchkv's side of the Redis protocol: a streaming request
// reader that behaves like redis-server 7.0's (processMultibulkBuffer and
// processInlineBuffer in networking.c) and a reply writer for RESP2 and RESP3.
//
// Why not redcon's Reader and Server: redcon (pinned v1.6.2) cannot enforce
// Redis's limits. A claimed bulk length of 2^40 makes its reader grow the
// buffer without bound, it allocates a copy of every command, and its error
// texts and inline parsing differ from Redis's, which clients and our parity
// tests see. So the reader here keeps a per-connection buffer, parses every
// complete command into reusable argument slices that alias it (the GET path
// does not allocate), never allocates from a claimed length before the bytes
// arrive, enforces the bulk-length and query-buffer limits, and returns
// Redis's exact protocol errors. Reply encoding reuses redcon's Append*
// functions for the RESP2 types and adds the RESP3 ones (map, set, null,
// double, boolean, verbatim, big number, push), choosing per connection
// protocol version, so a command writes w.Map(n) once and the right bytes go
// out in both protocols.
package resp
