#!/usr/bin/env bash
# What TLS and auth on the client port cost. One fresh member at a time,
# each under three loads of etcdpp-bench: put, linearizable range and
# serializable range of foo. Prints req/s, p99, the member's CPU time per
# request (utime+stime from /proc/<pid>/stat over the requests) and the
# 1-minute load average.
#   http        etcdpp over http://
#   https       etcdpp over https:// (--client-cert-auth; the benchmark
#               presents a client certificate)
#   https+auth  the same with auth enabled; the benchmark logs in once as a
#               user whose role grants readwrite on every key (not root, so
#               each request runs the real permission check) and sends the
#               token with every request
# With a fourth argument naming etcd 3.4 (e.g. /usr/bin/etcd), https+auth
# runs against it as well, under the same loads. Certificates are made here
# with openssl. With FUTEX=1, the serializable range of https and
# https+auth runs again under `strace -f -c -e trace=futex` on the member
# (futex calls per request: a lock taken by every check would show there).
# With JWT=<sign method> (ES256, RS256, ...), only the https+auth rows run,
# with --auth-token jwt and a key pair made here (simple tokens otherwise).
#   bench/tls_cost.sh build/bin/etcdpp build/bin/etcdpp-bench 41200 [etcd] [total] [conns] [clients]
set -euo pipefail
server=$1 bench=$2 port=$3 etcd=${4:-} total=${5:-30000} conns=${6:-10} clients=${7:-100}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
  -out "$dir/ca.crt" -days 2 -subj /CN=ca 2>/dev/null
for name in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/$name.key" \
    -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/$name.crt" -days 2 -extfile "$dir/$name.ext" 2>/dev/null
done
load1() { cut -d' ' -f1 /proc/loadavg; }
token=()
if [ -n "${JWT:-}" ]; then
  case "$JWT" in
    ES256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/jwt.key" ;;
    *) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/jwt.key" ;;
  esac 2>/dev/null
  openssl pkey -in "$dir/jwt.key" -pubout -out "$dir/jwt.pub"
  token=(--auth-token "jwt,pub-key=$dir/jwt.pub,priv-key=$dir/jwt.key,sign-method=$JWT,ttl=10m")
fi

run() {  # binary, label, scheme, auth (0|1)
  local binary=$1 label=$2 scheme=$3 auth=$4 url="$3://127.0.0.1:$port"
  local peer="http://127.0.0.1:$((port + 1))" tls=() client=() user=() extra=()
  [ "$auth" = 1 ] && extra=("${token[@]}")
  if [ "$scheme" = https ]; then
    tls=(--cert-file "$dir/server.crt" --key-file "$dir/server.key"
         --trusted-ca-file "$dir/ca.crt" --client-cert-auth)
    client=(--cacert "$dir/ca.crt" --cert "$dir/client.crt" --key "$dir/client.key")
  fi
  [ "$(basename "$binary")" = etcd ] && extra+=(--logger zap)
  rm -rf "$dir/data"
  "$binary" --name b --data-dir "$dir/data" --listen-client-urls "$url" \
    --advertise-client-urls "$url" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "b=$peer" --log-level error "${extra[@]}" "${tls[@]}" 2>/dev/null &
  pid=$!
  ctl() { ETCDCTL_API=3 etcdctl --endpoints="$url" "${client[@]}" --command-timeout=5s "$@"; }
  for _ in $(seq 50); do
    ctl put foo "$(head -c 256 /dev/zero | tr '\0' x)" >/dev/null 2>&1 && break
    sleep 0.2
  done
  if [ "$auth" = 1 ]; then
    ctl user add root:rootpw >/dev/null
    ctl role add bench >/dev/null
    ctl user add bench:benchpw >/dev/null
    ctl user grant-role bench bench >/dev/null
    # Every key (from "\0" on): a JSON gateway call, as etcdctl cannot pass a NUL byte.
    curl -sf --cacert "$dir/ca.crt" --cert "$dir/client.crt" --key "$dir/client.key" \
      -X POST "$url/v3/auth/role/grant" \
      -d '{"name":"bench","perm":{"permType":"READWRITE","key":"AA==","range_end":"AA=="}}' \
      >/dev/null
    ctl auth enable >/dev/null 2>&1  # etcdctl logs its retry after adding the root role
    if ctl get foo >/dev/null 2>&1; then echo "auth is not on" >&2; exit 1; fi
    user=(--user bench:benchpw)
  fi
  ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  local hz
  hz=$(getconf CLK_TCK)
  for load in "put --key-size 8 --val-size 256 --key-space-size $total" \
              "range foo --consistency l" "range foo --consistency s"; do
    local before out used
    before=$(ticks)
    # shellcheck disable=SC2086
    out=$("$bench" --endpoints="$url" "${client[@]}" "${user[@]}" --conns "$conns" \
      --clients "$clients" --total "$total" $load 2>&1)
    used=$(($(ticks) - before))
    printf '%-7s %-22s %-26s %8s req/s  p99 %8s s  server cpu %6.1f us/req  load1 %s\n' \
      "$label" "$scheme$([ "$auth" = 1 ] && echo "+auth${JWT:+(jwt $JWT)}")" "${load%% --key-size*}" \
      "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '/99%/ {print $3; exit}' <<<"$out")" \
      "$(awk -v t="$used" -v hz="$hz" -v n="$total" 'BEGIN {print t * 1e6 / hz / n}')" "$(load1)"
    grep -m3 -i "error" <<<"$out" || true
  done
  if [ "${FUTEX:-0}" = 1 ] && [ "$scheme" = https ]; then
    local n=$((total / 3))
    strace -f -c -e trace=futex -p "$pid" -o "$dir/futex" &
    local tracer=$!
    sleep 1  # strace attaches to every thread before the load starts
    "$bench" --endpoints="$url" "${client[@]}" "${user[@]}" --conns "$conns" \
      --clients "$clients" --total "$n" range foo --consistency s >/dev/null 2>&1
    kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
    printf '%-7s %-10s futex calls per serializable range: %s  load1 %s\n' "$label" \
      "$scheme$([ "$auth" = 1 ] && echo +auth)" \
      "$(awk -v n="$n" '$NF == "futex" {print $4 / n}' "$dir/futex")" "$(load1)"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
[ -z "${JWT:-}" ] && run "$server" etcdpp http 0
[ -z "${JWT:-}" ] && run "$server" etcdpp https 0
run "$server" etcdpp https 1
if [ -n "$etcd" ]; then
  [ -z "${JWT:-}" ] && run "$etcd" etcd https 0
  run "$etcd" etcd https 1
fi
