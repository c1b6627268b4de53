package waitq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// keyLog records the key ranges of every request a client sends: KV
// requests, the requests inside a Txn, and watch creations.
type keyLog struct {
	mu     sync.Mutex
	ranges [][2]string // guarded by mu; key, range end ("" for one key)
}

func (l *keyLog) add(key, end []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ranges = append(l.ranges, [2]string{string(key), string(end)})
}

func (l *keyLog) addOps(ops []*pb.RequestOp) {
	for _, op := range ops {
		switch {
		case op.GetRequestRange() != nil:
			l.add(op.GetRequestRange().Key, op.GetRequestRange().RangeEnd)
		case op.GetRequestPut() != nil:
			l.add(op.GetRequestPut().Key, nil)
		case op.GetRequestDeleteRange() != nil:
			l.add(op.GetRequestDeleteRange().Key, op.GetRequestDeleteRange().RangeEnd)
		case op.GetRequestTxn() != nil:
			l.addTxn(op.GetRequestTxn())
		}
	}
}

func (l *keyLog) addTxn(t *pb.TxnRequest) {
	for _, c := range t.Compare {
		l.add(c.Key, c.RangeEnd)
	}
	l.addOps(t.Success)
	l.addOps(t.Failure)
}

func (l *keyLog) record(req any) {
	switch r := req.(type) {
	case *pb.RangeRequest:
		l.add(r.Key, r.RangeEnd)
	case *pb.PutRequest:
		l.add(r.Key, nil)
	case *pb.DeleteRangeRequest:
		l.add(r.Key, r.RangeEnd)
	case *pb.TxnRequest:
		l.addTxn(r)
	case *pb.WatchRequest:
		if c := r.GetCreateRequest(); c != nil {
			l.add(c.Key, c.RangeEnd)
		}
	}
}

// outside returns the recorded ranges that reach outside prefix.
func (l *keyLog) outside(prefix string) []string {
	end := clientv3.GetPrefixRangeEnd(prefix)
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.ranges {
		in := r[0] >= prefix && r[0] < end && (r[1] == "" || (r[1] != "\x00" && r[1] <= end))
		if !in {
			out = append(out, fmt.Sprintf("[%q, %q)", r[0], r[1]))
		}
	}
	return out
}

type loggedStream struct {
	grpc.ClientStream
	log *keyLog
}

func (s loggedStream) SendMsg(m any) error {
	s.log.record(m)
	return s.ClientStream.SendMsg(m)
}

// keyLoggingClient is a client of srv whose requests' keys are recorded.
func keyLoggingClient(t *testing.T) (*clientv3.Client, *keyLog) {
	l := &keyLog{}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		l.record(req)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return loggedStream{cs, l}, nil
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   srv.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli, l
}

// TestKeysStayUnderName: a waiter that waits behind a holder, as lockctl's
// mutex, semaphore, rwmutex and election do, sends no request for a key
// outside the primitive's name (etcd's RBAC would refuse it for a user
// allowed only that prefix), including the session's stream keeper.
func TestKeysStayUnderName(t *testing.T) {
	tests := []struct {
		name string
		new  func(s *concurrency.Session, name string) (lock, unlock func(context.Context) error)
	}{
		{"mutex", func(s *concurrency.Session, name string) (func(context.Context) error, func(context.Context) error) {
			m := mutex.New(s, name)
			return m.Lock, m.Unlock
		}},
		{"semaphore", func(s *concurrency.Session, name string) (func(context.Context) error, func(context.Context) error) {
			m := semaphore.New(s, name, 1)
			return func(ctx context.Context) error { return m.Acquire(ctx, 1) }, func(ctx context.Context) error { return m.Release(ctx) }
		}},
		{"rwmutex", func(s *concurrency.Session, name string) (func(context.Context) error, func(context.Context) error) {
			m := rwmutex.New(s, name)
			return m.Lock, m.Unlock
		}},
		{"election", func(s *concurrency.Session, name string) (func(context.Context) error, func(context.Context) error) {
			e := election.New(s, name)
			return func(ctx context.Context) error { return e.Campaign(ctx, "v") }, e.Resign
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			other, _ := keyLoggingClient(t)
			pfx := testutil.Prefix(t, other)
			name := pfx + "name"
			lock1, unlock1 := tt.new(testutil.Session(t, other, 10), name)
			require.NoError(t, lock1(ctx))

			cli, log := keyLoggingClient(t)
			s := testutil.Session(t, cli, 10)
			lock2, unlock2 := tt.new(s, name)
			got := make(chan error, 1)
			go func() { got <- lock2(ctx) }()
			// Once the waiter is in line, it waits behind the holder.
			require.Eventually(t, func() bool {
				resp, err := other.Get(ctx, name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
				return err == nil && resp.Count == 2
			}, 30*time.Second, 10*time.Millisecond)
			require.NoError(t, unlock1(ctx))
			require.NoError(t, <-got)
			require.NoError(t, unlock2(ctx))
			require.Empty(t, log.outside(name+"/"), "requests outside %s/", name)
		})
	}
}
