#!/usr/bin/env bash
# `etcdctl check perf --load l` (etcd's own tool: 60 s, 500 clients) against
# a fresh single member, with the member's CPU ticks (1/100 s), the bytes
# it handed to write calls over the run, its peak RSS and the tool's own
# CPU time, then the backend commits and WAL fsyncs over the run (count and
# seconds, from /metrics). Works for etcd and etcdpp alike:
#   bench/check_perf_l.sh SERVER PORT [server flags...]
#   bench/check_perf_l.sh /usr/bin/etcd 42200
#   bench/check_perf_l.sh build/bin/etcdpp 42200
set -u
server=$1 port=$2
shift 2
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir" "$@"
wchar() { awk '$1 == "wchar:" {print $2}' "/proc/$pid/io"; }
# count and sum of a histogram in /metrics, e.g. "482 11.42"
histogram() {
  curl -s "127.0.0.1:$port/metrics" |
    awk -v h="$1" '$1 == h "_count" {c = $2} $1 == h "_sum" {s = $2} END {printf "%d %.2f\n", c, s}'
}
commits0=$(histogram etcd_disk_backend_commit_duration_seconds)
fsyncs0=$(histogram etcd_disk_wal_fsync_duration_seconds)
ticks0=$(ticks) wchar0=$(wchar)
# check perf exits non-zero when it fails, which is a result here. The
# tool shares the machine's cores with the member, so its own CPU time
# (user + system, seconds, from /usr/bin/time) is printed too.
ctl_cpu=$dir/ctl_cpu
verdict=$(ETCDCTL_API=3 timeout 200 /usr/bin/time -o "$ctl_cpu" -f '%U %S' \
  etcdctl --endpoints="127.0.0.1:$port" check perf --load l 2>&1 |
  tr '\r' '\n' | grep -E 'PASS|FAIL' | paste -sd ';' -)
echo "== $server${*:+ $*}: cpu ticks $(($(ticks) - ticks0))," \
  "wchar $((($(wchar) - wchar0) / 1048576)) MiB," \
  "etcdctl cpu $(awk 'END {print $1 + $2}' "$ctl_cpu") s," \
  "peak rss $(awk '$1 == "VmHWM:" {print int($2 / 1024)}' "/proc/$pid/status") MiB; $verdict"
delta() { echo "$1 $2" | awk '{printf "%d in %.2f s", $3 - $1, $4 - $2}'; }
echo "   backend commits $(delta "$commits0" "$(histogram etcd_disk_backend_commit_duration_seconds)")," \
  "WAL fsyncs $(delta "$fsyncs0" "$(histogram etcd_disk_wal_fsync_duration_seconds)")"
