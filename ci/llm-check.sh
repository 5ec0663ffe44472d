#!/usr/bin/env bash
# The LLM planner against a real model: llama.cpp's server with SmolLM2-135M
# (ci/llm-server.sh, pinned from PyPI), the reference servers started by the
# orchestrator itself over stdio. Each question must get exactly the answer
# below, and the paraphrases must be ones the deterministic planner refuses
# (exit 2), so that they show what the model adds. Prints the latency of each
# question and of each model turn.
#
#   bash ci/llm-check.sh [BIN_DIR]     # BIN_DIR holds orchestrator (default target/debug)
#
# The model's choices are reproducible (temperature 0, seed 1) but close: a
# 135M model picks between "list the transactions" and "done" by a small
# margin, which is why the planner never lets it supply a value and renders
# the answer from the tools' results. See README "The LLM planner".
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=$(cd "${1:-target/debug}" && pwd)
orchestrator="$bin_dir/orchestrator"
[ -x "$orchestrator" ] || { echo "FAIL $orchestrator is missing: build it first"; exit 1; }
PORT=${LLM_CHECK_PORT:-18091}

bash ci/llm-server.sh install
url=$(bash ci/llm-server.sh start "$PORT")
trap 'bash ci/llm-server.sh stop' EXIT
echo "model: SmolLM2-135M-Instruct (F16) at $url"

BOB="Recent transactions for bob@example.com:
- Coffee: £50 on 16 January 2023
- Groceries: £100 on 15 January 2023
- Dinner: £75 on 14 January 2023
- Online Course: £120 on 12 January 2023"
ALICE="Recent transactions for alice@example.com:
- Concert Tickets: £200 on 10 January 2023"
BOB_ID="The user id for bob@example.com (Bob) is b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f."

failures=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"; bash ci/llm-server.sh stop' EXIT

# check QUESTION EXPECTED [paraphrase]: the LLM planner's answer must be
# EXPECTED; a paraphrase must also be refused by the rules.
check() {
  local question=$1 expected=$2 paraphrase=${3:-}
  if [ -n "$paraphrase" ] && "$orchestrator" ask "$question" >/dev/null 2>&1; then
    echo "FAIL the rules planner answers \"$question\": not a paraphrase it refuses"; failures=$((failures + 1)); return
  fi
  local started=$SECONDS code=0
  "$orchestrator" -v ask --planner llm --llm-url "$url" --llm-model smollm2 "$question" \
    >"$scratch/out" 2>"$scratch/err" || code=$?
  local turns
  turns=$(sed -E 's/\x1b\[[0-9;]*m//g' "$scratch/err" | grep -o 'model turn turn=.*' \
    | sed -E 's/model turn turn=([0-9]+) ms=([0-9]+) chose=(.*)/\2 ms: \3/' | paste -sd ',' - | sed 's/,/, /g')
  if [ "$code" = 0 ] && [ "$(cat "$scratch/out")" = "$expected" ]; then
    echo "ok   $(printf '%-56s' "\"$question\"") $((SECONDS - started)) s"
    echo "       model turns: $turns"
  else
    echo "FAIL \"$question\" (exit $code):"; sed 's/^/       /' "$scratch/out" "$scratch/err" | tail -20
    failures=$((failures + 1))
  fi
}

check "What are the recent transactions for bob@example.com?" "$BOB"
check "Could you pull up bob@example.com's purchase history?" "$BOB" paraphrase
check "what has bob@example.com been buying lately" "$BOB" paraphrase
check "show me everything alice@example.com paid for" "$ALICE" paraphrase
check "Which user id belongs to bob@example.com?" "$BOB_ID" paraphrase

[ "$failures" = 0 ] || { echo "FAIL $failures question(s) not answered as expected"; exit 1; }
echo "ok   the LLM planner answers the seed question and 4 paraphrases the rules refuse"
