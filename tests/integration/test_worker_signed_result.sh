#!/usr/bin/env bash
# Signed results, against a real Kafka broker, Redis, a worker and a coordinator: every result
# is a SignedResult the cluster's result key verifies (the coordinator publishes that key at
# /keys/results.pem); a replay republishes the same signed bytes; a result record altered in
# Redis (by someone who can write there, digest recomputed) and a result produced to the topic
# by someone else are both caught by `pkcsctl watch --result-key`, which fails the run.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_worker_spawn w1
pc_worker_wait_ready w1 90
pc_coordinator_spawn
curl -sf "http://127.0.0.1:$PC_COORDINATOR_PORT/keys/results.pem" > "$d/published.pub" \
  || fail "the coordinator does not publish the result key"
cmp -s "$d/published.pub" "$d/results.pub" || fail "the published key is not the workers' key"
ok "the coordinator publishes the result key at /keys/results.pem"

pc_submit --template "$data/user-ec.json" --count 1 --id-prefix sr --device-keys "$d/keys" \
  --dry-run 2>/dev/null > "$d/sr.jsonl"
pc_submit --requests "$d/sr.jsonl" 2>/dev/null
printf 'sr-000001\n' > "$d/sr.ids"
watch_sr() { # watch_sr TOTAL OUT: every result for sr-000001, checked with the published key
  "$PC_BIN_DIR/pkcsctl" watch --brokers "$PC_KAFKA_BROKERS" --result-key "$d/published.pub" \
    --ids "$d/sr.ids" --total "$1" --json --timeout "${3:-60}" > "$2" 2>&1
}
watch_sr 1 "$d/one.out" || fail "the result does not verify: $(tail -3 "$d/one.out")"
serial=$(grep '^{' "$d/one.out" | jq -r .serialNumber)
ok "issued $serial; its result verifies with the published key"

pc_submit --requests "$d/sr.jsonl" 2>/dev/null # the same request again: replayed from its record
watch_sr 2 "$d/two.out" || fail "the replayed result does not verify: $(tail -3 "$d/two.out")"
[ "$(grep '^{' "$d/two.out" | jq -r .serialNumber | sort -u)" = "$serial" ] || fail "the replay differs"
ok "a replay republishes the signed result, which still verifies"

# Someone with write access to Redis alters the stored result (and its digest) ...
rec='pc:req:{contoso}:{sr-000001}'
python3 "$PC_SOURCE_DIR/tests/lib/redis_raw.py" "$PC_REDIS_PORT" hget "$rec" result > "$d/stored.bin"
python3 - "$d/stored.bin" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"sr-000001")
assert i > 0, "request id not in the stored result"
b[i + len("sr-000001") + 8] ^= 0x01  # a byte of the result after its request id
open(p, "wb").write(bytes(b))
PY
python3 "$PC_SOURCE_DIR/tests/lib/redis_raw.py" "$PC_REDIS_PORT" hset "$rec" result < "$d/stored.bin"
digest=$(sha256sum "$d/stored.bin" | cut -d' ' -f1)
redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" HSET "$rec" digest "$digest" >/dev/null
pc_submit --requests "$d/sr.jsonl" 2>/dev/null
! watch_sr 3 "$d/three.out" 10 || fail "a tampered record went unnoticed: $(tail -3 "$d/three.out")"
grep -q "not the cluster's: signature of result by key results-1 does not verify" "$d/three.out" \
  || fail "not reported as a bad signature: $(cat "$d/three.out")"
ok "a result record altered in Redis is replayed, and the consumer sees it is not the cluster's"

# ... or someone produces a result of their own to the topic.
printf '\x0a\x0f\x08\x01\x12\x09sr-000001\x38\x01\x1a\x02\x58\x58' > "$d/injected.bin"
"$PC_BIN_DIR/pkcsctl" submit --brokers "$PC_KAFKA_BROKERS" --topic pkcs.results --raw "$d/injected.bin" \
  >/dev/null 2>&1 || fail "could not produce the injected result"
! watch_sr 4 "$d/four.out" 10 || fail "an injected result went unnoticed"
grep -c "is not the cluster's: result is not signed" "$d/four.out" | grep -q '^1$' \
  || fail "the unsigned injected result was not reported: $(cat "$d/four.out")"
ok "an unsigned result produced to the topic is reported and not counted"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
