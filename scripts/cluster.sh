#!/usr/bin/env bash
# Starts a 3-member local etcdpp cluster on 127.0.0.1 (clients on 2379, 22379,
# 32379; peers on 2380, 22380, 32380; data in ./cluster.etcdpp/) and stops
# all three on Ctrl-C. Builds first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/bin/etcdpp ]; then
  scripts/install-deps.sh
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C build etcdpp etcdppctl
fi
CLUSTER="infra1=http://127.0.0.1:2380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 1 2 3; do
  case $i in 1) c=2379 p=2380 ;; 2) c=22379 p=22380 ;; 3) c=32379 p=32380 ;; esac
  build/bin/etcdpp --name infra$i --data-dir cluster.etcdpp/infra$i \
    --listen-client-urls http://127.0.0.1:$c --advertise-client-urls http://127.0.0.1:$c \
    --listen-peer-urls http://127.0.0.1:$p --initial-advertise-peer-urls http://127.0.0.1:$p \
    --initial-cluster "$CLUSTER" --initial-cluster-token etcdpp-local --initial-cluster-state new \
    --log-format text > >(sed -u "s/^/infra$i | /") 2>&1 &
  pids+=($!)
done
wait
