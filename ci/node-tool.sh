# Shared by the CI scripts that drive a pinned npm tool against the servers.
# Source it; it defines:
#   install_pinned DIR BIN    npm ci in DIR unless DIR/node_modules/.bin/BIN and
#                             its own node are there, then put them first on PATH
#   url_in LOG                the http://127.0.0.1:PORT/mcp a server logged, within 30 s (a loaded machine is slow to start Python)

install_pinned() {
  local dir=$1 bin=$2
  if [ ! -x "$dir/node_modules/.bin/$bin" ] || [ ! -x "$dir/node_modules/.bin/node" ]; then
    echo "installing $bin (pinned in $dir/package-lock.json)"
    (cd "$dir" && npm ci --no-audit --no-fund --omit=dev --loglevel=error)
  fi
  PATH="$PWD/$dir/node_modules/.bin:$PATH"   # its own node 22 comes first
  export PATH
}

url_in() {
  local log=$1 url=""
  for _ in $(seq 1 300); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/mcp' "$log" | head -n 1 || true)
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.1
  done
  echo "FAIL no server URL in $log within 30 s:" >&2
  cat "$log" >&2
  return 1
}
