#!/usr/bin/env bash
# Issue 4, the remote CA: workers issue through a real `cfssl serve` (HTTP via libcurl's multi
# interface on the worker's loop); cfssl stopped in the middle of the load: /readyz turns 503,
# requests wait, and all complete after it returns; certificates verify against cfssl's CA;
# revoke through cfssl, twice, and an unknown serial. Its plain-http URL (allow_http) is logged.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 4
d="$PC_SERVERS_DIR"
pc_cluster_add_cfssl || fail "could not start cfssl or add it to the configuration"
cf="$PC_CFSSL_DIR"
pc_worker_spawn c1
pc_worker_wait_ready c1 90
# cfssl on loopback is plain http, allowed by allow_http, which the worker says out loud
grep '"event":"insecure_ca"' "$d/c1.log" | grep -q '"ca":"remote"' ||
  fail "the worker did not warn that CA remote is reached over plain http: $(head -c 600 "$d/c1.log")"
ok "allow_http: the worker logs insecure_ca for CA remote at start"

pc_submit --template "$data/device-remote.json" --count 40 --id-prefix cf --device-keys "$d/keys" 2>/dev/null
printf 'cf-%06d\n' $(seq 1 40) > "$d/cf.ids"
pc_watch --ids "$d/cf.ids" --json --timeout 120 --device-keys "$d/keys" --ca "$cf/ca.pem" \
  > "$d/cf.jsonl" 2>"$d/cf.err" || fail "issuing through cfssl: $(tail -2 "$d/cf.err") $(tail -1 "$d/cf.jsonl")"
ok "40 device certificates issued through cfssl, each opened and verified against cfssl's CA"

# cfssl stopped in the middle of the load.
pc_submit --template "$data/device-remote.json" --count 60 --id-prefix cfdown --device-keys "$d/keys" 2>/dev/null
pc_cfssl_stop
seen503=0
for _ in $(seq 1 50); do
  [ "$(pc_http_status "$(pc_worker_port c1)" /readyz)" = 503 ] && { seen503=1; break; }
  sleep 0.2
done
[ "$seen503" = 1 ] || fail "/readyz did not report the CA outage"
ok "cfssl down: /readyz 503 (circuit breaker open)"
sleep 4
pc_cfssl_restart || fail "cfssl did not start again"
printf 'cfdown-%06d\n' $(seq 1 60) > "$d/cfdown.ids"
pc_watch --ids "$d/cfdown.ids" --timeout 180 --device-keys "$d/keys" --ca "$cf/ca.pem" \
  > "$d/cfdown.out" || fail "after cfssl returned: $(cat "$d/cfdown.out")"
grep -q "issued 60, failed 0" "$d/cfdown.out" || fail "after cfssl returned: $(head -1 "$d/cfdown.out")"
pc_worker_wait_ready c1 30
ok "cfssl back: all 60 requests that waited were issued, none lost; the worker is ready again"

serial=$(grep -o '"serialNumber":"[0-9A-F]*"' "$d/cf.jsonl" | head -1 | cut -d'"' -f4)
revoke() {
  "$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
    --signer-key "$d/signer.pem" --ca remote --tenant contoso --reason superseded --wait --timeout 60 "$@" 2>&1
}
revoke --serial "$serial" | grep -q "REVOKED" || fail "revoke through cfssl failed"
revoke --serial "$serial" | grep -q "REVOKED" || fail "revoking twice is an error"
status=$(sqlite3 "$cf/certs.db" "select status from certificates;" | sort | uniq -c | tr -s ' ')
echo "$status" | grep -q "1 revoked" || fail "cfssl's database does not show the revocation: $status"
ok "revoked through cfssl (twice: no error); cfssl's database has it revoked"
out=$(revoke --serial 0DEADBEEF0 || true)
echo "$out" | grep -q "CERTIFICATE_NOT_FOUND" || fail "unknown serial: $out"
ok "unknown serial: FAILED CERTIFICATE_NOT_FOUND"

# cfssl's profile (a year; digital signature, key encipherment, client auth) decides what it
# signs: a request for something else gets no certificate, and what cfssl signed is revoked.
asked() { # asked PREFIX JQ: one remote request changed by JQ; prints its result
  pc_submit --template "$data/device-remote.json" --count 1 --id-prefix "$1" \
    --device-keys "$d/keys" --dry-run 2>/dev/null | jq -c "$2" > "$d/$1.jsonl"
  pc_submit --requests "$d/$1.jsonl" 2>/dev/null
  printf '%s-000001\n' "$1" > "$d/$1.ids"
  pc_watch --ids "$d/$1.ids" --json --timeout 90 > "$d/$1.all" 2>&1 || fail "no result for $1"
  grep '^{' "$d/$1.all" | tail -1
}
asked month '.issue.profile.validityDays = 30' | jq -e '.status == "FAILED" and
  .errorCode == "POLICY_VIOLATION" and (.errorMessage | test("valid 365 days where 30 were asked"))
  and (.errorMessage | test("the certificate was revoked"))' >/dev/null \
  || fail "a month asked, a year signed: $(cat "$d/month.all")"
pc_cfssl_certs month-000001 | grep -q " revoked 5$" || fail "cfssl's certificate for month-000001 is not revoked: $(pc_cfssl_certs month-000001)"
asked usage '.issue.profile.keyUsages = ["digitalSignature"]' | jq -e '.status == "FAILED" and
  .errorCode == "POLICY_VIOLATION" and (.errorMessage | test("key usages digitalSignature, keyEncipherment where digitalSignature were asked"))' \
  >/dev/null || fail "a key usage added by cfssl: $(cat "$d/usage.all")"
pc_cfssl_certs usage-000001 | grep -q " revoked 5$" || fail "cfssl's certificate for usage-000001 is not revoked"
ok "cfssl signing other than asked (validity, key usages): FAILED POLICY_VIOLATION, and cfssl's certificate revoked"

kill -TERM "$(pc_worker_pid c1)"; wait "$(pc_worker_pid c1)" || fail "worker did not exit 0"
ok "worker with a remote CA drained and exited 0"
echo "$pass passed, 0 failed"
