// Package anchor holds the anchor benchmark of issue 17: the relay loop users would pick
// instead of our gateway, matterbridge v1.26.0 (test/matterbridge), and our gateway (the
// bridge binary), each relaying the same two kinds of endpoints on the same machine in
// the same run: a real ngircd channel (test/ircd) and the relay's own HTTP api (our
// api connector; matterbridge's api bridge). The benchmark offers 100 and 1,000
// messages a second and as many as the clients can send, both directions, and reports
// messages a second, p50/p99 latency, losses and each relay process's CPU and memory.
//
// It has no tests: it is run by `make bench` (bench_test.go says what is measured).
package anchor
