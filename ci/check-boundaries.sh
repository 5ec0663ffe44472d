#!/usr/bin/env bash
# Architecture invariants that Cargo alone does not keep.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

# The orchestrator library (package mcp-orchestrator) cannot name a crate it
# does not depend on; this keeps anyone from adding one: no server crate, and
# nothing only a binary needs. Only the `orchestrator` binary (orchestrator/cli)
# links the servers, through reference-servers.
tree=$(cargo tree -p mcp-orchestrator -e normal --prefix none)
hits=$(grep -E '^(user-server|payment-server|mcp-server-kit|reference-servers|clap|anyhow|indicatif|tracing-subscriber) ' <<<"$tree" \
  | sort -u || true)
if [ -n "$hits" ]; then
  echo "FAIL the orchestrator library depends on:"; echo "$hits"; fail=1
fi

# Servers (and their test support) know nothing of the orchestrator.
for server in mcp-server-kit user-server payment-server test-support; do
  if cargo tree -p "$server" -e normal --prefix none | grep -qE '^(mcp-orchestrator|orchestrator) '; then
    echo "FAIL $server depends on the orchestrator"; fail=1
  fi
done

# No wall clock or OS randomness in library code the simulation may run.
# servers/kit/src/cli.rs is a server binary's main: the system clock for JWT
# expiry and OS randomness for a generated token; a simulation never runs it
# (it passes its own clock to the Authenticator).
hits=$(grep -rnE 'std::time::Instant|SystemTime::now|thread_rng|rand::random|OsRng|from_entropy|getrandom::' \
  orchestrator/src servers --include='*.rs' \
  | grep -vE '/tests/|^servers/kit/src/cli\.rs:' || true)
if [ -n "$hits" ]; then
  echo "FAIL wall clock or OS randomness in library code:"; echo "$hits"; fail=1
fi

# The oracle is independent of the code it checks: nothing of the
# orchestrator (planner, answers, money) in harness/src/oracle*, comments aside.
hits=$(grep -rnE 'orchestrator(::|\b *[,}])|use orchestrator' harness/src/oracle.rs harness/src/oracle \
  | grep -vE '^[^:]+:[0-9]+: *//' || true)
if [ -n "$hits" ]; then
  echo "FAIL the oracle uses the orchestrator's code:"; echo "$hits"; fail=1
fi

[ "$fail" = 0 ] && echo "ok   architecture boundaries"
exit "$fail"
