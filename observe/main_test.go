package observe_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the etcd every test and example in this package shares.
var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
