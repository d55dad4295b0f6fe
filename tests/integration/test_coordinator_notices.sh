#!/usr/bin/env bash
# What falls due after issuance, against a real Kafka broker, Redis, a worker and a coordinator:
# the coordinator publishes one RENEWAL_DUE notice for a certificate past its profile's renewal
# threshold and one EXPIRING notice for a certificate close to its end, nothing for one that is
# not due, and nothing twice; renewing the certificate (renewCurrent) ends its notices; and a
# superseded certificate its renewal's worker left valid (it died before revoking) is revoked
# at the CA by the coordinator after the grace period, with an audit record.
#
# The coordinator is a test build told to reckon what is due 13 hours ahead
# (PC_TEST_NOTICES_AHEAD_MS), so that a threshold half a day away is reached now.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! "$PC_BIN_DIR/pkcs-worker" --version | grep -q "test hooks"; then
  echo "SKIP: built without -DPC_TEST_HOOKS=ON"
  echo "0 passed, 0 failed"
  exit 0
fi

pc_cluster_init 2
d="$PC_SERVERS_DIR"
rc() { redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" "$@"; }
pc_worker_spawn w1
pc_worker_wait_ready w1 90

# send PREFIX DEVICE DAYS THRESHOLD [JQ]: one request of DEVICE (tenant contoso, profile wifi)
# valid DAYS days, renewed at THRESHOLD percent left; prints its serial.
send() {
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null |
    jq -c --arg dev "$2" --argjson days "$3" --argjson pct "$4" \
      '.deviceId = $dev | .issue.profile.profileId = "wifi" | .issue.profile.validityDays = $days
       | .issue.profile.renewalThresholdPercent = $pct' |
    jq -c "${5:-.}" > "$d/$1.jsonl"
  pc_submit --requests "$d/$1.jsonl" 2>/dev/null
  printf '%s-000001\n' "$1" > "$d/$1.ids"
  pc_watch --ids "$d/$1.ids" --json --timeout 120 > "$d/$1.all" || fail "no result for $1"
  grep '^{' "$d/$1.all" | jq -r '.serialNumber // ""'
}
notices() { # notices SECONDS: every notice so far, one JSON line each
  "$PC_BIN_DIR/pkcsctl" notices --brokers "$PC_KAFKA_BROKERS" --timeout "$1" 2>/dev/null
}

SOON=$(send soon N1 1 50)    # renewal threshold in 12 h, expires in a day
LATER=$(send later N2 30 20) # threshold in 24 days, expires in 30
[ -n "$SOON" ] && [ -n "$LATER" ] || fail "certificates not issued"
[ "$(rc ZSCORE 'pc:cert:{contoso}:due:renew' "local:$SOON")" = \
  "$(rc HGET "pc:cert:{contoso}:c:local:$SOON" renew_at)" ] || fail "no renewal queued for $SOON"
ok "issued $SOON (1 day, renew at 50%) and $LATER (30 days, renew at 20%); renewals queued"

pc_coordinator_spawn PC_NOTICE_INTERVAL_MS=1000 PC_EXPIRY_NOTICE_DAYS=14 PC_SUPERSEDE_GRACE_S=1 \
  PC_TEST_NOTICES_AHEAD_MS=46800000
coord_pid="$_pc_launched_pid"
got=""
for _ in $(seq 1 60); do
  got=$(notices 3)
  [ "$(grep -c . <<<"$got")" -ge 2 ] && break
  sleep 1
done
jq -se --arg s "$SOON" 'map(select(.kind == "RENEWAL_DUE")) | length == 1 and (.[0] |
  .certificate.serialNumber == $s and .certificate.caName == "local" and .tenantId == "contoso"
  and .deviceId == "N1" and .profileId == "wifi" and .requestId == "soon-000001"
  and (.renewAtMs | tonumber) > 0)' <<<"$got" >/dev/null || fail "no RENEWAL_DUE notice for $SOON: $got"
jq -se --arg s "$SOON" 'map(select(.kind == "EXPIRING")) | length == 1 and
  .[0].certificate.serialNumber == $s' <<<"$got" >/dev/null || fail "no EXPIRING notice for $SOON: $got"
! grep -q "$LATER" <<<"$got" || fail "a notice for $LATER, which is not due: $got"
ok "RENEWAL_DUE and EXPIRING for $SOON (device N1, profile wifi); nothing for $LATER"

sleep 4 # four more passes
[ "$(notices 3 | grep -c .)" -eq 2 ] || fail "notices sent again: $(notices 3)"
[ "$(rc ZSCORE 'pc:cert:{contoso}:due:renew' "local:$SOON")" = "" ] || fail "$SOON still queued for renewal"
[ -n "$(rc ZSCORE 'pc:cert:{contoso}:due:renew' "local:$LATER")" ] || fail "$LATER left the renewal queue"
ok "each notice once: the certificate leaves its queue when its notice is delivered"

NEW=$(send renew N1 1 50 '.issue.renewCurrent = true')
[ -n "$NEW" ] && [ "$NEW" != "$SOON" ] || fail "the renewal was not issued: $(cat "$d/renew.all")"
for _ in $(seq 1 50); do [ "$(rc HGET "pc:cert:{contoso}:c:local:$SOON" status)" = superseded ] && break; sleep 0.2; done
[ "$(rc HGET "pc:cert:{contoso}:c:local:$SOON" renewed_by)" = "$NEW" ] || fail "$SOON not renewed by $NEW"
ok "the upstream answers the notice with renewCurrent: $NEW renews $SOON"

# A worker that died after delivering a renewal and before revoking what it superseded: its
# record says superseded, pending since a while ago, and the CA still has it valid.
ORPH=$(send orph N3 30 20)
rc HSET "pc:cert:{contoso}:c:local:$ORPH" status superseded >/dev/null
rc ZADD 'pc:cert:{contoso}:pending' "$(( $(date +%s) * 1000 - 60000 ))" "local:$ORPH" >/dev/null
for _ in $(seq 1 100); do [ "$(rc ZCARD 'pc:cert:{contoso}:pending')" = 0 ] && break; sleep 0.2; done
[ "$(rc ZCARD 'pc:cert:{contoso}:pending')" = 0 ] || fail "the coordinator did not take up $ORPH"
[ "$(rc HGET "pc:ca:{local}:cert:$ORPH" reason)" = 4 ] || fail "$ORPH not revoked (superseded) at the CA"
grep '"event":"superseded"' "$d/coordinator.log" | grep -q "$ORPH" || fail "no superseded log line"
"$PC_BIN_DIR/pkcsctl" audit --brokers "$PC_KAFKA_BROKERS" --timeout 3 --tenant contoso 2>/dev/null |
  jq -se --arg s "$ORPH" 'any(.[]; .event == "superseded" and .serialNumber == $s and
    .workerId == "coordinator" and .deviceId == "N3" and .caName == "local" and .outcome == "REVOKED")' \
  >/dev/null || fail "no audit record of the coordinator's revocation of $ORPH"
ok "a superseded certificate left valid at the CA is revoked there by the coordinator, and audited"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
# The notices close first (their last batch uses Redis and the CAs), then Redis and the CAs.
kill -TERM "$coord_pid"
rc=0; wait "$coord_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "the coordinator exited $rc after SIGTERM: $(tail -5 "$d/coordinator.log")"
! grep -q '"event":"loop"' "$d/coordinator.log" || fail "the coordinator left libuv handles open at exit"
ok "SIGTERM: the coordinator closed the notices, Redis and its CAs, and exited 0"
echo "$pass passed, 0 failed"
