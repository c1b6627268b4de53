package waitq

// Abandoned reports whether a write of w's key may still reach etcd late.
func (w *Waiter) Abandoned() bool { return w.abandoned }
