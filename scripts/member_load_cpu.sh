#!/bin/bash
# One load against a fresh single member; prints requests/s, latency, the
# member's CPU per request (utime+stime from /proc/<pid>/stat over the load,
# divided by the requests) and its WAL fsync average (/metrics), with the
# 1-minute load average. Used for alternating A/B runs of two builds
# (docs/performance.md, third round).
#
#   scripts/member_load_cpu.sh LABEL ETCDPP_BINARY PRELOAD LOAD TOTAL [server flags...]
#   LOAD: put | txn-put (1000 clients over 100 connections) | seq-put (1 client)
#   PRELOAD: a library for LD_PRELOAD, or "" for none
#   BENCH=build/bin/etcdpp-bench by default
set -euo pipefail
LABEL=$1; BIN=$2; PRE=$3; LOAD=$4; TOTAL=$5; shift 5
BENCH=${BENCH:-build/bin/etcdpp-bench}
P=$((24000 + RANDOM % 2000)); D=$(mktemp -d)
LD_PRELOAD=$PRE $BIN --name s1 --data-dir "$D/d" --listen-client-urls http://127.0.0.1:$P \
  --advertise-client-urls http://127.0.0.1:$P --listen-peer-urls http://127.0.0.1:$((P + 1)) \
  --initial-advertise-peer-urls http://127.0.0.1:$((P + 1)) \
  --initial-cluster s1=http://127.0.0.1:$((P + 1)) "$@" > "$D/log" 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 50); do curl -s http://127.0.0.1:$P/health | grep -q true && break; sleep 0.2; done
cpu() { awk '{print $14 + $15}' /proc/$SP/stat; }
case $LOAD in
  put) ARGS="--conns 100 --clients 1000 --total $TOTAL put --key-size 8 --val-size 256 --key-space-size $TOTAL" ;;
  txn-put) ARGS="--conns 100 --clients 1000 --total $TOTAL txn-put --txn-ops 1 --key-size 8 --val-size 256 --key-space-size $TOTAL" ;;
  seq-put) ARGS="--conns 1 --clients 1 --total $TOTAL put --key-size 8 --val-size 256" ;;
  *) echo "unknown load $LOAD" >&2; exit 2 ;;
esac
LOAD1=$(cut -d' ' -f1 /proc/loadavg); C0=$(cpu)
# shellcheck disable=SC2086
OUT=$("$BENCH" --endpoints 127.0.0.1:$P --json $ARGS 2>/dev/null)
C1=$(cpu)
WAL=$(curl -s http://127.0.0.1:$P/metrics |
  awk '/^etcd_disk_wal_fsync_duration_seconds_sum/ {s=$2} /^etcd_disk_wal_fsync_duration_seconds_count/ {n=$2} END {printf "%.3f", n ? s / n * 1e3 : 0}')
TICK=$(getconf CLK_TCK)
echo "$OUT" | python3 -c "
import json, sys
j = json.loads(sys.stdin.read())
cpu_us = ($C1 - $C0) * 1e6 / $TICK / j['succeeded']
print(f\"$LABEL $LOAD req/s {j['requests_per_s']:.0f} avg_ms {j['average_ms']:.3f} \"
      f\"p99_ms {j['p99_ms']:.2f} cpu_us/req {cpu_us:.1f} wal_fsync_avg_ms $WAL load1 $LOAD1\")"
