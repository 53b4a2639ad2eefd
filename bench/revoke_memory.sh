#!/usr/bin/env bash
# A member's memory over the revoke of one lease holding KEYS keys: KEYS
# puts of 1 KiB values attached to one lease (python etcd3, 8 threads),
# then `etcdctl lease revoke`; prints the member's anonymous and
# mapped-file RSS and its peak (VmHWM) after each step, then how many of
# the keys are left (0). Works for etcd and etcdpp alike.
#   bench/revoke_memory.sh SERVER PORT [KEYS]
#   bench/revoke_memory.sh build/bin/etcdpp 42420 100000
set -eu
server=$1 port=$2 keys=${3:-100000}
dir=$(mktemp -d)
. "$(dirname "$0")/single_member.sh"
start_single_member "$server" "$port" "$dir"
rss() { awk '/RssAnon|RssFile|VmHWM/ {printf "%s %d MiB ", $1, $2 / 1024}' "/proc/$pid/status"; }
lease=$(/usr/bin/python3 - "$port" "$keys" <<'PY'
import sys
import threading

import etcd3

port, keys = int(sys.argv[1]), int(sys.argv[2])
lease = etcd3.client(host="127.0.0.1", port=port).lease(3600)
value = b"v" * 1024


def put(first, last):
    client = etcd3.client(host="127.0.0.1", port=port)
    for i in range(first, last):
        client.put("/revoke/%064d" % i, value, lease=lease.id)


threads = [threading.Thread(target=put, args=(k * keys // 8, (k + 1) * keys // 8))
           for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("%x" % lease.id)
PY
)
echo "after $keys puts: $(rss)"
ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" --command-timeout=120s lease revoke "$lease" >/dev/null
sleep 1
echo "after the revoke: $(rss)"
echo "keys left: $(ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" get /revoke/ --prefix --keys-only | grep -c revoke || true)"
