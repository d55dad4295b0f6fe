#!/usr/bin/env bash
# Issue 4, imported PFX end to end: an administrator's S/MIME PFX, its password encrypted to the
# connector's import key with pkcsctl import-encrypt, goes through Kafka and a worker and comes
# back enveloped to the device: the device opens it and finds byte-identical certificate and
# private key. A wrong password gets a clear FAILED result; a PFX asking for more key-derivation
# iterations than worker.pfx_max_iterations is refused naming the count and the limit; nothing
# crashes, nothing is lost.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
ctl="$PC_BIN_DIR/pkcsctl"
"$ctl" import-key --out-key "$d/import.key" --out-pub "$d/import.pub" --bits 2048 > /dev/null
# A low iteration limit (the default is 100000) keeps the over-the-limit PFX cheap to make.
pc_worker_spawn imp PC_IMPORT_KEY_FILE="$d/import.key" PC_PFX_MAX_ITERATIONS=4096
pc_worker_wait_ready imp 90

# The administrator's S/MIME certificate and key, as a password-protected PFX.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/smime.key" -out "$d/smime.crt" -days 30 \
  -subj "/CN=Ann Example/emailAddress=ann@contoso.com" \
  -addext "extendedKeyUsage=emailProtection" -addext "keyUsage=digitalSignature,keyEncipherment" 2>/dev/null
(umask 077 && printf 'S3cret pfx password\n' > "$d/pfx-password") # secret files: chmod 600
openssl pkcs12 -export -inkey "$d/smime.key" -in "$d/smime.crt" -out "$d/smime.pfx" \
  -passout "file:$d/pfx-password"
# The same, with 5000 iterations for its MAC and encryption (OpenSSL's default is 2048).
openssl pkcs12 -export -iter 5000 -inkey "$d/smime.key" -in "$d/smime.crt" -out "$d/heavy.pfx" \
  -passout "file:$d/pfx-password"
(umask 077 && printf 'not the password\n' > "$d/wrong-password")
pc_secret_note_file "$d/pfx-password" "$d/wrong-password" # no log may show them (servers.sh)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/keys/imp-000001.pem" 2>/dev/null
cp "$d/keys/imp-000001.pem" "$d/keys/imp-000002.pem"
cp "$d/keys/imp-000001.pem" "$d/keys/imp-000003.pem"

encrypt() { # encrypt REQUEST_ID PASSWORD_FILE PFX [extra...]
  local id="$1" pw="$2" pfx="$3"; shift 3
  "$ctl" import-encrypt --pub "$d/import.pub" --pfx "$pfx" --password-file "$pw" \
    --device-key "$d/keys/$id.pem" --request-id "$id" --tenant contoso --user-id ann \
    --device-id "phone-$id" --purpose smime_encryption --out "$d/$id.json" "$@" > /dev/null
}
encrypt imp-000001 "$d/pfx-password" "$d/smime.pfx"
encrypt imp-000002 "$d/wrong-password" "$d/smime.pfx" --no-verify
encrypt imp-000003 "$d/pfx-password" "$d/heavy.pfx"
pc_submit --request "$d/imp-000001.json" --request "$d/imp-000002.json" \
  --request "$d/imp-000003.json" 2>/dev/null
printf 'imp-%06d\n' 1 2 3 > "$d/imp.ids"
pc_watch --ids "$d/imp.ids" --json --timeout 120 --device-keys "$d/keys" > "$d/imp.jsonl" || true
grep '"requestId":"imp-000001"' "$d/imp.jsonl" | grep -q '"status":"IMPORTED"' \
  || fail "the PFX was not imported: $(head -c 400 "$d/imp.jsonl")"
grep '"requestId":"imp-000001"' "$d/imp.jsonl" | grep -q '"requestCreatedAtMs":"[1-9]' \
  || fail "the IMPORTED result carries no timing: $(grep imp-000001 "$d/imp.jsonl" | head -c 400)"
ok "IMPORT_PFX through Kafka and a worker: IMPORTED (with its timing), and it opens with the device key"

grep '"requestId":"imp-000001"' "$d/imp.jsonl" | head -1 > "$d/imp1.result.json"
"$ctl" decrypt --key "$d/keys/imp-000001.pem" \
  --in <(grep -o '"encryptedPfx":"[^"]*"' "$d/imp1.result.json" | cut -d'"' -f4 | base64 -d) \
  --out "$d/delivered.p12" > /dev/null || fail "the device could not open its PFX"
openssl pkcs12 -in "$d/delivered.p12" -passin pass: -nokeys -clcerts -out "$d/got.crt"
openssl pkcs12 -in "$d/delivered.p12" -passin pass: -nocerts -nodes -out "$d/got.key" 2>/dev/null
cmp -s <(openssl x509 -in "$d/got.crt" -outform DER) <(openssl x509 -in "$d/smime.crt" -outform DER) \
  || fail "the delivered certificate differs from the uploaded one"
cmp -s <(openssl pkey -in "$d/got.key" -outform DER) <(openssl pkey -in "$d/smime.key" -outform DER) \
  || fail "the delivered private key differs from the uploaded one"
ok "the device gets byte-identical certificate and private key"

grep '"requestId":"imp-000002"' "$d/imp.jsonl" | grep -q '"status":"FAILED"' \
  || fail "a wrong PFX password was not refused"
grep '"requestId":"imp-000002"' "$d/imp.jsonl" | grep -q '"errorCode":"INVALID_PARAMETERS"' \
  || fail "wrong password: unexpected error code: $(grep imp-000002 "$d/imp.jsonl" | head -c 300)"
if grep -q "S3cret\|not the password" "$d/imp.log" "$d/imp.jsonl"; then
  fail "a password reached the logs or the results"
fi
ok "a wrong PFX password: FAILED with INVALID_PARAMETERS; no password in logs or results"

grep '"requestId":"imp-000003"' "$d/imp.jsonl" | grep '"errorCode":"INVALID_PARAMETERS"' |
  grep -q 'asks for 5000 key-derivation iterations, over the limit of 4096 (worker.pfx_max_iterations)' ||
  fail "a PFX over worker.pfx_max_iterations was not refused so: $(grep imp-000003 "$d/imp.jsonl" | head -c 400)"
ok "a PFX of 5000 iterations against worker.pfx_max_iterations 4096: FAILED naming the count and the limit"
kill -TERM "$(pc_worker_pid imp)"; wait "$(pc_worker_pid imp)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
