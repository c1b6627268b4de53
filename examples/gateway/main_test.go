package main

import (
	"bytes"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles the test binary as the program itself when the
// demonstration starts its child backend, which sets runMainEnv.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"no live instance of service orders", "no route for GET /nowhere", "then 20 of 20 requests answered by users-1", "All of it held."} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
