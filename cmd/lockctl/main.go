// Lockctl runs a command only while it holds a lock, a semaphore slot or a
// leadership in etcd, so that cron jobs, deploy steps and singleton workers
// never overlap across hosts.
//
// Usage:
//
//	lockctl run NAME [flags] -- CMD [ARGS...]     run CMD while holding the lock NAME
//	lockctl run NAME --limit N -- CMD [ARGS...]   ... or one of N slots of a semaphore
//	lockctl elect NAME [--restart] -- CMD         run CMD while leader of the election NAME
//	lockctl status NAME [-o table|json]           holders and waiters of NAME
//	lockctl ls [PREFIX] [-o table|json]           names in use under PREFIX
//	lockctl release NAME --force [--yes]          break a stuck hold by revoking its lease
//	lockctl dev [--listen ADDR] [--data-dir DIR]  a local single-member etcd to try things out (runs lockctl-dev)
//	lockctl version
//
// The child gets LOCKCTL_NAME, LOCKCTL_KEY, LOCKCTL_TOKEN (the fencing
// token: the hold key's create revision), LOCKCTL_LEASE, and, for scripts
// written for "etcdctl lock", ETCD_LOCK_KEY and ETCD_LOCK_REV. Signals
// (INT, TERM, HUP, QUIT, USR1, USR2) are forwarded to the child's process
// group. If the hold is lost, the child's process group gets TERM, then
// KILL after --kill-grace, and lockctl exits with code 76. If lockctl
// itself is killed, the child gets KILL from the kernel at once (Linux),
// since nothing would stop it once the lease expired.
//
// Exit codes: the child's own code when it ran (128+N if killed by signal
// N); 75 (--conflict-exit-code) when the hold was not acquired within
// --wait; 76 when the hold was lost while the child ran; 69 when etcd could
// not be reached or refused the credentials; 64 for a usage error; 70 for
// an internal error; 130 when interrupted while waiting.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(mainCode()) }

// mainCode wires the process to run: INT and TERM cancel the context (and
// reach a running command through its own forwarding).
func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
