#!/usr/bin/env bash
# Round trip with the openssl command-line tool as the independent judge:
# request -> pkcsctl issue --offline (engine + local CA) -> result.p7m -> openssl cms -decrypt
# with the device key -> openssl pkcs12 -> openssl verify against the CA certificate; subject,
# SANs, EKUs and validity checked; pkcsctl decrypt agrees; bad requests fail clearly.
set -euo pipefail

bin="${PC_BIN_DIR:?}"
src="${PC_SOURCE_DIR:?}"
work="$(mktemp -d /tmp/pc-roundtrip-XXXXXX)"
trap 'rm -rf "$work"' EXIT

export PC_STATE_DIR="$work/state"
(umask 077 && head -c 32 /dev/urandom | base64 > "$work/ca-passphrase") # chmod 600: a secret
export PC_CA_KEY_PASSPHRASE_FILE="$work/ca-passphrase"
unset PC_CONFIG PC_CA_KEY_PASSPHRASE

fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/dev-rsa.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/dev-ec.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/dev-other.pem" 2>/dev/null

# issue NAME SAMPLE DEVICE_KEY: runs the engine and opens the result as the device would.
issue() {
  local name="$1" sample="$2" devkey="$3" out="$work/$1"
  "$bin/pkcsctl" issue --offline --request "$src/deploy/samples/$sample" \
      --device-key "$devkey" --out "$out" > "$work/$name.log" || fail "$name: pkcsctl issue failed: $(cat "$work/$name.log")"
  openssl cms -decrypt -inform DER -in "$out/result.p7m" -inkey "$devkey" -out "$out/result.p12" \
      || fail "$name: openssl cms could not open the envelope with the device key"
  openssl pkcs12 -in "$out/result.p12" -passin pass: -nokeys -clcerts -out "$out/leaf.pem" \
      || fail "$name: openssl pkcs12 could not read the PFX"
  openssl pkcs12 -in "$out/result.p12" -passin pass: -nocerts -nodes -out "$out/key.pem" 2>/dev/null \
      || fail "$name: no private key in the PFX"
  openssl verify -CAfile "$PC_STATE_DIR/ca/local/ca.crt" "$out/leaf.pem" >/dev/null \
      || fail "$name: certificate does not verify against the local CA"
  cmp -s <(openssl x509 -in "$out/leaf.pem" -outform DER) <(openssl x509 -in "$out/cert.pem" -outform DER) \
      || fail "$name: certificate in the PFX differs from cert.pem"
  cmp -s <(openssl pkey -in "$out/key.pem" -pubout) <(openssl x509 -in "$out/leaf.pem" -noout -pubkey) \
      || fail "$name: private key in the PFX does not match the certificate"
  ok "$name: issued, opened with the device key, verifies against the CA"
}

text() { openssl x509 -in "$work/$1/leaf.pem" -noout -text -nameopt RFC2253,utf8,-esc_msb; }
expect() { # expect NAME PATTERN WHAT
  text "$1" | grep -qF -- "$2" || fail "$1: expected $3 ($2) in the certificate"
  ok "$1: $3"
}

issue user user-wifi.json "$work/dev-rsa.pem"
subject="$(openssl x509 -in "$work/user/leaf.pem" -noout -subject -nameopt RFC2253,utf8,-esc_msb)"
[ "$subject" = 'subject=O=Contoso\, Ltd,OU=Staff,emailAddress=ann@contoso.com,CN=O'"'"'Neil\, Ann \+ Co' ] \
  || fail "user: subject is [$subject]"
ok "user: value with , + ' stays one CN; quoted O keeps its comma"
expect user "othername: UPN::ann@contoso.com" "UPN SAN"
expect user "email:ann@contoso.com" "email SAN"
expect user "TLS Web Client Authentication" "clientAuth EKU"
expect user "Public-Key: (2048 bit)" "RSA-2048 key"
days=$(( ( $(date -d "$(openssl x509 -in "$work/user/leaf.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s) ) / 86400 ))
[ "$days" -ge 364 ] && [ "$days" -le 365 ] || fail "user: validity is $days days, expected 365"
ok "user: valid for 365 days"

"$bin/pkcsctl" issue --offline --request "$src/deploy/samples/device-vpn.json" \
  --device-key "$work/dev-ec.pem" --out "$work/nested/a/b" > "$work/nested.log" \
  || fail "--out into folders that do not exist yet: $(cat "$work/nested.log")"
[ -s "$work/nested/a/b/result.p7m" ] || fail "--out a/b: no result.p7m in it"
ok "--out makes the folders it needs"

issue device device-vpn.json "$work/dev-ec.pem"
expect device "DNS:ws-0042.corp.contoso.com" "DNS SAN"
expect device "URI:urn:device:6f0c3c1e-8d6a-4f7e-9a51-2b8e0d9c4f11" "URI SAN"
expect device "ASN1 OID: prime256v1" "P-256 key"
expect device "serialNumber=R58N91ABCDE" "SERIALNUMBER attribute"

issue smime user-smime.json "$work/dev-rsa.pem"
expect smime "CN=Zoë Ångström" "UTF-8 subject"
expect smime "E-mail Protection" "emailProtection EKU"
expect smime "1.3.6.1.4.1.311.25.2" "SID extension"
expect smime "Public-Key: (3072 bit)" "RSA-3072 key"

# pkcsctl decrypt opens the result the same way; the wrong device key does not.
"$bin/pkcsctl" decrypt --key "$work/dev-ec.pem" --in "$work/device/result.p7m" | grep -q "private key present" \
  || fail "pkcsctl decrypt did not open the device result"
ok "pkcsctl decrypt opens the result with the device key"
if "$bin/pkcsctl" decrypt --key "$work/dev-other.pem" --in "$work/device/result.p7m" 2>"$work/err.txt"; then
  fail "pkcsctl decrypt opened a result with the wrong key"
fi
ok "wrong device key is refused: $(head -1 "$work/err.txt")"

# bad requests: a clear error that names the culprit, non-zero exit, nothing written.
bad() { # bad NAME JQ-LIKE-SED EXPECTED-TEXT
  sed "$2" "$src/deploy/samples/user-wifi.json" > "$work/$1.json"
  if "$bin/pkcsctl" issue --offline --request "$work/$1.json" --device-key "$work/dev-rsa.pem" \
       --out "$work/$1" 2>"$work/$1.err"; then
    fail "$1: a bad request was issued"
  fi
  grep -qF -- "$3" "$work/$1.err" || fail "$1: error does not say '$3': $(cat "$work/$1.err")"
  [ ! -e "$work/$1/cert.pem" ] || fail "$1: a certificate was written"
  ok "$1 refused: $(head -1 "$work/$1.err")"
}
bad unknown-variable 's/{{UserName}}/{{NoSuchThing}}/' "NoSuchThing"
bad missing-value 's/"UserName": "O.Neil, Ann + Co",//' "UserName"
bad forbidden-eku 's/"clientAuth"/"codeSigning"/' "codeSigning"
bad weak-key 's/"keySize": 2048/"keySize": 1024/' "1024"
bad unknown-template 's/"templateName": "User"/"templateName": "Nope"/' "Nope"
bad unknown-field 's/"profileId"/"profileIdd"/' "profileIdd"

# A weak device key is refused before the CA signs anything: no certificate nobody can use.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$work/dev-weak.pem" 2>/dev/null
signed_before="$(grep -c '^I' "$PC_STATE_DIR/ca/local/index.txt")"
if "$bin/pkcsctl" issue --offline --request "$src/deploy/samples/user-wifi.json" \
     --device-key "$work/dev-weak.pem" --out "$work/weak-device" 2>"$work/weak-device.err"; then
  fail "weak-device: issued to an RSA-1024 device key"
fi
grep -qF "RSA of 2048 bits or more" "$work/weak-device.err" \
  || fail "weak-device: unclear error: $(cat "$work/weak-device.err")"
[[ $(grep -c '^I' "$PC_STATE_DIR/ca/local/index.txt") == "$signed_before" ]] \
  || fail "weak-device: the CA signed a certificate for a request that could not be delivered"
ok "weak-device refused before the CA signed: $(head -1 "$work/weak-device.err")"

echo "$pass passed, 0 failed"
