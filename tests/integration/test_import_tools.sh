#!/usr/bin/env bash
# The PFX import tools with the openssl command-line tool as the independent judge:
# pkcsctl import-key makes the import key (mode 0600, never overwritten, fingerprint as openssl
# computes it); pkcsctl import-encrypt turns an S/MIME PFX made by `openssl pkcs12 -export` into
# an IMPORT_PFX request whose password openssl decrypts with the import key (RSA-OAEP, MGF1
# with the same hash) and which holds the password nowhere in the clear. Bad input fails
# clearly. Needs only pkcsctl and openssl: no Kafka, Redis or worker.
set -euo pipefail

bin="${PC_BIN_DIR:?}"
pkcsctl="$bin/pkcsctl"
work="$(mktemp -d /tmp/pc-import-tools-XXXXXX)"
trap 'rm -rf "$work"' EXIT
unset PC_IMPORT_KEY_PASSPHRASE

fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }

password='S3cret pfx pw: "Ann" $HOME+/='
password_b64="$(printf '%s' "$password" | openssl base64 -A)"
export PFX_PASSWORD="$password"

"$pkcsctl" import-key --help | grep -q -- "--out-key" || fail "import-key --help does not describe --out-key"
"$pkcsctl" import-encrypt --help | grep -q -- "--password-file" \
  || fail "import-encrypt --help does not describe --password-file"
ok "--help on both subcommands"

# The administrator's S/MIME certificate and PFX, and two device keys.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ann.key" -out "$work/ann.crt" -days 30 \
    -subj "/CN=Ann O'Neil/emailAddress=ann@contoso.com" \
    -addext extendedKeyUsage=emailProtection \
    -addext keyUsage=critical,digitalSignature,keyEncipherment \
    -addext subjectAltName=email:ann@contoso.com 2>/dev/null
openssl pkcs12 -export -inkey "$work/ann.key" -in "$work/ann.crt" -name "Ann S/MIME" \
    -passout env:PFX_PASSWORD -out "$work/ann.pfx"
printf '%s\n' "$password" > "$work/pfx-password"
chmod 600 "$work/pfx-password"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/dev-ec.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/dev-rsa.pem" 2>/dev/null
openssl pkey -in "$work/dev-rsa.pem" -pubout -out "$work/dev-rsa.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$work/dev-weak.pem" 2>/dev/null

# --- import-key ---
"$pkcsctl" import-key --out-key "$work/import.key" --out-pub "$work/import.pub" --bits 2048 \
    --id import-7 > "$work/import-key.log" || fail "import-key failed: $(cat "$work/import-key.log")"
[ "$(stat -c %a "$work/import.key")" = 600 ] \
  || fail "import key file mode is $(stat -c %a "$work/import.key"), not 600"
[ "$(stat -c %a "$work/import.pub")" = 644 ] \
  || fail "public key file mode is $(stat -c %a "$work/import.pub"), not 644"
ok "import-key: private key mode 600, public key mode 644"
head -1 "$work/import.key" | grep -qx -- "-----BEGIN PRIVATE KEY-----" \
  || fail "the private key is not an unencrypted PKCS#8 PEM"
openssl pkey -in "$work/import.key" -noout -text 2>/dev/null | grep -q "Private-Key: (2048 bit" \
  || fail "openssl does not read an RSA-2048 private key in import.key"
cmp -s <(openssl pkey -in "$work/import.key" -pubout) "$work/import.pub" \
  || fail "import.pub is not the public half of import.key"
ok "import-key: PKCS#8 RSA-2048, public key matches"
fingerprint="$(openssl pkey -pubin -in "$work/import.pub" -outform DER | openssl dgst -sha256 -r \
  | cut -d' ' -f1 | tr a-f A-F)"
grep -q "^sha256 *$fingerprint\$" "$work/import-key.log" \
  || fail "import-key printed no fingerprint $fingerprint: $(cat "$work/import-key.log")"
grep -q "^import key *import-7 (RSA-2048)" "$work/import-key.log" || fail "import-key printed no key id"
ok "import-key: prints the key id and the SHA-256 of the public key as openssl computes it"

before="$(openssl dgst -sha256 -r "$work/import.key")"
if "$pkcsctl" import-key --out-key "$work/import.key" --out-pub "$work/other.pub" \
    > /dev/null 2> "$work/overwrite.err"; then
  fail "import-key overwrote an existing key file"
fi
grep -q "refusing to overwrite" "$work/overwrite.err" || fail "unclear message: $(cat "$work/overwrite.err")"
[ "$before" = "$(openssl dgst -sha256 -r "$work/import.key")" ] || fail "the existing key changed"
[ ! -e "$work/other.pub" ] || fail "a refused import-key left $work/other.pub behind"
ok "import-key: refuses to overwrite a key, leaves nothing behind"

if "$pkcsctl" import-key --out-key "$work/small.key" --out-pub "$work/small.pub" --bits 1024 \
    > /dev/null 2> "$work/small.err"; then
  fail "import-key made an RSA-1024 key"
fi
grep -q "1024" "$work/small.err" || fail "unclear message: $(cat "$work/small.err")"
[ ! -e "$work/small.key" ] || fail "a refused import-key left small.key behind"
ok "import-key: refuses RSA-1024"

PC_IMPORT_KEY_PASSPHRASE="correct horse" "$pkcsctl" import-key --encrypt \
    --out-key "$work/import-enc.key" --out-pub "$work/import-enc.pub" --bits 2048 > /dev/null \
  || fail "import-key --encrypt failed"
head -1 "$work/import-enc.key" | grep -qx -- "-----BEGIN ENCRYPTED PRIVATE KEY-----" \
  || fail "import-key --encrypt wrote no encrypted PKCS#8"
PC_IMPORT_KEY_PASSPHRASE="correct horse" openssl pkey -in "$work/import-enc.key" \
    -passin env:PC_IMPORT_KEY_PASSPHRASE -noout || fail "openssl cannot open the encrypted key"
ok "import-key --encrypt: encrypted PKCS#8 with \$PC_IMPORT_KEY_PASSPHRASE"

# --- import-encrypt ---
# field FILE NAME prints the JSON string value of "NAME" (pretty-printed, one field a line).
field() { sed -n "s/^ *\"$2\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$1"; }

# encrypt NAME HASH PASSWORD-OPTION... : runs import-encrypt into $work/NAME.json
encrypt() {
  local name="$1" hash="$2"
  shift 2
  "$pkcsctl" import-encrypt --pub "$work/import.pub" --pfx "$work/ann.pfx" --oaep-hash "$hash" \
      --key-id import-7 --device-key "$work/dev-ec.pem" --request-id "imp-$name" \
      --tenant contoso --user-id ann --device-id phone-7 "$@" --out "$work/$name.json" \
      > "$work/$name.log" 2>&1
}

# check_request NAME HASH DEVICE_PUB_DER: what a worker will rely on, checked with openssl.
check_request() {
  local name="$1" hash="$2" json="$work/$1.json"
  grep -Eq '"kind": *"IMPORT_PFX"' "$json" || fail "$name: kind is not IMPORT_PFX"
  grep -Eq '"schemaVersion": *1,' "$json" || fail "$name: schemaVersion is not 1"
  [ "$(field "$json" requestId)" = "imp-$name" ] || fail "$name: requestId"
  [ "$(field "$json" importKeyId)" = import-7 ] || fail "$name: importKeyId"
  [ "$(field "$json" oaepHash)" = "$hash" ] || fail "$name: oaepHash"
  field "$json" pfx | openssl base64 -d -A > "$work/$name.pfx"
  cmp -s "$work/$name.pfx" "$work/ann.pfx" || fail "$name: the pfx field is not the uploaded PFX"
  field "$json" encryptedPassword | openssl base64 -d -A > "$work/$name.pw.enc"
  [ "$(stat -c %s "$work/$name.pw.enc")" = 256 ] || fail "$name: encryptedPassword is not 256 bytes"
  openssl pkeyutl -decrypt -inkey "$work/import.key" -in "$work/$name.pw.enc" \
      -pkeyopt rsa_padding_mode:oaep -pkeyopt "rsa_oaep_md:$hash" -pkeyopt "rsa_mgf1_md:$hash" \
      -out "$work/$name.pw" || fail "$name: openssl cannot decrypt the password with RSA-OAEP-$hash"
  [ "$(cat "$work/$name.pw")" = "$password" ] || fail "$name: the decrypted password is wrong"
  rm -f "$work/$name.pw"
  field "$json" devicePublicKey | openssl base64 -d -A > "$work/$name.spki"
  cmp -s "$work/$name.spki" "$3" || fail "$name: devicePublicKey is not the device's SPKI DER"
  ! grep -qF -- "$password" "$json" || fail "$name: the plaintext password is in the request"
  ! grep -qF -- "$password_b64" "$json" || fail "$name: the base64 password is in the request"
  ! grep -qF -- "$password" "$work/$name.log" || fail "$name: pkcsctl printed the password"
  [ "$(stat -c %a "$json")" = 600 ] || fail "$name: request file mode is not 600"
}

openssl pkey -in "$work/dev-ec.pem" -pubout -outform DER -out "$work/dev-ec.der"
openssl pkey -pubin -in "$work/dev-rsa.pub" -outform DER -out "$work/dev-rsa.der"

encrypt sha256 sha256 --password-file "$work/pfx-password" \
  || fail "import-encrypt (sha256, password file) failed: $(cat "$work/sha256.log")"
check_request sha256 sha256 "$work/dev-ec.der"
grep -q "opens with the password" "$work/sha256.log" || fail "import-encrypt did not check the PFX"
grep -q "$fingerprint" "$work/sha256.log" || fail "import-encrypt did not show the import key's fingerprint"
[ "$(field "$work/sha256.json" intendedPurpose)" = smime_encryption ] \
  || fail "the default purpose is not smime_encryption"
ok "import-encrypt sha256: IMPORT_PFX JSON, the PFX as uploaded, password opens with openssl, no plaintext"

"$pkcsctl" submit --dry-run --request "$work/sha256.json" > "$work/dry-run.jsonl" 2> "$work/dry-run.err" \
  || fail "pkcsctl submit --dry-run cannot read the request: $(cat "$work/dry-run.err")"
grep -q '"kind":"IMPORT_PFX"' "$work/dry-run.jsonl" || fail "submit --dry-run does not show an IMPORT_PFX request"
grep -qF "\"pfx\":\"$(field "$work/sha256.json" pfx)\"" "$work/dry-run.jsonl" \
  || fail "submit --dry-run changed the PFX"
ok "pkcsctl submit --dry-run decodes the request as it will send it"

encrypt sha384 sha384 --password-env PFX_PASSWORD --purpose smime_signing \
  || fail "import-encrypt (sha384, password env) failed: $(cat "$work/sha384.log")"
check_request sha384 sha384 "$work/dev-ec.der"
[ "$(field "$work/sha384.json" intendedPurpose)" = smime_signing ] || fail "purpose not carried"
ok "import-encrypt sha384 from --password-env, purpose smime_signing"

# sha512 with an RSA device key given as a public key file
"$pkcsctl" import-encrypt --pub "$work/import.pub" --pfx "$work/ann.pfx" --oaep-hash sha512 \
    --key-id import-7 --device-key "$work/dev-rsa.pub" --request-id imp-sha512 --tenant contoso \
    --user-id ann --device-id phone-7 --password-env PFX_PASSWORD --purpose any \
    --out "$work/sha512.json" > "$work/sha512.log" 2>&1 \
  || fail "import-encrypt (sha512, RSA device) failed: $(cat "$work/sha512.log")"
check_request sha512 sha512 "$work/dev-rsa.der"
! grep -q '"intendedPurpose"' "$work/sha512.json" || fail "--purpose any should leave the purpose empty"
ok "import-encrypt sha512, RSA device public key, any purpose"

# --- import-encrypt refuses bad input, clearly, and writes nothing ---
# refuse NAME EXPECTED-STATUS MESSAGE-PATTERN OPTION... : import-encrypt must fail that way.
refuse() {
  local name="$1" want="$2" pattern="$3" status=0
  shift 3
  "$pkcsctl" import-encrypt --pub "$work/import.pub" --pfx "$work/ann.pfx" \
      --request-id "bad-$name" --tenant contoso --user-id ann --device-id phone-7 \
      --out "$work/bad-$name.json" "$@" > "$work/bad-$name.log" 2>&1 || status=$?
  [ "$status" = "$want" ] || fail "$name: exit status $status, expected $want: $(cat "$work/bad-$name.log")"
  grep -q -- "$pattern" "$work/bad-$name.log" || fail "$name: unclear message: $(cat "$work/bad-$name.log")"
  [ ! -e "$work/bad-$name.json" ] || fail "$name: a request was written anyway"
  ! grep -qF -- "$password" "$work/bad-$name.log" || fail "$name: the password was printed"
  ok "import-encrypt refuses $name"
}

(umask 077 && printf 'not the password\n' > "$work/wrong-password")
refuse wrong-password 1 "does not open" --password-file "$work/wrong-password" \
    --device-key "$work/dev-ec.pem"
refuse both-passwords 2 "exactly one of" --password-file "$work/pfx-password" \
    --password-env PFX_PASSWORD --device-key "$work/dev-ec.pem"
refuse unset-env 1 "NO_SUCH_VARIABLE_42 is not set" --password-env NO_SUCH_VARIABLE_42 \
    --device-key "$work/dev-ec.pem"
refuse oaep-hash 2 "use sha256, sha384 or sha512" --oaep-hash sha1 \
    --password-env PFX_PASSWORD --device-key "$work/dev-ec.pem"
refuse purpose 2 "smime_encryption, smime_signing or any" --purpose tls \
    --password-env PFX_PASSWORD --device-key "$work/dev-ec.pem"
refuse weak-device-key 1 "RSA of 2048 bits or more" --password-env PFX_PASSWORD \
    --device-key "$work/dev-weak.pem"
refuse import-key-not-rsa 1 "not an RSA key" --password-env PFX_PASSWORD \
    --device-key "$work/dev-ec.pem" --pub "$work/dev-ec.pem"
refuse missing-device 2 "required" --password-env PFX_PASSWORD
printf 'junk' > "$work/junk.pfx"
refuse corrupt-pfx 1 "not valid PKCS#12" --password-env PFX_PASSWORD \
    --device-key "$work/dev-ec.pem" --pfx "$work/junk.pfx"

# --no-verify sends a request the worker will refuse (for worker tests), still encrypted
"$pkcsctl" import-encrypt --pub "$work/import.pub" --pfx "$work/ann.pfx" --key-id import-7 \
    --device-key "$work/dev-ec.pem" --request-id imp-noverify --tenant contoso --user-id ann \
    --device-id phone-7 --password-file "$work/wrong-password" --no-verify \
    --out "$work/noverify.json" > "$work/noverify.log" 2>&1 \
  || fail "import-encrypt --no-verify failed: $(cat "$work/noverify.log")"
! grep -qF "not the password" "$work/noverify.json" || fail "--no-verify: plaintext password in request"
grep -q "not checked" "$work/noverify.log" || fail "--no-verify does not say the PFX was not checked"
ok "import-encrypt --no-verify writes the request without opening the PFX"

echo "passed: $pass"
