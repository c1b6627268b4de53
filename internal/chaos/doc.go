// Package chaos is coordkit's reliability harness: it injects faults into
// etcd and into the processes that hold coordkit primitives, records what
// every client saw, and judges the outcome (RELIABILITY.md in the project's
// shared notes is the plan it implements).
//
// The pieces:
//
//   - [FenceStore]: a protected resource over HTTP on 127.0.0.1, in
//     [Enforcing] mode (rejects a token lower than the highest seen, as a
//     fenced store must) or [Recording] mode (accepts everything and logs it,
//     so that overlapping critical sections can be found afterwards). It
//     holds a set of integers, so lost updates can be counted too.
//   - Checkers over the store's log: [StaleAccepted], [Overlaps],
//     [TokensIncrease], [LostAdds].
//   - [Recorder]: a history of operations for porcupine, with nemesis
//     annotations, and the models [MutexModel] (strict mutex),
//     [CounterModel] (fenced counter in etcd) and [RegisterModel] (fenced
//     register). [Recorder.Check] writes history.html and ops.jsonl when a
//     check fails.
//   - [Proxy]: a TCP proxy in front of one etcd member for one client, to cut
//     that client off or delay its responses while others carry on.
//   - [ProcCluster]: etcd members as real processes, to SIGKILL and SIGSTOP.
//   - [Rand]: randomness seeded from CHAOS_SEED (or the clock), with the seed
//     logged so a failing run can be replayed.
//
// Scenarios live in the package's tests, named after the plan's IDs
// (TestL1BaselineMutex, TestL3ClientPartition, ...). Tier 1 runs in
// "go test ./..."; tier 2 needs the build tag chaos:
//
//	go test -tags chaos ./internal/chaos/ -run TestL2 -duration 60s
//
// Two tier-1 items of the plan live elsewhere: U1 (the lease deadline in
// fake time) is internal/lease's tracker_test.go, and G1 (the leak gate) is
// goleak.VerifyTestMain in every package's TestMain, this one's included.
package chaos
