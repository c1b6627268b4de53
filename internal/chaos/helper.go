package chaos

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// HelperEnv names the environment variable that makes a test binary run as
// a helper process (its value is the helper's role) instead of running
// tests. The package's TestMain checks it.
const HelperEnv = "CHAOS_HELPER"

// Line is one line a helper wrote on its stdout, with when the parent read
// it. Helpers speak a line protocol: a verb and its arguments, such as
// "ACQUIRED <tok>", "WROTE <tok> <status>" or "LOST".
type Line struct {
	Helper int
	Fields []string
	At     time.Time
}

// Helper is a child process running this test binary in helper mode. The
// parent can pause, resume and kill it. Its methods are safe for concurrent
// use.
type Helper struct {
	ID  int
	cmd *exec.Cmd

	mu      sync.Mutex // guards stopped
	stopped bool
	exited  chan struct{}
	quit    chan struct{} // closed by Kill: stop delivering lines
	kill    sync.Once
}

// StartHelper re-runs the test binary as helper id in the given role, with
// env added to its environment, and sends every line it prints to lines
// (which must be drained) until it exits. Its stderr goes to the test's
// log directory (artifacts). The helper is killed when the test ends.
func StartHelper(tb testing.TB, id int, role string, env []string, lines chan<- Line) *Helper {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), HelperEnv+"="+role, fmt.Sprintf("CHAOS_HELPER_ID=%d", id)), env...)
	errf, err := os.Create(fmt.Sprintf("%s/helper%d.stderr", ArtifactDir(tb), id))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = errf
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	h := &Helper{ID: id, cmd: cmd, exited: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(h.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- Line{Helper: id, Fields: strings.Fields(sc.Text()), At: time.Now()}:
			case <-h.quit:
			}
		}
		cmd.Wait()
		errf.Close()
	}()
	tb.Cleanup(func() {
		h.Cont()
		h.Kill()
	})
	return h
}

// Stop pauses the helper with SIGSTOP.
func (h *Helper) Stop() { h.signal(syscall.SIGSTOP) }

// Cont resumes a helper paused by Stop.
func (h *Helper) Cont() { h.signal(syscall.SIGCONT) }

// Kill SIGKILLs the helper and waits until its output is drained.
func (h *Helper) Kill() {
	h.signal(syscall.SIGKILL)
	h.kill.Do(func() { close(h.quit) })
	<-h.exited
}

// Exited is closed when the helper has exited and its output is drained.
func (h *Helper) Exited() <-chan struct{} { return h.exited }

// Terminate asks the helper to finish (SIGTERM) and waits for it up to d,
// then kills it.
func (h *Helper) Terminate(d time.Duration) {
	h.Cont()
	h.signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(d):
		h.Kill()
	}
}

func (h *Helper) signal(sig syscall.Signal) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.exited:
		return
	default:
	}
	h.cmd.Process.Signal(sig)
	h.stopped = sig == syscall.SIGSTOP
}

// Stopped reports whether the helper is paused.
func (h *Helper) Stopped() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopped
}
