#!/usr/bin/env bash
# The Rust runtime against the Python original (synapse-sdk 2026.2.17) on
# the same three workloads: a trivial action, 1 M set_progress, 100 k log.
# Installs the original in a venv (cached in $LOADER_BENCH_VENV, default
# ~/.cache/loader-bench/synapse-2026.2.17), builds the loader and the bench
# plugin in release, and prints the medians and ratios (compare.py).
#
#   loader/benches/python-original/compare.sh [ROUNDS]   (default 5)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
rounds="${1:-5}"
venv="${LOADER_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/loader-bench/synapse-2026.2.17}"
target="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import synapse_sdk' 2>/dev/null; then
    echo "installing synapse-sdk 2026.2.17 into $venv" >&2
    mkdir -p "$(dirname "$venv")"
    PYENV_VERSION="${PYENV_VERSION:-3.12.1}" python3.12 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'synapse-sdk==2026.2.17'
fi

cargo build --quiet --release -p loader --manifest-path "$root/Cargo.toml"
cargo build --quiet --release -p bench-plugin \
    --manifest-path "$root/tests/fixtures/bench/Cargo.toml" --target-dir "$target/fixtures"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/plugins"
cp "$target/fixtures/release/libbench_plugin.so" "$work/plugins/"
export XDG_CACHE_HOME="$work/cache"
loader="$target/release/loader"
# Let the copy settle past the manifest cache's racy margin, then prime the
# cache: runs are measured as a user's repeated runs are, with a warm cache.
sleep 2.1
"$loader" --plugins "$work/plugins" list >/dev/null

"$venv/bin/python" -W ignore "$here/compare.py" "$loader" "$work/plugins" "$rounds"
