package testutil_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()                        {}
func (f *fatalTB) Fatalf(format string, a ...any) { f.msg = fmt.Sprintf(format, a...) }

// TestWithin: a wait that returns passes; a wait that does not return fails
// with a message that names it, instead of blocking.
func TestWithin(t *testing.T) {
	ok := &fatalTB{TB: t}
	testutil.Within(ok, time.Minute, "a wait that returns", func() {})
	if ok.msg != "" {
		t.Errorf("Within(a wait that returns) failed: %s", ok.msg)
	}

	// The wait is let go after a minute, so that a Within that does not
	// bound it fails this test instead of hanging it.
	release := make(chan struct{})
	let := time.AfterFunc(time.Minute, func() { close(release) })
	returned := make(chan struct{})
	hung := &fatalTB{TB: t}
	testutil.Within(hung, 10*time.Millisecond, "the stuck wait", func() {
		defer close(returned)
		<-release
	})
	if let.Stop() {
		close(release)
	}
	<-returned
	if !strings.Contains(hung.msg, "the stuck wait") {
		t.Errorf("Within(a wait that never returns) = %q, want a failure naming the wait", hung.msg)
	}
}
