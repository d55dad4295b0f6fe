#!/usr/bin/env bash
# Request ids, against a real Kafka broker and Redis with one worker:
#  - replay: the same request sent again (new createdAtMs, new signature) gets the same result;
#  - conflict: the same request id with other content (another subject, another device key) gets
#    FAILED CONFLICT, never the first request's result, and a "conflict" log line;
#  - tenant: two tenants using the same request id, and tenant/id pairs made to look like each
#    other's record key ("contoso" + "x}:{req-1" against "contoso}:{x" + "req-1"), are separate
#    requests with separate certificates.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

# The requests in JSON lines, made by the generator (--dry-run) and changed with jq.
gen() { # gen PREFIX: one request from the EC user template, its device key in $d/keys
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null
}
results() { # results ID TOTAL OUT: every result of request id ID, waiting for TOTAL of them
  printf '%s\n' "$1" > "$d/ids"
  pc_watch --ids "$d/ids" --total "$2" --json --timeout 120 > "$3.all" || fail "no $2 result(s) for $1"
  grep '^{' "$3.all" > "$3" || true # the results, one JSON line each, in the order read
}
cert_of() { grep -o '"certificate":"[^"]*"' "$1" | sort -u; }

# Replay, then conflict.
gen rp > "$d/rp.jsonl"
pc_submit --requests "$d/rp.jsonl" 2>/dev/null
results rp-000001 1 "$d/rp1.out"
grep -q '"status":"ISSUED"' "$d/rp1.out" || fail "rp-000001 not issued: $(head -c 300 "$d/rp1.out")"
pc_submit --requests "$d/rp.jsonl" 2>/dev/null # stamped and signed anew: the same content
results rp-000001 2 "$d/rp2.out"
[ "$(cert_of "$d/rp2.out" | wc -l)" -eq 1 ] || fail "the replay got another certificate"
grep -c '"status":"ISSUED"' "$d/rp2.out" | grep -qx 2 || fail "the replay was not answered ISSUED"
ok "the same request sent again (new time, new signature) gets the same certificate"

gen other > "$d/other.jsonl" # another device key pair, another subject
jq -c --arg id rp-000001 '.requestId = $id' "$d/other.jsonl" > "$d/rp-other.jsonl"
pc_submit --requests "$d/rp-other.jsonl" 2>/dev/null
results rp-000001 3 "$d/rp3.out"
failed=$(grep '"status":"FAILED"' "$d/rp3.out" || true) # partitions interleave: find it by status
[ "$(printf '%s' "$failed" | grep -c .)" -eq 1 ] || fail "the other content was not refused once: $(cat "$d/rp3.out" | head -c 600)"
echo "$failed" | grep -q '"errorCode":"CONFLICT"' || fail "not CONFLICT: $(echo "$failed" | head -c 300)"
echo "$failed" | grep -q '"certificate"' && fail "the conflicting request got a certificate"
[ "$(cert_of "$d/rp3.out" | wc -l)" -eq 1 ] || fail "a second certificate appeared for rp-000001"
grep -q '"event":"conflict"' "$d/w1.log" || fail "no conflict log line"
ok "the same request id with other content: FAILED CONFLICT, no certificate, a conflict log line"

# Tenants: the same id, and pairs that would make each other's key if ids were not encoded.
{
  jq -c '.tenantId = "fabrikam"' "$d/rp.jsonl"
  gen tn | jq -c '.tenantId = "contoso" | .requestId = "x}:{req-1"'
} > "$d/tn.jsonl"
pc_submit --requests "$d/tn.jsonl" 2>/dev/null
cp "$d/keys/tn-000001.pem" "$d/keys/req-1.pem"
gen tm | jq -c '.tenantId = "contoso}:{x" | .requestId = "req-1"' > "$d/tm.jsonl"
pc_submit --requests "$d/tm.jsonl" 2>/dev/null
results rp-000001 4 "$d/rp4.out"
fab=$(grep '"tenantId":"fabrikam"' "$d/rp4.out" || true)
echo "$fab" | grep -q '"status":"ISSUED"' || fail "fabrikam's rp-000001 not issued: $(echo "$fab" | head -c 300)"
[ "$(cert_of "$d/rp4.out" | wc -l)" -eq 2 ] || fail "fabrikam's rp-000001 got contoso's certificate"
ok "another tenant's request with the same id is its own request, with its own certificate"
results 'x}:{req-1' 1 "$d/x.out"
results req-1 1 "$d/r.out"
grep -q '"status":"ISSUED"' "$d/x.out" || fail "contoso / x}:{req-1 not issued: $(head -c 300 "$d/x.out")"
grep -q '"status":"ISSUED"' "$d/r.out" || fail "contoso}:{x / req-1 not issued: $(head -c 300 "$d/r.out")"
[ "$(cert_of "$d/x.out")" != "$(cert_of "$d/r.out")" ] || fail "two tenants' requests share a result"
ok "\"contoso\" + \"x}:{req-1\" and \"contoso}:{x\" + \"req-1\" are two requests: two certificates"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
