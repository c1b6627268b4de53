package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// guardArg is the hidden first argument with which lockctl runs itself as
// the guard of a command: "lockctl __guard CMD [ARGS...]".
//
// The guard is why a kill -9 of lockctl ends the whole command tree, not
// only its first process: lockctl starts the guard as the leader of a new
// process group, the guard starts the command in that group, and the
// guard holds the read end of a pipe whose write end only lockctl has.
// When lockctl dies, however it dies, the kernel closes the write end;
// the guard reads end of file and KILLs its whole group. (A parent-death
// signal alone reaches only the direct child; a shell's children would run
// on.)
const guardArg = "__guard"

// guardLifeFD is the guard's descriptor for the read end of lockctl's
// pipe, passed as the first of exec.Cmd.ExtraFiles.
const guardLifeFD = 3

// guardMain is the guard process. It returns the command's exit code, or
// 128+N if the command was killed by signal N, so lockctl sees the code
// it would have seen without a guard.
func guardMain(argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "lockctl: "+guardArg+" is internal to lockctl")
		return ExitUsage
	}
	// The command must not inherit the pipe: it would keep the guard from
	// seeing lockctl's death.
	syscall.CloseOnExec(guardLifeFD)
	life := os.NewFile(guardLifeFD, "lockctl-life")
	// lockctl forwards signals to the whole group, the guard included.
	// Handled (not ignored: an ignored disposition would be inherited by
	// the command through exec), they leave the guard running so that it
	// can pass on the command's own exit code.
	signal.Notify(make(chan os.Signal, 1), forwarded...)
	// This goroutine lives as long as the guard process: it either kills
	// the group or is ended by the guard's exit.
	go func() {
		io.Copy(io.Discard, life)
		syscall.Kill(0, syscall.SIGKILL)
	}()
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.SysProcAttr = commandAttr()
	if err := startChild(c); err != nil {
		fmt.Fprintf(os.Stderr, "lockctl: cannot run %s: %v\n", argv[0], err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	c.Wait()
	return exitCode(c.ProcessState)
}

// guarded is a command running under its guard, as lockctl sees it.
type guarded struct {
	c    *exec.Cmd
	life *os.File // the pipe's write end: lockctl's life, as the guard sees it
	tty  int      // the terminal handed to the command's group, or -1
}

// startGuard starts argv under a guard, which leads a new process group.
// When tty is not -1 (the terminal lockctl runs in the
// foreground of) the group becomes the terminal's foreground group.
func startGuard(argv, env []string, stdin io.Reader, stdout, stderr io.Writer, tty int) (*guarded, error) {
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
		Args:        append([]string{"lockctl", guardArg}, argv...),
		Env:         env,
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		ExtraFiles:  []*os.File{r},
		SysProcAttr: guardAttr(tty),
	}
	if err := c.Start(); err != nil {
		w.Close()
		return nil, err
	}
	return &guarded{c: c, life: w, tty: tty}, nil
}

// pgid is the command's process group.
func (g *guarded) pgid() int { return g.c.Process.Pid }

// wait waits for the guard, then takes the terminal back if the command
// had it, and returns the exit status.
func (g *guarded) wait() *os.ProcessState {
	g.c.Wait()
	g.life.Close()
	if g.tty >= 0 {
		takeTerminal(g.tty)
	}
	return g.c.ProcessState
}
