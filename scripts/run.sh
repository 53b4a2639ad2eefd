#!/usr/bin/env bash
# Installs what is missing, builds etcdpp, and starts a single-member server on
# 127.0.0.1:2379 with its data in ./default.etcdpp.
#
# Arguments go to etcdpp and win: a default below is added only for a flag
# given neither as an argument (--flag value or --flag=value) nor as its
# ETCD_* environment variable. Advertised URLs default to the listen URLs the
# user gave. For example, with port 2379 taken:
#   scripts/run.sh --listen-client-urls http://127.0.0.1:12379
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULTS=(
  name default
  data-dir ./default.etcdpp
  listen-client-urls http://127.0.0.1:2379
  advertise-client-urls http://127.0.0.1:2379
  listen-peer-urls http://127.0.0.1:2380
  initial-advertise-peer-urls http://127.0.0.1:2380
)

# given FLAG: whether the user set --FLAG on the command line or in ETCD_*.
given() {
  local flag=$1 arg env
  for arg in "${USER_ARGS[@]}"; do
    [[ $arg == "--$flag" || $arg == "--$flag="* ]] && return 0
  done
  env="ETCD_$(tr 'a-z-' 'A-Z_' <<<"$flag")"
  [[ -n ${!env:-} ]]
}

# The value etcdpp will use for FLAG: the user's, else the default.
value_of() {
  local flag=$1 i
  for ((i = 0; i < ${#USER_ARGS[@]}; i++)); do
    case ${USER_ARGS[i]} in
      "--$flag") echo "${USER_ARGS[i + 1]:-}"; return ;;
      "--$flag="*) echo "${USER_ARGS[i]#--$flag=}"; return ;;
    esac
  done
  local env="ETCD_$(tr 'a-z-' 'A-Z_' <<<"$flag")"
  if [[ -n ${!env:-} ]]; then echo "${!env}"; return; fi
  for ((i = 0; i < ${#DEFAULTS[@]}; i += 2)); do
    [[ ${DEFAULTS[i]} == "$flag" ]] && { echo "${DEFAULTS[i + 1]}"; return; }
  done
}

USER_ARGS=("$@")
ARGS=()
for ((i = 0; i < ${#DEFAULTS[@]}; i += 2)); do
  flag=${DEFAULTS[i]}
  # A user-chosen name implies etcdpp's own data dir default (<name>.etcdpp).
  [[ $flag == data-dir ]] && given name && continue
  given "$flag" && continue
  value=${DEFAULTS[i + 1]}
  # Advertise what the user chose to listen on (a wildcard host as loopback).
  case $flag in
    advertise-client-urls) listen=listen-client-urls ;;
    initial-advertise-peer-urls) listen=listen-peer-urls ;;
    *) listen= ;;
  esac
  if [[ -n $listen ]] && given "$listen"; then
    value=$(value_of "$listen" | sed 's#//0\.0\.0\.0:#//127.0.0.1:#g; s#//\[::\]:#//[::1]:#g')
  fi
  ARGS+=("--$flag" "$value")
done

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build etcdpp etcdppctl etcdpp-bench

# A taken client port is the usual reason a start fails: say so in one line.
# (etcdpp checks again itself, and refuses with its own one-line error.)
IFS=, read -ra client_urls <<<"$(value_of listen-client-urls)"
for url in "${client_urls[@]}"; do
  hostport=${url#*://}
  hostport=${hostport%%/*}
  host=${hostport%:*}
  port=${hostport##*:}
  [[ $host == 0.0.0.0 || $host == localhost || -z $host ]] && host=127.0.0.1
  [[ $host == \[* ]] && continue  # IPv6 literals: left to etcdpp's own check.
  if timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "run.sh: port $port is taken ($hostport accepts connections): stop what listens there, or pick another port with --listen-client-urls http://127.0.0.1:<port> --advertise-client-urls http://127.0.0.1:<port>" >&2
    exit 1
  fi
done

exec build/bin/etcdpp "${ARGS[@]}" "$@"
