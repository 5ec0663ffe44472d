#!/usr/bin/env bash
# Architecture invariants that a grep can check.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

# The orchestrator library never names a server crate; only the binary's
# embedded mode (main.rs, embedded.rs, bench.rs) may.
hits=$(grep -rnE '\b(user_server|payment_server|mcp_server_kit)\b' orchestrator/src --include='*.rs' \
  | grep -vE '^orchestrator/src/(main|embedded|bench)\.rs:' || true)
if [ -n "$hits" ]; then
  echo "FAIL the orchestrator library names a server crate:"; echo "$hits"; fail=1
fi

# Servers know nothing of the orchestrator.
hits=$(grep -rn 'orchestrator' servers/*/Cargo.toml || true)
if [ -n "$hits" ]; then
  echo "FAIL a server crate depends on the orchestrator:"; echo "$hits"; fail=1
fi

# No wall clock or OS randomness in library code the simulation may run.
# servers/kit/src/cli.rs is a server binary's main: the system clock for JWT
# expiry and OS randomness for a generated token; a simulation never runs it
# (it passes its own clock to the Authenticator).
hits=$(grep -rnE 'std::time::Instant|SystemTime::now|thread_rng|rand::random|OsRng|from_entropy|getrandom::' \
  orchestrator/src servers --include='*.rs' \
  | grep -vE '/tests/|^orchestrator/src/(main|bench)\.rs:|^servers/kit/src/cli\.rs:' || true)
if [ -n "$hits" ]; then
  echo "FAIL wall clock or OS randomness in library code:"; echo "$hits"; fail=1
fi

[ "$fail" = 0 ] && echo "ok   architecture boundaries"
exit "$fail"
