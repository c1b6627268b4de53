// Package observe is coordkit's seam for logs and metrics: an [Observer]
// is a set of optional hooks that the primitives call as they acquire,
// release, lose a hold, retry a request that etcd failed transiently, or
// re-open a broken watch. Give one to a primitive's constructor with its
// WithObserver option.
//
// Hooks are fields, in the style of net/http/httptrace: a hook left nil is
// not called, and a hook added later breaks no one. A nil *Observer costs
// nothing: the primitives do not even read the clock for it.
//
// Hooks run synchronously in the goroutine that reports the event, some of
// them while the reporting handle is busy (between a Lock and its return,
// or in an Unlock): they must return quickly and must not call back into
// the primitive that reported the event.
//
// Two observers ship: [Slog] writes each event to a log/slog logger, and
// package promobs (a package of its own, so that the primitives do not
// depend on Prometheus) keeps Prometheus metrics. [Join] combines
// observers.
package observe
