package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles the test binary as an instance when run starts one
// with instanceEnv set.
func TestMain(m *testing.M) {
	if id := os.Getenv(instanceEnv); id != "" {
		if err := instance(context.Background(), id, os.Args[1:], os.Stdout); err != nil {
			os.Stderr.WriteString("instance " + id + ": " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestRun runs the example as a user would, and checks that it held.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("All of it held.")) {
		t.Errorf("the example did not finish:\n%s", out.String())
	}
	t.Log(out.String())
}
