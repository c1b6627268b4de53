//go:build !linux

package main

import (
	"io"
	"os/exec"
	"syscall"
)

// commandAttr: outside Linux there is no parent-death signal; the guard's
// KILL of its group when lockctl dies still stops the command.
func commandAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// guardAttr makes the guard the leader of a new process group. The
// terminal is not lent to the command outside Linux.
func guardAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func giveTerminal(int, int) error { return nil }

func startChild(c *exec.Cmd) error { return c.Start() }

func foregroundTTY(io.Reader) int { return -1 }

func takeTerminal(int) {}
