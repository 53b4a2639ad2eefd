#!/usr/bin/env bash
# Bytes a fresh single member writes per put, next to its CPU and speed.
# Works for etcd and etcdpp alike (both take etcd's flags):
#   bench/write_bytes.sh SERVER BENCH PORT KEY_SIZE [TOTAL] [server flags...]
#   bench/write_bytes.sh /usr/bin/etcd build/bin/etcdpp-bench 42000 32
#   bench/write_bytes.sh build/bin/etcdpp build/bin/etcdpp-bench 42100 32 50000 \
#     --experimental-backend-commit-delay=100ms
# Load: TOTAL puts (default 50000) of new keys (etcd's benchmark keys:
# KEY_SIZE bytes, a random varint then zeros, from a space of 10^8) with
# 1 KiB values, 500 clients over 50 connections. WATCHERS=N (default 0)
# first starts N `etcdctl watch --prefix ''` (every key; output discarded),
# as a control plane always has some.
# Prints, per put: `wchar` (bytes the process handed to write calls, the
# WAL's and the store's), `write_bytes` (the kernel's accounting of page
# cache it dirtied; on kernels with large folios it counts whole folios, so
# it can exceed what reaches the disk), the device's written sectors over
# the run (the whole machine: only meaningful when nothing else writes),
# then CPU ticks (1/100 s), req/s, the store's backend commits and WAL
# fsyncs over the run, and the data dir's size.
set -euo pipefail
server=$1 bench=$2 port=$3 key_size=$4 total=${5:-50000}
shift $(($# < 5 ? $# : 5))
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir" "$@"
io() { awk -v k="$1" '$1 == k ":" {print $2}' "/proc/$pid/io"; }
metric() {
  curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k {printf "%d", $2}'
}
disk=$(df --output=source "$dir" | tail -1 | xargs basename)
sectors() { awk '{print $7}' "/sys/class/block/$disk/stat" 2>/dev/null || echo 0; }
watchers=()
for _ in $(seq "${WATCHERS:-0}"); do
  ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" watch --prefix '' >/dev/null 2>&1 &
  watchers+=($!)
done
sleep "$([ ${#watchers[@]} -gt 0 ] && echo 1 || echo 0)"  # Let the watches be created.
wchar0=$(io wchar) dirtied0=$(io write_bytes) ticks0=$(ticks) sectors0=$(sectors)
commits0=$(metric etcd_disk_backend_commit_duration_seconds_count)
fsyncs0=$(metric etcd_disk_wal_fsync_duration_seconds_count)
out=$("$bench" --endpoints="127.0.0.1:$port" --conns 50 --clients 500 --total "$total" \
  put --key-size "$key_size" --val-size 1024 --key-space-size 100000000 2>&1)
[ ${#watchers[@]} -gt 0 ] && kill "${watchers[@]}" 2>/dev/null
echo "== $server${*:+ $*}, key size $key_size, $total puts, ${#watchers[@]} watchers"
echo "per put: wchar $((($(io wchar) - wchar0) / total)) B," \
  "write_bytes $((($(io write_bytes) - dirtied0) / total)) B," \
  "device $((($(sectors) - sectors0) * 512 / total)) B"
echo "cpu ticks $(($(ticks) - ticks0)), $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s," \
  "backend commits $(($(metric etcd_disk_backend_commit_duration_seconds_count) - commits0))," \
  "wal fsyncs $(($(metric etcd_disk_wal_fsync_duration_seconds_count) - fsyncs0))," \
  "data dir $(du -sm "$dir/data" | cut -f1) MiB"
