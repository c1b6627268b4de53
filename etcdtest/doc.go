// Package etcdtest runs a real etcd server inside the current process, for
// tests and demonstrations.
//
// It plays the role that curator-test's TestingServer and TestingCluster play
// for ZooKeeper users: code that coordinates through etcd is tested against
// the real server, not a mock. [NewServer] starts one member, [NewCluster]
// starts several; both pick free loopback ports, keep their data in
// testing.TB.TempDir, wait until the cluster is ready and stop it at test
// cleanup. [Start] does the same without a testing.TB, for programs such as
// examples and "lockctl dev" that want a throwaway etcd.
//
// Every member sits behind a TCP proxy, so a test can cut one client off
// ([Member.Blackhole]) or slow it down ([Member.Delay]) while clients that
// connect directly carry on. Members can be stopped and restarted with their
// data ([Member.Stop], [Member.Restart]) to exercise leader loss and recovery.
//
// For tests of secured deployments, [WithTLS] serves clients over TLS with
// certificates made at start ([NewTLSFiles]; nothing is checked in),
// [WithClientCertAuth] also requires client certificates, and [WithAuth]
// turns on etcd's authentication; [Cluster.AddUser] then creates a user
// whose role covers only given key prefixes, and [Cluster.TLSFiles] gives
// the files a client such as lockctl needs.
//
// The defaults suit small, shared machines: a 100 ms heartbeat, a 1 s
// election timeout, no fsync and no etcd log output. See [Option] for the
// knobs.
//
// A typical test:
//
//	func TestCounter(t *testing.T) {
//		srv := etcdtest.NewServer(t)
//		cli := srv.Client()
//		if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
//			t.Fatal(err)
//		}
//	}
package etcdtest
