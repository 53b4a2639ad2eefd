#!/usr/bin/env bash
# Sequential put latency of two server binaries, interleaved: both run as
# fresh single members at once, and ROUNDS rounds of PUTS puts from one
# client (8-byte keys, 256-byte values) alternate between them, the order
# swapped every round, so the disk's and the host's drift reaches both
# alike. Prints each round's average (ms) and the medians. For a change
# whose effect is smaller than the spread between separate runs.
#   bench/seq_put_ab.sh A B BENCH [ROUNDS] [PUTS]
#   bench/seq_put_ab.sh old/etcdpp build/bin/etcdpp build/bin/etcdpp-bench 80 500
set -euo pipefail
a=$1 b=$2 bench=$3 rounds=${4:-20} puts=${5:-1000}
port_a=$((43000 + RANDOM % 500 * 2))
port_b=$((port_a + 1000))
dir_a=$(mktemp -d)
dir_b=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir_a" "$dir_b"' EXIT

start() {
  local server=$1 port=$2 dir=$3
  local peer="http://127.0.0.1:$((port + 1))"
  "$server" --name b --data-dir "$dir/data" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "$peer" \
    --initial-advertise-peer-urls "$peer" --initial-cluster "b=$peer" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" --command-timeout=1s \
      endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "no answer from $server on port $port" >&2
  return 1
}

average_ms() {
  "$bench" --endpoints "127.0.0.1:$1" --json --conns 1 --clients 1 --total "$puts" \
    put --key-size 8 --val-size 256 --key-space-size "$puts" 2>/dev/null | grep '^{' |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["average_ms"])'
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

start "$a" "$port_a" "$dir_a"
start "$b" "$port_b" "$dir_b"
averages_a=()
averages_b=()
for round in $(seq "$rounds"); do
  if ((round % 2)); then
    x=$(average_ms "$port_a")
    y=$(average_ms "$port_b")
  else
    y=$(average_ms "$port_b")
    x=$(average_ms "$port_a")
  fi
  averages_a+=("$x")
  averages_b+=("$y")
  echo "round $round: A $x ms, B $y ms"
done
echo "median of $rounds rounds of $puts puts: A $(median "${averages_a[@]}") ms, B $(median "${averages_b[@]}") ms"
