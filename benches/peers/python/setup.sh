#!/usr/bin/env bash
# Creates benches/peers/python/.venv with exactly the packages that
# requirements.txt pins (the official Python MCP SDK, `mcp`, and its deps).
#
#   bash benches/peers/python/setup.sh      # PYTHON=python3.12 to pick another interpreter
#
# Idempotent: when .venv was built from this very requirements.txt and imports
# the pinned mcp, it does nothing. Otherwise it builds .venv afresh. Quiet on
# success; on failure pip's error goes to stderr and the exit status is non-zero.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
requirements="$here/requirements.txt"
stamp="$venv/requirements.installed" # the requirements.txt that .venv was built from
python="${PYTHON:-python3}"

pinned_mcp="$(sed -n 's/^mcp==//p' "$requirements")"
if [[ -z "$pinned_mcp" ]]; then
    echo "setup.sh: no mcp==VERSION line in $requirements" >&2
    exit 1
fi

installed_mcp() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null
}

if cmp -s "$requirements" "$stamp" && [[ "$(installed_mcp)" == "$pinned_mcp" ]]; then
    exit 0
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup.sh: $python is missing or older than 3.10, which mcp $pinned_mcp needs" >&2
    exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input --quiet)
"${pip[@]}" install --requirement "$requirements"

if [[ "$(installed_mcp)" != "$pinned_mcp" ]]; then
    echo "setup.sh: .venv does not import mcp $pinned_mcp after the install" >&2
    exit 1
fi
cp "$requirements" "$stamp" # last, so that a failed run is redone next time
