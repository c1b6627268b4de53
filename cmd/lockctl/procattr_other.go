//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// childAttr puts the command in its own process group. Outside Linux there
// is no parent-death signal: if lockctl is killed, the command runs on.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func startChild(c *exec.Cmd) error { return c.Start() }
