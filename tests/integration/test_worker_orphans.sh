#!/usr/bin/env bash
# Issue 4, orphans: a worker dies after the CA signed and before the result was recorded (a
# fault-injection hook of test builds); the worker that takes the request over finds the
# intent its predecessor recorded, revokes the orphaned certificate, and answers the request
# with exactly one certificate.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! "$PC_BIN_DIR/pkcs-worker" --version | grep -q "test hooks"; then
  echo "SKIP: pkcs-worker was built without -DPC_TEST_HOOKS=ON"
  echo "0 passed, 0 failed"
  exit 0
fi

pc_cluster_init 2
d="$PC_SERVERS_DIR"
# The local CA's records, in Redis (lib/ca/local/ca_index_redis.c).
ca_redis() { redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" "$@"; }
for_request='pc:ca:{local}:req:contoso:orph-000001'

pc_worker_spawn doomed PC_TEST_CRASH_AFTER_CA=orph-000001
pc_worker_wait_ready doomed 90
pc_submit --template "$data/user-ec.json" --count 1 --id-prefix orph --device-keys "$d/keys" 2>/dev/null
rc=0; wait "$(pc_worker_pid doomed)" || rc=$?
[ "$rc" -eq 86 ] || fail "the doomed worker exited $rc, not through the crash hook (86)"
grep -q '"event":"test_crash"' "$d/doomed.log" || fail "no test_crash log line"
orphan=$(ca_redis LINDEX "$for_request" 0)
[ -n "$orphan" ] || fail "the CA has no certificate for orph-000001"
ok "worker killed right after the CA signed $orphan, before recording the result"

pc_worker_spawn heir
printf 'orph-000001\n' > "$d/orph.ids"
pc_watch --ids "$d/orph.ids" --json --timeout 120 --device-keys "$d/keys" \
  --ca "$d/state/ca/local/ca.crt" > "$d/orph.jsonl" || fail "no result for orph-000001"
grep -q '"status":"ISSUED"' "$d/orph.jsonl" || fail "orph-000001 not issued: $(head -c 300 "$d/orph.jsonl")"
[ "$(grep -c '"requestId":"orph-000001"' "$d/orph.jsonl")" -eq 1 ] || fail "more than one result"
answered=$(grep -o '"serialNumber":"[0-9A-F]*"' "$d/orph.jsonl" | head -1 | cut -d'"' -f4)
[ "$answered" != "$orphan" ] || fail "the result carries the orphan's serial"
ok "the request was answered once, with a new certificate $answered"

[ "$(ca_redis HEXISTS 'pc:ca:{local}:revoked' "$orphan")" = 1 ] \
  || fail "the orphan $orphan was not revoked"
[ "$(ca_redis HGET "pc:ca:{local}:cert:$orphan" reason)" = 4 ] \
  || fail "the orphan $orphan was not revoked as superseded"
[ "$(ca_redis HEXISTS 'pc:ca:{local}:revoked' "$answered")" = 0 ] \
  || fail "the certificate handed out was revoked"
grep -q '"event":"orphan_revoked"' "$d/heir.log" || fail "no orphan_revoked log line"
ok "the orphan was revoked (superseded) by the worker that took over; the answer stands"
[ "$(ca_redis LLEN "$for_request")" -eq 2 ] \
  || fail "the CA signed other than 2 certificates for the request"
[ "$(ca_redis LINDEX "$for_request" 1)" = "$answered" ] \
  || fail "the second certificate for the request is not the one handed out"
ok "exactly two certificates exist for the request: the revoked orphan and the answer"

kill -TERM "$(pc_worker_pid heir)"; wait "$(pc_worker_pid heir)" || true
echo "$pass passed, 0 failed"
