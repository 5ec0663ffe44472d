#!/usr/bin/env bash
# Checks both reference servers with the official MCP Inspector CLI, a client
# nobody here wrote, over stdio and over streamable HTTP.
#
#   bash ci/inspector.sh [BIN_DIR]      # BIN_DIR holds user-server and payment-server
#                                       # (default target/debug)
#
# Installs the pinned inspector, and the Node 22 it needs, into ci/inspector/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=$(cd "${1:-target/debug}" && pwd)
for server in user-server payment-server; do
  [ -x "$bin_dir/$server" ] || { echo "FAIL $bin_dir/$server is missing: build it first"; exit 1; }
done

. ci/node-tool.sh
install_pinned ci/inspector mcp-inspector
scratch=$(mktemp -d)
export MCP_CATALOG_PATH="$scratch/catalog.json"    # never touch ~/.mcp-inspector
echo "inspector $(mcp-inspector --version 2>/dev/null | tail -n 1) on node $(node --version)"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

failures=0
BOB=b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f

# check WHAT EXPECT_EXIT MUST_CONTAIN MUST_NOT_CONTAIN -- inspector args...
check() {
  local what=$1 expect_exit=$2 must=$3 must_not=$4
  shift 5
  local out status=0
  out=$(timeout 60 mcp-inspector --cli "$@" 2>&1) || status=$?
  if [ "$status" != "$expect_exit" ]; then
    echo "FAIL $what: exit $status, expected $expect_exit"; echo "$out" | sed 's/^/     /' | tail -20
    failures=$((failures + 1)); return
  fi
  local needle
  IFS='|' read -ra needles <<<"$must"
  for needle in "${needles[@]}"; do
    if ! grep -qF -- "$needle" <<<"$out"; then
      echo "FAIL $what: no \"$needle\" in:"; echo "$out" | sed 's/^/     /' | tail -20
      failures=$((failures + 1)); return
    fi
  done
  if [ -n "$must_not" ] && grep -qF -- "$must_not" <<<"$out"; then
    echo "FAIL $what: unexpected \"$must_not\" in:"; echo "$out" | sed 's/^/     /' | tail -20
    failures=$((failures + 1)); return
  fi
  echo "ok   $what"
}

# run_checks TRANSPORT USER_ARGS_ARRAY PAYMENT_ARGS_ARRAY (names of arrays)
run_checks() {
  local transport=$1
  local -n user=$2 payment=$3
  # --strict turns schema portability problems into a non-zero exit.
  check "$transport: user tools/list" 0 '"name": "getUserIdByEmail"|"readOnlyHint": true|"outputSchema"' "Warning:" -- \
    "${user[@]}" --method tools/list --strict
  check "$transport: payment tools/list" 0 '"name": "getTransactionsUsingUserId"|"readOnlyHint": true' "Warning:" -- \
    "${payment[@]}" --method tools/list --strict
  check "$transport: getUserIdByEmail finds Bob ignoring case" 0 "\"text\": \"$BOB\"|\"userId\": \"$BOB\"" "" -- \
    "${user[@]}" --method tools/call --tool-name getUserIdByEmail --tool-arg email=BOB@example.com
  # The inspector exits 5 when a tool reports isError.
  check "$transport: getUserIdByEmail names an unknown email" 5 \
    'User with email nobody@example.com not found|"isError": true' "" -- \
    "${user[@]}" --method tools/call --tool-name getUserIdByEmail --tool-arg email=nobody@example.com
  check "$transport: getTransactionsUsingUserId cuts to count=2, newest first" 0 \
    '"description": "Coffee"|"description": "Groceries"|"total": 4' '"description": "Dinner"' -- \
    "${payment[@]}" --method tools/call --tool-name getTransactionsUsingUserId --tool-arg userId=$BOB --tool-arg count=2
  check "$transport: getTransactionsUsingUserId refuses count=0" 5 \
    'count must be an integer between 1 and 1000, got 0|"isError": true' "" -- \
    "${payment[@]}" --method tools/call --tool-name getTransactionsUsingUserId --tool-arg userId=$BOB --tool-arg count=0
}

user_stdio=("$bin_dir/user-server")
payment_stdio=("$bin_dir/payment-server")
run_checks stdio user_stdio payment_stdio

# HTTP: each server on an ephemeral loopback port, secure by default: with no
# credentials configured it generates a bearer token into a file only we can
# read (--auth-token-out puts it in our scratch dir). Its log line names the URL.
# Started from this shell (not a $(...) subshell) so the trap can stop them.
"$bin_dir/user-server" --http 127.0.0.1:0 --auth-token-out "$scratch/user.token" >/dev/null 2>"$scratch/user.log" &
pids+=($!)
"$bin_dir/payment-server" --http 127.0.0.1:0 --auth-token-out "$scratch/payment.token" >/dev/null 2>"$scratch/payment.log" &
pids+=($!)
user_url=$(url_in "$scratch/user.log")
payment_url=$(url_in "$scratch/payment.log")
mode=$(stat -c %a "$scratch/user.token")
[ "$mode" = 600 ] || { echo "FAIL the generated token file is mode $mode, not 600"; failures=$((failures + 1)); }
user_http=(--transport http "$user_url" --header "Authorization: Bearer $(cat "$scratch/user.token")")
payment_http=(--transport http "$payment_url" --header "Authorization: Bearer $(cat "$scratch/payment.token")")
run_checks http user_http payment_http

# Without the token, or with one server's token at the other, nothing is
# served; the inspector reads the 401 challenge and exits 3 (auth_required).
check "http: no token is refused (the inspector sees an OAuth challenge) and gets no data" 3 "auth_required" "$BOB" -- \
  --transport http "$payment_url" --method tools/call --tool-name getTransactionsUsingUserId --tool-arg userId=$BOB
check "http: the user server's token is refused by the payment server" 3 "auth_required" "$BOB" -- \
  --transport http "$payment_url" --header "Authorization: Bearer $(cat "$scratch/user.token")" \
  --method tools/call --tool-name getTransactionsUsingUserId --tool-arg userId=$BOB

if [ "$failures" -gt 0 ]; then
  echo "$failures inspector check(s) failed"
  exit 1
fi
echo "all inspector checks passed"
