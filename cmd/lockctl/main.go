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
//	lockctl register SERVICE --addr HOST:PORT [--health-cmd CMD | --health-url URL] [-- CMD [ARGS...]]
//	                                              keep an instance of SERVICE registered while CMD runs and is healthy
//	lockctl discover SERVICE [-o table|json] [--watch]  the registered instances of SERVICE
//	lockctl console [--listen ADDR] [--prefix P]... [--allow-host H]... [--allow-write]  a web console (read-only by default)
//	lockctl dev [--listen ADDR] [--data-dir DIR]  a local single-member etcd to try things out (runs lockctl-dev)
//	lockctl version
//
// The command gets LOCKCTL_NAME, LOCKCTL_KEY, LOCKCTL_TOKEN (the fencing
// token: the hold key's create revision), LOCKCTL_LEASE, and, for scripts
// written for "etcdctl lock", ETCD_LOCK_KEY and ETCD_LOCK_REV. It does not
// get lockctl's credentials (LOCKCTL_USER, LOCKCTL_PASSWORD,
// LOCKCTL_PASSWORD_FILE and their ETCDCTL_ names) unless
// --pass-credentials is given. The value stored
// in etcd for "lockctl status" names the host, pid and program (not its
// arguments, which may hold secrets), or is --value.
//
// The command runs in a process group of its own, under a small guard
// process (lockctl itself, run again): everything the command starts
// stays in that group unless it leaves it on purpose (setsid, a shell's
// job control). Signals sent to lockctl while the command runs (INT, TERM,
// HUP, QUIT, USR1, USR2) belong to the command: each is forwarded once to
// its group, and lockctl waits for the command and exits with its code;
// they never end the hold by themselves. A signal that comes while lockctl
// is still waiting to acquire ends the wait (exit 130). When lockctl's
// standard input is the terminal and lockctl runs in the foreground, the
// command's group becomes the terminal's foreground group while it runs,
// so it can read the terminal and gets Ctrl-C directly, as any foreground
// job; the terminal is given back when it exits.
//
// If the hold is lost, the command's group gets TERM, then KILL after
// --kill-grace, and lockctl exits with code 76. If lockctl itself is
// killed (kill -9, the OOM killer), the guard sees it at once (a pipe from
// lockctl reaches end of file) and KILLs the whole group, so no part of
// the command runs on unprotected once the lease expires; on Linux the
// kernel also KILLs the command if the guard dies.
//
// Exit codes: the command's own code when it ran (128+N if killed by
// signal N); 75 (--conflict-exit-code) when the hold was not acquired
// within --wait; 76 when the hold was lost while the command ran; 69 when
// etcd could not be reached, refused the credentials or (RBAC) a key; 64
// for a usage error; 70 for an internal error; 130 when interrupted while
// connecting or waiting.
package main

import (
	"context"
	"os"
)

func main() { os.Exit(mainCode()) }

// mainCode wires the process to run. The guard (see guard.go) is lockctl
// run again with a hidden first argument, recognised before anything else.
// Otherwise a signalRouter owns lockctl's signals for the life of the
// process: the context it gives run is cancelled by a signal only while no
// command runs.
func mainCode() int {
	if len(os.Args) > 1 && os.Args[1] == guardArg {
		return guardMain(os.Args[2:])
	}
	r, ctx := newSignalRouter(context.Background())
	defer r.stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
