#!/usr/bin/env bash
# Installs (with apt) every Debian package etcdpp needs to build and test.
# Does nothing when all are present, so it is cheap to call every time.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache clang clang-format libclang-rt-14-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  liblmdb-dev libboost-dev libssl-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fuse3 libfuse3-dev
  chromium python3-websocket
  libnghttp2-dev zlib1g-dev
  libjemalloc-dev
  etcd-server etcd-client python3 python3-etcd3 python3-etcd python3-prometheus-client
  libcrypt-dev
  openssl curl util-linux
  python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
