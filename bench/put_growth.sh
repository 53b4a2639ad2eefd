#!/usr/bin/env bash
# One fresh single member under the same put load again and again, so that
# its store grows under it (compare.py's put: 1000 clients over 100
# connections, 8-byte keys from a space of TOTAL, 256-byte values; each
# round rewrites those keys, adding TOTAL revisions). Works for etcd and
# etcdpp alike (both take etcd's flags):
#   bench/put_growth.sh SERVER BENCH PORT [ROUNDS] [TOTAL] [server flags...]
#   bench/put_growth.sh build/bin/etcdpp build/bin/etcdpp-bench 42400 7
# Prints per round: requests/s, p99 (s), the member's CPU per put (µs, from
# /proc/PID/stat), its peak RSS and its anonymous and file-backed RSS
# (MiB), then the data dir's size.
set -euo pipefail
server=$1 bench=$2 port=$3 rounds=${4:-7} total=${5:-50000}
shift $(($# < 5 ? $# : 5))
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir" "$@"
for round in $(seq "$rounds"); do
  start=$(ticks)
  summary=$("$bench" --endpoints "127.0.0.1:$port" --conns 100 --clients 1000 --total "$total" \
    put --key-size 8 --val-size 256 --key-space-size "$total" |
    awk '/Requests\/sec/ {rate = $2} /99% in/ {p99 = $3} END {print rate, p99}')
  end=$(ticks)
  read -r rate p99 <<<"$summary"
  memory=$(awk '/^(VmHWM|RssAnon|RssFile)/ {printf "%s %d MiB  ", $1, $2 / 1024}' \
    "/proc/$pid/status")
  # Ticks are 1/100 s: µs per put = ticks * 10^4 / puts.
  echo "round $round: $rate puts/s, p99 $p99 s, $(((end - start) * 10000 / total)) us/put, $memory"
done
echo "data dir: $(du -sh "$dir/data" | cut -f1)"
