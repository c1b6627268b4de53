// Package etcdclient builds an etcd client from flags and the environment,
// the way etcdctl does, and tells in words why it cannot reach etcd.
//
// It is what lockctl, coordkit's examples and coordbench use, offered so
// that programs built on coordkit are configured like etcdctl too:
//
//	cfg := etcdclient.Default()
//	if err := cfg.LoadEnv("MYAPP", "ETCDCTL"); err != nil { ... } // MYAPP_* first
//	cfg.AddFlags(flag.CommandLine)
//	flag.Parse()
//	cli, err := cfg.New(ctx)
//	...
//	err = cfg.Check(ctx, cli, "myapp/") // the first request, explained
//
// # Flags and environment
//
// [Config.LoadEnv] reads <PREFIX>_<NAME> for each prefix given, the first
// one set winning; [Config.AddFlags] defines the flags, whose values
// override the environment's.
//
//	flag                        variable                         default
//	--endpoints                 <P>_ENDPOINTS                    127.0.0.1:2379 (comma-separated)
//	--dial-timeout              <P>_DIAL_TIMEOUT                 5s
//	--command-timeout           <P>_COMMAND_TIMEOUT              5s
//	--keepalive-time            <P>_KEEPALIVE_TIME               10s (0: no keepalive)
//	--keepalive-timeout         <P>_KEEPALIVE_TIMEOUT            3s
//	--cacert                    <P>_CACERT                       system roots for https://
//	--cert                      <P>_CERT
//	--key                       <P>_KEY_FILE (and ETCDCTL_KEY)
//	--insecure-skip-tls-verify  <P>_INSECURE_SKIP_TLS_VERIFY     false
//	--user                      <P>_USER                         (name or name:password)
//	--password                  <P>_PASSWORD
//	--password-file             <P>_PASSWORD_FILE                (one trailing newline ignored)
//	--debug                     <P>_DEBUG                        false (client log to stderr)
//
// The key file is <PREFIX>_KEY_FILE for every prefix, because lockctl gives
// the commands it runs LOCKCTL_KEY (the key of the hold); ETCDCTL_KEY is
// read too, as etcdctl names it. Durations need a unit (5s, 500ms) and
// booleans are true or false: any other value is an error that names the
// variable, never silently ignored.
//
// # The client
//
// [Config.New] turns on gRPC keepalive, so that a member which stops
// answering without closing the connection is left for another, and caps
// gRPC's reconnect backoff at 3 s (gRPC's own cap is 120 s, which leaves a
// client idle long after a restarted member is back).
//
// # Errors
//
// A client whose TLS or address is wrong only times out: gRPC keeps
// retrying. [Config.Check] (and [Config.New] when it logs in) probes the
// endpoints directly at the same time as the first request, and when every
// endpoint fails returns the cause at once: the server's certificate is
// signed by an unknown authority, the server wants a client certificate,
// the connection is refused, no such host. The errors wrap [ErrTLS],
// [ErrUnreachable], [ErrAuth] (wrong user or password) and [ErrPermission]
// (refused by etcd's role-based access control, naming the key), for
// errors.Is. Check reads only the key its caller names, since a user's role
// may cover nothing but the caller's prefix.
package etcdclient
