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
// Scenarios live in the package's tests, one file each, named for the
// fault they inject; each test keeps the plan's ID in its name:
//
//	tier 1 (go test ./...)
//	  lock_baseline_test.go      TestL1BaselineMutex: turns on one lock, no fault
//	  client_partition_test.go   TestL3ClientPartition: a holder's client cut off
//	  ambiguous_acquire_test.go  TestL6AmbiguousAcquire: Lock's deadline ends it while its write is in flight
//	  waiter_expiry_test.go      TestL7WaiterSessionExpiry: a waiter's session expires
//	  compaction_storm_test.go   TestL8CompactionStorm: compaction every 50 ms under churn
//	  stale_unlock_test.go       TestL10StaleUnlockRetry: an Unlock's response lost, then retried
//	tier 2 (build tag chaos; etcd as processes)
//	  holder_pause_test.go       TestL2HolderPause, TestE1ElectionSingleLeader: holder processes SIGSTOPped
//	  leader_fault_test.go       TestL4LeaderKill, TestL5LeaderPause: the etcd leader killed or paused
//	  holder_crash_test.go       TestL9HolderCrashRelease: a holder process SIGKILLed
//	  quorum_loss_test.go        TestL11QuorumLoss: two of three members stopped
//	  barrier_rounds_test.go     TestB1Barrier: barrier participants paused, leader killed
//	  lockctl_cron_test.go       TestC1LockctlCronOverlap: lockctl runs paused or killed
//	  lockctl_killed_test.go     TestC1KilledLockctlStopsCommand: a killed lockctl's command stops
//	  queue_leader_kill_test.go  TestQ1Queue: Dequeue cancelled while the leader is killed
//	  rwmutex_pause_test.go      TestRW1RWMutex: readers and writers paused, leader killed
//	  semaphore_partition_test.go TestSEM1Semaphore: permit holders cut off, leader killed
//	  stm_bank_test.go           TestSTM1Bank: transfers while clients are cut off, leader killed
//	  registry_faults_test.go    TestREG1Registry: leader and member killed, registrants paused or cut off past their TTL, Views cut off
//	  config_faults_test.go      TestCFG1Config: config watchers cut off and healed while the leader is killed and a publisher publishes
//
// The scenarios drive every lock-like primitive through one shape,
// internal/testutil's Hold. Tier 2 runs the whole set, each scenario for
// -duration (30 s unless set; CHAOS_DURATION overrides), with every wait bounded
// so that a hang fails with a message:
//
//	go test -tags chaos ./internal/chaos/ -duration 20s
//	go test -tags chaos ./internal/chaos/ -run TestL2 -duration 60s
//	go test -tags chaos -count=1 ./internal/chaos/ -run 'TestREG|TestCFG' -duration 20s
//
// Two tier-1 items of the plan live elsewhere: U1 (the lease deadline in
// fake time) is internal/lease's tracker_test.go, and G1 (the leak gate) is
// goleak.VerifyTestMain in every package's TestMain, this one's included.
package chaos
