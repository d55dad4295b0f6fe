#!/usr/bin/env bash
# Self-test of the test-server harness (tests/lib/servers.sh): a real Redis and a real
# single-node KRaft Kafka broker on loopback. Proves the broker works end to end with Kafka's own
# console producer and consumer, that restarts keep ports (and Kafka's data), that bad calls fail
# clearly, and that cleanup leaves no process and no state folder behind.
set -euo pipefail

src="${PC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../lib/servers.sh
source "$src/tests/lib/servers.sh"

pass=0
fail() {
  echo "FAIL: $*" >&2
  echo "$pass passed, 1 failed" >&2
  exit 1
}
ok() {
  pass=$((pass + 1))
  echo "ok - $*"
}

# listens_on_loopback_only PORT: true when PORT is listened on, and only on 127.0.0.1 (Java
# binds an IPv6 socket to the IPv4-mapped address, which ss shows as [::ffff:127.0.0.1]).
listens_on_loopback_only() {
  local addrs
  addrs="$(ss -Hltn "( sport = :$1 )" | awk '{ print $4 }')"
  [[ -n $addrs ]] && ! grep -Eqv '^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):' <<<"$addrs"
}

pc_servers_init
dir="$PC_SERVERS_DIR"
[[ -d $dir ]] || fail "pc_servers_init did not create the state folder"
ok "state folder $dir"

p1="$(pc_free_port)"
p2="$(pc_free_port)"
[[ $p1 =~ ^[0-9]+$ && $p1 -ge 1024 && $p1 != "$p2" ]] || fail "pc_free_port gave '$p1' then '$p2'"
ok "pc_free_port gives distinct free ports ($p1, $p2)"

# --- Redis -----------------------------------------------------------------------------------
pc_redis_start || fail "pc_redis_start"
redis_pids=("$PC_REDIS_PID")
pc_redis_ping || fail "Redis on port $PC_REDIS_PORT does not answer PING"
[[ $(redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" SET pc:test hello) == OK ]] || fail "Redis SET"
listens_on_loopback_only "$PC_REDIS_PORT" || fail "Redis listens beyond 127.0.0.1: $(ss -Hltn "( sport = :$PC_REDIS_PORT )")"
ok "Redis answers PING on 127.0.0.1:$PC_REDIS_PORT only"

redis_port="$PC_REDIS_PORT"
pc_redis_stop || fail "pc_redis_stop"
! pc_redis_ping "$redis_port" || fail "Redis still answers after pc_redis_stop"
pc_redis_start || fail "pc_redis_start after stop"
redis_pids+=("$PC_REDIS_PID")
[[ $PC_REDIS_PORT == "$redis_port" ]] || fail "Redis came back on port $PC_REDIS_PORT, not $redis_port"
pc_redis_ping || fail "Redis does not answer PING after the restart"
ok "Redis stopped and started again on the same port"

# --- Kafka -----------------------------------------------------------------------------------
pc_kafka_start || fail "pc_kafka_start"
kafka_pids=("$PC_KAFKA_PID")
[[ $PC_KAFKA_BROKERS == "127.0.0.1:$PC_KAFKA_PORT" ]] || fail "PC_KAFKA_BROKERS is '$PC_KAFKA_BROKERS'"
listens_on_loopback_only "$PC_KAFKA_PORT" || fail "Kafka listens beyond 127.0.0.1: $(ss -Hltn "( sport = :$PC_KAFKA_PORT )")"
found="$(pgrep -f "kafka.Kafka $dir/kafka/server.properties" || true)"
[[ $found == "$PC_KAFKA_PID" ]] || fail "the broker runs as pid(s) '$found', not the recorded $PC_KAFKA_PID"
ok "Kafka broker ready at $PC_KAFKA_BROKERS (pid $PC_KAFKA_PID)"

topics=(org.apache.kafka.tools.TopicCommand --bootstrap-server "$PC_KAFKA_BROKERS")
pc_kafka_create_topic pc.test.requests 4 || fail "pc_kafka_create_topic pc.test.requests 4"
pc_kafka_tool "${topics[@]}" --list | grep -qx pc.test.requests ||
  fail "pc.test.requests is not listed by TopicCommand --list"
describe="$(pc_kafka_tool "${topics[@]}" --describe --topic pc.test.requests)"
grep -q 'PartitionCount: 4' <<<"$describe" || fail "pc.test.requests does not have 4 partitions: $describe"
[[ $(grep -c 'Leader: 1' <<<"$describe") -eq 4 ]] || fail "not every partition has a leader: $describe"
ok "topic created with 4 partitions, listed and described"

if pc_kafka_create_topic pc.test.requests 4 2>"$dir/dup.err"; then
  fail "creating an existing topic succeeded"
fi
grep -q "pc.test.requests" "$dir/dup.err" || fail "the error for a duplicate topic does not name it"
if pc_kafka_create_topic pc.test.other 0 2>/dev/null; then
  fail "pc_kafka_create_topic accepted 0 partitions"
fi
ok "pc_kafka_create_topic fails clearly on a duplicate topic and bad arguments"

# consume_sorted N: reads N messages of pc.test.requests from the beginning, one per line, sorted
# (order across 4 partitions is not defined).
consume_sorted() {
  pc_kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$PC_KAFKA_BROKERS" \
    --topic pc.test.requests --from-beginning --max-messages "$1" --timeout-ms 30000 \
    --group "pc-test-$RANDOM" 2>"$dir/consumer.err" | sort
}
printf 'first message\nsecond message\nthird message\n' |
  pc_kafka_tool kafka.tools.ConsoleProducer --bootstrap-server "$PC_KAFKA_BROKERS" \
    --topic pc.test.requests --producer-property acks=all 2>"$dir/producer.err" ||
  fail "the console producer failed: $(cat "$dir/producer.err")"
expected="$(printf 'first message\nsecond message\nthird message\n' | sort)"
got="$(consume_sorted 3)" || true
[[ $got == "$expected" ]] || fail "consumed '$got', expected '$expected'; consumer said: $(cat "$dir/consumer.err")"
ok "3 messages produced and consumed back with the console tools"

kafka_port="$PC_KAFKA_PORT"
pc_kafka_restart || fail "pc_kafka_restart"
kafka_pids+=("$PC_KAFKA_PID")
[[ $PC_KAFKA_PORT == "$kafka_port" ]] || fail "Kafka came back on port $PC_KAFKA_PORT, not $kafka_port"
got="$(consume_sorted 3)" || true
[[ $got == "$expected" ]] || fail "after the restart consumed '$got'; consumer said: $(cat "$dir/consumer.err")"
ok "Kafka restarted on the same port and kept its messages"

# --- Cleanup ---------------------------------------------------------------------------------
pc_servers_cleanup
for pid in "${redis_pids[@]}" "${kafka_pids[@]}"; do
  ! kill -0 "$pid" 2>/dev/null || fail "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) survived pc_servers_cleanup"
done
! pgrep -f "$dir" >/dev/null || fail "processes still refer to $dir: $(pgrep -af "$dir")"
[[ ! -e $dir ]] || fail "pc_servers_cleanup left $dir behind"
! pc_redis_ping "$redis_port" || fail "something still answers on the Redis port $redis_port"
ok "cleanup stopped redis (${redis_pids[*]}) and kafka (${kafka_pids[*]}) and removed $dir"

# --- Cleanup reads our programs' logs for key material -----------------------------------------
# leak_exit FILE TEXT [SECRET]: a test whose FILE (in its state folder) holds TEXT, having noted
# SECRET, ends; prints its exit status, its complaint in $dir.why.
leak_exit() {
  local rc=0
  (
    pc_servers_init
    [[ -z ${3:-} ]] || pc_secret_note "$3"
    printf 'a line before\n%s\n' "$2" >"$PC_SERVERS_DIR/$1"
    exit 0
  ) 2>"$dir.why" || rc=$?
  echo "$rc"
}
pem="$(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null)"
rsa_line="$(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null | sed -n 2p)"
ec_line="$(sed -n 2p <<<"$pem")"
[[ $(leak_exit w1.log '{"event":"issued","msg":"issued"}' 'not-in-this-log') == 0 ]] ||
  fail "a clean log failed the test: $(cat "$dir.why")"
[[ $(leak_exit w1.log "$pem") == 1 ]] && grep -q 'w1.log holds a PEM private key' "$dir.why" ||
  fail "a PEM private key in w1.log went unnoticed: $(cat "$dir.why")"
[[ $(leak_exit submit.err "key: $rsa_line") == 1 ]] && grep -q 'submit.err holds base64 DER' "$dir.why" ||
  fail "a base64 RSA PKCS#8 key in submit.err went unnoticed: $(cat "$dir.why")"
[[ $(leak_exit w2.log "{\"msg\":\"$ec_line\"}") == 1 ]] && grep -q 'w2.log holds base64 DER' "$dir.why" ||
  fail "a base64 EC PKCS#8 key in w2.log went unnoticed: $(cat "$dir.why")"
[[ $(leak_exit coordinator.log 'unlocking with Tr0ub4dor&3 now' 'Tr0ub4dor&3') == 1 ]] &&
  grep -q 'coordinator.log holds a password or passphrase of the test' "$dir.why" ||
  fail "a noted secret in coordinator.log went unnoticed: $(cat "$dir.why")"
rm -f "$dir.why"
ok "cleanup fails a test whose logs hold a PEM key, base64 PKCS#8 (RSA, EC) or a noted secret, naming the file"

echo "$pass passed, 0 failed"
