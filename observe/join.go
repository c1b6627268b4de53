package observe

// Join returns an observer that calls each of obs's hooks in turn; nil
// observers are skipped. With none left it returns nil, and with one it
// returns that one.
func Join(obs ...*Observer) *Observer {
	var live []*Observer
	for _, o := range obs {
		if o != nil {
			live = append(live, o)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return &Observer{
		Acquired:       fan(live, func(o *Observer) func(Acquire) { return o.Acquired }),
		Released:       fan(live, func(o *Observer) func(Release) { return o.Released }),
		Lost:           fan(live, func(o *Observer) func(Loss) { return o.Lost }),
		Retried:        fan(live, func(o *Observer) func(Retry) { return o.Retried }),
		WatchRestarted: fan(live, func(o *Observer) func(WatchRestart) { return o.WatchRestarted }),
		LeaderChanged:  fan(live, func(o *Observer) func(Leadership) { return o.LeaderChanged }),
	}
}

// fan calls the hook that get picks from each observer, skipping nil
// hooks; it is nil when no observer has that hook.
func fan[E any](obs []*Observer, get func(*Observer) func(E)) func(E) {
	var hooks []func(E)
	for _, o := range obs {
		if h := get(o); h != nil {
			hooks = append(hooks, h)
		}
	}
	if len(hooks) == 0 {
		return nil
	}
	return func(e E) {
		for _, h := range hooks {
			h(e)
		}
	}
}
