package follow

// Opens returns how many watches f has opened: more than one means it has
// restarted a broken watch.
func Opens(f *Follower) int64 { return f.opens.Load() }

// Created returns how many of f's watches etcd has confirmed.
func Created(f *Follower) int64 { return f.created.Load() }
