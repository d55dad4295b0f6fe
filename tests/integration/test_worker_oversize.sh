#!/usr/bin/env bash
# Every message ends, whatever its size, against a real Kafka broker and Redis: the requests
# topic takes messages of up to 3 MB, the dead-letter topic only 100 kB. A 2 MB message that is
# not a request goes to the DLQ with its first bytes and its length (the first dead letter the
# worker tries, with 256 kB of it, is refused by the topic and made smaller), and the partition
# goes on: the requests behind it, on the same partition, are answered, and the group's committed
# offset reaches the end of the partition.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

PC_REQUESTS_TOPIC_CONFIG=max.message.bytes=3000000 PC_DLQ_TOPIC_CONFIG=max.message.bytes=100000 \
  pc_cluster_init 1
d="$PC_SERVERS_DIR"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

head -c 2000000 /dev/urandom > "$d/big.bin"
pc_submit --raw "$d/big.bin" 2>"$d/submit.err" || fail "could not produce the 2 MB message: $(cat "$d/submit.err")"
pc_submit --template "$data/user-ec.json" --count 5 --id-prefix after --device-keys "$d/keys" 2>/dev/null
printf 'after-%06d\n' $(seq 1 5) > "$d/after.ids"
pc_watch --ids "$d/after.ids" --timeout 120 --device-keys "$d/keys" \
  --ca "$d/state/ca/local/ca.crt" > "$d/after.out" || fail "the requests behind it: $(cat "$d/after.out")"
grep -q "issued 5, failed 0" "$d/after.out" || fail "the requests behind it: $(head -1 "$d/after.out")"
ok "the 5 requests behind a 2 MB message on the same partition were answered"

"$PC_BIN_DIR/pkcsctl" dlq --brokers "$PC_KAFKA_BROKERS" --count 1 --timeout 60 > "$d/dlq.jsonl" \
  || fail "no dead letter: $(cat "$d/dlq.jsonl")"
grep -q '"originalLength":"2000000"' "$d/dlq.jsonl" || fail "the dead letter does not say the original's length: $(head -c 400 "$d/dlq.jsonl")"
grep -q '"errorCode":"BAD_MESSAGE"' "$d/dlq.jsonl" || fail "not BAD_MESSAGE: $(head -c 400 "$d/dlq.jsonl")"
grep -q 'original truncated' "$d/dlq.jsonl" || fail "the reason does not say the original was cut: $(head -c 400 "$d/dlq.jsonl")"
"$PC_BIN_DIR/pkcsctl" dlq --brokers "$PC_KAFKA_BROKERS" --count 1 --timeout 30 --with-original \
  > "$d/dlq-full.jsonl" || fail "pkcsctl dlq --with-original"
kept=$(jq -r '.originalValue' "$d/dlq-full.jsonl" | base64 -d | wc -c)
[ "$kept" -gt 0 ] && [ "$kept" -lt 100000 ] || fail "the dead letter kept $kept bytes of the original"
[ "$(head -c "$kept" "$d/big.bin" | sha256sum)" = "$(jq -r '.originalValue' "$d/dlq-full.jsonl" | base64 -d | sha256sum)" ] \
  || fail "the kept bytes are not the original's first bytes"
grep -q '"event":"too_large"' "$d/w1.log" || fail "no too_large log line"
grep -q '"event":"dlq"' "$d/w1.log" || fail "no dlq log line"
ok "the 2 MB message is on the DLQ with its first $kept bytes and originalLength 2000000 (the topic took 100 kB)"

# The partition's committed offset is past the big message: the group has nothing left to redo.
kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "w1 did not exit 0"
pc_kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
  --bootstrap-server "$PC_KAFKA_BROKERS" --describe --group pkcs-workers > "$d/group.txt" 2>&1 \
  || fail "cannot describe the consumer group: $(tail -3 "$d/group.txt")"
line=$(awk '$2 == "pkcs.requests" && $3 == "0"' "$d/group.txt")
committed=$(echo "$line" | awk '{print $4}') end=$(echo "$line" | awk '{print $5}')
[ -n "$end" ] && [ "$committed" = "$end" ] && [ "$end" -eq 6 ] \
  || fail "committed offset $committed, log end $end (want 6 and 6): $(cat "$d/group.txt")"
ok "the group's committed offset is at the end of the partition (6): nothing is left to redo"

echo "$pass passed, 0 failed"
