#!/usr/bin/env bash
# `etcdctl check perf --load l` (etcd's own tool: 60 s, 500 clients) against
# a fresh single member, with the member's CPU ticks (1/100 s), the bytes
# it handed to write calls over the run, its peak RSS and the tool's own
# CPU time. Works for etcd and etcdpp alike:
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
