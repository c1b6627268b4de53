package session_test

import (
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
)

var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }
