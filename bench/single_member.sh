# Sourced by the bench scripts that measure one fresh member:
#   start_single_member SERVER PORT DIR [server flags...]
# starts SERVER (etcd or etcdpp: both take etcd's flags) as a one-member
# cluster with its client URL on 127.0.0.1:PORT and its peer URL on PORT+1,
# data in DIR/data and output in DIR/log, sets $pid, kills it on exit, and
# returns once it answers etcdctl's health check (at most 10 s).
# ticks prints the member's CPU time so far (utime + stime, 1/100 s).
start_single_member() {
  local server=$1 port=$2 dir=$3
  shift 3
  local peer="http://127.0.0.1:$((port + 1))"
  "$server" --name b --data-dir "$dir/data" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "$peer" \
    --initial-advertise-peer-urls "$peer" --initial-cluster "b=$peer" "$@" >"$dir/log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
  for _ in $(seq 50); do
    ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" --command-timeout=1s \
      endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
}

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
