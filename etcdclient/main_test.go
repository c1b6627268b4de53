package etcdclient_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The tests start their own servers, so the leak check only needs to run
// after them all.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
