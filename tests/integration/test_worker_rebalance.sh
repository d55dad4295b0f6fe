#!/usr/bin/env bash
# Rebalances under load against real Kafka, Redis and pkcs-worker processes: workers join while
# w1 is busy, one drains on SIGTERM, one is killed with -9, so partitions are revoked, move, and
# come back to w1, which owned them before. Every request must still get a result, and no
# request id two different certificates: a message handed to a consumer is completed or
# delivered again, never skipped, and no partition is left unfetched.
#
# The shape of the bug this guards against: w1 pauses its intake while at its in-flight limit; a
# rebalance takes partitions away while it is paused; w1 catches up and resumes; the partitions
# come back to it later. librdkafka keeps a partition's pause flag across that, so they came back
# paused and nothing was ever fetched from them again (their requests got no result, the lag
# metric read 0). So w1 runs with a small in-flight limit, one pool thread and a slow profile
# (RSA-4096 keys, made inline: the key pool only holds RSA-2048) to be paused when the group
# first changes (a worker at its limit holds messages back, and a hold with nothing finishing for
# 3 s becomes a pause), and a last batch, small enough not to pause w1 again, arrives once the group
# has settled.
#
# PC_REBALANCE_PARTITIONS sets the topic's partition count (default 16).
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
parts="${PC_REBALANCE_PARTITIONS:-16}"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init "$parts"
d="$PC_SERVERS_DIR"
ca="$d/state/ca/local/ca.crt"
cat >"$d/slow.json" <<'JSON'
{"schemaVersion": 1, "tenantId": "contoso", "kind": "ISSUE", "userId": "slow-user-{n}",
 "issue": {"profile": {"caName": "local", "templateName": "User", "certificateType": "USER",
   "subjectFormat": "CN={{UserName}},O=Contoso", "extendedKeyUsages": ["clientAuth"],
   "keyAlgorithm": "RSA", "keySize": 4096},
  "attributes": {"UserName": "Slow User {n}"}}}
JSON

# submit PREFIX TEMPLATE COUNT: a batch; its ids are appended to $d/all.ids.
submit() {
  pc_submit --template "$2" --count "$3" --id-prefix "$1" --device-keys "$d/keys" 2>/dev/null
  printf "$1-%06d\n" $(seq 1 "$3") >>"$d/all.ids"
}

# assigned_lines NAME...: how many times these workers logged new partitions.
assigned_lines() {
  local n=0 w c
  for w in "$@"; do
    c=$(grep -c '"msg":"partitions assigned"' "$d/$w.log" || true)
    n=$((n + c))
  done
  echo "$n"
}

# wait_assigned_more COUNT NAME...: until the workers logged more than COUNT assignments (a
# cooperative rebalance takes two rounds before a newcomer gets anything; /readyz only says
# that Kafka answers).
wait_assigned_more() {
  local before="$1" i
  shift
  for ((i = 0; i < 300; i++)); do
    [ "$(assigned_lines "$@")" -gt "$before" ] && return 0
    sleep 0.1
  done
  fail "no partitions went to $* within 30 s: $(tail -3 "$d/$1.log")"
}

pc_worker_spawn w1 PC_MAX_IN_FLIGHT=16 PC_THREADPOOL_SIZE=1
pc_worker_wait_ready w1 90
ok "w1 ready, owning all $parts partitions"

submit slow "$d/slow.json" 6
pc_worker_spawn w2
pc_worker_spawn w3
submit rb "$data/user-ec.json" 300
wait_assigned_more 0 w2
wait_assigned_more 0 w3
ok "w2 and w3 took partitions from a busy w1 while 306 requests were being processed"

kill -TERM "$(pc_worker_pid w2)"
rc=0
wait "$(pc_worker_pid w2)" || rc=$?
[ "$rc" -eq 0 ] || fail "w2 exited $rc after SIGTERM"
pc_worker_spawn w4
wait_assigned_more 0 w4
before=$(assigned_lines w1 w4)
kill -9 "$(pc_worker_pid w3)"
# w3's partitions move once its session times out (6 s).
wait_assigned_more "$before" w1 w4
ok "w2 drained on SIGTERM, w4 joined, w3 was killed with -9 and its partitions moved"

submit tail "$data/user-ec.json" 16
total=$(wc -l <"$d/all.ids")
pc_watch --ids "$d/all.ids" --timeout 180 --device-keys "$d/keys" --ca "$ca" >"$d/all.out" ||
  fail "not every request was answered: $(head -1 "$d/all.out")"
grep -q "DIFFERENT certificate: 0" "$d/all.out" ||
  fail "a request got two certificates: $(head -1 "$d/all.out")"
ok "$total/$total answered across the rebalances, none with two certificates: $(head -1 "$d/all.out")"

echo "$pass passed, 0 failed"
