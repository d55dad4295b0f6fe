#!/usr/bin/env bash
# Installs every build and test dependency on a Debian 12 machine and builds the project into
# build/. Safe to run again. Usage: bash deploy/setup.sh [--deps-only]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake pkg-config git
  librdkafka-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler libuv1-dev
  libhiredis-dev libcmocka-dev libcurl4-openssl-dev libjansson-dev libsodium-dev
  openssl clang-format redis-server redis-tools golang-cfssl
  maven iproute2 sqlite3 curl jq chromium gnuplot-nox
  systemd prometheus python3-venv
  softhsm2 opensc libengine-pkcs11-openssl p11-kit stunnel4
  # the sanitizer suite of tests/run.sh: clang, libFuzzer, llvm-symbolizer for readable stacks
  clang libclang-rt-14-dev llvm
)
# Kafka runs on the machine's Java (17 or newer); install Debian's only when there is none.
command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
# The tests build cfssl 1.6 (client serials, its CRL endpoint; Debian has 1.2) with Go 1.18 or
# newer: Debian's when the machine has none.
command -v go >/dev/null 2>&1 || packages+=(golang-go)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
  # Debian's prometheus package is here for promtool (the alert rules' check); on a machine
  # running systemd it would also start a Prometheus server on every address: not ours to run.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && systemctl is-active --quiet prometheus 2>/dev/null; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
else
  echo "setup: all Debian packages present"
fi

[ "${1:-}" = "--deps-only" ] && exit 0

cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j"$(nproc)"
echo "setup: built into $here/build"
