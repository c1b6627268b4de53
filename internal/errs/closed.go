package errs

import "errors"

// Closed reports that the etcd client a call was using has been closed:
// nothing it could do would reach etcd again, so the call ends instead of
// waiting or retrying.
var Closed = errors.New("coordkit: client closed")
