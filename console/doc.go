// Package console serves a small web console for what coordkit keeps in
// etcd: who holds or waits for each lock, semaphore and rwmutex, who leads
// each election, which instances of each service are registered, and each
// configuration's versions, with a diff between two of them.
//
// [Handler] returns an [http.Handler] that can be served on its own (as
// "lockctl console" does) or mounted in a program's own server. It reads
// only under the prefixes given with [WithPrefix], so an etcd user whose
// role covers some prefixes only sees those; a prefix etcd refuses is
// shown as refused on the page. Pages update live: one etcd watch per
// prefix, shared by every open page and kept only while a page is open,
// tells the browser (through server-sent events) which prefix changed,
// and the page fetches that prefix's tables again. Nothing polls etcd.
//
// The console is read-only unless [WithWrite] is given. Then it can break
// a stuck hold (by the rules of "lockctl release": only a lease that
// carries holds only), roll a configuration back and publish a new value
// (through the validator given with [WithValidator]). Every action asks
// for confirmation first, and every POST must carry the handler's own
// token and, when the browser sends one, an Origin of the same host.
//
// The templates are parsed at the first request, so a program that
// embeds the console pays nothing for it at start-up.
package console
