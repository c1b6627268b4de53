//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"golang.org/x/sys/unix"
)

// TestTerminal runs lockctl with a pseudo-terminal as its controlling
// terminal, as a user's shell would: the command can read the terminal
// (it is not stopped by SIGTTIN), and Ctrl-C reaches the command as it
// reaches any foreground job, not lockctl.
func TestTerminal(t *testing.T) {
	ep := etcdtest.NewServer(t).Endpoints()[0]

	term := startInTerminal(t, ep, "run", "jobs/tty", "--", "sh", "-c", `echo ready; read a; echo "got:$a"`)
	term.waitFor(t, "ready")
	term.write(t, "hello\n")
	term.waitFor(t, "got:hello")
	if code := term.wait(t); code != 0 {
		t.Errorf("lockctl run -- sh -c 'read a' exited %d, want 0; terminal:\n%s", code, term.text())
	}

	term = startInTerminal(t, ep, "run", "jobs/tty", "--", "sh", "-c", `echo ready; exec sleep 300`)
	term.waitFor(t, "ready")
	term.write(t, "\x03") // Ctrl-C
	if code := term.wait(t); code != 128+int(syscall.SIGINT) {
		t.Errorf("after Ctrl-C, lockctl exited %d, want %d (the command killed by SIGINT); terminal:\n%s", code, 128+int(syscall.SIGINT), term.text())
	}
	if s := term.text(); strings.Contains(s, "lost") || strings.Contains(s, "lockctl:") {
		t.Errorf("after Ctrl-C, lockctl printed a message; terminal:\n%s", s)
	}
}

// TestPasswordPrompt: --user without a password asks for it on the
// terminal, as etcdctl does, without echoing it.
func TestPasswordPrompt(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithAuth("rootpw"))
	if err := srv.AddUser(t.Context(), "cron", "cronpw", "jobs/"); err != nil {
		t.Fatal(err)
	}
	term := startInTerminal(t, srv.Endpoints()[0], "--user", "cron", "run", "jobs/pw", "--", "echo", "ran as cron")
	term.waitFor(t, "Password for etcd user cron")
	term.write(t, "cronpw\n")
	term.waitFor(t, "ran as cron")
	if code := term.wait(t); code != 0 {
		t.Errorf("lockctl --user cron run exited %d, want 0; terminal:\n%s", code, term.text())
	}
	if strings.Contains(term.text(), "cronpw") {
		t.Errorf("the password was echoed; terminal:\n%s", term.text())
	}
}

// terminal is lockctl running in a pseudo-terminal.
type terminal struct {
	master *os.File
	cmd    *exec.Cmd
	read   chan struct{} // closed when the reader of master has returned

	mu  sync.Mutex // guards out
	out bytes.Buffer
}

// startInTerminal starts the test binary as lockctl with args, as the
// leader of a new session whose controlling terminal is a new pty.
func startInTerminal(t *testing.T, ep string, args ...string) *terminal {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	defer slave.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{
		Path:        self,
		Args:        append([]string{"lockctl"}, args...), // testscript.Main runs lockctl for this name
		Env:         append(os.Environ(), "LOCKCTL_ENDPOINTS="+ep),
		Stdin:       slave,
		Stdout:      slave,
		Stderr:      slave,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}
	if err := cmd.Start(); err != nil {
		master.Close()
		t.Fatal(err)
	}
	term := &terminal{master: master, cmd: cmd, read: make(chan struct{})}
	go func() {
		defer close(term.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return // EIO once lockctl and its command have closed the terminal
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		master.Close()
		<-term.read
	})
	return term
}

func (term *terminal) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

func (term *terminal) write(t *testing.T, s string) {
	t.Helper()
	if _, err := term.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits, with a generous bound, for s on the terminal.
func (term *terminal) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(term.text(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q did not appear on the terminal:\n%s", s, term.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits, with a generous bound, for lockctl to exit, and returns its
// exit code.
func (term *terminal) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- term.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return term.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		term.cmd.Process.Kill()
		<-done
		t.Fatalf("lockctl did not exit; terminal:\n%s", term.text())
		return -1
	}
}
