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
index="$d/state/ca/local/index.txt"

pc_worker_spawn doomed PC_TEST_CRASH_AFTER_CA=orph-000001
pc_worker_wait_ready doomed 90
pc_submit --template "$data/user-ec.json" --count 1 --id-prefix orph --device-keys "$d/keys" 2>/dev/null
rc=0; wait "$(pc_worker_pid doomed)" || rc=$?
[ "$rc" -eq 86 ] || fail "the doomed worker exited $rc, not through the crash hook (86)"
grep -q '"event":"test_crash"' "$d/doomed.log" || fail "no test_crash log line"
orphan=$(awk -F'\t' '$1 == "I" && $4 == "orph-000001" { print $2 }' "$index")
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

awk -F'\t' -v s="$orphan" '$1 == "R" && $2 == s { found = 1 } END { exit !found }' "$index" \
  || fail "the orphan $orphan was not revoked"
awk -F'\t' -v s="$answered" '$1 == "R" && $2 == s { found = 1 } END { exit found }' "$index" \
  || fail "the certificate handed out was revoked"
grep -q '"event":"orphan_revoked"' "$d/heir.log" || fail "no orphan_revoked log line"
ok "the orphan was revoked (superseded) by the worker that took over; the answer stands"
[ "$(awk -F'\t' '$1 == "I" && $4 == "orph-000001"' "$index" | wc -l)" -eq 2 ] \
  || fail "the CA signed other than 2 certificates for the request"
ok "exactly two certificates exist for the request: the revoked orphan and the answer"

kill -TERM "$(pc_worker_pid heir)"; wait "$(pc_worker_pid heir)" || true
echo "$pass passed, 0 failed"
