#!/usr/bin/env bash
# Freshness, against a real Kafka broker, Redis and a worker: a signed request made longer ago
# than worker.max_request_age_s is refused (DEADLINE_EXCEEDED), one made further in the future
# than worker.clock_skew_ms too (INVALID_PARAMETERS), nothing issued for either; a replay of a
# fresh request is answered from its record with the same certificate; and a worker refuses to
# start when its request records would expire before its requests do.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_worker_spawn w1 PC_MAX_REQUEST_AGE_S=3600
pc_worker_wait_ready w1 90

now_ms=$(($(date +%s) * 1000))
made() { # made PREFIX CREATED_AT_MS: a request made then
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null | jq -c --arg t "$2" '.createdAtMs = $t' > "$d/$1.jsonl"
  pc_submit --requests "$d/$1.jsonl" 2>/dev/null
}
result() {
  printf '%s-000001\n' "$1" > "$d/$1.ids"
  pc_watch --ids "$d/$1.ids" --json --timeout 90 > "$d/$1.all" 2>&1 || fail "no result for $1"
  grep '^{' "$d/$1.all" | tail -1
}

made old $((now_ms - 2 * 3600 * 1000))
result old | jq -e '.status == "FAILED" and .errorCode == "DEADLINE_EXCEEDED" and
  (.errorMessage | test("max_request_age_s"))' >/dev/null || fail "an old request: $(result old)"
made ahead $((now_ms + 3600 * 1000))
result ahead | jq -e '.status == "FAILED" and .errorCode == "INVALID_PARAMETERS" and
  (.errorMessage | test("clock_skew_ms"))' >/dev/null || fail "a request from the future: $(result ahead)"
[ "$(pc_ca_issued)" = 0 ] || fail "the CA signed for a stale request"
ok "made 2 h ago (age 1 h): DEADLINE_EXCEEDED; 1 h ahead: INVALID_PARAMETERS; nothing signed"

made fresh $((now_ms - 60 * 1000))
first=$(result fresh | jq -r .serialNumber)
pc_submit --requests "$d/fresh.jsonl" 2>/dev/null # the captured message, sent again
printf 'fresh-000001\n' > "$d/fresh.ids"
pc_watch --ids "$d/fresh.ids" --total 2 --json --timeout 90 > "$d/fresh2.all" 2>&1 || fail "no second result"
[ "$(grep '^{' "$d/fresh2.all" | jq -r .serialNumber | sort -u)" = "$first" ] \
  || fail "the replay was not answered with $first: $(grep '^{' "$d/fresh2.all")"
[ "$(pc_ca_issued)" = 1 ] || fail "the CA signed again for the replay"
ok "a fresh request replayed: the same certificate ($first) from its record, nothing signed again"

out=$(PC_RETENTION_HOURS=1 PC_MAX_REQUEST_AGE_S=7200 "$PC_BIN_DIR/pkcs-worker" --config "$PC_CLUSTER_CONFIG" 2>&1) \
  && fail "a worker started with records kept shorter than requests live"
grep -q "redis.retention_hours (1) must keep request records" <<<"$out" || fail "no clear refusal: $out"
ok "records kept 1 h for requests valid 2 h: the worker refuses to start and says why"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
