package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// repairer keeps key stored on cli until ctx ends, putting it back when
// it is deleted; it returns once it has stored it, and a func that waits
// for it to stop.
type repairer func(ctx context.Context, cli *clientv3.Client, svc, addr string) (wait func(), err error)

func registryRepairer(ctx context.Context, cli *clientv3.Client, svc, addr string) (func(), error) {
	r, err := registry.Register(ctx, cli, registry.Instance{Service: svc, ID: addr, Addr: addr})
	if err != nil {
		return nil, err
	}
	return func() { r.Deregister(context.WithoutCancel(ctx)) }, nil
}

// watchRepairer is the least a repair can cost: a watch on the key that
// puts it back at once on its delete event.
func watchRepairer(ctx context.Context, cli *clientv3.Client, svc, addr string) (func(), error) {
	key, val := svc+"/"+addr, `{"Op":0,"Addr":"`+addr+`","Metadata":null}`
	resp, err := cli.Put(ctx, key, val)
	if err != nil {
		return nil, err
	}
	wch := cli.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					cli.Put(ctx, key, val)
				}
			}
		}
	}()
	return func() { <-done; cli.Delete(context.WithoutCancel(ctx), key) }, nil
}

// repair deletes an instance's key from another client and measures the
// time from the delete's response to a third client's watch seeing the
// key put back.
func repair(rep repairer) side {
	return func(ctx context.Context, e *env) (result, error) {
		var r result
		svc := strings.TrimSuffix(e.prefix, "/") + "/svc"
		addr := "host-1:80"
		key := svc + "/" + addr
		rcli, err := e.client()
		if err != nil {
			return r, err
		}
		dcli, err := e.client()
		if err != nil {
			return r, err
		}
		rctx, stop := context.WithCancel(ctx)
		wait, err := rep(rctx, rcli, svc, addr)
		if err != nil {
			stop()
			return r, err
		}
		defer func() { stop(); wait() }()
		get, err := dcli.Get(ctx, key)
		if err != nil {
			return r, err
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wch := dcli.Watch(wctx, key, clientv3.WithRev(get.Header.Revision+1))
		start := time.Now()
		for time.Since(start) < e.duration || r.ops == 0 {
			del, err := dcli.Delete(ctx, key)
			if err != nil {
				return r, err
			}
			t0 := time.Now()
			if del.Deleted != 1 {
				return r, fmt.Errorf("repair: the key was not there to delete")
			}
			timeout := time.After(10 * time.Second)
		back:
			for {
				select {
				case resp, ok := <-wch:
					if !ok || resp.Err() != nil {
						return r, fmt.Errorf("repair: watch ended: %v", resp.Err())
					}
					for _, ev := range resp.Events {
						if ev.Type == clientv3.EventTypePut && ev.Kv.ModRevision > del.Header.Revision {
							break back
						}
					}
				case <-timeout:
					return r, fmt.Errorf("repair: the key was not put back within 10 s")
				}
			}
			r.lat = append(r.lat, time.Since(t0))
			r.ops++
		}
		r.elapsed = time.Since(start)
		return r, nil
	}
}
