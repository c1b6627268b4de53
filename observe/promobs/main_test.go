package promobs_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the etcd the tests in this package share; the test that
// restarts a member starts its own.
var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
