// Package bench is Easel's load harness: tests that drive the real engine,
// the real bbolt store (in a temp dir) and the real Slack adapter over
// Socket Mode against loopback fakes, and report medians and tails of ack
// latency, per-turn overhead, memory per job and behaviour at scale.
// TestSlackHTTPFlood builds the real binary and runs it in Slack http mode
// under 2,000 hostile connections, reporting its resident memory and the
// latency of signed requests (RELIABILITY.md, section 10).
//
// Reduced form (CI, well under 30 s):
//
//	go test ./bench/
//
// Full form (the figures in BENCHMARKS.md, a few minutes):
//
//	go test ./bench/ -run . -v -timeout 30m -args -full
//
// Side by side with a minimal reference bot that makes the same Slack calls
// without durability (refbot_test.go), each bot in a child process, on the
// same fakes (BENCHMARKS.md, a few minutes):
//
//	go test ./bench/ -run '^TestSideBySide$' -v -timeout 30m -args -sidebyside
//
// Micro-benchmarks of hot pure parts:
//
//	go test ./bench/ -run '^$' -bench . -count 5
package bench
