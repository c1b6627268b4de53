package main

import (
	"context"
	"errors"

	"github.com/coordkit/coordkit/internal/holds"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Kinds of coordkit names, as ls shows them.
const (
	kindLock      = holds.KindLock
	kindSemaphore = holds.KindSemaphore
	kindRWLock    = holds.KindRWLock
)

// The reading of holds is shared with the web console (package console):
// these names keep lockctl's own code short.
type (
	entry      = holds.Entry
	holderInfo = holds.HolderInfo
	lsName     = holds.Name
)

func entries(ctx context.Context, cli *clientv3.Client, prefix string) ([]entry, error) {
	return holds.Entries(ctx, cli, prefix)
}

func names(kvs []*mvccpb.KeyValue, namespace string) []lsName { return holds.Names(kvs, namespace) }

// revokeHold is [holds.Revoke], with a lease that carries other data
// refused as a usage error (exit 64).
func revokeHold(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, key string) error {
	err := holds.Revoke(ctx, cli, id, key)
	if errors.Is(err, holds.ErrNotHold) {
		return withCode(ExitUsage, err)
	}
	return err
}

// firstHold is [holds.First]: the hold release would break, and how many
// keys under the name are not holds.
func firstHold(es []entry) (*entry, int) { return holds.First(es) }
