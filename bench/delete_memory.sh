#!/usr/bin/env bash
# A member's memory over a delete of every key in one request, then a
# defrag: KEYS keys of 1 KiB put by etcdpp-bench, one `etcdctl del` of all
# of them, `etcdctl defrag`; prints the member's anonymous and mapped-file
# RSS after each step and 20 s after the defrag. Works for etcd and etcdpp.
#   bench/delete_memory.sh SERVER BENCH PORT [KEYS]
#   bench/delete_memory.sh build/bin/etcdpp build/bin/etcdpp-bench 22350 300000
set -eu
server=$1 bench=$2 port=$3 keys=${4:-300000}
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir"
rss() { awk '/RssAnon|RssFile/ {printf "%s %d MiB ", $1, $2 / 1024}' "/proc/$pid/status"; }
ctl() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" "$@" >/dev/null; }
"$bench" --endpoints "127.0.0.1:$port" --conns 10 --clients 100 --total "$keys" put \
  --key-size 64 --val-size 1024 --key-space-size "$keys" --sequential-keys >/dev/null
echo "after $keys puts: $(rss)"
ctl del "" --from-key
sleep 1
echo "after deleting them: $(rss)"
ctl defrag --command-timeout=120s
sleep 1
echo "after defrag: $(rss)"
sleep 20
echo "20 s later: $(rss)"
