#!/usr/bin/env bash
# System calls of the server per put, counted by strace over a put load
# (one fresh single member): total and futex, per request. strace slows the
# server down; the counts, not the times, are the result.
#   bench/grpc_metrics_syscalls.sh build/bin/etcdpp build/bin/etcdpp-bench 43300 5000
set -euo pipefail
server=$1 bench=$2 port=$3 total=$4
dir=$(mktemp -d)
pid= tracer=
trap '[ -n "$tracer" ] && kill $tracer 2>/dev/null; [ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
url="http://127.0.0.1:$port" peer="http://127.0.0.1:$((port + 1))"
"$server" --name b --data-dir "$dir/data" --listen-client-urls "$url" \
  --advertise-client-urls "$url" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
  --initial-cluster "b=$peer" --log-level error 2>/dev/null &
pid=$!
for _ in $(seq 50); do
  ETCDCTL_API=3 etcdctl --endpoints="$url" --command-timeout=1s put foo bar >/dev/null 2>&1 && break
  sleep 0.2
done
strace -c -f -p "$pid" -o "$dir/strace" 2>/dev/null &
tracer=$!
sleep 1  # strace attaches to every thread before the load starts
"$bench" --endpoints="$url" --conns 10 --clients 100 --total "$total" \
  put --key-size 8 --val-size 256 --key-space-size "$total" >/dev/null 2>&1
kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=
awk -v n="$total" '$NF == "total" {printf "syscalls %.2f /put", $4 / n}
  $NF == "futex" {printf "  futex %.2f /put", $4 / n}' "$dir/strace"
printf '  load1 %s\n' "$(cut -d' ' -f1 /proc/loadavg)"
