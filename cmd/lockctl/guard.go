package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// guardArg is the hidden first argument with which lockctl runs itself as
// the guard of a command: "lockctl __guard".
//
// The guard is why a kill -9 of lockctl ends the whole command tree, not
// only its first process: lockctl starts the guard as the leader of a new
// process group, the guard starts the command in that group, and the
// guard holds the read end of a pipe whose write end only lockctl has.
// When lockctl dies, however it dies, the kernel closes the write end;
// the guard reads end of file and KILLs its whole group. (A parent-death
// signal alone reaches only the direct child; a shell's children would run
// on.)
//
// lockctl starts the guard before it contacts etcd and sends it the
// command through the pipe once the hold is acquired, so that the guard's
// own start (that of lockctl's whole program) overlaps the round trips to
// etcd instead of adding to every run.
const guardArg = "__guard"

// guardLifeFD is the guard's descriptor for the read end of lockctl's
// pipe, passed as the first of exec.Cmd.ExtraFiles.
const guardLifeFD = 3

// guardSpec is what lockctl sends the guard, as one line of JSON: the
// command and its environment.
type guardSpec struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

// guardMain is the guard process. It returns the command's exit code, or
// 128+N if the command was killed by signal N, so lockctl sees the code
// it would have seen without a guard; 0 if lockctl closed the pipe without
// sending a command (it did not acquire).
func guardMain(args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "lockctl: "+guardArg+" is internal to lockctl")
		return ExitUsage
	}
	// The command must not inherit the pipe: it would keep the guard from
	// seeing lockctl's death.
	syscall.CloseOnExec(guardLifeFD)
	life := bufio.NewReader(os.NewFile(guardLifeFD, "lockctl-life"))
	// lockctl forwards signals to the whole group, the guard included.
	// Handled (not ignored: an ignored disposition would be inherited by
	// the command through exec), they leave the guard running so that it
	// can pass on the command's own exit code.
	signal.Notify(make(chan os.Signal, 1), forwarded...)
	line, err := life.ReadBytes('\n')
	var spec guardSpec
	if err != nil || json.Unmarshal(line, &spec) != nil || len(spec.Argv) == 0 {
		return 0 // lockctl ended without a command to run
	}
	// This goroutine lives as long as the guard process: it either kills
	// the group or is ended by the guard's exit.
	go func() {
		io.Copy(io.Discard, life)
		syscall.Kill(0, syscall.SIGKILL)
	}()
	c := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = spec.Env
	c.SysProcAttr = commandAttr()
	if err := startChild(c); err != nil {
		fmt.Fprintf(os.Stderr, "lockctl: cannot run %s: %v\n", spec.Argv[0], err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	c.Wait()
	return exitCode(c.ProcessState)
}

// guard is a guard process as lockctl sees it: started, and waiting for a
// command or for its pipe to close.
type guard struct {
	c    *exec.Cmd
	life *os.File // the pipe's write end: lockctl's life, as the guard sees it
	tty  int      // the terminal lent to the command's group, or -1
}

// startGuard starts a guard, the leader of a new process group, with
// lockctl's standard input and outputs for the command it will run.
func startGuard(stdin io.Reader, stdout, stderr io.Writer) (*guard, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find lockctl's own executable to start the guard: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	c := &exec.Cmd{
		Path: self,
		// The name is what testscript's Main dispatches on, and what ps shows.
		Args:        []string{"lockctl", guardArg},
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		ExtraFiles:  []*os.File{r},
		SysProcAttr: guardAttr(),
	}
	if err := c.Start(); err != nil {
		w.Close()
		return nil, err
	}
	return &guard{c: c, life: w, tty: -1}, nil
}

// pgid is the command's process group.
func (g *guard) pgid() int { return g.c.Process.Pid }

// run has the guard start argv with env. When tty is not -1 (the terminal
// lockctl runs in the foreground of), the guard's group becomes the
// terminal's foreground group first.
func (g *guard) run(argv, env []string, tty int) error {
	if tty >= 0 && giveTerminal(tty, g.pgid()) == nil {
		g.tty = tty
	}
	b, err := json.Marshal(guardSpec{Argv: argv, Env: env})
	if err != nil {
		return err
	}
	_, err = g.life.Write(append(b, '\n'))
	return err
}

// wait waits for the guard, then takes the terminal back if the command
// had it, and returns the exit status.
func (g *guard) wait() *os.ProcessState {
	g.c.Wait()
	g.life.Close()
	if g.tty >= 0 {
		takeTerminal(g.tty)
	}
	return g.c.ProcessState
}

// discard ends a guard that was given no command, and waits for it.
func (g *guard) discard() {
	g.life.Close()
	g.c.Wait()
}
