#!/usr/bin/env bash
# Creates (once) a cached virtual environment with a pinned Ray and prints its bin directory.
set -euo pipefail
RAY_VERSION=2.60.0
VENV="${RAY_VENV:-$HOME/.cache/loader-ray-venv}"
if [ -x "$VENV/bin/ray" ] && [ "$(cat "$VENV/.ray-version" 2>/dev/null)" = "$RAY_VERSION" ]; then
  echo "$VENV/bin"
  exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
PYENV_VERSION=3.12.1 python3.12 -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check "ray[default]==$RAY_VERSION" >&2
echo "$RAY_VERSION" > "$VENV/.ray-version"
echo "$VENV/bin"
