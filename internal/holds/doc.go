// Package holds reads the holds that coordkit and etcd's concurrency
// package keep in etcd: the keys of mutexes, elections, semaphores and
// rwmutexes, which of them hold and which wait, in line order. lockctl's
// status, ls and release and the web console read through it, so they
// agree on what a hold is and on when it is safe to break one.
package holds
