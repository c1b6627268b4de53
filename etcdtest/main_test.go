package etcdtest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// etcdtest's own tests start their servers per test, so the leak check only
// needs to run after them all.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
