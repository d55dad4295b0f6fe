#!/usr/bin/env bash
# Retries end, against a real Kafka broker, Redis and cfssl: cfssl sits behind a proxy that
# answers every signing request "busy" (HTTP 503) while its /info still works, so the CA looks
# healthy and every attempt fails in a way worth retrying. The worker keeps retrying, shows
# itself degraded (/readyz 503 with the reason, Degraded on the coordinator and in pkcsctl
# status), then gives the request up at worker.retry_limit_ms: a FAILED result the upstream
# may send again (retryable), not recorded as the request's answer, and a gave_up log line.
# Sent again once cfssl signs, the same request is issued.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_cluster_add_cfssl || fail "could not start cfssl or add it to the configuration"
busy='{"success":false,"result":null,"errors":[{"code":1000,"message":"busy"}],"messages":[]}'
pc_fault_proxy proxy "http://127.0.0.1:$PC_CFSSL_PORT" --fail /api/v1/cfssl/authsign 503 "$busy" \
  || fail "the fault proxy did not start"
jq --arg url "http://127.0.0.1:$PC_PROXY_PORT" '(.cas[] | select(.name == "remote") | .url) = $url' \
  "$PC_CLUSTER_CONFIG" > "$PC_CLUSTER_CONFIG.new" && mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
pc_coordinator_spawn || fail "the coordinator did not start"
pc_worker_spawn w1 PC_RETRY_LIMIT_MS=12000 PC_DEGRADED_AFTER_MS=2000 PC_RETRY_MAX_MS=1000
pc_worker_wait_ready w1 90

pc_submit --template "$data/device-remote.json" --count 1 --id-prefix busy --device-keys "$d/keys" \
  --dry-run 2>/dev/null > "$d/busy.jsonl"
pc_submit --requests "$d/busy.jsonl" 2>/dev/null
port="$(pc_worker_port w1)"
reason=""
for _ in $(seq 1 100); do
  reason="$(curl -s "http://127.0.0.1:$port/readyz" || true)"
  [[ $reason == degraded:* ]] && break
  sleep 0.2
done
[[ $reason == degraded:*"1 request(s) retrying"* ]] || fail "/readyz did not say degraded: $reason"
[ "$(pc_http_status "$port" /readyz)" = 503 ] || fail "/readyz not 503 while degraded"
ok "retrying: /readyz 503 \"${reason%%;*}\""

api() { curl -sf "http://127.0.0.1:$PC_COORDINATOR_PORT$1"; }
seen=""
for _ in $(seq 1 100); do
  seen="$(api /api/fleet 2>/dev/null | jq -r '.workers[] | select(.id == "w1") | .state + " " + (.reason // "")' 2>/dev/null || true)"
  [[ $seen == Degraded* ]] && break
  sleep 0.2
done
[[ $seen == Degraded*"retrying"* ]] || fail "the coordinator does not show w1 Degraded: $seen"
status="$(PC_COORDINATOR_URL="http://127.0.0.1:$PC_COORDINATOR_PORT" "$PC_BIN_DIR/pkcsctl" status)"
echo "$status" | grep -q "Degraded" || fail "pkcsctl status does not show Degraded: $status"
echo "$status" | grep -q "1 degraded" || fail "pkcsctl status does not count the degraded worker: $status"
ok "the coordinator and pkcsctl status show w1 Degraded: ${seen%%:*}"

printf 'busy-000001\n' > "$d/busy.ids"
pc_watch --ids "$d/busy.ids" --json --timeout 120 > "$d/busy.out" || fail "no result after the retry limit"
res="$(grep '^{' "$d/busy.out")"
echo "$res" | jq -e '.status == "FAILED" and .retryable == true and .errorCode == "CA_BUSY"' >/dev/null \
  || fail "not FAILED, retryable, CA_BUSY: $(echo "$res" | head -c 400)"
echo "$res" | jq -r .errorMessage | grep -q "gave up after" || fail "the message does not say it gave up: $res"
grep -q '"event":"gave_up"' "$d/w1.log" || fail "no gave_up log line"
for _ in $(seq 1 50); do [ "$(pc_http_status "$port" /readyz)" = 200 ] && break; sleep 0.2; done
[ "$(pc_http_status "$port" /readyz)" = 200 ] || fail "still not ready after giving up"
ok "given up at the retry limit: FAILED, retryable, CA_BUSY, a gave_up line; ready again"

# cfssl signs again (the worker goes to it without the proxy): the same request is issued.
kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "w1 did not exit 0"
jq --arg url "http://127.0.0.1:$PC_CFSSL_PORT" '(.cas[] | select(.name == "remote") | .url) = $url' \
  "$PC_CLUSTER_CONFIG" > "$PC_CLUSTER_CONFIG.new" && mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
pc_worker_spawn w2
pc_worker_wait_ready w2 90
pc_submit --requests "$d/busy.jsonl" 2>/dev/null
pc_watch --ids "$d/busy.ids" --total 2 --json --timeout 120 > "$d/busy2.out" || fail "no second result"
grep '^{' "$d/busy2.out" | grep -q '"status":"ISSUED"' || fail "sent again, not issued: $(tail -2 "$d/busy2.out" | head -c 400)"
ok "sent again once cfssl signs: issued (the FAILED result was not the request's recorded answer)"

kill -TERM "$(pc_worker_pid w2)"; wait "$(pc_worker_pid w2)" || fail "w2 did not exit 0"
echo "$pass passed, 0 failed"
