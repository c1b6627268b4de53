package main

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// commandAttr is how the guard starts the command: in the guard's process
// group, and KILLed by the kernel if the guard dies.
func commandAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// guardAttr makes the guard the leader of a new process group. The guard
// has no parent-death signal: it must outlive lockctl to KILL its group.
func guardAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// startChild starts c on a locked OS thread: the parent-death signal is
// tied to the thread that forks, and Go could otherwise end that thread
// while the guard lives on.
func startChild(c *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return c.Start()
}

// foregroundTTY returns the descriptor of in if it is a terminal whose
// foreground process group is lockctl's own, else -1: only then is the
// terminal lockctl's to lend to the command.
func foregroundTTY(in io.Reader) int {
	f, ok := in.(*os.File)
	if !ok {
		return -1
	}
	fd := int(f.Fd())
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || pgrp != unix.Getpgrp() {
		return -1
	}
	return fd
}

// giveTerminal makes pgid the foreground process group of tty. lockctl is
// in the foreground group itself, so it may.
func giveTerminal(tty, pgid int) error {
	return unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, pgid)
}

// takeTerminal makes lockctl's process group the foreground group of tty
// again. lockctl is in the background until then, so SIGTTOU is ignored
// around the call, as shells do.
func takeTerminal(tty int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, unix.Getpgrp())
}
