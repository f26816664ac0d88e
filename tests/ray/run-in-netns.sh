#!/usr/bin/env bash
# Runs a command (by default the Ray tests) next to a Ray head node, both
# inside a network namespace whose only interface is loopback, so that
# nothing Ray starts can reach or be reached from another address. Needs
# root (unshare -n). The head is always stopped at the end.
#
#   tests/ray/run-in-netns.sh                      # cargo test --test ray
#   tests/ray/run-in-netns.sh ./target/debug/loader run ... --on ray
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${LOADER_RAY_NETNS:-}" ]; then
  RAY_BIN="$(tests/ray/setup.sh)"
  exec unshare -n env LOADER_RAY_NETNS=1 RAY_BIN="$RAY_BIN" "$0" "$@"
fi

ip link set lo up
stop_ray() { "$RAY_BIN/ray" stop --force >/dev/null 2>&1 || true; }
trap stop_ray EXIT INT TERM
"$RAY_BIN/ray" start --head --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 \
  --num-cpus 2 --disable-usage-stats >&2
export RAY_ADDRESS=http://127.0.0.1:8265
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
