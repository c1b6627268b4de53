//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/chaos"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// participantMain is a B1 participant process: round after round it
// enters the double barrier, works, leaves, and waits on the single
// barrier, until SIGTERM. It reports on stdout, times in Unix nanoseconds:
//
//	ENTERED <own key's create revision> <ready marker's create revision> <its value>
//	LEFT <last of the round> <keys of the round still present>
//	WAITED <call> <return>
//	FAILED <enter|leave|wait> <quoted error>
func participantMain() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ttl, err1 := strconv.Atoi(os.Getenv("CHAOS_TTL"))
	count, err2 := strconv.Atoi(os.Getenv("CHAOS_COUNT"))
	seed, err3 := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	dname, bname := os.Getenv("CHAOS_NAME"), os.Getenv("CHAOS_BARRIER")
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv("CHAOS_ENDPOINTS"), ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	r := rand.New(rand.NewPCG(seed, 1))
	emit := func(fields ...any) { fmt.Fprintln(os.Stdout, fields...) }
	failed := func(op string, err error) { emit("FAILED", op, strconv.Quote(errText(err))) }
	get := func(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cli.Get(gctx, key, opts...)
	}
	b := barrier.New(cli, bname)
	ss := newSessions(cli, concurrency.WithTTL(ttl))
	defer ss.close()
	for ctx.Err() == nil {
		s, _, err := ss.next()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		db := barrier.NewDouble(s, dname, count)
		ectx, cancel := context.WithTimeout(ctx, b1Stuck)
		err = db.Enter(ectx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				failed("enter", err)
			}
			continue
		}
		var own, readyRev, lastIn int64
		if resp, err := get(db.Key()); err == nil && len(resp.Kvs) == 1 {
			own = resp.Kvs[0].CreateRevision
		}
		if resp, err := get(dname + "/ready"); err == nil && len(resp.Kvs) == 1 {
			readyRev = resp.Kvs[0].CreateRevision
			lastIn, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
		}
		emit("ENTERED", own, readyRev, lastIn)
		time.Sleep(chaos.Uniform(r, 0, 300*time.Millisecond))
		lctx, cancel := context.WithTimeout(ctx, b1Stuck)
		err = db.Leave(lctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				failed("leave", err)
			}
		} else if lastIn > 0 {
			if resp, err := get(dname+"/waiters/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err == nil {
				inside := 0
				for _, kv := range resp.Kvs {
					if kv.CreateRevision <= lastIn {
						inside++
					}
				}
				emit("LEFT", lastIn, inside)
			}
		}
		call := time.Now().UnixNano()
		wctx, cancel := context.WithTimeout(ctx, b1Stuck)
		err = b.Wait(wctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				failed("wait", err)
			}
			continue
		}
		emit("WAITED", call, time.Now().UnixNano())
	}
	return nil
}
