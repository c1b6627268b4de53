// Config-center shows a service that reloads a typed configuration live
// from coordkit's config package, and what protects it from bad values.
//
//	go run ./examples/config-center [-endpoints URLS]
//
// A pricing service watches its configuration (a discount and a banner)
// and reprices as soon as a new version is published. A publish the
// validator refuses writes nothing; values forced past the validator (a
// publisher that skips it, a raw etcdctl put) are never applied by the
// watcher, which keeps the last good one and reports them; a rollback
// publishes an old version again and the old behaviour returns. Finally
// the history, which survives etcd's compaction, and a diff.
//
// With no -endpoints it starts an embedded etcd. It exits non-zero if
// anything it shows did not hold.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/examples/internal/demo"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// name is the configuration's name; "/examples/config-center/prod/" is its
// namespace, the prefix an etcd role would grant.
const name = "/examples/config-center/prod/pricing"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "config-center:", err)
		os.Exit(1)
	}
}

// Pricing is the service's typed configuration.
type Pricing struct {
	DiscountPct int    `json:"discount_pct"`
	Banner      string `json:"banner"`
}

// decode reads and checks a Pricing: the service's own idea of a good value.
func decode(b []byte) (Pricing, error) {
	var p Pricing
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, err
	}
	switch {
	case p.DiscountPct < 0 || p.DiscountPct > 50:
		return p, fmt.Errorf("discount_pct %d is not within 0..50", p.DiscountPct)
	case p.Banner == "":
		return p, errors.New("banner is empty")
	}
	return p, nil
}

func validate(b []byte) error { _, err := decode(b); return err }

// service is the pricing service: it prices with whatever configuration
// its watcher holds now, and logs each reload.
type service struct {
	w *config.Watcher[Pricing]

	mu      sync.Mutex // guards reloads
	reloads []string
}

func (s *service) price(cents int) int { return cents * (100 - s.w.Load().DiscountPct) / 100 }

func (s *service) onReload(old, new Pricing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads = append(s.reloads, fmt.Sprintf("%d%% -> %d%%", old.DiscountPct, new.DiscountPct))
}

// reloadLog returns the reloads so far, one "old -> new" line each.
func (s *service) reloadLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reloads...)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "config-center", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	ops, err := env.Client() // the operator publishing
	if err != nil {
		return err
	}
	host, err := env.Client() // the host running the service
	if err != nil {
		return err
	}
	defer ops.Delete(context.WithoutCancel(ctx), name+"/", clientv3.WithPrefix())
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pub := func(data string, comment string, opts ...config.Option) (int64, error) {
		opts = append(opts, config.WithAuthor("ops@example"), config.WithComment(comment))
		return config.Publish(ctx, ops, name, []byte(data), opts...)
	}
	checked := config.WithValidator(validate)

	env.Say("== a service starts on version 1 and reloads live")
	v1, err := pub(`{"discount_pct":10,"banner":"spring sale"}`, "launch", checked)
	if err != nil {
		return err
	}
	w, err := config.Watch(ctx, host, name, decode, config.WithValidator(validate))
	if err != nil {
		return err
	}
	defer w.Close()
	s := &service{w: w}
	w.Subscribe(s.onReload)
	if err := expect(env, s, v1, 9000); err != nil {
		return err
	}
	v2, err := pub(`{"discount_pct":20,"banner":"summer sale"}`, "bigger discount", checked)
	if err != nil {
		return err
	}
	if err := w.WaitFor(ctx, v2); err != nil {
		return err
	}
	env.Say("  published version %d; the service reloaded (%s) without a restart", v2, s.reloadLog()[0])
	if err := expect(env, s, v2, 8000); err != nil {
		return err
	}

	env.Say("")
	env.Say("== a bad publish is refused by the validator")
	_, err = pub(`{"discount_pct":90,"banner":"oops"}`, "typo", checked)
	if !errors.Is(err, config.ErrInvalid) {
		return fmt.Errorf("a 90%% discount was not refused: %v", err)
	}
	env.Say("  refused: %v", err)
	cur, err := config.Get(ctx, ops, name)
	if err != nil {
		return err
	}
	if cur.Version != v2 {
		return fmt.Errorf("current version %d after a refused publish, want %d", cur.Version, v2)
	}
	env.Say("  nothing was written: the current version is still %d", cur.Version)

	env.Say("")
	env.Say("== bad values forced past the validator are never applied")
	reloads := len(s.reloadLog())
	if _, err := pub(`{"discount_pct":90,"banner":"oops"}`, "published without the check"); err != nil {
		return err
	}
	if err := awaitError(ctx, env, w, config.ErrInvalid); err != nil {
		return err
	}
	if _, err := ops.Put(ctx, name+"/current", `{"discount_pct":100}`); err != nil {
		return err
	}
	env.Say("  etcdctl put %s/current '{\"discount_pct\":100}'", name)
	if err := awaitError(ctx, env, w, config.ErrMalformed); err != nil {
		return err
	}
	if n := len(s.reloadLog()); n != reloads {
		return fmt.Errorf("the service reloaded %d times on bad values", n-reloads)
	}
	if err := expect(env, s, v2, 8000); err != nil {
		return err
	}

	env.Say("")
	env.Say("== a rollback restores version 1's behaviour")
	v4, err := config.Rollback(ctx, ops, name, v1, checked, config.WithAuthor("ops@example"))
	if err != nil {
		return err
	}
	if err := w.WaitFor(ctx, v4); err != nil {
		return err
	}
	env.Say("  rolled back to version %d as version %d", v1, v4)
	if err := expect(env, s, v4, 9000); err != nil {
		return err
	}

	env.Say("")
	env.Say("== the history (its own keys: etcd's compaction does not remove it)")
	if env.Embedded() != nil { // never compact someone's own etcd
		resp, err := ops.Get(ctx, name+"/current")
		if err != nil {
			return err
		}
		if _, err := ops.Compact(ctx, resp.Header.Revision); err != nil {
			return err
		}
		env.Say("  (compacted etcd's MVCC history up to revision %d)", resp.Header.Revision)
	}
	hist, err := config.History(ctx, ops, name, 0)
	if err != nil {
		return err
	}
	for _, h := range hist {
		env.Say("  v%d by %s: %-28s %s", h.Version, h.Author, h.Comment, h.Data)
	}
	if len(hist) != int(v4) {
		return fmt.Errorf("%d versions in the history, want %d", len(hist), v4)
	}
	env.Say("  diff v%d v%d:", hist[2].Version, hist[0].Version)
	for _, l := range strings.Split(strings.TrimRight(config.Diff(hist[2], hist[0]), "\n"), "\n") {
		env.Say("    %s", l)
	}
	env.Say("")
	env.Say("All of it held: the service only ever ran with good values.")
	return nil
}

// expect checks that the service runs on version v and prices 100.00 at
// want cents.
func expect(env *demo.Env, s *service, v int64, want int) error {
	cfg, got := s.w.Load(), s.price(10000)
	env.Say("  version %d: %q, 100.00 costs %d.%02d", s.w.Version(), cfg.Banner, got/100, got%100)
	if s.w.Version() != v || got != want {
		return fmt.Errorf("version %d prices 100.00 at %d cents, want version %d at %d", s.w.Version(), got, v, want)
	}
	return nil
}

// awaitError waits for the watcher to report an error that is target.
func awaitError(ctx context.Context, env *demo.Env, w *config.Watcher[Pricing], target error) error {
	for {
		select {
		case err := <-w.Errors():
			if errors.Is(err, target) {
				env.Say("  the watcher kept version %d and reported: %v", w.Version(), err)
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("the watcher did not report %v: %w", target, ctx.Err())
		}
	}
}
