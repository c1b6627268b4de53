package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coordkit/coordkit/queue"
	clientv3 "go.etcd.io/etcd/client/v3"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"
	"google.golang.org/grpc"
)

func queueWorkloads() []workload {
	var ws []workload
	for _, c := range []int{1, 4} {
		ws = append(ws, workload{
			name: fmt.Sprintf("queue/pipeline-P1-C%d", c), unit: "items",
			ours: queueLoop(1, c, ourQueue), theirs: queueLoop(1, c, recipeQueue), vs: "etcd recipe.Queue",
		})
	}
	ws = append(ws, workload{
		name: "queue/pipeline-P2-C4", unit: "items",
		ours: queueLoop(2, 4, ourQueue), theirs: queueLoop(2, 4, recipeQueue), vs: "etcd recipe.Queue",
	})
	return ws
}

// fifo is what both queues offer. recipe.Queue takes no context: its
// blocked Dequeue can only be ended by an item, so both sides are stopped
// with one "stop" item per consumer.
type fifo interface {
	enqueue(ctx context.Context, v string) error
	dequeue(ctx context.Context) (string, error)
}

type newFIFO func(cli *clientv3.Client, name string) fifo

type ourFIFO struct{ q *queue.Queue }

func ourQueue(cli *clientv3.Client, name string) fifo { return ourFIFO{queue.New(cli, name)} }

func (o ourFIFO) enqueue(ctx context.Context, v string) error { return o.q.Enqueue(ctx, []byte(v)) }

func (o ourFIFO) dequeue(ctx context.Context) (string, error) {
	it, err := o.q.Dequeue(ctx)
	return string(it.Value), err
}

type recipeFIFO struct{ q *recipe.Queue }

func recipeQueue(cli *clientv3.Client, name string) fifo {
	return recipeFIFO{recipe.NewQueue(cli, name)}
}

func (t recipeFIFO) enqueue(_ context.Context, v string) error { return t.q.Enqueue(v) }

func (t recipeFIFO) dequeue(context.Context) (string, error) { return t.q.Dequeue() }

const stopItem = "stop"

// rpcCounter counts the RPCs a client starts: unary calls and streams
// (watches, keep-alives).
type rpcCounter struct{ n atomic.Int64 }

func (c *rpcCounter) options() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			c.n.Add(1)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			c.n.Add(1)
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}
}

// countedClient returns a client whose RPCs c counts, closed when the
// workload side ends.
func (e *env) countedClient(c *rpcCounter) (*clientv3.Client, error) {
	cc, err := e.cfg.ClientConfig()
	if err != nil {
		return nil, err
	}
	cc.DialOptions = append(cc.DialOptions, c.options()...)
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.clients = append(e.clients, cli)
	e.mu.Unlock()
	return cli, nil
}

// queueLoop runs p producers enqueueing as fast as they can for the
// duration, and c consumers, each on its own client as separate processes
// would be, dequeueing until the backlog is drained. Items per second count
// every item from the start until the last consumer is done; the latency is
// an item's, from its Enqueue call to its Dequeue's return; rpc/item counts
// the consumers' RPCs (unary calls and stream opens) per item.
func queueLoop(p, c int, mk newFIFO) side {
	return func(ctx context.Context, e *env) (result, error) {
		name := e.prefix + "q"
		var prods, cons []fifo
		for range p {
			cli, err := e.client()
			if err != nil {
				return result{}, err
			}
			prods = append(prods, mk(cli, name))
		}
		var rpcs rpcCounter
		for range c {
			cli, err := e.countedClient(&rpcs)
			if err != nil {
				return result{}, err
			}
			cons = append(cons, mk(cli, name))
		}
		defer func() {
			if cli, err := e.client(); err == nil {
				cli.Delete(context.Background(), e.prefix, clientv3.WithPrefix())
			}
		}()
		var (
			mu   sync.Mutex // guards r
			r    result
			pwg  sync.WaitGroup
			cwg  sync.WaitGroup
			errc = make(chan error, p+c)
		)
		start := time.Now()
		base := rpcs.n.Load()
		for _, q := range cons {
			cwg.Go(func() {
				for {
					v, err := q.dequeue(ctx)
					if err != nil {
						errc <- err
						return
					}
					if v == stopItem {
						return
					}
					t0, _ := strconv.ParseInt(v, 10, 64)
					mu.Lock()
					r.ops++
					r.lat = append(r.lat, time.Since(time.Unix(0, t0)))
					mu.Unlock()
				}
			})
		}
		for _, q := range prods {
			pwg.Go(func() {
				for time.Since(start) < e.duration {
					if err := q.enqueue(ctx, strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
						errc <- err
						return
					}
				}
			})
		}
		pwg.Wait()
		for range c {
			if err := prods[0].enqueue(ctx, stopItem); err != nil {
				return r, err
			}
		}
		cwg.Wait()
		r.elapsed = time.Since(start)
		close(errc)
		r.extra = map[string]float64{"rpc/item": float64(rpcs.n.Load()-base) / float64(max(1, r.ops))}
		return r, <-errc
	}
}
