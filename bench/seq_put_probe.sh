#!/usr/bin/env bash
# A sequential put beside the disk's own flush: on one fresh single member,
# ROUNDS times a bare loop of 1,000 256-byte pwrite + fdatasync in the
# member's directory (compare.py's fdatasync_loop: the floor a put cannot
# beat), then PUTS puts from one client over one connection (8-byte keys,
# 256-byte values). Works for etcd and etcdpp alike:
#   bench/seq_put_probe.sh SERVER BENCH PORT [ROUNDS] [PUTS] [server flags...]
#   bench/seq_put_probe.sh build/bin/etcdpp build/bin/etcdpp-bench 42500 3
# Prints per round: the probe's average flush (ms), the puts' average and
# p99 (ms), their ratio to the flush, and the member's CPU per put (µs, from
# /proc/PID/stat).
set -euo pipefail
server=$1 bench=$2 port=$3 rounds=${4:-3} puts=${5:-3000}
shift $(($# < 5 ? $# : 5))
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir" "$@"
for round in $(seq "$rounds"); do
  flush=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import compare
print(compare.fdatasync_loop(sys.argv[2], 1000)["average_ms"])' "$(dirname "$0")" "$dir")
  start=$(ticks)
  summary=$("$bench" --endpoints "127.0.0.1:$port" --json --conns 1 --clients 1 --total "$puts" \
    put --key-size 8 --val-size 256 --key-space-size "$puts" 2>/dev/null | grep '^{' |
    /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["average_ms"], d["p99_ms"])')
  end=$(ticks)
  read -r avg p99 <<<"$summary"
  ratio=$(awk -v a="$avg" -v f="$flush" 'BEGIN {printf "%.2f", a / f}')
  echo "round $round: fdatasync $flush ms, put avg $avg ms p99 $p99 ms ($ratio x), $(((end - start) * 10000 / puts)) us/put"
done
