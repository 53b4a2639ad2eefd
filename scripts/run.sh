#!/usr/bin/env bash
# Installs what is missing, builds etcdpp, and starts a single-member server on
# 127.0.0.1:2379 with its data in ./default.etcdpp. Extra arguments go to etcdpp.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build etcdpp etcdppctl etcdpp-bench
exec build/bin/etcdpp --name default --data-dir ./default.etcdpp \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  "$@"
