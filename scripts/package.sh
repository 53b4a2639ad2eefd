#!/usr/bin/env bash
# Builds etcdpp in Release mode in build-release/ and makes the Debian package
# build-release/etcdpp_<version>_<arch>.deb (cmake/Packaging.cmake says what
# is in it). Install it with: sudo apt-get install ./build-release/etcdpp_*.deb
# JOBS=n limits the build to n parallel jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-release}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DETCDPP_BUILD_TESTS=OFF >/dev/null
ninja -C "$BUILD_DIR" ${JOBS:+-j "$JOBS"} etcdpp etcdppctl etcdpp-bench
(cd "$BUILD_DIR" && cpack -G DEB >/dev/null)
ls "$BUILD_DIR"/etcdpp_*.deb
