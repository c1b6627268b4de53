package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// testName returns a configuration name under the test's own prefix, whose
// keys are deleted when the test ends (before the prefix is checked empty).
func testName(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	p := testutil.Prefix(t, cli)
	t.Cleanup(func() {
		if _, err := cli.Delete(context.Background(), p, clientv3.WithPrefix()); err != nil {
			t.Error(err)
		}
	})
	return p + "app"
}

// limits is the typed configuration the watch tests use.
type limits struct {
	MaxConns int `json:"max_conns"`
}

// decodeLimits refuses anything but a JSON object with positive max_conns.
func decodeLimits(b []byte) (limits, error) {
	var l limits
	if err := json.Unmarshal(b, &l); err != nil {
		return l, err
	}
	if l.MaxConns <= 0 {
		return l, errors.New("max_conns must be positive")
	}
	return l, nil
}

func validLimits(b []byte) error { _, err := decodeLimits(b); return err }

// within returns a context that ends after a generous bound, for waits.
func within(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 30 s", what)
		}
	}
}
