#!/usr/bin/env bash
# Put and range speed and memory of one etcdpp build for one key size, on a
# fresh single member (the numbers of docs/mvcc.md, "Long keys: cost").
# Keys are etcd's benchmark keys: KEY_SIZE bytes holding a varint of a
# sequential index, zeros after it (the shape of `etcdctl check perf`'s).
#   1. put TOTAL keys (256-byte values), 100 clients over 10 connections;
#   2. range-1: serializable ranges ["\x02", "\x03"): one key (index 1);
#   3. range-N: serializable ranges ["\x82", "\x83"): the keys whose first
#      byte is 0x82, TOTAL/64 of them;
# then prints req/s and the member's CPU ticks (1/100 s) per load, and its
# VmRSS and VmHWM. Run it alternately for two builds on a noisy machine:
#   bench/key_layout.sh old/etcdpp build/bin/etcdpp-bench 42000 200
#   bench/key_layout.sh build/bin/etcdpp build/bin/etcdpp-bench 42100 200
set -euo pipefail
server=$1 bench=$2 port=$3 key_size=$4 total=${5:-50000}
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir" --log-level error
run() {
  local name=$1
  shift
  local before out
  before=$(ticks)
  out=$("$bench" --endpoints="127.0.0.1:$port" "$@" 2>&1) || true
  echo "$name: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s," \
    "errors $(echo "$out" | grep -c -i 'error' || true)," \
    "server cpu ticks $(($(ticks) - before))"
}
echo "== $server, key size $key_size, $total keys"
run put --conns 10 --clients 100 --total "$total" put --key-size "$key_size" --val-size 256 \
  --key-space-size "$total" --sequential-keys
run range-1 --conns 10 --clients 100 --total 20000 range $'\x02' $'\x03' --consistency s
run range-N --conns 10 --clients 100 --total 500 range $'\x82' $'\x83' --consistency s
grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd' '
du -sk "$dir/data" | awk '{print "data dir KiB on disk " $1}'
