// Package config is a configuration center on etcd: versioned values that
// are published with a check, kept in a history that survives compaction,
// rolled back, and watched as a typed, always-good value.
//
// # Keys
//
// A configuration has a name, such as "prod/payments/db"; namespaces are
// just name prefixes. Every key of a name lies under name + "/":
//
//	name/current            the current value
//	name/v/00000000000000000007  version 7, never changed once written
//
// Both hold a record: one line of JSON (name, version, author, comment,
// time) followed by the data as published. The version keys are ordinary
// keys, not etcd's MVCC history, so compaction does not remove them; only
// [WithRetention] does. So an etcd role granting a prefix such as
// "prod/payments/" covers every configuration under it: read to [Get],
// [History] and [Watch], read and write to [Publish] and [Rollback]. A call
// refused by access control returns an error wrapping [ErrRefused].
//
// Only keys of exactly 20 digits after name/v/ are versions; other keys
// there are ignored. Do not name a configuration name/v/… (such as
// "app/v/0"): its keys can fall among name's version keys, where
// [WithRetention] on name deletes them with the old versions.
//
// # Publishing
//
// [Publish] writes the current value and the next version key in one
// transaction, which commits only if the current key has not changed since
// Publish read the latest version (so neither a concurrent publish nor
// [WithRetention]'s deletion of old version keys can slip in between):
// concurrent publishers get distinct consecutive versions, and
// [WithExpectedVersion] turns this into compare-and-set. A validator
// ([WithValidator]) runs before anything is written. [Rollback] publishes
// an old version's data again as a new version. [Diff] shows what changed.
//
// # Watching
//
// [Watch] reads the value and follows its key from that read's revision.
// [Watcher.Load] never blocks and only ever returns a value that decoded
// and validated; versions only increase. If the current value is refused
// when Watch starts, the watcher starts from the newest good one of the
// last 10 versions, else from the snapshot file ([WithSnapshotFile]), else
// Watch fails with [ErrInvalid]. While etcd is unreachable the
// watcher keeps its last value and [Watcher.Stale] says so; it catches up
// when etcd answers again. With [WithSnapshotFile] it also keeps the last
// value in a local file for a start without etcd.
package config
