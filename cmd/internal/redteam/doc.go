// Command redteam replays, against a real timenoded, the attacks of the
// outside red team's report (issue 16) and fails if they hurt a
// legitimate client: it starts `timenoded --sim` on loopback ports the
// kernel picks, measures an mTLS client's unloaded latency, then runs
// each attack for a bounded time while the same clients keep working,
// prints a table and exits 1 if, during any attack, an mTLS client's
// success rate fell below 99 % or its p99 latency rose above 10 times its
// unloaded p99, or the gateway's anonymous health check succeeded less
// than 99 % of the time.
//
// Attackers send from 127.0.1.x, the legitimate clients from 127.0.0.1:
// in a real network the attacker's address is not the gateway's. Every
// process it starts (the daemon) is stopped when it ends, and dies with
// it if it is killed. Run it with `make redteam`.
package main
