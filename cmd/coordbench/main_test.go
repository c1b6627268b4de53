package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
)

var srv *etcdtest.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		// This binary is the etcd of a -server process run.
		os.Exit(serve(os.Stdin, os.Stdout, os.Stderr))
	}
	testutil.Main(m, &srv)
}

// line matches one workload's output: both rates and the ratio.
var line = regexp.MustCompile(`(?m)^(\S+)\s+([0-9.]+)\s.*\s([0-9.]+)x\s`)

func bench(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	t.Log(out.String(), errb.String())
	return out.String(), code
}

func TestRunsBothSidesOnOneServer(t *testing.T) {
	out, code := bench(t, "-endpoints", strings.Join(srv.Endpoints(), ","), "-duration", "300ms", "-run", `^mutex/(uncontended|contended-W2)$`)
	require.Equal(t, 0, code)
	got := line.FindAllStringSubmatch(out, -1)
	require.Len(t, got, 2, "one line per workload")
	for _, m := range got {
		require.NotEqual(t, "0.0", m[2], "%s: coordkit side ran", m[1])
		require.NotEqual(t, "0.00", m[3], "%s: the other side ran", m[1])
	}
}

func TestServerInChildProcess(t *testing.T) {
	out, code := bench(t, "-server", "process", "-duration", "300ms", "-run", `^mutex/uncontended$`)
	require.Equal(t, 0, code)
	require.Contains(t, out, "(in a child process)")
	require.Len(t, line.FindAllString(out, -1), 1)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-server", "elsewhere"},
		{"-duration", "0s"},
		{"-run", "("},
		{"-members", "0"},
		{"-members", "3", "-server", "process"},
	} {
		_, code := bench(t, args...)
		require.Equal(t, 2, code, "%v", args)
	}
}

func TestConfigAndGatewayRows(t *testing.T) {
	out, code := bench(t, "-endpoints", strings.Join(srv.Endpoints(), ","), "-duration", "300ms", "-run", `^(config/propagate|gateway/proxy)$`)
	require.Equal(t, 0, code)
	got := line.FindAllStringSubmatch(out, -1)
	require.Len(t, got, 2, "one line per workload")
	for _, m := range got {
		require.NotEqual(t, "0.0", m[2], "%s: coordkit side ran", m[1])
		require.NotEqual(t, "0.00", m[3], "%s: the other side ran", m[1])
	}
}

// extra matches one extra of a line: its name and coordkit's figure.
func extra(t *testing.T, out, row, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(row) + `\s.*\s` + regexp.QuoteMeta(name) + ` ([0-9.]+) vs ([0-9.]+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "%s: no %s in %q", row, name, out)
	return m[1]
}

func TestBurstAndLineRows(t *testing.T) {
	out, code := bench(t, "-endpoints", strings.Join(srv.Endpoints(), ","), "-run", `^mutex/(burst|line)-100$`)
	require.Equal(t, 0, code)
	got := line.FindAllStringSubmatch(out, -1)
	require.Len(t, got, 2, "one line per workload")
	for _, m := range got {
		require.NotEqual(t, "0.0", m[2], "%s: coordkit side ran", m[1])
		require.NotEqual(t, "0.00", m[3], "%s: the other side ran", m[1])
		require.Equal(t, "0.00", extra(t, out, m[1], "errors"), "%s: errors", m[1])
		require.NotEqual(t, "0.00", extra(t, out, m[1], "rpc/handoff"), "%s: RPCs counted", m[1])
	}
	require.NotContains(t, out, "mutex/burst-10000", "a long row without -long")
}

// TestRegistryRepairRow: every key deleted by another client is put back
// (a side fails if one is not within 10 s), on both sides.
func TestRegistryRepairRow(t *testing.T) {
	out, code := bench(t, "-endpoints", strings.Join(srv.Endpoints(), ","), "-duration", "300ms", "-run", `^registry/repair$`)
	require.Equal(t, 0, code, out)
	got := line.FindAllStringSubmatch(out, -1)
	require.Len(t, got, 1, "one line per workload")
	require.NotEqual(t, "0.0", got[0][2], "coordkit side ran")
	require.NotEqual(t, "0.00", got[0][3], "the other side ran")
}
