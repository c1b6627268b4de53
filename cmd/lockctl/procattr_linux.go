package main

import (
	"os/exec"
	"runtime"
	"syscall"
)

// childAttr puts the command in its own process group (so signals and a
// stop reach everything it started) and has the kernel KILL it if lockctl
// itself dies (kill -9, the OOM killer): otherwise it would run on after
// the lease expired, unprotected, while another host's command starts.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startChild starts c on a locked OS thread: the parent-death signal is
// tied to the thread that forks, and Go could otherwise end that thread
// while lockctl lives on.
func startChild(c *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return c.Start()
}
