package waitq

// idleSuffix, after a primitive's prefix, is the key the session's stream
// keeper watches ([session.State.KeepStream]): under the name the user
// gave, so that a user whom etcd's RBAC allows only that prefix may watch
// it. Nothing writes it (no waiter key starts with a NUL byte); were
// something to, the keeper would only drain the events.
const idleSuffix = "\x00coordkit-idle-watch"
