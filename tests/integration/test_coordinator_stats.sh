#!/usr/bin/env bash
# The cluster's statistics outlive its processes, against a real Kafka broker, Redis, two workers
# and the coordinator: issued, failed (one of them a request id reused for other content: a
# conflict) and dead-lettered requests are counted once each, a replay not again; the totals and
# the coordinator's *_total counters stay when every worker is restarted (their own counts start
# from zero) and then when the coordinator is; /api/stats has the last hour by minute with
# rates and latency percentiles.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${PC_SERVERS_DIR:-}/coordinator.log ]] && tail -n 5 "$PC_SERVERS_DIR/coordinator.log" >&2
  exit 1
}
command -v curl >/dev/null || fail "curl is not installed (deploy/setup.sh installs it)"

pc_cluster_init 2
d="$PC_SERVERS_DIR"
for w in w1 w2; do pc_worker_spawn "$w"; done
pc_coordinator_spawn || fail "no coordinator"
for w in w1 w2; do pc_worker_wait_ready "$w" 90; done
api() { curl -sf "http://127.0.0.1:$PC_COORDINATOR_PORT$1"; }

# wait_for SECONDS JQ-FILTER PATH: until the coordinator's answer at PATH satisfies the filter.
wait_for() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    api "$3" 2>/dev/null | jq -e "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# 8 issued, 1 failed (an unknown variable), 1 conflict (an id sent again with other content),
# 1 dead letter (bytes that are no message).
pc_submit --template "$data/user-ec.json" --count 8 --id-prefix s --device-keys "$d/keys" --dry-run \
  2>/dev/null >"$d/first.jsonl"
pc_submit --requests "$d/first.jsonl" 2>/dev/null
pc_submit --template "$data/bad-variable.json" --count 1 --id-prefix bad --device-keys "$d/keys" 2>/dev/null
seq -f 's-%06g' 1 8 >"$d/ids"
printf 'bad-000001\n' >>"$d/ids"
pc_watch --ids "$d/ids" --json --timeout 120 >"$d/first.out" || fail "first batch: $(tail -1 "$d/first.out")"
head -1 "$d/first.jsonl" | jq -c '.issue.attributes.UserName = "someone else"' >"$d/conflict.jsonl"
pc_submit --requests "$d/conflict.jsonl" 2>/dev/null
printf 'no protobuf here' >"$d/garbage.bin"
pc_submit --raw "$d/garbage.bin" 2>/dev/null
wait_for 60 '.issued == 8 and .failed == 2 and .conflicts == 1 and .dlq == 1 and .since_cluster_began' /api/totals ||
  fail "totals after the first batch: $(api /api/totals)"
ok "8 issued, 2 failed (1 a conflict), 1 dead letter: $(api /api/totals | jq -c '{issued, failed, conflicts, dlq}')"

api /api/stats >"$d/stats.json"
jq -e '(.minutes | length) == 60 and ([.minutes[].issued] | add) == 8 and ([.minutes[].failed] | add) == 2
  and .hour.issued == 8 and .hour.issued_per_s > 0 and .hour.p50_ms > 0 and .hour.p99_ms >= .hour.p50_ms
  and (.minutes | map(select(.issued > 0)) | all(.issued_per_s > 0 and .p50_ms > 0))
  and .total.issued == 8 and .total.dlq == 1 and (.latency_buckets_ms | length) == 10' "$d/stats.json" >/dev/null ||
  fail "/api/stats: $(jq -c '{total, hour, last: .minutes[-2:]}' "$d/stats.json")"
ok "/api/stats: the hour $(jq -c .hour "$d/stats.json")"

# A request sent again with the same content is answered from its record: not counted again.
head -2 "$d/first.jsonl" >"$d/replay.jsonl"
pc_submit --requests "$d/replay.jsonl" 2>/dev/null
# replayed: what the workers' metrics say they answered from records
replayed() {
  local w n=0 v
  for w in w1 w2; do
    v="$(curl -sf "http://127.0.0.1:$(pc_worker_port "$w")/metrics" |
      sed -n 's/^pkcs_requests_total{kind="ISSUE",outcome="replayed"} \([0-9]*\)$/\1/p')"
    n=$((n + ${v:-0}))
  done
  echo "$n"
}
for ((i = 0; i < 300; i++)); do [[ $(replayed) -ge 2 ]] && break; sleep 0.2; done
[[ $(replayed) -eq 2 ]] || fail "the workers did not answer the 2 requests sent again from their records: $(replayed)"
since="$(date +%s%3N)"
wait_for 30 ".updated_at > $since" /api/totals || fail "no refresh after the replays"
api /api/totals | jq -e '.issued == 8 and .failed == 2' >/dev/null || fail "replays were counted: $(api /api/totals)"
ok "2 requests sent again: answered from their records, not counted again"

# Every worker restarted: their own counts start from zero, the totals do not.
for w in w1 w2; do
  kill -TERM "$(pc_worker_pid "$w")"
  wait "$(pc_worker_pid "$w")" || fail "$w did not exit 0"
done
for w in w1 w2; do pc_worker_spawn "$w"; done
for w in w1 w2; do pc_worker_wait_ready "$w" 90; done
wait_for 60 '[.workers[] | select(.state == "Active")] | length == 2 and all(.counts.issued == 0)' /api/fleet ||
  fail "the restarted workers: $(api /api/fleet | jq -c '[.workers[] | {id, state, counts}]')"
api /api/totals | jq -e '.issued == 8 and .failed == 2 and .dlq == 1' >/dev/null ||
  fail "totals after restarting the workers: $(api /api/totals)"
ok "both workers restarted (their counts 0): the totals still say 8 issued, 2 failed, 1 dead letter"

pc_submit --template "$data/user-ec.json" --count 4 --id-prefix t --device-keys "$d/keys" 2>/dev/null
seq -f 't-%06g' 1 4 >"$d/ids2"
pc_watch --ids "$d/ids2" --timeout 120 >"$d/second.out" || fail "second batch: $(tail -1 "$d/second.out")"
wait_for 30 '.issued == 12' /api/totals || fail "totals after 4 more: $(api /api/totals)"
ok "4 more issued by the new workers: 12"

# The coordinator restarted: the same totals, and counters that start from them.
coord_pid="$(cut -d' ' -f1 "$d/pids/coordinator")"
kill -TERM "$coord_pid"
wait "$coord_pid" || fail "the coordinator did not exit 0"
mv "$d/coordinator.log" "$d/coordinator-1.log"
pc_coordinator_spawn || fail "the coordinator did not start again"
wait_for 30 '.issued == 12 and .failed == 2 and .conflicts == 1 and .dlq == 1' /api/totals ||
  fail "totals after restarting the coordinator: $(api /api/totals)"
api /metrics >"$d/metrics"
grep -qx 'pkcs_cluster_issued_total 12' "$d/metrics" && grep -qx 'pkcs_cluster_failed_total 2' "$d/metrics" &&
  grep -qx 'pkcs_cluster_dlq_total 1' "$d/metrics" || fail "metrics: $(grep _total "$d/metrics")"
wait_for 10 '.hour.issued == 12' /api/stats || fail "the hour after the restarts: $(api /api/stats | jq -c .hour)"
ok "a new coordinator: totals 12 issued, 2 failed, 1 conflict, 1 dead letter; pkcs_cluster_issued_total 12"

for w in w1 w2; do kill -TERM "$(pc_worker_pid "$w")"; done
for w in w1 w2; do wait "$(pc_worker_pid "$w")" || fail "$w did not exit 0"; done
echo "$pass passed, 0 failed"
