#!/usr/bin/env bash
# Per-invocation wall time of `lockctl run x -- true` against
# `etcdctl lock x true` and `flock x true`, in one run on one etcd.
#
#   scripts/lockctl-bench.sh [N]      (N invocations each, default 50)
#
# It builds lockctl from this tree and etcdctl (v3.7.3, from the Go module
# proxy, with a three-line main in a temp dir: nothing is committed), starts
# `lockctl dev` on a free port, and prints the mean and median per call.
set -euo pipefail
n=${1:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'kill $dev 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

(cd "$here" && go build -o "$tmp/lockctl" ./cmd/lockctl && go build -o "$tmp/lockctl-dev" ./cmd/lockctl-dev)
mkdir "$tmp/etcdctl-src"
cat > "$tmp/etcdctl-src/main.go" <<'GO'
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
GO
(cd "$tmp/etcdctl-src" && go mod init etcdctlbench >/dev/null 2>&1 &&
	go get go.etcd.io/etcd/etcdctl/v3@v3.7.3 >/dev/null 2>&1 &&
	go build -o "$tmp/etcdctl" .)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tmp/lockctl-dev" --listen "127.0.0.1:$port" > "$tmp/dev.log" 2>&1 &
dev=$!
export LOCKCTL_ENDPOINTS="127.0.0.1:$port"
for _ in $(seq 100); do "$tmp/lockctl" status x > /dev/null 2>&1 && break; sleep 0.1; done

# The three commands take turns, call by call, so that a change in the
# machine's load falls on all of them alike.
t_lockctl=() t_etcdctl=() t_flock=()
now() { date +%s%N; }
for _ in $(seq "$n"); do
	t0=$(now); "$tmp/lockctl" run bench -- true > /dev/null
	t1=$(now); "$tmp/etcdctl" --endpoints "127.0.0.1:$port" lock bench true > /dev/null
	t2=$(now); flock "$tmp/lockfile" true
	t3=$(now)
	t_lockctl+=($(( (t1 - t0) / 1000 ))) t_etcdctl+=($(( (t2 - t1) / 1000 ))) t_flock+=($(( (t3 - t2) / 1000 )))
done
report() { # name micros...
	local name=$1; shift
	printf '%s\n' "$@" | sort -n | awk -v name="$name" '
		{ a[NR] = $1; s += $1 }
		END { printf "%-28s mean %6.2f ms   median %6.2f ms   (%d calls)\n", name, s/NR/1000, a[int((NR+1)/2)]/1000, NR }'
}
echo "etcd: lockctl dev on 127.0.0.1:$port"
report "lockctl run bench -- true" "${t_lockctl[@]}"
report "etcdctl lock bench true" "${t_etcdctl[@]}"
report "flock FILE true" "${t_flock[@]}"
