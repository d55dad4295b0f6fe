#!/usr/bin/env bash
# The main job, as far as the project goes today: issue the sample profiles' certificates with
# the engine and the local CA, open each result as the target device would (with the openssl
# tool only), verify it against the CA, and print a summary.
# Usage: bash deploy/demo.sh [STATE_DIR]      (after bash deploy/setup.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${1:-$here/state/demo}"
bin="$here/build"
[ -x "$bin/pkcsctl" ] || { echo "demo: build first: bash deploy/setup.sh" >&2; exit 1; }

mkdir -p "$state/devices" "$state/results"
chmod 700 "$state"
export PC_STATE_DIR="$state"
# The local CA key is stored encrypted; its passphrase comes from a file only this user can
# read. In production, mount it from your secret store instead.
if [ ! -s "$state/ca-passphrase" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 > "$state/ca-passphrase")
fi
export PC_CA_KEY_PASSPHRASE_FILE="$state/ca-passphrase"

device_key() { # device_key NAME ALG-ARGS...: a device's own key pair, made on "the device"
  local f="$state/devices/$1.pem"; shift
  [ -s "$f" ] || (umask 077; openssl genpkey "$@" -out "$f" 2>/dev/null)
  echo "$f"
}

printf "%-14s %-8s %-10s %-9s %s\n" REQUEST RESULT KEY TIME SUBJECT
start=$(date +%s%N)
for sample in user-wifi device-vpn user-smime; do
  case "$sample" in
    device-vpn) key=$(device_key "$sample" -algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
    *) key=$(device_key "$sample" -algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
  esac
  out="$state/results/$sample"
  t0=$(date +%s%N)
  "$bin/pkcsctl" issue --offline --request "$here/deploy/samples/$sample.json" \
      --device-key "$key" --out "$out" > "$out.log"
  t1=$(date +%s%N)
  # What the device does: open the envelope with its key, read the PFX (empty password).
  openssl cms -decrypt -inform DER -in "$out/result.p7m" -inkey "$key" \
      | openssl pkcs12 -passin pass: -nokeys -clcerts 2>/dev/null \
      | openssl verify -CAfile "$state/ca/local/ca.crt" >/dev/null
  subject=$(openssl x509 -in "$out/cert.pem" -noout -subject -nameopt RFC2253,utf8,-esc_msb)
  keyinfo=$(openssl x509 -in "$out/cert.pem" -noout -text | sed -n 's/.*Public-Key: (\(.*\) bit)/\1/p' | head -1)
  printf "%-14s %-8s %-10s %-9s %s\n" "$sample" verified "${keyinfo} bit" \
      "$(( (t1 - t0) / 1000000 )) ms" "${subject#subject=}"
done
end=$(date +%s%N)
echo
echo "3 certificates issued, opened with their device keys and verified in $(( (end - start) / 1000000 )) ms"
echo "CA certificate:   $state/ca/local/ca.crt"
echo "results:          $state/results/<request>/{cert.pem,chain.pem,result.p7m,result.json}"
