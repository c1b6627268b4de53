package chaos_test

import (
	"os"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
)

// srv is the one-member etcd the tier-1 scenarios share; each scenario
// reaches it directly or through proxies of its own ([chaos.NewProxy]).
var srv *etcdtest.Cluster

// helperMain is set by the tier-2 files: when the test binary is re-run as
// a holder process (chaos.HelperEnv set), it runs instead of the tests.
var helperMain func() int

func TestMain(m *testing.M) {
	if os.Getenv(chaos.HelperEnv) != "" && helperMain != nil {
		os.Exit(helperMain())
	}
	testutil.Main(m, &srv)
}
