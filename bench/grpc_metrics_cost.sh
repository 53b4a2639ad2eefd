#!/usr/bin/env bash
# What counting every gRPC call (grpc_server_* metrics) costs the server: one
# fresh single member per run, started with the given etcdpp flags, under a
# put load and a serializable range load of etcdpp-bench. Prints, per load,
# req/s, the member's CPU (utime+stime) and context switches (all threads,
# voluntary + involuntary) per request, and the 1-minute load average.
#   bench/grpc_metrics_cost.sh build/bin/etcdpp build/bin/etcdpp-bench 43200 20000 [server flags...]
set -euo pipefail
server=$1 bench=$2 port=$3 total=$4
shift 4
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
url="http://127.0.0.1:$port" peer="http://127.0.0.1:$((port + 1))"
"$server" --name b --data-dir "$dir/data" --listen-client-urls "$url" \
  --advertise-client-urls "$url" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
  --initial-cluster "b=$peer" --log-level error "$@" 2>/dev/null &
pid=$!
for _ in $(seq 50); do
  ETCDCTL_API=3 etcdctl --endpoints="$url" --command-timeout=1s put foo bar >/dev/null 2>&1 && break
  sleep 0.2
done
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
switches() { cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
for load in "put --key-size 8 --val-size 256 --key-space-size $total" "range foo --consistency s"; do
  t0=$(ticks) s0=$(switches)
  # shellcheck disable=SC2086
  out=$("$bench" --endpoints="$url" --conns 10 --clients 100 --total "$total" $load 2>&1)
  t1=$(ticks) s1=$(switches)
  printf '%-6s %9s req/s  cpu %6.1f us/req  ctx switches %5.2f /req  load1 %s\n' "${load%% *}" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(echo "($t1 - $t0) * 1000000 / $hz / $total" | bc -l)" \
    "$(echo "($s1 - $s0) / $total" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
curl -s "$url/metrics" | grep -c '^grpc_server_handled_total' | sed 's/^/grpc_server_handled_total series: /'
