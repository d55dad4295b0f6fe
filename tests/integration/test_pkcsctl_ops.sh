#!/usr/bin/env bash
# pkcsctl's operator commands against real Kafka, Redis and a pkcs-worker: a certificate issued
# through the cluster is revoked with `pkcsctl revoke --wait`; the CRL of `pkcsctl crl` lists it
# with its reason and openssl then refuses the certificate; `pkcsctl ca-cert` is the CA's
# certificate; `lint-profile` passes a good profile and names every problem of a bad one;
# `status` fails clearly without a coordinator (and, when pkcs-coordinator is built, shows the
# worker as Active). Every subcommand's --help exits 0.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
ctl="$PC_BIN_DIR/pkcsctl"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

for c in revoke crl ca-cert status lint-profile; do
  "$ctl" "$c" --help >/dev/null || fail "pkcsctl $c --help exited non-zero"
done
ok "--help of revoke, crl, ca-cert, status and lint-profile exits 0"

pc_cluster_init 2
d="$PC_SERVERS_DIR"
ca="$d/state/ca/local/ca.crt"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

# status without a coordinator: says which URL failed and how to start one.
port="$(pc_free_port)"
rc=0
"$ctl" status --coordinator "http://127.0.0.1:$port" >"$d/status.out" 2>"$d/status.err" || rc=$?
[ "$rc" -eq 1 ] || fail "status against nothing exited $rc: $(cat "$d/status.err")"
grep -q "cannot reach the coordinator at http://127.0.0.1:$port" "$d/status.err" &&
  grep -q "start it with pkcs-coordinator --config FILE" "$d/status.err" ||
  fail "status did not say what to do: $(cat "$d/status.err")"
ok "status without a coordinator: $(head -c 90 "$d/status.err")..."

# lint-profile: a good profile renders its subject and exits 0; a bad one names every problem.
"$ctl" lint-profile --config "$PC_CLUSTER_CONFIG" --profile "$data/lint-good.json" \
  --attributes "$data/lint-good-attrs.json" >"$d/lint-good.out" ||
  fail "lint-profile refused the good profile: $(cat "$d/lint-good.out")"
grep -qF "would issue: subject O=Contoso\, Ltd,OU=Staff,emailAddress=ann@contoso.com,CN=O'Neil\, Ann \+ Co" \
  "$d/lint-good.out" || fail "good profile: subject not shown: $(cat "$d/lint-good.out")"
grep -qF "SANs UPN:ann@contoso.com, email:ann@contoso.com, key P-256, EKUs clientAuth, valid 365 days" \
  "$d/lint-good.out" || fail "good profile: SANs, key or EKUs not shown: $(cat "$d/lint-good.out")"
ok "lint-profile on a good profile: $(grep "^subject:" "$d/lint-good.out" | tr -s " ")"

printf 'requestId,UserName,EmailAddress,UserPrincipalName\nr1,"Doe, Jane",jane@contoso.com,jane@contoso.com\n' \
  >"$d/sample.csv"
"$ctl" lint-profile --config "$PC_CLUSTER_CONFIG" --profile "$data/lint-good.json" \
  --csv "$d/sample.csv" >"$d/lint-csv.out" || fail "lint-profile --csv: $(cat "$d/lint-csv.out")"
grep -qF 'CN=Doe\, Jane' "$d/lint-csv.out" || fail "lint-profile --csv: $(cat "$d/lint-csv.out")"
ok "lint-profile takes its sample from the first CSV row"

rc=0
"$ctl" lint-profile --config "$PC_CLUSTER_CONFIG" --profile "$data/lint-bad.json" \
  --attributes "$data/lint-bad-attrs.json" >"$d/lint-bad.out" || rc=$?
[ "$rc" -eq 1 ] || fail "lint-profile on the bad profile exited $rc: $(cat "$d/lint-bad.out")"
for problem in "{{UserPrincipalName}} in the subject is a user variable; DEVICE certificates" \
  "unknown variable {{CompanyName}}" \
  "template \"Device\" does not allow EKU codeSigning" \
  "subject CN value \"ws-0042-aaaa" "over the X.520 limit of 64"; do
  grep -qF "error: " "$d/lint-bad.out" && grep -qF "$problem" "$d/lint-bad.out" ||
    fail "lint-profile did not report \"$problem\": $(cat "$d/lint-bad.out")"
done
ok "lint-profile on a bad profile exits 1 and names all $(grep -c '^error: ' "$d/lint-bad.out") problems"

# Issue one certificate through the cluster and take it from the result.
pc_submit --template "$data/user-ec.json" --count 1 --id-prefix ops --device-keys "$d/keys" 2>/dev/null
pc_watch --count 1 --json --timeout 60 --ca "$ca" >"$d/issued.jsonl" ||
  fail "no result for the issued request: $(cat "$d/issued.jsonl")"
line="$(grep '"requestId":"ops-000001"' "$d/issued.jsonl")" || fail "no result line for ops-000001"
serial="$(sed -n 's/.*"serialNumber":"\([0-9A-Fa-f]*\)".*/\1/p' <<<"$line")"
sed -n 's/.*"certificate":"\([^"]*\)".*/\1/p' <<<"$line" | base64 -d >"$d/leaf.der"
openssl x509 -inform DER -in "$d/leaf.der" -out "$d/leaf.pem" || fail "result certificate unreadable"
[ -n "$serial" ] || fail "no serial in the result: $line"
"$ctl" crl --ca local --config "$PC_CLUSTER_CONFIG" --out "$d/crl-before.pem"
openssl verify -crl_check -CAfile "$ca" -CRLfile "$d/crl-before.pem" "$d/leaf.pem" >/dev/null ||
  fail "the fresh certificate does not verify with the CRL before revocation"
ok "issued serial $serial; verifies with the CRL before revocation"

# ca-cert is the CA's certificate file.
"$ctl" ca-cert --ca local --config "$PC_CLUSTER_CONFIG" >"$d/ca-cert.pem"
cmp -s "$d/ca-cert.pem" "$ca" || fail "pkcsctl ca-cert differs from $ca"
ok "ca-cert prints the CA certificate"

# Revoke through the cluster and wait for the worker's answer.
revoke() {
  "$ctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
    --signer-key "$d/signer.pem" --ca local --wait --timeout 60 "$@"
}
# Another tenant cannot revoke it: a REVOKE reaches only its own tenant's certificates.
rc=0
revoke --serial "$serial" --tenant fabrikam >"$d/revoke-other.out" 2>"$d/revoke-other.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^FAILED CERTIFICATE_NOT_FOUND: tenant fabrikam has no certificate" "$d/revoke-other.out" ||
  fail "another tenant's revoke: rc $rc, $(cat "$d/revoke-other.out" "$d/revoke-other.err")"
ok "another tenant's REVOKE of the serial: $(cut -c1-80 "$d/revoke-other.out")"
revoke --serial "$serial" --tenant contoso --reason key-compromise --scenario wipe \
  --device-id ops-dev-000001 \
  >"$d/revoke.out" 2>"$d/revoke.err" || fail "revoke failed: $(cat "$d/revoke.out" "$d/revoke.err")"
grep -qx "REVOKED $serial local" "$d/revoke.out" || fail "revoke printed: $(cat "$d/revoke.out")"
grep -qx "revoke-$serial-[0-9a-f]*" "$d/revoke.out" || fail "no request id: $(cat "$d/revoke.out")"
ok "revoke --wait: $(tr '\n' ' ' <"$d/revoke.out")"

rc=0
revoke --serial 0BADC0DE --tenant contoso >"$d/revoke-bad.out" 2>"$d/revoke-bad.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^FAILED CERTIFICATE_NOT_FOUND" "$d/revoke-bad.out" ||
  fail "revoking an unknown serial: rc $rc, $(cat "$d/revoke-bad.out" "$d/revoke-bad.err")"
ok "revoke of an unknown serial: $(cat "$d/revoke-bad.out")"

# The next CRL lists it with its reason, and openssl refuses the certificate.
"$ctl" crl --ca local --config "$PC_CLUSTER_CONFIG" --out "$d/crl.pem"
openssl crl -in "$d/crl.pem" -noout -text >"$d/crl.txt"
grep -A5 -i "Serial Number: 0*${serial#"${serial%%[!0]*}"}\$" "$d/crl.txt" | grep -q "Key Compromise" ||
  fail "the CRL does not list $serial with reason Key Compromise: $(cat "$d/crl.txt")"
rc=0
openssl verify -crl_check -CAfile "$ca" -CRLfile "$d/crl.pem" "$d/leaf.pem" >"$d/verify.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "certificate revoked" "$d/verify.out" ||
  fail "openssl verify -crl_check accepted the revoked certificate: $(cat "$d/verify.out")"
"$ctl" crl --ca local --config "$PC_CLUSTER_CONFIG" --der | openssl crl -inform DER -noout \
  -verify -CAfile "$ca" 2>&1 | grep -q "verify OK" || fail "crl --der is not a CRL signed by the CA"
ok "the CRL lists $serial (Key Compromise); openssl verify -crl_check: certificate revoked"

# With a coordinator (when it is built): the worker shows as Active.
if [[ -x $PC_BIN_DIR/pkcs-coordinator ]]; then
  cport="$(pc_free_port)"
  _pc_launch coordinator "$d/coordinator.log" env PC_COORDINATOR_PORT="$cport" \
    "$PC_BIN_DIR/pkcs-coordinator" --config "$PC_CLUSTER_CONFIG"
  for ((i = 0; i < 100; i++)); do
    "$ctl" status --coordinator "http://127.0.0.1:$cport" >"$d/status.out" 2>"$d/status.err" &&
      grep -q "^w1 .*Active" "$d/status.out" && break
    sleep 0.3
  done
  grep -q "^w1 .*Active" "$d/status.out" ||
    fail "status does not list w1 as Active: $(cat "$d/status.out" "$d/status.err"; tail -5 "$d/coordinator.log")"
  "$ctl" status --coordinator "http://127.0.0.1:$cport" --json | grep -q '"fleet"' ||
    fail "status --json has no fleet"
  sed 's/^/    /' "$d/status.out"
  ok "status lists the worker as Active: $(grep '^w1 ' "$d/status.out" | tr -s ' ' | cut -c1-60)"
else
  echo "skip - status against a coordinator: $PC_BIN_DIR/pkcs-coordinator is not built"
fi

echo "all $pass checks passed"
