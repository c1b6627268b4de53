//go:build chaos

package chaos_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
)

// TestC1KilledLockctlStopsCommand is the regression test for a gap C1 found
// (fixed: lockctl sets a parent-death signal on Linux):
// when lockctl itself is SIGKILLed (OOM killer, kill -9), the command it
// runs keeps running, unprotected, because it sits in its own process group
// and nothing tells it that its parent is gone. The lease expires after the
// TTL and another host's command starts while this one still acts (C1
// counts these as killedWhoseCommandOverlapped). The command should die with
// lockctl (on Linux, SysProcAttr.Pdeathsig).
func TestC1KilledLockctlStopsCommand(t *testing.T) {
	bin := chaos.Binary(t, "github.com/coordkit/coordkit/cmd/lockctl", "lockctl")
	c := chaos.NewProcCluster(t, 1)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(bin, "run", "--ttl", "2", "/chaos/c1bug/job", "--", "/bin/sh", "-c", "echo $$ > "+pidFile+"; exec sleep 60")
	cmd.Env = append(os.Environ(), "LOCKCTL_ENDPOINTS="+strings.Join(c.Endpoints(), ","))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for range 100 {
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 1 {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pid == 0 {
		cmd.Process.Kill()
		testutil.Within(t, waitBound, "lockctl's exit", func() { cmd.Wait() })
		t.Fatal("the command did not start")
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	cmd.Process.Kill()
	testutil.Within(t, waitBound, "lockctl's exit", func() { cmd.Wait() })
	for range 50 {
		if !alive(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the command (pid %d) still runs 5 s after its lockctl was SIGKILLed", pid)
}

// alive reports whether process pid exists and is not a zombie (an exited
// orphan that init has not reaped yet).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
