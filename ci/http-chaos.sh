#!/usr/bin/env bash
# The orchestrator over streamable HTTP on the real network, through a fault
# proxy, as a user would run it (issue 11's lockout report, outside the
# simulation):
#   - both reference servers over HTTP with their generated tokens;
#   - ci/fault-proxy.py in front of each, resetting or silently stalling
#     about 5% of the chunks it forwards (2.5% each, seeded);
#   - `orchestrator ask --config …` run ASKS times in a row (default 60),
#     each a new process, so every dead connection abandons a session.
# Passes when at least 90% of the asks print the right answer and none is
# refused with 429 (a token locked out by its own abandoned sessions).
#
#   bash ci/http-chaos.sh [BIN_DIR]   # BIN_DIR holds orchestrator, user-server,
#                                     # payment-server (default target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cd "${1:-target/debug}" && pwd)
. ci/node-tool.sh   # url_in
asks=${ASKS:-60}
seed=${SEED:-1}
scratch=$(mktemp -d)
pidfile=$scratch/pids
cleanup() {
  [ -f "$pidfile" ] && while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$pidfile"
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

# start LOG COMMAND…: runs COMMAND in the background, its stderr in LOG.
start() {
  local log=$1; shift
  "$@" >/dev/null 2>"$log" &
  echo $! >>"$pidfile"
}

# proxy NAME URL: a fault proxy in front of the server at URL; prints its URL.
proxy() {
  local name=$1 url=$2 upstream port=""
  upstream=$(echo "$url" | sed -E 's|^http://([^/]+)/mcp$|\1|')
  start "$scratch/$name-proxy.log" python3 ci/fault-proxy.py --upstream "$upstream" \
    --reset "${RESET:-0.025}" --stall "${STALL:-0.025}" --seed "$seed"
  tail -n 1 "$pidfile" >"$scratch/$name-proxy.pid"
  for _ in $(seq 1 100); do
    port=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$scratch/$name-proxy.log" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && { echo "http://127.0.0.1:$port/mcp"; return; }
    sleep 0.1
  done
  echo "FAIL the $name proxy did not start:" >&2; cat "$scratch/$name-proxy.log" >&2; return 1
}

for server in user payment; do
  start "$scratch/$server.log" "$bin/$server-server" --http 127.0.0.1:0 \
    --auth-token-out "$scratch/$server.token"
  url=$(url_in "$scratch/$server.log")
  declare "${server}_url=$(proxy "$server" "$url")"
done
cat >"$scratch/orchestrator.toml" <<EOF
[[servers]]
name = "user"
http = "$user_url"
token = { file = "user.token" }
[[servers]]
name = "payment"
http = "$payment_url"
token = { file = "payment.token" }
[policy]
connect_timeout_ms = 2000    # a stalled handshake is given up sooner than the default 5 s
attempts_max = 4
EOF

BOB="Recent transactions for bob@example.com:
- Coffee: £50 on 16 January 2023
- Groceries: £100 on 15 January 2023
- Dinner: £75 on 14 January 2023
- Online Course: £120 on 12 January 2023"
right=0 failed=0 limited=0 started=$SECONDS
for i in $(seq 1 "$asks"); do
  answer=$("$bin/orchestrator" ask --config "$scratch/orchestrator.toml" \
    "What are the recent transactions for bob@example.com?" 2>"$scratch/ask.err") || true
  if [ "$answer" = "$BOB" ]; then
    right=$((right + 1))
  else
    failed=$((failed + 1))
    grep -q "429\|rate limited" "$scratch/ask.err" && limited=$((limited + 1))
    echo "  ask $i: $(head -c 300 "$scratch/ask.err" | head -n 2)"
  fi
done
elapsed=$((SECONDS - started))
# Each proxy says what it did when stopped.
for name in user payment; do
  pid=$(cat "$scratch/$name-proxy.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  grep "fault proxy" "$scratch/$name-proxy.log" | sed "s/^/  $name: /" || true
done
echo "$right of $asks asks right, $failed failed ($limited with 429) in ${elapsed} s"
if [ "$limited" -gt 0 ] || [ $((right * 10)) -lt $((asks * 9)) ]; then
  echo "FAIL want at least 90% right and no 429"
  exit 1
fi
echo "ok"
