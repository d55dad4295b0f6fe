#!/usr/bin/env bash
# The key pool: a worker left idle fills its pool of pre-generated RSA-2048 keys with its spare
# pool threads (visible in /metrics); a burst of RSA-2048 requests after the quiet period is
# answered from the pool, without waiting for key generation (the results' timing says so),
# and the pool is filled again after it.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_worker_spawn pool PC_KEY_POOL_SIZE=6 PC_KEY_POOL_ALGORITHMS=RSA-2048
pc_worker_wait_ready pool 90
port=$(pc_worker_port pool)

metric() { # metric NAME: its value from /metrics
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
  awk -v m="$1" '$1 == m { print $2 }' <&3
  exec 3<&-
}
pool_full() { # pool_full: waits up to 60 s for the 6 keys; false if they did not come
  for _ in $(seq 1 300); do
    [ "$(metric pkcs_key_pool_keys)" = 6 ] && return 0
    sleep 0.2
  done
  return 1
}
pool_full || fail "the idle worker did not fill its key pool: $(metric pkcs_key_pool_keys)"
ok "idle worker filled its pool with 6 RSA-2048 keys"

pc_submit --template "$data/user-rsa.json" --count 6 --id-prefix burst --key-alg ec \
  --device-keys "$d/keys" 2>/dev/null
printf 'burst-%06d\n' $(seq 1 6) > "$d/burst.ids"
pc_watch --ids "$d/burst.ids" --json --timeout 120 --device-keys "$d/keys" \
  --ca "$d/state/ca/local/ca.crt" > "$d/burst.jsonl" || fail "burst not answered"
slowest=$(grep -o '"keygenUs":"[0-9]*"' "$d/burst.jsonl" | cut -d'"' -f4 | sort -n | tail -1)
[ -n "$slowest" ] && [ "$slowest" -lt 20000 ] || fail "keygen took ${slowest:-?} us: keys were not taken from the pool"
ok "burst of 6 RSA-2048 requests: every key from the pool (slowest keygen stage ${slowest} us)"
# The pool is filled when something made room: the burst's last request ending is what starts
# it again (the worker does not poll its pool while idle).
pool_full || fail "the pool was not filled again after the burst: $(metric pkcs_key_pool_keys)"
ok "the pool filled again after the burst took its keys"
kill -TERM "$(pc_worker_pid pool)"; wait "$(pc_worker_pid pool)" || true
echo "$pass passed, 0 failed"
