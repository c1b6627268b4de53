package election_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/coordkit/coordkit/election"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example campaigns, announces a new value as leader, uses the fencing
// token for a guarded write to etcd, and resigns.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()

	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // ends every leadership held through the session

	e := election.New(s, "/example/scheduler")
	if err := e.Campaign(ctx, "host-a:starting"); err != nil {
		log.Fatal(err)
	}
	if err := e.Proclaim(ctx, "host-a:ready"); err != nil {
		log.Fatal(err)
	}
	li, err := e.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", li.Value, "token:", li.Token == e.Token())

	// This write commits only while this candidate still leads.
	resp, err := e.Txn(ctx).Then(clientv3.OpPut("/example/scheduler-epoch", fmt.Sprint(e.Token()))).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("guarded write committed:", resp.Succeeded)

	if err := e.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = e.Leader(ctx)
	fmt.Println("after resign:", errors.Is(err, election.ErrNoLeader))
	cli.Delete(ctx, "/example/scheduler-epoch")
	// Output:
	// leader: host-a:ready token: true
	// guarded write committed: true
	// after resign: true
}

// ExampleElection_Observe follows an election from the start: nobody
// leads, then a leader, then nobody again.
func ExampleElection_Observe() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	s, err := concurrency.NewSession(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := election.New(s, "/example/observed")
	changes := watcher.Observe(ctx)
	show := func() {
		if li := <-changes; li.Key == "" {
			fmt.Println("nobody leads")
		} else {
			fmt.Println("leader:", li.Value)
		}
	}
	show()

	e := election.New(s, "/example/observed")
	if err := e.Campaign(ctx, "host-b"); err != nil {
		log.Fatal(err)
	}
	show()
	if err := e.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	show()
	// Output:
	// nobody leads
	// leader: host-b
	// nobody leads
}

// ExampleElection_Watch follows the leader until the client is closed, and
// then learns why the channel closed.
func ExampleElection_Watch() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	s, err := concurrency.NewSession(cli)
	if err != nil {
		log.Fatal(err)
	}
	w := election.New(s, "/example/watched").Watch(context.Background())
	li := <-w.Leaders()
	fmt.Println("nobody leads:", li.Key == "")

	s.Close()
	cli.Close() // ends the Watcher, although its context lives on
	for range w.Leaders() {
	}
	fmt.Println("client closed:", errors.Is(w.Err(), election.ErrClosed))
	// Output:
	// nobody leads: true
	// client closed: true
}

// ExampleRun runs a singleton worker: of all the processes that run this,
// one at a time does the work. Cancelling Run's context (on SIGTERM, say)
// stops the work and resigns, so another process takes over at once.
func ExampleRun() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx, shutdown := context.WithCancel(context.Background())
	defer shutdown()

	started := make(chan struct{})
	go func() { <-started; shutdown() }() // a SIGTERM, once it leads

	err = election.Run(ctx, cli, "/example/compactor", func(ctx context.Context, e *election.Election) error {
		fmt.Println("leading with a fencing token:", e.Token() > 0)
		close(started)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				// Leadership lost, or Run stopping: stop at once.
				fmt.Println("work stopped")
				return ctx.Err()
			case <-tick.C:
				// One round of the work, with writes fenced by e.Txn.
			}
		}
	}, election.WithTTL(5*time.Second), election.WithValue("host-c"))
	fmt.Println("run ended by shutdown:", errors.Is(err, context.Canceled))
	// Output:
	// leading with a fencing token: true
	// work stopped
	// run ended by shutdown: true
}

// ExampleElection_TryCampaign leads only if nobody else does, without
// waiting in line.
func ExampleElection_TryCampaign() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	s1, err := concurrency.NewSession(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer s1.Close()
	s2, err := concurrency.NewSession(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer s2.Close()

	first := election.New(s1, "/example/try")
	if err := first.TryCampaign(ctx, "first"); err != nil {
		log.Fatal(err)
	}
	second := election.New(s2, "/example/try")
	err = second.TryCampaign(ctx, "second")
	fmt.Println("second leads:", err == nil, "leader exists:", errors.Is(err, election.ErrLeaderExists))
	if err := first.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// second leads: false leader exists: true
}
