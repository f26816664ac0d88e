#!/usr/bin/env bash
# Runs a command (by default the Ray tests) next to a Ray head node, both
# inside a network namespace whose only interface is loopback, so that
# nothing Ray starts can reach or be reached from another address. Needs
# root (unshare -n). The head, and every other process left in the
# namespace (worker nodes a test added), is stopped at the end.
#
#   tests/ray/run-in-netns.sh                      # cargo test --test ray
#   tests/ray/run-in-netns.sh ./target/debug/loader run ... --on ray
#
# The head starts with the Ray venv first on PATH, as from an activated
# environment: a job's `python3` is then Ray's Python, which the loader's
# driver needs. The command gets RAY_ADDRESS (the Jobs API), RAY_BIN (the
# venv's bin folder) and LOADER_RAY_GCS (the head's address, for tests
# that add worker nodes to it).
#
# Other Ray clusters on the machine (other namespaces) are left alone: the
# head takes a port and a temporary folder of its own (`ray start` refuses
# a port another cluster on the machine uses), and only the processes of
# this namespace are stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${LOADER_RAY_NETNS:-}" ]; then
  RAY_BIN="$(tests/ray/setup.sh)"
  exec unshare -n env LOADER_RAY_NETNS=1 RAY_BIN="$RAY_BIN" "$0" "$@"
fi

ip link set lo up
RAY_TEMP="$(mktemp -d /tmp/ray-loader-XXXXXX)"
GCS_PORT="${LOADER_RAY_GCS_PORT:-$((20000 + RANDOM % 20000))}"
# Every process of this network namespace but this script: Ray's, once
# the command is over. It fails the run if any is left.
in_namespace() {
  local own_ns pid
  own_ns="$(readlink /proc/$$/ns/net)"
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$own_ns" ] && echo "$pid"
  done
  return 0
}
stop_ray() {
  local status=$? left pid
  for _ in $(seq 1 20); do
    left="$(in_namespace)"
    [ -z "$left" ] && break
    for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.5
  done
  rm -rf "$RAY_TEMP"
  if [ -n "$(in_namespace)" ]; then
    echo "run-in-netns: processes left in the namespace: $(in_namespace | tr '\n' ' ')" >&2
    exit 1
  fi
  exit "$status"
}
trap stop_ray EXIT
trap 'exit 130' INT TERM
export PATH="$RAY_BIN:$PATH"
# Each test's package is unpacked by every node that runs it; Ray keeps
# unused ones up to 10 GB by default, more than a CI machine's disk spares.
export RAY_RUNTIME_ENV_WORKING_DIR_CACHE_SIZE_GB=0.5
"$RAY_BIN/ray" start --head --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 \
  --port "$GCS_PORT" --temp-dir "$RAY_TEMP" --num-cpus 2 --disable-usage-stats >&2
export RAY_ADDRESS=http://127.0.0.1:8265
export LOADER_RAY_GCS="127.0.0.1:$GCS_PORT"
export RAY_BIN
# The Ray tests fail, rather than skip, when they find no cluster.
export LOADER_RAY_TESTS=require
for _ in $(seq 1 60); do
  "$RAY_BIN/ray" job list --address "$RAY_ADDRESS" >/dev/null 2>&1 && break
  sleep 1
done
if [ "$#" -eq 0 ]; then
  set -- cargo test --locked -p integration-tests --test ray
fi
"$@"
