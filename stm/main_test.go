package stm_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the etcd that TestMain starts for the package's tests, examples
// and benchmarks.
var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
