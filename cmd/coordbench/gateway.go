package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/examples/gateway/gw"
	"github.com/coordkit/coordkit/registry"
)

// gatewayCallers is how many requests are in flight at once.
const gatewayCallers = 8

func gatewayWorkloads() []workload {
	// One op is one HTTP GET answered 200; the other side sends the same
	// requests straight to the backend, so the difference in latency is
	// what the gateway adds (routing, instance choice, the second hop).
	return []workload{
		{name: "gateway/proxy", unit: "requests", ours: viaGateway(true), theirs: viaGateway(false), vs: "backend direct"},
	}
}

// viaGateway starts a backend that registers itself and, if through is
// set, a gateway routing to it, then sends requests (to the gateway, or to
// the backend directly) from gatewayCallers goroutines for e.duration.
func viaGateway(through bool) side {
	return func(ctx context.Context, e *env) (result, error) {
		cli, err := e.client()
		if err != nil {
			return result{}, err
		}
		stop, backend, err := serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok\n")
		}))
		if err != nil {
			return result{}, err
		}
		defer stop()
		services := e.prefix + "services"
		reg, err := registry.Register(ctx, cli, registry.Instance{Service: services + "/echo", ID: "echo-1", Addr: backend})
		if err != nil {
			return result{}, err
		}
		defer reg.Deregister(context.WithoutCancel(ctx))
		target := backend
		if through {
			routes := e.prefix + "routes"
			if _, err := config.Publish(ctx, cli, routes, []byte(`[{"method":"GET","path":"/echo/*","service":"echo"}]`), config.WithValidator(gw.ValidRoutes)); err != nil {
				return result{}, err
			}
			g, err := gw.NewGateway(ctx, cli, routes, services)
			if err != nil {
				return result{}, err
			}
			defer g.Close()
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			n := len(g.Instances(wctx, "echo"))
			cancel()
			if n != 1 {
				return result{}, errors.New("gateway: the backend is not listed")
			}
			gstop, addr, err := serveHTTP(g)
			if err != nil {
				return result{}, err
			}
			defer gstop()
			target = addr
		}
		return hammer(ctx, e, "http://"+target+"/echo/x")
	}
}

// hammer GETs url from gatewayCallers goroutines for e.duration, each
// waiting for one answer before sending the next.
func hammer(ctx context.Context, e *env, url string) (result, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: gatewayCallers}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	var (
		mu   sync.Mutex // guards r, ferr
		r    result
		ferr error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range gatewayCallers {
		wg.Go(func() {
			for time.Since(start) < e.duration && ctx.Err() == nil {
				t0 := time.Now()
				err := get(ctx, hc, url)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					ferr = errors.Join(ferr, err)
					mu.Unlock()
					return
				}
				r.ops++
				r.lat = append(r.lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r, ferr
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// serveHTTP serves h on a free local port until stop, which waits for the
// server to end.
func serveHTTP(h http.Handler) (stop func(), addr string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() {
		srv.Close()
		<-done
	}, ln.Addr().String(), nil
}
