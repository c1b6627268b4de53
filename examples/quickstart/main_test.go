package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the README's first command, as a new user would.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("All of it held.")) {
		t.Errorf("the tour did not finish:\n%s", out.String())
	}
}
