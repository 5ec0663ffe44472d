#!/usr/bin/env bash
# Checks the HTML run report in a real browser: builds the report of
# flaky.toml seeds 1..3, renders it with headless Chromium (the Debian
# package, pinned) to a PNG that must not be blank, and reads the page's
# DOM back to check that its script ran without an error and that clicking
# a query, a message and a fault of every timeline shows it (#selftest).
#
#   bash ci/report-check.sh [BIN_DIR]     # BIN_DIR holds harness (default target/debug)
#
# Installs Debian's chromium when it is missing or not a version this check
# has passed with. Debian keeps only the newest build of a package in each
# suite (bookworm and bookworm-security), so an exact pin stops installing
# the day a security update replaces it: that failed the gate once. So the
# versions below are tried in order, newest first, and when the archive has
# none of them the check takes the archive's candidate and says so, loudly,
# so that the next session adds it here.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM_VERSIONS=(
  156.0.8078.114-1~deb12u1   # bookworm-security, 2026-12
  150.0.7871.100-1~deb12u1   # bookworm point release
  148.0.7778.167-1~deb12u1   # the first pin (report added, 2026-11)
)
bin_dir=$(cd "${1:-target/debug}" && pwd)
[ -x "$bin_dir/harness" ] || { echo "FAIL $bin_dir/harness is missing: build it first"; exit 1; }

is_pinned() { local v; for v in "${CHROMIUM_VERSIONS[@]}"; do [ "$1" = "$v" ] && return 0; done; return 1; }
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1; }

install_chromium() {
  apt-get update -qq
  local v
  for v in "${CHROMIUM_VERSIONS[@]}"; do
    if apt_install "chromium=$v"; then echo "installed chromium=$v (pinned)"; return 0; fi
  done
  echo "warn none of the pinned chromium versions is in the archive any more:"
  apt-cache policy chromium | sed 's/^/     /'
  apt_install chromium || { echo "FAIL chromium is not installable at all"; exit 1; }
  echo "warn installed the archive's chromium $(dpkg-query -W -f='${Version}' chromium);" \
       "add it to CHROMIUM_VERSIONS in $0 once this check passes with it"
}

installed=$(dpkg-query -W -f='${Version}' chromium 2>/dev/null || true)
if [ -z "$installed" ] || ! is_pinned "$installed"; then
  echo "chromium: found ${installed:-none}, want one of: ${CHROMIUM_VERSIONS[*]}"
  install_chromium
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
