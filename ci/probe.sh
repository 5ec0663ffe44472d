#!/usr/bin/env bash
# `harness probe` against servers over stdio and streamable HTTP:
#   - both reference servers: every MUST must hold (the exceptions are in
#     PROBE.md, with their reasons);
#   - the official TypeScript SDK peer (benches/peers/ts) and the official
#     Python SDK peer (benches/peers/python): their findings are recorded
#     (JUnit and replay files under target/probe/), never a failure here.
#
#   bash ci/probe.sh [BIN_DIR]    # BIN_DIR holds harness, user-server, payment-server
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cd "${1:-target/debug}" && pwd)
. ci/node-tool.sh   # url_in
out=target/probe
rm -rf "$out" && mkdir -p "$out"
# Servers started in the background, one pid a line: `serve` runs in a
# command substitution (a subshell), so an array would never see them.
pidfile=$out/servers.pids
cleanup() { [ -f "$pidfile" ] && while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$pidfile"; }
trap cleanup EXIT

PROBE_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export PROBE_TOKEN

# probe NAME ARGS…: one probe run, its JUnit and replay files under $out/NAME.
probe() {
  local name=$1; shift
  "$bin/harness" probe --quiet --cases 48 --out "$out/$name" --junit "$out/$name.xml" "$@" \
    >"$out/$name.txt" 2>&1
}

# serve LOG COMMAND…: starts an HTTP server in the background; prints its URL.
serve() {
  local log=$1; shift
  "$@" >/dev/null 2>"$log" &
  echo $! >>"$pidfile"
  url_in "$log"
}

failed=0
for server in user-server payment-server; do
  # Over stdio at 2025-11-25 only: see PROBE.md (rmcp's stdio server waits
  # for initialize after server/discover).
  if probe "$server-stdio" --spec 2025-11-25 --stdio -- "$bin/$server"; then
    echo "ok   $server over stdio: $(tail -n 1 "$out/$server-stdio.txt")"
  else
    echo "FAIL $server over stdio:"; cat "$out/$server-stdio.txt"; failed=1
  fi
  url=$(serve "$out/$server-http.log" "$bin/$server" --http 127.0.0.1:0 --auth-token-env PROBE_TOKEN)
  if probe "$server-http" --url "$url" --header "Authorization: Bearer $PROBE_TOKEN"; then
    echo "ok   $server over HTTP: $(tail -n 1 "$out/$server-http.txt")"
  else
    echo "FAIL $server over HTTP:"; cat "$out/$server-http.txt"; failed=1
  fi
done

# The SDK peers: recorded, not judged here.
record() {
  local name=$1; shift
  local status=0
  probe "$name" "$@" || status=$?
  echo "peer $name (exit $status): $(tail -n 1 "$out/$name.txt")"
}
ts=benches/peers/ts
[ -d "$ts/node_modules" ] || (cd "$ts" && npm ci --no-audit --no-fund --loglevel=error)
record ts-user-stdio --stdio -- node "$ts/user-server.mjs"
url=$(serve "$out/ts-user-http.log" node "$ts/user-server.mjs" --http 0)
record ts-user-http --url "$url"
bash benches/peers/python/setup.sh
py=benches/peers/python/.venv/bin/python
record python-user-stdio --stdio -- "$py" benches/peers/python/user_server.py
url=$(serve "$out/python-user-http.log" "$py" benches/peers/python/user_server.py --http 0)
record python-user-http --url "$url"
exit "$failed"
