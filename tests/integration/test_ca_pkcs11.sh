#!/usr/bin/env bash
# The local CA's key in a PKCS#11 token, configured as an operator would: a SoftHSM2 token in a
# temporary folder (SOFTHSM2_CONF), an EC key generated inside it and marked never extractable,
# a CA certificate openssl makes with that key through the pkcs11 engine, and a configuration
# with key_uri, key_pin_file and key_module beside cert_file. pkcsctl issues a certificate and
# signs a CRL with the token key (openssl verifies both against the CA certificate); no CA key
# reaches the disk; a wrong PIN is refused, naming the setting and not the PIN.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/servers.sh"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

module=/usr/lib/softhsm/libsofthsm2.so
if [[ ! -r $module ]] || ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null ||
  ! openssl engine pkcs11 -t >/dev/null 2>&1; then
  echo "SKIP: SoftHSM2 (softhsm2), pkcs11-tool (opensc) or OpenSSL's pkcs11 engine" \
    "(libengine-pkcs11-openssl) is not installed; deploy/setup.sh installs them"
  echo "0 passed, 0 failed"
  exit 0
fi

pc_servers_init
pc_redis_start
d="$PC_SERVERS_DIR"
mkdir -p "$d/tokens" "$d/secrets"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$d" \
  >"$d/softhsm2.conf"
export SOFTHSM2_CONF="$d/softhsm2.conf"
# 16 hex digits: long enough for pc_secret_note, which no log may show (servers.sh)
pin=$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s\n' "$pin" >"$d/secrets/pin" && head -c 32 /dev/urandom | base64 >"$d/secrets/pass")
pc_secret_note_file "$d/secrets/pin" "$d/secrets/pass"
softhsm2-util --init-token --free --label connector-ca --pin "$pin" --so-pin 24680 >/dev/null
p11() { pkcs11-tool --module "$module" --token-label connector-ca --login --pin "$pin" "$@" 2>&1; }
p11 --keypairgen --key-type EC:prime256v1 --label issuing-key --id 0a >/dev/null
objects=$(p11 --list-objects --type privkey)
grep -q "label:      issuing-key" <<<"$objects" && grep -q "never extractable" <<<"$objects" \
  && grep -q "always sensitive" <<<"$objects" || fail "the key is not sensitive and non-extractable: $objects"
ok "a P-256 key generated inside the SoftHSM2 token, sensitive and never extractable"

uri="pkcs11:token=connector-ca;object=issuing-key;type=private"
openssl req -new -x509 -engine pkcs11 -keyform engine -key "$uri;pin-value=$pin" \
  -subj "/CN=Token Issuing CA/O=PKCS Connector Test" -days 3650 -sha256 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -addext subjectKeyIdentifier=hash -out "$d/ca.crt" >/dev/null 2>&1 || fail "openssl could not make the CA certificate"
ok "the CA certificate made by openssl with the token key"

# config PIN_FILE: the cluster's configuration with the token CA.
config() {
  cat >"$d/config.json" <<JSON
{
  "state_dir": "$d/state",
  "cas": [{"name": "local", "cert_file": "$d/ca.crt", "key_uri": "$uri",
           "key_pin_file": "$1", "key_module": "$module",
           "key_passphrase_file": "$d/secrets/pass", "crl_url": "http://pki.example.test/local.crl"}],
  "redis": {"port": $PC_REDIS_PORT}
}
JSON
}
config "$d/secrets/pin"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/device.pem" 2>/dev/null
"$PC_BIN_DIR/pkcsctl" issue --offline --config "$d/config.json" \
  --request "$PC_SOURCE_DIR/deploy/samples/user-wifi.json" --device-key "$d/device.pem" \
  --out "$d/issued" >"$d/issue.log" 2>&1 || fail "pkcsctl issue: $(cat "$d/issue.log")"
openssl verify -CAfile "$d/ca.crt" "$d/issued/cert.pem" >/dev/null || fail "the certificate does not verify"
[[ $(openssl x509 -in "$d/issued/cert.pem" -noout -issuer) == "issuer=CN = Token Issuing CA, O = PKCS Connector Test" ]] \
  || fail "issuer: $(openssl x509 -in "$d/issued/cert.pem" -noout -issuer)"
ok "pkcsctl issue --offline: a certificate the token key signed, verified by openssl"

"$PC_BIN_DIR/pkcsctl" crl --ca local --config "$d/config.json" --out "$d/crl.pem" >"$d/crl.log" 2>&1 \
  || fail "pkcsctl crl: $(cat "$d/crl.log")"
openssl crl -in "$d/crl.pem" -noout -CAfile "$d/ca.crt" 2>&1 | grep -q 'verify OK' \
  || fail "the CRL does not verify against the CA certificate"
ok "pkcsctl crl: a CRL the token key signed, verified by openssl"

[[ ! -e $d/state/ca/local/ca.key ]] || fail "a CA key file appeared in the state folder"
! grep -rlE 'BEGIN (EC )?PRIVATE KEY' "$d/state" >/dev/null || fail "an unencrypted private key is on disk"
ok "no CA key and no unencrypted key in the state folder"

(umask 077 && printf '13579\n' >"$d/secrets/wrong-pin") # a secret file: refused otherwise
config "$d/secrets/wrong-pin"
rc=0
"$PC_BIN_DIR/pkcsctl" issue --offline --config "$d/config.json" \
  --request "$PC_SOURCE_DIR/deploy/samples/user-wifi.json" --device-key "$d/device.pem" \
  --out "$d/refused" >"$d/refused.log" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a wrong PIN was accepted"
grep -q "key_pin_file" "$d/refused.log" || fail "the error does not name key_pin_file: $(cat "$d/refused.log")"
grep -q "13579" "$d/refused.log" && fail "the error shows the PIN: $(cat "$d/refused.log")"
ok "a wrong PIN: refused (exit $rc), naming key_pin_file, not the PIN"
echo "$pass passed, 0 failed"
