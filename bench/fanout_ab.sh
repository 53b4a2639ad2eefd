#!/usr/bin/env bash
# Watch fan-out of server binaries side by side: each round starts every
# NAME=BINARY in turn as a fresh single member on 127.0.0.1:PORT and runs
# the fan-out load RUNS times against it (10 streams, 10,000 watchers of
# one key, PUTS sequential puts), printing per run: name, events/s,
# responses that carried events, the puts' median ms and the events'
# median latency ms. The fan-out moves between a slow and a fast mode from
# run to run (BENCHMARKS.md), so compare medians over many runs.
#   bench/fanout_ab.sh BENCH PORT ROUNDS RUNS NAME=BINARY...
#   PUTS=300 bench/fanout_ab.sh build/bin/etcdpp-bench 21600 4 3 base=old/etcdpp new=build/bin/etcdpp
set -u
bench=$1 port=$2 rounds=$3 runs=$4
shift 4
. "$(dirname "$0")/single_member.sh"
field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
for _ in $(seq "$rounds"); do
  for variant in "$@"; do
    name=${variant%%=*} binary=${variant#*=}
    dir=$(mktemp -d)
    # A subshell per member: single_member.sh's EXIT trap stops it.
    (
      start_single_member "$binary" "$port" "$dir"
      for _ in $(seq "$runs"); do
        out=$("$bench" --endpoints "127.0.0.1:$port" --json watch --streams 10 \
          --watchers 10000 --puts "${PUTS:-300}" 2>/dev/null)
        echo "$name $(field events_per_s <<<"$out") $(field event_responses <<<"$out")" \
          "$(field put_p50_ms <<<"$out") $(field p50_ms <<<"$out")"
      done
    )
  done
done
