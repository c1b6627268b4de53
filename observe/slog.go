package observe

import (
	"context"
	"log/slog"
)

// Slog returns an observer that writes every event to l: acquisitions,
// releases and leadership changes at Debug (failed acquisitions other
// than busy or canceled at Warn), retries and broken watches at Info,
// losses and refused watches at Warn. Each record carries the event's
// fields as attributes (kind, name, token, wait, held, reason, err).
func Slog(l *slog.Logger) *Observer {
	ctx := context.Background()
	return &Observer{
		Acquired: func(e Acquire) {
			level := slog.LevelDebug
			if e.Result == ResultError {
				level = slog.LevelWarn
			}
			l.Log(ctx, level, "coordkit: acquire", "kind", e.Kind, "name", e.Name, "result", e.Result,
				"wait", e.Wait, "token", e.Token, errAttr(e.Err))
		},
		Released: func(e Release) {
			l.Log(ctx, slog.LevelDebug, "coordkit: release", "kind", e.Kind, "name", e.Name,
				"token", e.Token, "held", e.Held, errAttr(e.Err))
		},
		Lost: func(e Loss) {
			l.Log(ctx, slog.LevelWarn, "coordkit: hold lost", "kind", e.Kind, "name", e.Name,
				"token", e.Token, "held", e.Held, "reason", e.Reason, errAttr(e.Err))
		},
		Retried: func(e Retry) {
			l.Log(ctx, slog.LevelInfo, "coordkit: retry", "kind", e.Kind, "name", e.Name,
				"attempt", e.Attempt, "reason", e.Reason, errAttr(e.Err))
		},
		WatchRestarted: func(e WatchRestart) {
			level := slog.LevelInfo
			if e.Reason == ReasonRefused {
				level = slog.LevelWarn
			}
			l.Log(ctx, level, "coordkit: watch restart", "kind", e.Kind, "name", e.Name,
				"reason", e.Reason, errAttr(e.Err))
		},
		LeaderChanged: func(e Leadership) {
			l.Log(ctx, slog.LevelDebug, "coordkit: leadership", "name", e.Name,
				"leader", e.Leader, "token", e.Token)
		},
	}
}

// errAttr is the err attribute, empty (and so left out) when err is nil.
func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.Any("err", err)
}
