#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) in build-fuzz and runs
# each for a bounded time from its corpus in fuzz/corpus/<name>. New inputs go
# to a scratch directory, so the corpus in the repo only changes by hand; a
# crash leaves its input in build-fuzz/artifacts and fails the script.
#   fuzz/run.sh [seconds per target, default 20]
#   fuzz/run.sh --build-only   (builds the targets; scripts/test.sh does this
#                               beside other tests, then runs them)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_ONLY=false
if [ "${1:-}" = "--build-only" ]; then
  BUILD_ONLY=true
  shift
fi
SECONDS_PER_TARGET=${1:-20}
JOBS=$(nproc)
# Line tables only (-g1): a crash's report still names function, file and
# line, and the build is about a third cheaper than with full debug info.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DETCDPP_SANITIZE=address >/dev/null
declare -A CORPUS=([wal_decode_fuzz]=wal [snap_decode_fuzz]=snap [request_apply_fuzz]=request
  [http_request_fuzz]=http [v2_store_fuzz]=v2 [auth_fuzz]=auth [h2front_wire_fuzz]=h2wire
  [key_codec_fuzz]=key)
ninja -C build-fuzz -j "$JOBS" "${!CORPUS[@]}"
if $BUILD_ONLY; then exit 0; fi
mkdir -p build-fuzz/artifacts
# Runs one target; its output goes to $runs/<target>.log, its exit status to
# $runs/<target>.status.
fuzz_one() {
  local target=$1 scratch status=0
  scratch=$(mktemp -d)
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    build-fuzz/fuzz/"$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/ \
    "$scratch" "fuzz/corpus/${CORPUS[$target]}" >"$runs/$target.log" 2>&1 || status=$?
  rm -rf "$scratch"
  echo "$status" >"$runs/$target.status"
}
# Each fuzzer is one thread, so as many run at once as there are cores.
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
targets=(wal_decode_fuzz snap_decode_fuzz request_apply_fuzz http_request_fuzz v2_store_fuzz auth_fuzz
  h2front_wire_fuzz key_codec_fuzz)
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  fuzz_one "$target" &
done
wait
failed=0
for target in "${targets[@]}"; do
  echo "== fuzz $target for ${SECONDS_PER_TARGET}s (corpus fuzz/corpus/${CORPUS[$target]})"
  status=$(cat "$runs/$target.status")
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units)" "$runs/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -60 "$runs/$target.log"
    echo "fuzzer $target failed (exit $status); inputs in build-fuzz/artifacts" >&2
    failed=1
  fi
done
exit "$failed"
