#!/usr/bin/env bash
# Builds etcdpp and runs every test: the release build's whole suite (unit,
# integration, e2e with the real etcdctl and python etcd3, crash tests), then
# the unit and integration tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, the multi-threaded server core and MVCC store
# under ThreadSanitizer, and the fuzzers (clang) for a bounded time each. The
# release suite includes the short robustness profile (ctest label
# "robustness": faults injected into 3-member etcdpp and etcd 3.4 clusters,
# histories checked for linearizability; docs/robustness.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

JOBS=$(nproc)
echo "== release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j "$JOBS"
echo "== release tests"
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 600)

echo "== ASan+UBSan build (unit and integration tests)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DETCDPP_SANITIZE=address >/dev/null
# Only the unit and integration test binaries (each test is named after its target).
targets=$(cd build-asan && ctest -N -L "unit|integration" | awk '/Test +#/ {print $3}')
ninja -C build-asan -j "$JOBS" $targets
echo "== ASan+UBSan unit and integration tests"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$JOBS" -L "unit|integration" --timeout 600)

echo "== TSan build (the multi-threaded server core, MVCC store and leader monitor)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DETCDPP_SANITIZE=thread >/dev/null
ninja -C build-tsan -j "$JOBS" server_test mvcc_test api_test
echo "== TSan tests"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 \
  ctest --output-on-failure -j "$JOBS" -R '^(server_test|mvcc_test|api_test)$' --timeout 600)

echo "== fuzzers (clang, ASan+UBSan, 20 s each from fuzz/corpus)"
fuzz/run.sh 20
