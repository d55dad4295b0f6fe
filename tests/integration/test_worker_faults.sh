#!/usr/bin/env bash
# Issue 3, tests 3-7 against real Kafka, Redis and pkcs-worker processes: kill -9 of a worker
# under load, Redis stopped for 10 s under load, bad input mixed into the load, SIGTERM under
# load and a restart, and the instance limit. In every case every request gets its result and
# no request id ever gets two different certificates.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 8
d="$PC_SERVERS_DIR"
ca="$d/state/ca/local/ca.crt"
for w in w1 w2 w3; do pc_worker_spawn "$w"; done
for w in w1 w2 w3; do pc_worker_wait_ready "$w" 90; done

# submit_batch PREFIX COUNT: good requests; writes $d/PREFIX.ids.
submit_batch() {
  pc_submit --template "$data/user-ec.json" --count "$2" --id-prefix "$1" \
    --device-keys "$d/keys" 2>/dev/null
  printf "$1-%06d\n" $(seq 1 "$2") > "$d/$1.ids"
}
# expect_all PREFIX: every request of the batch answered, opened, verified, never two certs.
expect_all() {
  pc_watch --ids "$d/$1.ids" --timeout 300 --device-keys "$d/keys" --ca "$ca" > "$d/$1.out" \
    || fail "$1: $(cat "$d/$1.out")"
  grep -q "DIFFERENT certificate: 0" "$d/$1.out" || fail "$1: $(cat "$d/$1.out")"
}

# 7. The instance limit: a fourth worker in a cluster limited to three is refused.
pc_worker_spawn w4 PC_MAX_INSTANCES=3
rc=0; wait "$(pc_worker_pid w4)" || rc=$?
[ "$rc" -ne 0 ] || fail "a fourth worker was allowed past max_instances=3"
grep -q "cannot join: the cluster already has 3 active workers" "$d/w4.log" \
  || fail "the refused worker did not say why: $(tail -3 "$d/w4.log")"
ok "worker over the instance limit refused (exit $rc): $(grep -o 'cannot join[^"]*' "$d/w4.log" | head -1)"

# 3. kill -9 in the middle of the load.
submit_batch k9 600
sleep 2
kill -9 "$(pc_worker_pid w2)"
expect_all k9
ok "kill -9 of a worker under load: 600/600 answered, no request with two certificates"
pc_worker_spawn w2b
pc_worker_wait_ready w2b 90

# 4. Redis stopped for 10 s in the middle of the load.
submit_batch rd 600
sleep 1
pc_redis_stop
sleep 2
status=$(pc_http_status "$(pc_worker_port w1)" /readyz)
[ "$status" = 503 ] || fail "/readyz said $status while Redis was down"
ok "/readyz reports 503 while Redis is down"
sleep 8
pc_redis_start >/dev/null 2>&1 || pc_redis_restart 0
pc_worker_wait_ready w1 60
ok "worker ready again by itself after Redis returned"
expect_all rd
ok "Redis down for 10 s under load: 600/600 answered, no request with two certificates"

# 5. Bad input mixed into the load: good requests around undecodable, unsigned, badly signed,
# unknown-variable and expired ones.
head -c 300 /dev/urandom > "$d/garbage.bin"
pc_submit --template "$data/user-ec.json" --count 100 --id-prefix mixa --device-keys "$d/keys" 2>/dev/null
pc_submit --raw "$d/garbage.bin" --raw "$d/garbage.bin" 2>/dev/null
pc_submit --unsigned --template "$data/user-ec.json" --count 2 --id-prefix uns --device-keys "$d/keys" 2>/dev/null
pc_submit --corrupt-signature --template "$data/user-ec.json" --count 2 --id-prefix cor --device-keys "$d/keys" 2>/dev/null
pc_submit --template "$data/bad-variable.json" --count 3 --id-prefix var --device-keys "$d/keys" 2>/dev/null
pc_submit --template "$data/expired.json" --count 3 --id-prefix late --device-keys "$d/keys" 2>/dev/null
pc_submit --template "$data/user-ec.json" --count 100 --id-prefix mixb --device-keys "$d/keys" 2>/dev/null
{ printf 'mixa-%06d\n' $(seq 1 100); printf 'mixb-%06d\n' $(seq 1 100);
  printf 'var-%06d\n' $(seq 1 3); printf 'late-%06d\n' $(seq 1 3); } > "$d/mix.ids"
pc_watch --ids "$d/mix.ids" --timeout 300 --device-keys "$d/keys" --ca "$ca" > "$d/mix.out" \
  || fail "mixed load: $(cat "$d/mix.out")"
grep -q "issued 200, failed 6" "$d/mix.out" || fail "mixed load: $(cat "$d/mix.out")"
grep -q "INVALID_PARAMETERS=3" "$d/mix.out" || fail "unknown variable not reported: $(cat "$d/mix.out")"
grep -q "DEADLINE_EXCEEDED=3" "$d/mix.out" || fail "expired deadline not reported: $(cat "$d/mix.out")"
ok "200 good requests issued around 3 unknown-variable and 3 expired ones (FAILED with their codes)"
dlq=$(pc_kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$PC_KAFKA_BROKERS" \
  --topic pkcs.requests.dlq --from-beginning --max-messages 6 --timeout-ms 30000 \
  --property print.value=false --property print.offset=true 2>/dev/null | grep -c Offset || true)
[ "$dlq" -eq 6 ] || fail "expected 6 dead letters (2 undecodable, 2 unsigned, 2 bad signature), got $dlq"
ok "2 undecodable, 2 unsigned and 2 badly signed messages went to the DLQ"
grep -h '"event":"dlq"' "$d"/w*.log | grep -q "request is not signed" \
  || fail "no dlq log line for the unsigned requests"
ok "dead letters are logged with their reason"

# 6. SIGTERM under load: exit 0 after draining, a restarted worker resumes.
submit_batch st 400
sleep 1
kill -TERM "$(pc_worker_pid w1)"
rc=0; wait "$(pc_worker_pid w1)" || rc=$?
[ "$rc" -eq 0 ] || fail "worker exited $rc after SIGTERM under load"
grep -q '"event":"exit".*drained' "$d/w1.log" || fail "w1 did not log its drain"
ok "SIGTERM under load: the worker drained and exited 0"
pc_worker_spawn w1b
expect_all st
ok "after SIGTERM and a restart: 400/400 answered, no request with two certificates"

echo "$pass passed, 0 failed"
