#!/usr/bin/env bash
# The audit trail, against a real Kafka broker, Redis and a worker with the local CA: every
# request that ends is one record on pkcs.audit (issued, replayed, renewed, revoked, refused,
# dead_lettered) and every certificate revoked on the way another (superseded), each with the
# tenant, user, device, request, profile, CA, serial, subject, outcome and worker; the workers'
# log line of each outcome carries the same facts.
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

# request PREFIX [JQ]: the request of device A1 (tenant contoso, profile wifi), changed by JQ
request() {
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null | jq -c '.deviceId = "A1" | .issue.profile.profileId = "wifi"' |
    jq -c "${2:-.}" > "$d/$1.jsonl"
}
# answer PREFIX: sends $d/PREFIX.jsonl and waits for its result ($d/PREFIX.out); prints its serial
answer() {
  pc_submit --requests "$d/$1.jsonl" 2>/dev/null
  printf '%s-000001\n' "$1" > "$d/$1.ids"
  pc_watch --ids "$d/$1.ids" --json --timeout 120 > "$d/$1.all" || fail "no result for $1"
  grep '^{' "$d/$1.all" | tail -1 | jq -r '.serialNumber // ""'
}
audit() { # audit COUNT: the first COUNT records of the trail, one JSON object each
  "$PC_BIN_DIR/pkcsctl" audit --brokers "$PC_KAFKA_BROKERS" --count "$1" --timeout 30 2>/dev/null
}

request a && A=$(answer a)
answer a > /dev/null # the same request again: replayed
request b ".issue.renewsSerialNumber = \"$A\"" && B=$(answer b)
request x '.issue.profile.templateName = "NoSuchTemplate"' && answer x > /dev/null
"$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
  --signer-key "$d/signer.pem" --tenant contoso --device A1 --scenario wipe --wait --timeout 60 \
  > "$d/revoke.out" 2>&1 || fail "revoke --device A1: $(cat "$d/revoke.out")"
head -c 300 /dev/urandom > "$d/garbage.bin"
pc_submit --raw "$d/garbage.bin" 2>/dev/null
[ -n "$A" ] && [ -n "$B" ] || fail "certificates not issued"

audit 7 > "$d/audit.jsonl" || fail "fewer than 7 audit records: $(cat "$d/audit.jsonl")"
one() { # one FILTER: exactly one record matches
  [ "$(jq -c "select($1)" "$d/audit.jsonl" | grep -c .)" -eq 1 ] \
    || fail "not exactly one audit record with $1: $(cat "$d/audit.jsonl")"
}
subject='"O=Contoso,OU=Load,CN=User 000001"'
common='.tenantId == "contoso" and .deviceId == "A1" and .userId == "user-000001" and .workerId == "w1"
  and .caName == "local" and (.recordId | length) == 64'
one ".event == \"issued\" and .requestId == \"a-000001\" and .serialNumber == \"$A\" and .subject == $subject
  and .outcome == \"ISSUED\" and .profileId == \"wifi\" and .kind == \"ISSUE\" and $common"
one ".event == \"replayed\" and .requestId == \"a-000001\" and .serialNumber == \"$A\" and .outcome == \"ISSUED\" and $common"
one ".event == \"renewed\" and .requestId == \"b-000001\" and .serialNumber == \"$B\" and .renews.serialNumber == \"$A\"
  and .outcome == \"ISSUED\" and $common"
one ".event == \"superseded\" and .requestId == \"b-000001\" and .serialNumber == \"$A\" and .outcome == \"REVOKED\" and $common"
one ".event == \"refused\" and .requestId == \"x-000001\" and .outcome == \"FAILED\" and (.errorCode | length) > 0
  and (.errorMessage | test(\"NoSuchTemplate\")) and .tenantId == \"contoso\""
one ".event == \"revoked\" and .kind == \"REVOKE\" and .outcome == \"REVOKED\" and
  ([.revoked[].serialNumber] == [\"$B\"]) and .tenantId == \"contoso\" and .deviceId == \"A1\""
one '.event == "dead_lettered" and .errorCode == "BAD_MESSAGE" and .workerId == "w1" and (.errorMessage | length) > 0'
ok "one record each: issued, replayed, renewed, superseded, refused, revoked, dead_lettered, with who, what and where"

[ "$(jq -r .recordId "$d/audit.jsonl" | sort -u | wc -l)" -eq 7 ] || fail "record ids are not distinct"
ok "every record has its own id"

grep '^{' "$d/w1.log" | jq -se --arg s "$A" 'any(.[]; .event == "issued" and .request_id == "a-000001"
  and .serial == $s and .device_id == "A1" and .user_id == "user-000001" and .ca == "local"
  and .profile_id == "wifi" and (.subject | test("CN=User 000001")))' >/dev/null \
  || fail "the issued log line lacks serial, device, user, CA or subject: $(grep '"event":"issued"' "$d/w1.log")"
ok "the issued log line carries the serial, subject, user, device, profile and CA"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
