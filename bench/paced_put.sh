#!/usr/bin/env bash
# Puts at a steady rate from many clients against a fresh single member
# (etcd or etcdpp), the shape of `etcdctl check perf` without the Go tool's
# own CPU: 100 connections, 500 clients, 256-byte keys spread over a large
# key space, 1 KiB values, `etcdpp-bench --rate`. Prints the member's CPU
# per put (utime + stime from /proc) beside the tool's JSON summary.
#   bench/paced_put.sh SERVER BENCH PORT RATE TOTAL
#   bench/paced_put.sh /usr/bin/etcd build/bin/etcdpp-bench 42700 7000 210000
set -u
server=$1 bench=$2 port=$3 rate=$4 total=$5
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir"
t0=$(ticks)
out=$("$bench" --endpoints "127.0.0.1:$port" --json --conns 100 --clients 500 --total "$total" \
  put --key-size 256 --val-size 1024 --key-space-size 1000000000 --rate "$rate" 2>/dev/null)
t1=$(ticks)
echo "$(basename "$server") at $rate/s: member $(echo "$t0 $t1 $total" |
  awk '{printf "%.1f us/put (%.1f s)", ($2 - $1) * 10000 / $3, ($2 - $1) / 100}')" \
  "$(echo "$out" | grep -o '"requests_per_s":[0-9.]*\|"average_ms":[0-9.]*\|"p99_ms":[0-9.]*\|"failed":[0-9]*\|"bench_cpu_s":[0-9.]*' | tr '\n' ' ')"
