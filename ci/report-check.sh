#!/usr/bin/env bash
# Checks the HTML run report in a real browser: builds the report of
# flaky.toml seeds 1..3, renders it with headless Chromium (the Debian
# package, pinned) to a PNG that must not be blank, and reads the page's
# DOM back to check that its script ran without an error and that clicking
# a query, a message and a fault of every timeline shows it (#selftest).
#
#   bash ci/report-check.sh [BIN_DIR]     # BIN_DIR holds harness (default target/debug)
#
# Installs chromium=$CHROMIUM_VERSION with apt-get when it is missing or
# another version.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM_VERSION=148.0.7778.167-1~deb12u1
bin_dir=$(cd "${1:-target/debug}" && pwd)
[ -x "$bin_dir/harness" ] || { echo "FAIL $bin_dir/harness is missing: build it first"; exit 1; }

installed=$(dpkg-query -W -f='${Version}' chromium 2>/dev/null || true)
if [ "$installed" != "$CHROMIUM_VERSION" ]; then
  echo "installing chromium=$CHROMIUM_VERSION (found: ${installed:-none})"
  apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "chromium=$CHROMIUM_VERSION" >/dev/null; then
    echo "FAIL chromium $CHROMIUM_VERSION is not installable; the archive has:"
    apt-cache policy chromium | sed 's/^/     /'
    echo "     pin the version above in CHROMIUM_VERSION in $0"
    exit 1
  fi
fi
echo "$(chromium --version 2>/dev/null)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
report="$scratch/report.html"
"$bin_dir/harness" run scenarios/flaky.toml --seeds 1..3 --report "$report" >/dev/null 2>&1
echo "report: $(wc -c < "$report") bytes"

browse() {
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$scratch/profile" --window-size=1400,1000 "$@" 2>"$scratch/chromium.log"
}

browse --screenshot="$scratch/report.png" "file://$report" >/dev/null
python3 ci/report/png-check.py "$scratch/report.png"

browse --dump-dom "file://$report#selftest" > "$scratch/dom.html"
failures=0
if grep -o 'data-script-error="[^"]*"' "$scratch/dom.html"; then
  echo "FAIL the page reported a script error"; failures=$((failures + 1))
fi
for marker in 'data-report-ok="1"' 'data-selftest="ok"'; do
  grep -qF "$marker" "$scratch/dom.html" || { echo "FAIL no $marker on the page"; failures=$((failures + 1)); }
done
[ "$failures" = 0 ] || { tail -5 "$scratch/chromium.log" | sed 's/^/     /'; exit 1; }
echo "ok   the report renders, its script ran without error, and clicks show details"
