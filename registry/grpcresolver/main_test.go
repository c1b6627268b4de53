package grpcresolver_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the etcd the tests and examples share; tests that cut a client
// off start their own.
var srv *etcdtest.Cluster

// endpoint is srv's, for the examples.
func endpoint() []string { return srv.Endpoints() }

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
