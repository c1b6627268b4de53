package console_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the etcd every test in this package shares; the RBAC test starts
// its own.
var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
