#!/usr/bin/env bash
# A fresh single member's CPU per request, by thread name, over one load.
# Works for etcd and etcdpp alike (both take etcd's flags):
#   bench/thread_cpu.sh SERVER BENCH PORT LOAD [TOTAL] [server flags...]
#   bench/thread_cpu.sh /usr/bin/etcd build/bin/etcdpp-bench 42400 put
#   bench/thread_cpu.sh build/bin/etcdpp build/bin/etcdpp-bench 42400 put 50000 \
#     --h2-front=false
# LOAD: put (TOTAL puts, default 50000, 1000 clients over 100 connections,
# 8-byte keys from a space of TOTAL, 256-byte values: compare.py's put) or
# seq-put (one client, one connection).
# Prints the process's CPU ticks (1/100 s) over the load and per request,
# its peak RSS, then per thread name the ticks of the threads alive at the
# end (threads that ended during the load are only in the process line;
# Go's threads are unnamed, so etcd has one row), then the load
# generator's summary lines and the 1-minute load average.
set -euo pipefail
server=$1 bench=$2 port=$3 load=$4 total=${5:-50000}
shift $(($# < 5 ? $# : 5))
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir" "$@"
case $load in
  put) args=(--conns 100 --clients 1000 --total "$total" put --key-size 8 --val-size 256
             --key-space-size "$total") ;;
  seq-put) args=(--conns 1 --clients 1 --total "$total" put --key-size 8 --val-size 256) ;;
  *) echo "unknown load $load" >&2; exit 2 ;;
esac
# "name ticks" per thread name, summed over the threads of that name.
by_thread() {
  for task in /proc/"$pid"/task/*; do
    echo "$(tr ' ' '_' <"$task/comm") $(awk '{print $14 + $15}' "$task/stat" 2>/dev/null || echo 0)"
  done | awk '{sum[$1] += $2} END {for (n in sum) print n, sum[n]}' | sort
}
by_thread >"$dir/before"
start=$(ticks)
"$bench" --endpoints "127.0.0.1:$port" "${args[@]}" >"$dir/bench.out" 2>&1
end=$(ticks)
by_thread >"$dir/after"
awk -v t=$((end - start)) -v n="$total" -v kb="$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")" \
  'BEGIN {printf "process %d ticks, %.1f us/request, peak RSS %d MiB\n", t, t * 10000 / n, kb / 1024}'
join -a 2 -e 0 -o 0,1.2,2.2 "$dir/before" "$dir/after" |
  awk -v n="$total" '$3 > $2 {printf "  %-20s %6d ticks %7.1f us/request\n", $1, $3 - $2, ($3 - $2) * 10000 / n}'
grep -E "Requests/sec|Average|99%" "$dir/bench.out" | sed 's/^ */  /'
echo "  load average $(cut -d' ' -f1 /proc/loadavg)"
