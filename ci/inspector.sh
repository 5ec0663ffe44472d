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

# checks_for TRANSPORT USER_TARGET... -- PAYMENT_TARGET...
run_checks() {
  local transport=$1 user=$2 payment=$3
  # --strict turns schema portability problems into a non-zero exit.
  check "$transport: user tools/list" 0 '"name": "getUserIdByEmail"|"readOnlyHint": true|"outputSchema"' "Warning:" -- \
    $user --method tools/list --strict
  check "$transport: payment tools/list" 0 '"name": "getTransactionsUsingUserId"|"readOnlyHint": true' "Warning:" -- \
    $payment --method tools/list --strict
  check "$transport: getUserIdByEmail finds Bob ignoring case" 0 "\"text\": \"$BOB\"|\"userId\": \"$BOB\"" "" -- \
    $user --method tools/call --tool-name getUserIdByEmail --tool-arg email=BOB@example.com
  # The inspector exits 5 when a tool reports isError.
  check "$transport: getUserIdByEmail names an unknown email" 5 \
    'User with email nobody@example.com not found|"isError": true' "" -- \
    $user --method tools/call --tool-name getUserIdByEmail --tool-arg email=nobody@example.com
  check "$transport: getTransactionsUsingUserId cuts to count=2, newest first" 0 \
    '"description": "Coffee"|"description": "Groceries"|"total": 4' '"description": "Dinner"' -- \
    $payment --method tools/call --tool-name getTransactionsUsingUserId --tool-arg userId=$BOB --tool-arg count=2
  check "$transport: getTransactionsUsingUserId refuses count=0" 5 \
    'count must be an integer between 1 and 1000, got 0|"isError": true' "" -- \
    $payment --method tools/call --tool-name getTransactionsUsingUserId --tool-arg userId=$BOB --tool-arg count=0
}

run_checks stdio "$bin_dir/user-server" "$bin_dir/payment-server"

# HTTP: each server on an ephemeral loopback port; its log line names the URL.
# Started from this shell (not a $(...) subshell) so the trap can stop them.
"$bin_dir/user-server" --http 127.0.0.1:0 >/dev/null 2>"$scratch/user.log" &
pids+=($!)
"$bin_dir/payment-server" --http 127.0.0.1:0 >/dev/null 2>"$scratch/payment.log" &
pids+=($!)
user_url=$(url_in "$scratch/user.log")
payment_url=$(url_in "$scratch/payment.log")
run_checks http "--transport http $user_url" "--transport http $payment_url"

if [ "$failures" -gt 0 ]; then
  echo "$failures inspector check(s) failed"
  exit 1
fi
echo "all inspector checks passed"
