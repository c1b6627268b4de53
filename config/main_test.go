package config_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the etcd every test and example in this package shares; tests
// that cut clients off or need auth start their own.
var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
