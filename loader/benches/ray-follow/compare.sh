#!/usr/bin/env bash
# Following a Ray job: this build's loader against a baseline loader binary,
# side by side on a local head node (started by tests/ray/run-in-netns.sh,
# in a network namespace with only loopback). Three jobs, each followed by
# both loaders in turn, ROUNDS times (default 1):
#
#   - 100 k small events at once (bench log_calls), a 20 MB log;
#   - 2,000 events of 10 kB, 10 ms apart (flood big_payloads), 20 MB;
#   - 200 events of 1 MB, 100 ms apart, 200 MB.
#
# Prints the following loader's wall time, CPU time and peak RSS (whole
# process, /usr/bin/time), and stops unless both relayed every event and
# the result. Each round begins with the other side.
#
#   loader/benches/ray-follow/compare.sh BASELINE_LOADER [ROUNDS]
#
# A baseline is any earlier build, e.g. `git worktree add /tmp/base REV &&
# cargo build --release --manifest-path /tmp/base/Cargo.toml`, then
# /tmp/base/target/release/loader.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

if [ -z "${LOADER_RAY_NETNS:-}" ]; then
    baseline="$(realpath "${1:?usage: compare.sh BASELINE_LOADER [ROUNDS]}")"
    cargo build --quiet --release -p loader --manifest-path "$root/Cargo.toml"
    for fixture in bench flood; do
        cargo build --quiet --release --manifest-path "$root/tests/fixtures/$fixture/Cargo.toml" \
            --target-dir "$target/fixtures"
    done
    exec "$root/tests/ray/run-in-netns.sh" "$0" "$baseline" "${2:-1}"
fi

baseline="$1"
rounds="$2"
current="$target/release/loader"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/bench" "$work/flood"
cp "$target/fixtures/release/libbench_plugin.so" "$work/bench/"
cp "$target/fixtures/release/libflood_plugin.so" "$work/flood/"

# follow LOADER PLUGIN ACTION PARAMS EXPECTED_EVENTS: one run on Ray; prints
# "wall cpu rss" and fails unless every event and the result were relayed.
follow() {
    local loader="$1" plugin="$2" action="$3" params="$4" expected="$5"
    /usr/bin/time -o "$work/time" -f "%e %U %S %M" "$loader" --plugins "$work/$plugin" run "$plugin" "$action" \
        --params "$params" --on ray --ray-address "$RAY_ADDRESS" --events "$work/events.jsonl" >/dev/null 2>"$work/stderr" ||
        { cat "$work/stderr" >&2; return 1; }
    local lines
    lines="$(wc -l <"$work/events.jsonl")"
    if [ "$lines" -ne "$((expected + 1))" ] || ! tail -1 "$work/events.jsonl" | grep -q '"kind":"result"'; then
        echo "$loader relayed $lines lines for $action, expected $expected events and the result" >&2
        return 1
    fi
    awk '{ printf "%.2f s | %.2f s | %.0f MiB", $1, $2 + $3, $4 / 1024 }' "$work/time"
}

jobs=(
    "100 k events at once|bench|log_calls|{\"count\": 100000}|100000"
    "2,000 events of 10 kB, 10 ms apart|flood|big_payloads|{\"count\": 2000, \"bytes\": 10000, \"pause_ms\": 10}|2000"
    "200 events of 1 MB, 100 ms apart|flood|big_payloads|{\"count\": 200, \"bytes\": 1000000, \"pause_ms\": 100}|200"
)

# Uploads each loader's package once, so that no measured run pays for it.
for loader in "$baseline" "$current"; do
    follow "$loader" bench noop '{}' 0 >/dev/null
    follow "$loader" flood count_items '{"items": []}' 0 >/dev/null
done

echo
echo "| job | loader | wall | CPU | peak RSS |"
echo "|---|---|---|---|---|"
for job in "${jobs[@]}"; do
    IFS='|' read -r title plugin action params expected <<<"$job"
    for round in $(seq 1 "$rounds"); do
        # Each round begins with the other side: whichever runs right after
        # the previous job may pay for what that left behind.
        sides=(baseline current)
        [ $((round % 2)) -eq 0 ] && sides=(current baseline)
        for side in "${sides[@]}"; do
            loader="$baseline"
            [ "$side" = current ] && loader="$current"
            row="$(follow "$loader" "$plugin" "$action" "$params" "$expected")" || exit 1
            echo "| $title | $side | $row |"
        done
    done
done
