#!/usr/bin/env bash
# Revocation by what the upstream system knows, against a real Kafka broker and Redis with one
# worker and the local CA: a device's certificates of one profile (unassignment), then all of
# them (wipe), then again (nothing left: idempotent), a request's certificates; only ever the
# requesting tenant's (another tenant's device of the same id keeps its certificate); the
# inventory records each status and the CRL lists what was revoked.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
ca="$d/state/ca/local/ca.crt"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

# request PREFIX TENANT DEVICE PROFILE: one ISSUE request (JSON line) from the EC user template.
request() {
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null |
    jq -c --arg t "$2" --arg dev "$3" --arg p "$4" '.tenantId = $t | .deviceId = $dev | .issue.profile.profileId = $p'
}
{
  request a contoso D1 wifi
  request b contoso D1 wifi
  request c contoso D1 vpn
  request e contoso D2 wifi
  request f fabrikam D1 wifi
} > "$d/issue.jsonl"
pc_submit --requests "$d/issue.jsonl" 2>/dev/null
printf '%s\n' a-000001 b-000001 c-000001 e-000001 f-000001 > "$d/issue.ids"
pc_watch --ids "$d/issue.ids" --json --timeout 120 --device-keys "$d/keys" --ca "$ca" > "$d/issued.out" \
  || fail "issuing: $(tail -1 "$d/issued.out")"
serial() { grep "\"requestId\":\"$1\"" "$d/issued.out" | head -1 | jq -r .serialNumber; }
A=$(serial a-000001) B=$(serial b-000001) C=$(serial c-000001) E=$(serial e-000001) F=$(serial f-000001)
ok "5 certificates: contoso D1 wifi $A, $B; D1 vpn $C; D2 $E; fabrikam D1 $F"

status() { # status TENANT SERIAL: the inventory's status of a local-CA certificate
  redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" HGET "pc:cert:{$1}:c:local:$2" status
}
revoke() { # revoke ARGS...: a signed REVOKE of tenant contoso, waiting for its result
  "$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
    --signer-key "$d/signer.pem" --tenant contoso --wait --timeout 60 "$@" 2>&1
}
for s in "$A" "$B" "$C" "$E"; do [ "$(status contoso "$s")" = valid ] || fail "$s not recorded valid"; done
[ "$(status fabrikam "$F")" = valid ] || fail "$F not recorded valid for fabrikam"
ok "the inventory holds each certificate under its tenant, valid"

out=$(revoke --device D1 --profile wifi --scenario unassigned) || fail "revoke --device D1 --profile wifi: $out"
[ "$(echo "$out" | grep -c '^REVOKED [0-9A-F]* local$')" -eq 2 ] || fail "not 2 revoked: $out"
echo "$out" | grep -q "^REVOKED $A local$" && echo "$out" | grep -q "^REVOKED $B local$" || fail "not A and B: $out"
[ "$(status contoso "$A")" = revoked ] && [ "$(status contoso "$B")" = revoked ] || fail "A, B not revoked in the inventory"
[ "$(status contoso "$C")" = valid ] || fail "the vpn certificate of D1 was revoked by a wifi unassignment"
[ "$(status fabrikam "$F")" = valid ] || fail "fabrikam's D1 certificate was revoked by contoso"
ok "profile unassigned on D1: its 2 wifi certificates revoked; its vpn one and fabrikam's D1 stay"

out=$(revoke --device D1 --scenario wipe) || fail "revoke --device D1: $out"
[ "$out" != "${out/REVOKED $C local/}" ] && [ "$(echo "$out" | grep -c '^REVOKED ')" -eq 1 ] \
  || fail "the wipe did not revoke exactly the vpn certificate: $out"
out=$(revoke --device D1 --scenario wipe) || fail "revoke --device D1 again: $out"
echo "$out" | grep -q "^REVOKED nothing" || fail "a second wipe revoked: $out"
ok "device wiped: its last certificate revoked; wiped again: nothing left, REVOKED with none"

out=$(revoke --request e-000001) || fail "revoke --request e-000001: $out"
echo "$out" | grep -q "^REVOKED $E local$" || fail "not E: $out"
[ "$(status fabrikam "$F")" = valid ] || fail "fabrikam's certificate did not survive contoso's revocations"
ok "by request id: its certificate revoked; fabrikam's certificates untouched throughout"

"$PC_BIN_DIR/pkcsctl" crl --ca local --config "$PC_CLUSTER_CONFIG" --out "$d/crl.pem"
openssl crl -in "$d/crl.pem" -noout -text > "$d/crl.txt"
for s in "$A" "$B" "$C" "$E"; do
  grep -qi "Serial Number: 0*${s#"${s%%[!0]*}"}$" "$d/crl.txt" || fail "the CRL does not list $s"
done
grep -qi "Serial Number: 0*${F#"${F%%[!0]*}"}$" "$d/crl.txt" && fail "the CRL lists fabrikam's $F"
ok "the CRL lists the 4 revoked certificates, not fabrikam's"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
