package election

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrNotLeader is returned by [Election.Resign] and [Election.Proclaim]
	// when the handle does not lead, and by [Election.Err] before the first
	// Campaign and after Resign. A Proclaim that finds the leader key gone
	// returns an error that wraps both ErrNotLeader and [ErrLost].
	ErrNotLeader = errors.New("election: not leader")

	// ErrLeaderExists is returned by [Election.TryCampaign] when another
	// candidate leads or is ahead in line, or another goroutine campaigns
	// through the same *Election.
	ErrLeaderExists = errors.New("election: another candidate leads")

	// ErrNoLeader is returned by [Election.Leader] when nobody leads: no
	// candidate has a key under the election's name.
	ErrNoLeader = errors.New("election: no leader")

	// ErrSessionExpired is returned by [Election.Campaign] and
	// [Election.Err] when the session's lease is gone (expired, revoked or
	// closed). It is the same value in every coordkit package.
	ErrSessionExpired = errs.SessionExpired

	// ErrLost is returned by [Election.Err], [Election.Resign] and
	// [Election.Proclaim] when a leadership ended without Resign: its key was
	// deleted by someone else, or the lease's local deadline passed with no
	// successful keep-alive probe. It is also returned by Campaign when the
	// candidate's key disappears while it waits. It is the same value in
	// every coordkit package.
	ErrLost = errs.Lost

	// ErrClosed is returned by [Watcher.Err] when the Watcher stopped
	// because its etcd client was closed, and by [Run] once its client is
	// closed. It is the same value in every
	// coordkit package.
	ErrClosed = errs.Closed
)
