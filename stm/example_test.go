package stm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"

	"github.com/coordkit/coordkit/stm"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var errInsufficient = errors.New("insufficient funds")

// transfer moves amount from one account to another, or returns
// errInsufficient and changes nothing.
func transfer(ctx context.Context, cli *clientv3.Client, from, to string, amount int) (stm.Result, error) {
	return stm.Run(ctx, cli, func(tx stm.Tx) error {
		v, err := tx.GetMany(from, to)
		if err != nil {
			return err
		}
		a, _ := strconv.Atoi(v[0])
		b, _ := strconv.Atoi(v[1])
		if a < amount {
			return errInsufficient
		}
		tx.Put(from, strconv.Itoa(a-amount))
		tx.Put(to, strconv.Itoa(b+amount))
		return nil
	})
}

// Move money between two accounts atomically. The function's own error
// comes back as is.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	const alice, bob = "/example/stm/alice", "/example/stm/bob"
	defer cli.Delete(ctx, "/example/stm/", clientv3.WithPrefix())
	if _, err := cli.Put(ctx, alice, "100"); err != nil {
		log.Fatal(err)
	}

	res, err := transfer(ctx, cli, alice, bob, 30)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed after", res.Attempts, "attempt")

	_, err = transfer(ctx, cli, alice, bob, 500)
	fmt.Println(errors.Is(err, errInsufficient))

	_, err = stm.Run(ctx, cli, func(tx stm.Tx) error {
		kvs, err := tx.Range("/example/stm/", clientv3.GetPrefixRangeEnd("/example/stm/"), 0)
		for _, kv := range kvs {
			fmt.Println(kv.Key, kv.Value)
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// committed after 1 attempt
	// true
	// /example/stm/alice 70
	// /example/stm/bob 30
}
