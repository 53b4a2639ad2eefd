#!/usr/bin/env bash
# What TLS on the client port costs: one fresh etcdpp member served over
# http://, then one over https:// (certificates made here with openssl; the
# benchmark presents a client certificate, the member runs with
# --client-cert-auth), each under three loads of etcdpp-bench: put,
# linearizable range and serializable range of foo. Prints req/s, p99 and
# the member's CPU ticks (utime+stime, 1/100 s) per load.
#   bench/tls_cost.sh build/bin/etcdpp build/bin/etcdpp-bench 41200 [total] [conns] [clients]
set -euo pipefail
server=$1 bench=$2 port=$3 total=${4:-30000} conns=${5:-10} clients=${6:-100}
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
run() {  # scheme
  local scheme=$1 url="$1://127.0.0.1:$port" peer="http://127.0.0.1:$((port + 1))"
  local tls=() client=()
  if [ "$scheme" = https ]; then
    tls=(--cert-file "$dir/server.crt" --key-file "$dir/server.key"
         --trusted-ca-file "$dir/ca.crt" --client-cert-auth)
    client=(--cacert "$dir/ca.crt" --cert "$dir/client.crt" --key "$dir/client.key")
  fi
  rm -rf "$dir/data"
  "$server" --name b --data-dir "$dir/data" --listen-client-urls "$url" \
    --advertise-client-urls "$url" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "b=$peer" --log-level error "${tls[@]}" 2>/dev/null &
  pid=$!
  for _ in $(seq 50); do
    ETCDCTL_API=3 etcdctl --endpoints="$url" "${client[@]}" --command-timeout=1s \
      put foo "$(head -c 256 /dev/zero | tr '\0' x)" >/dev/null 2>&1 && break
    sleep 0.2
  done
  ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  for load in "put --key-size 8 --val-size 256 --key-space-size $total" \
              "range foo --consistency l" "range foo --consistency s"; do
    local before out
    before=$(ticks)
    # shellcheck disable=SC2086
    out=$("$bench" --endpoints="$url" "${client[@]}" --conns "$conns" --clients "$clients" \
      --total "$total" $load 2>&1)
    printf '%-5s %-28s %8s req/s  p99 %8s s  server cpu ticks %5d\n' "$scheme" "${load%% --key-size*}" \
      "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '/99%/ {print $3; exit}' <<<"$out")" \
      $(($(ticks) - before))
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
run http
run https
