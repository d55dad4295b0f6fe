#!/usr/bin/env bash
# Signers act for their tenants only, against a real Kafka broker, Redis and a worker: a signer
# configured for tenant contoso, CA local and template User issues for them; a request it signs
# for another tenant, or for a template it was not given, is refused as UNAUTHENTICATED and set
# aside on the dead-letter topic (nothing issued, no result); a REVOKE by serial reaches only the
# requesting tenant's certificates, whoever signs it.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
openssl genpkey -algorithm ed25519 -out "$d/contoso.pem" 2>/dev/null
chmod 600 "$d/contoso.pem"
openssl pkey -in "$d/contoso.pem" -pubout -out "$d/contoso.pub"
jq --arg pub "$d/contoso.pub" '.signers += [{"id": "mdm-contoso", "algorithm": "ed25519",
  "public_key_file": $pub, "tenants": ["contoso"], "cas": ["local"], "templates": ["User"]}]' \
  "$PC_CLUSTER_CONFIG" > "$d/cfg.new" && mv "$d/cfg.new" "$PC_CLUSTER_CONFIG"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

# as_contoso ARGS: pkcsctl submit signed by the contoso signer
as_contoso() {
  "$PC_BIN_DIR/pkcsctl" submit --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-contoso \
    --signer-key "$d/contoso.pem" "$@"
}
request() { # request PREFIX JQ: the user-ec request, changed by JQ
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null | jq -c "$2" > "$d/$1.jsonl"
}
result() { # result ID: waits for its result
  printf '%s\n' "$1" > "$d/$1.ids"
  pc_watch --ids "$d/$1.ids" --json --timeout 90 > "$d/$1.out" 2>&1 || fail "no result for $1: $(tail -3 "$d/$1.out")"
  grep '^{' "$d/$1.out"
}

request own '.tenantId = "contoso"'
as_contoso --requests "$d/own.jsonl" 2>/dev/null
OWN=$(result own-000001 | jq -r 'select(.status == "ISSUED") | .serialNumber')
[ -n "$OWN" ] || fail "the contoso signer's own request was not issued: $(cat "$d/own-000001.out")"
ok "mdm-contoso issues for tenant contoso, CA local, template User ($OWN)"

request other '.tenantId = "fabrikam"'
request tmpl '.tenantId = "contoso" | .issue.profile.templateName = "Device"'
as_contoso --requests "$d/other.jsonl" 2>/dev/null
as_contoso --requests "$d/tmpl.jsonl" 2>/dev/null
"$PC_BIN_DIR/pkcsctl" dlq --brokers "$PC_KAFKA_BROKERS" --count 2 --timeout 60 > "$d/dlq.jsonl" 2>/dev/null \
  || fail "not two dead letters: $(cat "$d/dlq.jsonl")"
jq -se 'map(select(.errorCode == "UNAUTHENTICATED")) | length == 2' "$d/dlq.jsonl" >/dev/null \
  || fail "the refusals are not UNAUTHENTICATED: $(cat "$d/dlq.jsonl")"
grep -q 'signer mdm-contoso may not act for tenant \\"fabrikam\\"' "$d/dlq.jsonl" \
  || fail "the dead letter does not name the tenant: $(cat "$d/dlq.jsonl")"
grep -q 'may not act for template \\"Device\\"' "$d/dlq.jsonl" \
  || fail "the dead letter does not name the template: $(cat "$d/dlq.jsonl")"
printf 'other-000001\ntmpl-000001\n' > "$d/refused.ids"
! pc_watch --ids "$d/refused.ids" --json --timeout 5 > "$d/refused.out" 2>&1 \
  || fail "a refused request got a result: $(cat "$d/refused.out")"
[ "$(redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" ZCARD 'pc:cert:{fabrikam}:all')" = 0 ] \
  || fail "something was issued for fabrikam"
ok "another tenant, or a template it was not given: UNAUTHENTICATED, dead-lettered, nothing issued"

# A REVOKE reaches only the requesting tenant's certificates, whoever signs it.
revoke() { # revoke SIGNER_ID KEY TENANT: REVOKE of $OWN, waiting for the result
  "$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id "$1" \
    --signer-key "$2" --tenant "$3" --ca local --serial "$OWN" --wait --timeout 60 2>&1
}
out=$(revoke mdm-1 "$d/signer.pem" fabrikam) && fail "revoked as fabrikam's: $out"
grep -q "CERTIFICATE_NOT_FOUND\|no certificate with serial" <<<"$out" || fail "not refused as not found: $out"
[ "$(redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" HEXISTS 'pc:ca:{local}:revoked' "$OWN")" = 0 ] \
  || fail "$OWN was revoked for another tenant"
out=$(revoke mdm-contoso "$d/contoso.pem" contoso) || fail "contoso could not revoke its own: $out"
[ "$(redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" HEXISTS 'pc:ca:{local}:revoked' "$OWN")" = 1 ] \
  || fail "$OWN was not revoked by its tenant's signer"
ok "a REVOKE as fabrikam (even by a signer of every tenant) does not reach contoso's $OWN; contoso's does"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
