package chaos

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// etcdPackage is the etcd server's main package, at the version go.mod
// requires.
const etcdPackage = "go.etcd.io/etcd/server/v3"

var binaries struct {
	sync.Mutex
	built map[string]builtBinary
}

type builtBinary struct {
	path string
	err  error
}

// EtcdBinary builds the etcd server at the version this module requires,
// once per test binary run, and returns its path (see [Binary]).
func EtcdBinary(tb testing.TB) string {
	tb.Helper()
	return Binary(tb, etcdPackage, "etcd")
}

// Binary builds the main package pkg (resolved in this module, so at the
// versions go.mod requires) as name, into a directory of the user's cache
// that is this checkout's own, once per test binary run, and returns its
// path. It needs the go command on PATH (it is there under go test).
func Binary(tb testing.TB, pkg, name string) string {
	tb.Helper()
	binaries.Lock()
	defer binaries.Unlock()
	if b, ok := binaries.built[pkg]; ok {
		if b.err != nil {
			tb.Fatal(b.err)
		}
		return b.path
	}
	if binaries.built == nil {
		binaries.built = map[string]builtBinary{}
	}
	var b builtBinary
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	// One directory per checkout: two worktrees testing at once must not
	// run each other's builds.
	wd, _ := os.Getwd()
	h := fnv.New64a()
	h.Write([]byte(wd))
	dir = filepath.Join(dir, "coordkit-chaos", fmt.Sprintf("%x", h.Sum64()))
	if b.err = os.MkdirAll(dir, 0o755); b.err == nil {
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	binaries.built[pkg] = b
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}
