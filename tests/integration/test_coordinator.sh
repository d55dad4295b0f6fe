#!/usr/bin/env bash
# pkcs-coordinator against a real Kafka broker and Redis with two pkcs-worker processes:
# it creates the missing topics with the configured partitions and retention, reports (and does
# not touch) a topic made by hand with another partition count, lists both workers as Active,
# shows a worker killed with SIGKILL as Inactive with the reason once its heartbeat expired,
# counts a batch of requests in the lag until the group has committed them (lag back to 0) and
# in the totals, serves the CA certificate and a CRL that openssl reads, and exits 0 on SIGTERM.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${log:-} ]] && { echo "end of the coordinator's log:" >&2; tail -n 30 "$log" >&2; }
  exit 1
}
for tool in jq curl openssl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/setup.sh installs it)"
done

pc_servers_init
pc_redis_start
pc_kafka_start 8
d="$PC_SERVERS_DIR"
# Made by hand before the coordinator starts: 3 partitions where the configuration wants 6
# (results_partitions; the requests get topic_partitions, 10).
pc_kafka_create_topic pkcs.results 3 --config retention.ms=3600000

# The cluster's configuration as cluster.sh writes it, plus the coordinator's settings; the
# topics are left to the coordinator.
mkdir -p "$d/keys"
openssl genpkey -algorithm ed25519 -out "$d/signer.pem" 2>/dev/null
openssl pkey -in "$d/signer.pem" -pubout -out "$d/signer.pub"
(umask 077 && head -c 32 /dev/urandom | base64 >"$d/ca-passphrase")
(umask 077 && openssl rand -hex 32 >"$d/admin-token") # for POST /api/topics/ensure
export PC_CLUSTER_CONFIG="$d/worker.json"
cat >"$PC_CLUSTER_CONFIG" <<JSON
{
  "state_dir": "$d/state",
  "cas": [{"name": "local", "key_passphrase_file": "$d/ca-passphrase"}],
  "worker": {"http_port": 0, "heartbeat_ms": 1000, "heartbeat_ttl_ms": 4000,
             "drain_timeout_ms": 20000, "key_pool_size": 4},
  "kafka": {"brokers": "$PC_KAFKA_BROKERS", "session_timeout_ms": 6000},
  "redis": {"port": $PC_REDIS_PORT, "lease_ms": 4000, "command_timeout_ms": 1000},
  "coordinator": {"http_port": 0, "topic_partitions": 10, "results_partitions": 6,
                  "topic_retention_hours": 1,
                  "admin_token_file": "$d/admin-token"},
  "signers": [{"id": "mdm-1", "algorithm": "ed25519", "public_key_file": "$d/signer.pub",
               "tenants": ["*"]}]
}
JSON

log="$d/coordinator.log"
_pc_launch coordinator "$log" "$PC_BIN_DIR/pkcs-coordinator" --config "$PC_CLUSTER_CONFIG"
coord_pid="$_pc_launched_pid"
port=""
for ((i = 0; i < 100; i++)); do
  port="$(jq -r 'select(.event == "http") | .port' "$log" 2>/dev/null | head -1)"
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || fail "the coordinator logged no HTTP port: $(tail -5 "$log")"
api() { curl -sf "http://127.0.0.1:$port$1"; }
# wait_for SECONDS JQ_FILTER PATH: until the filter holds on the document at PATH.
wait_for() {
  local limit="$1" filter="$2" path="$3" i
  for ((i = 0; i < limit * 5; i++)); do
    api "$path" 2>/dev/null | jq -e "$filter" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "after ${limit}s, $path: $(api "$path" 2>&1 | head -c 2000)" >&2
  return 1
}
ok "the coordinator listens on the free port it logged ($port)"

# ---- topics -------------------------------------------------------------------------------
wait_for 20 '.topics | length == 5 and all(.exists)' /api/topics || fail "topics not created"
desc="$(pc_kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$PC_KAFKA_BROKERS" \
  --describe 2>/dev/null | grep 'PartitionCount')"
topic_line() { grep -E "Topic: $1[[:space:]]" <<<"$desc"; }
topic_line pkcs.requests | grep -q 'PartitionCount: 10' || fail "pkcs.requests: $(topic_line pkcs.requests)"
topic_line pkcs.requests | grep -q 'retention.ms=3600000' || fail "pkcs.requests retention: $(topic_line pkcs.requests)"
topic_line pkcs.requests.dlq | grep -q 'PartitionCount: 8' || fail "DLQ: $(topic_line pkcs.requests.dlq)"
topic_line pkcs.requests.dlq | grep -q 'retention.ms=3600000' || fail "DLQ retention: $(topic_line pkcs.requests.dlq)"
topic_line pkcs.audit | grep -q 'PartitionCount: 6' || fail "audit: $(topic_line pkcs.audit)"
topic_line pkcs.audit | grep -q 'retention.ms=31536000000' || fail "audit retention: $(topic_line pkcs.audit)"
topic_line pkcs.notices | grep -q 'PartitionCount: 8' || fail "notices: $(topic_line pkcs.notices)"
ok "missing topics created: pkcs.requests with 10 partitions, the DLQ and notices with 8, retention 1 h; the audit trail with 6 (results_partitions), kept a year"
topic_line pkcs.results | grep -q 'PartitionCount: 3' || fail "pkcs.results was changed: $(topic_line pkcs.results)"
grep '"event":"topic_mismatch"' "$log" | grep -q 'pkcs.results has 3 partitions, the configuration wants 6' \
  || fail "no topic_mismatch log line for pkcs.results: $(grep topic_ "$log")"
api /api/topics | jq -e '(.problems | length) == 1 and (.problems[0] | test("pkcs.results has 3 partitions"))
  and (.topics[] | select(.name == "pkcs.results") | .partitions == 3 and (.problems | length) == 1)' \
  >/dev/null || fail "/api/topics does not report the mismatch: $(api /api/topics)"
ok "pkcs.results (3 partitions, 6 wanted) left as it was, reported in the log and /api/topics"

# ---- fleet --------------------------------------------------------------------------------
for w in w1 w2; do pc_worker_spawn "$w"; done
for w in w1 w2; do pc_worker_wait_ready "$w" 60; done
wait_for 30 '[.workers[] | select(.state == "Active")] | length == 2' /api/fleet \
  || fail "both workers not Active"
api /api/fleet | jq -e --arg v "$("$PC_BIN_DIR/pkcs-worker" --version | cut -d' ' -f2)" '
  (.workers | map(.id)) == ["w1", "w2"] and all(.workers[]; .version == $v and .reason == null
  and (.host | length) > 0 and .uptime_s >= 0 and .counts.issued == 0)' >/dev/null \
  || fail "fleet entries incomplete: $(api /api/fleet)"
wait_for 20 '[.workers[].partitions[]] | sort == [range(10)]' /api/fleet \
  || fail "the 10 partitions are not shared between the workers"
api /api/workers/w1 | jq -e '.id == "w1" and .state == "Active"' >/dev/null \
  || fail "/api/workers/w1: $(api /api/workers/w1)"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/workers/nobody") == 404 ]] \
  || fail "an unknown worker id is not a 404"
ok "both workers Active with version, host, uptime, counts and all 10 partitions between them"

kill -KILL "$(pc_worker_pid w2)"
wait_for 20 '.workers[] | select(.id == "w2") | .state == "Inactive" and (.reason | test("no heartbeat for [0-9]+ s"))' \
  /api/fleet || fail "killed worker w2 not shown Inactive with a reason"
api /api/fleet | jq -e '.workers[] | select(.id == "w1") | .state == "Active"' >/dev/null \
  || fail "w1 no longer Active: $(api /api/fleet)"
api /api/totals | jq -e '.active == 1 and .inactive == 1' >/dev/null || fail "totals: $(api /api/totals)"
api /metrics | grep -qx 'pkcs_cluster_workers{state="inactive"} 1' || fail "metrics: $(api /metrics | grep workers)"
ok "w2 killed with SIGKILL: Inactive, \"$(api /api/workers/w2 | jq -r .reason)\"; w1 still Active"

# ---- lag and totals -----------------------------------------------------------------------
pc_submit --template "$data/user-ec.json" --count 50 --id-prefix coord --device-keys "$d/keys" 2>/dev/null
pc_watch --count 50 --timeout 120 --device-keys "$d/keys" --ca "$d/state/ca/local/ca.crt" \
  >"$d/watch.txt" || fail "results: $(cat "$d/watch.txt")"
wait_for 30 '([.partitions[].high_watermark] | add) == 50 and .total == 0 and .error == null' /api/lag \
  || fail "lag did not return to 0 over the 50 requests"
ok "50 requests answered; /api/lag sees them (high watermarks add up to 50) and the lag back at 0"
wait_for 10 '.issued == 50 and .failed == 0 and .issue_rate_per_s > 0 and .lag == 0' /api/totals \
  || fail "totals do not show the 50 issued certificates"
api /metrics | grep -qx 'pkcs_cluster_issued_total 50' || fail "metrics: $(api /metrics | grep issued)"
ok "totals: 50 issued, $(api /api/totals | jq .issue_rate_per_s)/s over the last minute"

# ---- CA certificate and CRL ---------------------------------------------------------------
api /ca/local.crt >"$d/served.crt"
cmp -s "$d/served.crt" "$d/state/ca/local/ca.crt" || fail "/ca/local.crt differs from the CA file"
api /ca/local.der | openssl x509 -inform DER -outform PEM | cmp -s - "$d/state/ca/local/ca.crt" \
  || fail "/ca/local.der is not the CA certificate"
api /crl/local.crl >"$d/local.crl"
openssl crl -inform DER -in "$d/local.crl" -noout -CAfile "$d/state/ca/local/ca.crt" 2>&1 \
  | grep -q 'verify OK' || fail "the CRL does not parse or verify against the CA"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/crl/nope.crl") == 404 ]] \
  || fail "an unknown CA's CRL is not a 404"
ok "/ca/local.crt is the CA file, /ca/local.der the same in DER, /crl/local.crl verifies"

# A revocation reaches the served CRL on its own (the coordinator counts revocations every 5 s).
serial=$(pc_watch --count 50 --json --timeout 60 2>/dev/null | grep '^{' | jq -r 'select(.status == "ISSUED") | .serialNumber' | head -1)
[[ -n $serial ]] || fail "no issued certificate to revoke"
"$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
  --signer-key "$d/signer.pem" --ca local --tenant contoso --serial "$serial" --reason key-compromise --wait \
  --timeout 60 | grep -q REVOKED || fail "revoking $serial failed"
listed=0
for _ in $(seq 1 40); do
  api /crl/local.crl | openssl crl -inform DER -noout -text 2>/dev/null | grep -qi "Serial Number: $serial" \
    && { listed=1; break; }
  sleep 0.5
done
((listed)) || fail "the served CRL does not list $serial 20 s after its revocation"
ok "revoked $serial: the served CRL lists it within 20 s, without anyone asking twice"
[[ $(pc_http_status "$port" /healthz) == 200 && $(pc_http_status "$port" /readyz) == 200 ]] \
  || fail "healthz/readyz not 200"

# ---- a topic deleted later: reported, created again only when asked -----------------------
pc_kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$PC_KAFKA_BROKERS" \
  --delete --topic pkcs.requests.dlq >/dev/null 2>&1 || fail "cannot delete the DLQ topic"
wait_for 20 '.topics[] | select(.role == "dlq") | .exists == false and (.problems[0] | test("does not exist"))' \
  /api/topics || fail "the deleted DLQ is not reported missing"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/topics/ensure") == 405 ]] \
  || fail "GET /api/topics/ensure is not refused"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/topics/ensure") == 401 ]] \
  || fail "POST /api/topics/ensure without the admin token is not refused"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$d/admin-token")" \
  "http://127.0.0.1:$port/api/topics/ensure") == 202 ]] || fail "POST /api/topics/ensure not accepted"
wait_for 20 '.topics[] | select(.role == "dlq") | .exists and .partitions == 8' /api/topics \
  || fail "POST /api/topics/ensure did not create the DLQ again"
ok "a deleted topic is reported missing and created again on POST /api/topics/ensure"

kill -TERM "$coord_pid"
rc=0
wait "$coord_pid" || rc=$?
[[ $rc -eq 0 ]] || fail "the coordinator exited $rc after SIGTERM: $(tail -5 "$log")"
grep -q '"event":"exit"' "$log" || fail "no exit line in the log"
grep -q '"event":"loop"' "$log" && fail "the coordinator left libuv handles open at exit"
jq -e . "$log" >/dev/null 2>&1 || fail "the coordinator's log has lines that are not JSON"
ok "SIGTERM: the coordinator closed everything and exited 0; its log is all JSON lines"
echo "$pass passed, 0 failed"
