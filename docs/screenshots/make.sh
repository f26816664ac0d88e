#!/usr/bin/env bash
# Makes the screenshots of docs/src/report.md: the page `loader report`
# writes for a sample training run, and the terminal at the end of the same
# run (its metrics summary with sparklines). Needs chromium and a Python
# with pyte (`pip install pyte==0.8.2`; set PYTHON to use another python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/src/images
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -p loader -p tabular-trainer
loader=target/release/loader
params='{"epochs": 12}'

chrome() {
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$work/profile" "$@" 2>/dev/null
}

# The report of a sample training run.
"$loader" --plugins target/release run tabular-trainer train --params "$params" \
    --events "$work/run.jsonl" --quiet >/dev/null
"$loader" report "$work/run.jsonl" -o "$work/report.html"
chrome --screenshot="$out/report.png" --window-size=1100,1900 "file://$work/report.html"

# The same run on a 100x40 pseudo-terminal, rendered as the terminal shows it.
script -qec "stty cols 100 rows 40; $loader --plugins target/release run tabular-trainer train --params '$params' >/dev/null" \
    /dev/null >"$work/terminal.typescript"
"${PYTHON:-python3}" docs/screenshots/terminal_html.py "$work/terminal.typescript" 100 40 >"$work/terminal.html"
chrome --screenshot="$out/terminal-summary.png" --window-size=960,640 "file://$work/terminal.html"
echo "wrote $out/report.png and $out/terminal-summary.png"
