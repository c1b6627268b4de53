package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

// TestMain doubles the test binary as the program itself when
// TestTermResigns runs it with runMainEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

const runMainEnv = "SINGLETON_WORKER_RUN_MAIN"

func TestDemonstration(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"[a] leading", "b took over", "a took over"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestTermResigns runs one replica as a process and stops it with TERM,
// as systemd or Kubernetes would: it exits 0 having resigned, so its
// election key is gone at once, not a TTL later.
func TestTermResigns(t *testing.T) {
	srv := etcdtest.NewServer(t)
	cli := srv.NewClient(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-id", "a", "-endpoints", srv.Endpoints()[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	var out []string
	next := func(want string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %q:\n%s", want, strings.Join(out, "\n"))
				}
				out = append(out, l)
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				cmd.Process.Kill()
				for range lines {
				}
				cmd.Wait()
				t.Fatalf("no %q within 30s:\n%s", want, strings.Join(out, "\n"))
			}
		}
	}
	next("[a] leading")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("[a] stopped leading")
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after TERM: %v, want exit 0; stderr: %s", err, stderr.String())
	}
	resp, err := cli.Get(t.Context(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("after TERM, %d keys under %s/: the replica did not resign", resp.Count, name)
	}
}
