#!/usr/bin/env bash
# Makes the test certificates tests/http.rs trusts and serves (run once;
# the output is committed). OpenSSL 3. A test CA, and two leaves it signs
# with one P-256 key: localhost.pem for localhost and 127.0.0.1, other.pem
# for other.example. Valid for 100 years; the CA's key is thrown away.
# No secret: for tests only.
set -euo pipefail
cd "$(dirname "$0")"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
days=36500
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$scratch/ca.key" -out ca.pem -days "$days" -subj "/CN=mcp-http test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key
leaf() { # CN, output name, subjectAltName
  openssl req -new -key leaf.key -subj "/CN=$1" -out "$scratch/$2.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$3" >"$scratch/$2.ext"
  openssl x509 -req -in "$scratch/$2.csr" -CA ca.pem -CAkey "$scratch/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days "$days" -extfile "$scratch/$2.ext" -out "$2.pem"
}
leaf localhost localhost "DNS:localhost,IP:127.0.0.1"
leaf other.example other "DNS:other.example"
