// Package follow follows the changes to a key or a prefix in etcd across
// broken watches: the one watch loop that every primitive waits with.
//
// A caller reads what it needs, then follows from that read's revision:
//
//	f := follow.New(cli, prefix, resp.Header.Revision, follow.WithPrefix())
//	defer f.Close()
//	for {
//		evs, relist, err := f.Next(ctx)
//		switch {
//		case err != nil:
//			return err // ctx ended, the client closed, or etcd refused
//		case relist:
//			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix()) // read again
//			...
//			f.Reset(resp.Header.Revision)
//		default:
//			... // apply evs, in revision order
//		}
//	}
//
// What each fault does:
//
//   - a watch that breaks (a member restarts or loses its leader, the
//     channel closes) is opened again from the revision after the last one
//     delivered, after a jittered pause: nothing is missed and nothing is
//     delivered twice;
//   - a watch whose revision was compacted away makes Next report relist
//     once: the new watch is already established when it does, so a read
//     made then leaves no gap;
//   - a refused watch (the user's role does not cover the key) ends Next
//     with etcd's error, which satisfies [errs.Refused];
//   - a closed client ends Next with [errs.Closed].
//
// Progress notifications move an idle follower's revision with the store,
// so a watch that breaks after a compaction resumes instead of relisting.
package follow
