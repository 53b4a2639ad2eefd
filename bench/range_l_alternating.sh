#!/usr/bin/env bash
# Linearizable-read throughput and server CPU of one etcdpp build, on a fresh
# single member: starts the member on PORT and PORT+1 (127.0.0.1), writes foo
# (256 bytes), runs TOTAL linearizable ranges of foo with etcdpp-bench (1000
# clients over 100 connections), prints req/s and the member's CPU ticks
# (utime+stime, 1/100 s) during the load, then stops the member.
# Run it alternately for two builds to compare them on a noisy machine:
#   for i in 1 2; do bench/range_l_alternating.sh old/etcdpp build/bin/etcdpp-bench 41000
#                    bench/range_l_alternating.sh build/bin/etcdpp build/bin/etcdpp-bench 41100; done
set -euo pipefail
server=$1 bench=$2 port=$3 total=${4:-100000}
dir=$(mktemp -d)
peer="http://127.0.0.1:$((port + 1))"
"$server" --name b --data-dir "$dir/data" --listen-client-urls "http://127.0.0.1:$port" \
  --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "$peer" \
  --initial-advertise-peer-urls "$peer" --initial-cluster "b=$peer" --log-level error 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
  ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" --command-timeout=1s \
    put foo "$(head -c 256 /dev/zero | tr '\0' x)" >/dev/null 2>&1 && break
  sleep 0.2
done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(ticks)
rate=$("$bench" --endpoints="127.0.0.1:$port" --conns 100 --clients 1000 --total "$total" \
  range foo --consistency l 2>&1 | awk '/Requests\/sec/ {print $2}')
echo "$rate req/s, server cpu ticks $(($(ticks) - before)): $server"
