#!/usr/bin/env bash
# A Redis that may evict keys (maxmemory-policy allkeys-lru) would drop the local CA's records
# or a claim once full: a worker and the coordinator refuse to start on it, saying how to fix
# it, and register nothing. Once the policy is noeviction the same worker starts. No Kafka is
# needed: the check comes before the worker consumes anything.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_servers_init
pc_redis_start --maxmemory 64mb --maxmemory-policy allkeys-lru
d="$PC_SERVERS_DIR"
rcli() { redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" "$@"; }
(umask 077 && head -c 32 /dev/urandom | base64 >"$d/ca-passphrase")
export PC_CLUSTER_CONFIG="$d/worker.json"
cat >"$PC_CLUSTER_CONFIG" <<JSON
{
  "state_dir": "$d/state",
  "cas": [{"name": "local", "key_passphrase_file": "$d/ca-passphrase"}],
  "worker": {"http_port": 0, "allow_unsigned": true, "key_pool_size": 0},
  "kafka": {"brokers": "127.0.0.1:$(pc_free_port)"},
  "redis": {"port": $PC_REDIS_PORT, "command_timeout_ms": 1000}
}
JSON

# logged FILE EVENT REGEX: a JSON log line of EVENT whose msg matches REGEX.
logged() {
  [[ -n $(jq -R -c --arg ev "$2" --arg re "$3" \
    'fromjson? | select(.event == $ev and (.msg | test($re)))' "$1" 2>/dev/null || true) ]]
}

# wait_gone PID: waits (up to 60 s) for our child PID to end; sets rc (or "running").
wait_gone() {
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$1" 2>/dev/null; then rc=running; else rc=0; wait "$1" || rc=$?; fi
}

pc_worker_spawn lru
wait_gone "$(pc_worker_pid lru)"
[[ $rc != running && $rc != 0 ]] || fail "the worker ran on an allkeys-lru Redis (rc $rc): $(tail -n 5 "$d/lru.log")"
logged "$d/lru.log" redis_misconfigured \
  "maxmemory-policy allkeys-lru, which lets it delete the local CA's records.*set maxmemory-policy noeviction" ||
  fail "no redis_misconfigured line naming the policy and the fix: $(tail -n 5 "$d/lru.log")"
[[ $(rcli ZCARD pc:workers) == 0 ]] || fail "the refused worker registered itself"
ok "allkeys-lru: the worker exits $rc before registering, naming maxmemory-policy noeviction"

pc_coordinator_spawn
wait_gone "$(awk '{print $1}' "$d/pids/coordinator")"
[[ $rc != running && $rc != 0 ]] || fail "the coordinator ran on an allkeys-lru Redis (rc $rc)"
logged "$d/coordinator.log" redis_misconfigured "maxmemory-policy allkeys-lru" ||
  fail "the coordinator logged no redis_misconfigured line: $(tail -n 5 "$d/coordinator.log")"
ok "allkeys-lru: the coordinator exits $rc, naming the policy"

rcli CONFIG SET maxmemory-policy noeviction >/dev/null
pc_worker_spawn noevict
for _ in $(seq 1 300); do
  [[ $(rcli ZCARD pc:workers) == 1 ]] && break
  sleep 0.2
done
[[ $(rcli ZCARD pc:workers) == 1 ]] || fail "the worker did not register on a noeviction Redis: $(tail -n 5 "$d/noevict.log")"
! logged "$d/noevict.log" redis_misconfigured "." || fail "noeviction was refused"
kill -TERM "$(pc_worker_pid noevict)"
wait_gone "$(pc_worker_pid noevict)"
[[ $rc == 0 ]] || fail "the worker on a noeviction Redis did not stop cleanly (rc $rc)"
ok "noeviction: the same worker registers and stops cleanly"
echo "$pass passed, 0 failed"
