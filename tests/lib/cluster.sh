# shellcheck shell=bash
# A PKCS Connector cluster on loopback for integration tests: the real servers of servers.sh
# (Redis, a KRaft Kafka broker), the topics, an upstream signing key, a worker configuration,
# and any number of pkcs-worker processes. Source it (after setting PC_BIN_DIR), then:
#
#   pc_cluster_init [PARTITIONS]    servers, topics, keys, $PC_CLUSTER_CONFIG
#   pc_worker_spawn NAME [VAR=VALUE...]   starts a worker; its log is $PC_SERVERS_DIR/NAME.log
#   pc_worker_pid NAME / pc_worker_port NAME   its pid and HTTP port
#   pc_worker_kill NAME             SIGKILL, waits until it is gone (a crash; no drain)
#   pc_worker_wait_ready NAME [SECONDS]
#   pc_http_status PORT PATH        prints the HTTP status code of GET PATH
#   pc_submit ARGS...               pkcsctl submit, signed with the cluster's upstream key
#   pc_watch ARGS...                pkcsctl watch on the results topic
#   pc_ca_issued                    certificates the local CA has signed so far
#
# Workers are started through the servers harness, so its cleanup stops them too.

source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

pc_cluster_init() {
  local parts="${1:-8}"
  pc_servers_init || return 1
  if [[ ${PC_REDIS_TLS:-0} == 1 ]]; then # Redis with TLS only, stunnel in front (servers.sh)
    pc_redis_tls_start || return 1
  elif [[ ${PC_REDIS_SENTINEL:-0} == 1 ]]; then # a master, a replica, three sentinels
    pc_redis_sentinel_start || return 1
  else
    pc_redis_start || return 1
  fi
  pc_kafka_start "$parts" || return 1
  # PC_REQUESTS_TOPIC_CONFIG / PC_DLQ_TOPIC_CONFIG: topic settings (e.g. max.message.bytes=N)
  # side by side: each is a JVM start
  local pids=() p rc=0
  pc_kafka_create_topic pkcs.requests "$parts" ${PC_REQUESTS_TOPIC_CONFIG:+--config "$PC_REQUESTS_TOPIC_CONFIG"} >/dev/null &
  pids+=($!)
  pc_kafka_create_topic pkcs.results "$parts" >/dev/null &
  pids+=($!)
  pc_kafka_create_topic pkcs.requests.dlq 2 ${PC_DLQ_TOPIC_CONFIG:+--config "$PC_DLQ_TOPIC_CONFIG"} >/dev/null &
  pids+=($!)
  pc_kafka_create_topic pkcs.audit 2 --config retention.ms=31536000000 >/dev/null &
  pids+=($!)
  pc_kafka_create_topic pkcs.notices 2 >/dev/null &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [[ $rc -eq 0 ]] || return 1
  local d="$PC_SERVERS_DIR"
  mkdir -p "$d/keys"
  openssl genpkey -algorithm ed25519 -out "$d/signer.pem" 2>/dev/null || return 1
  openssl pkey -in "$d/signer.pem" -pubout -out "$d/signer.pub" || return 1
  (umask 077 && head -c 32 /dev/urandom | base64 >"$d/ca-passphrase")
  pc_secret_note_file "$d/ca-passphrase" || return 1
  # the cluster's result key: workers sign every result, pc_watch checks every signature
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$d/results.pem" 2>/dev/null) || return 1
  openssl pkey -in "$d/results.pem" -pubout -out "$d/results.pub" || return 1
  export PC_CLUSTER_CONFIG="$d/worker.json"
  cat >"$PC_CLUSTER_CONFIG" <<JSON
{
  "state_dir": "$d/state",
  "cas": [{"name": "local", "key_passphrase_file": "$d/ca-passphrase"}],
  "worker": {"result_key_file": "$d/results.pem",
             "http_port": 0, "heartbeat_ms": 1000, "heartbeat_ttl_ms": 4000,
             "drain_timeout_ms": 20000, "key_pool_size": 4},
  "kafka": {"brokers": "$PC_KAFKA_BROKERS", "session_timeout_ms": 6000},
  "redis": {"port": $PC_REDIS_PORT, "lease_ms": 4000, "command_timeout_ms": 1000},
  "signers": [{"id": "mdm-1", "algorithm": "ed25519", "public_key_file": "$d/signer.pub",
               "tenants": ["*"]}]
}
JSON
  if [[ ${PC_REDIS_SENTINEL:-0} == 1 ]]; then # the master is whichever the sentinels name
    jq --arg s "$PC_TEST_SENTINELS" --arg m "$PC_TEST_MASTER_NAME" \
      '.redis += {sentinels: $s, master_name: $m, min_replicas_acks: 1}' \
      "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" &&
      mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
  fi
  # A SASL_SSL broker (PC_KAFKA_SECURITY=sasl_ssl): the workers, the coordinator and pkcsctl
  # (pc_submit, pc_watch) log in with TLS and SCRAM, as in production.
  if [[ ${PC_KAFKA_SECURITY:-plaintext} == sasl_ssl ]]; then
    jq --arg ca "$PC_TEST_KAFKA_CA" --arg user "$PC_TEST_KAFKA_USER" \
      --arg pw "$PC_TEST_KAFKA_PASSWORD_FILE" \
      '.kafka += {security_protocol: "sasl_ssl", ssl_ca_file: $ca, sasl_mechanism: "SCRAM-SHA-512",
                  sasl_username: $user, sasl_password_file: $pw}' \
      "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" && mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
    export PC_CONFIG="$PC_CLUSTER_CONFIG"
  fi
}

# pc_cluster_add_cfssl: a real cfssl serve (tests/lib/cfssl.sh) with its certificate database,
# stopped with the other servers, and a CA "remote" of type cfssl in $PC_CLUSTER_CONFIG (template
# Device). Sets PC_CFSSL_DIR and PC_CFSSL_PORT. pc_cfssl_restart starts it again on that port.
pc_cluster_add_cfssl() {
  local d="$PC_SERVERS_DIR"
  export PC_CFSSL_DIR="$d/cfssl"
  local log="$d/cfssl-setup.log"
  if ! bash "$_pc_lib_dir/cfssl.sh" setup "$PC_CFSSL_DIR" >"$log" 2>&1 ||
    ! PC_CFSSL_PORT="$(bash "$_pc_lib_dir/cfssl.sh" start "$PC_CFSSL_DIR" 2>>"$log")"; then
    echo "cfssl did not start:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  export PC_CFSSL_PORT
  _pc_track_cfssl
  local remote='{"name": "remote", "type": "cfssl", "url": "http://127.0.0.1:'"$PC_CFSSL_PORT"'",
    "allow_http": true,
    "auth_key_file": "'"$PC_CFSSL_DIR"'/auth_key.hex", "attempts": 2, "retry_max_ms": 500,
    "breaker_threshold": 3, "breaker_cooldown_ms": 1500,
    "templates": [{"name": "Device", "allowed_ekus": ["clientAuth"],
                   "allowed_key_usages": ["digitalSignature", "keyAgreement", "keyEncipherment"]}]}'
  jq --argjson remote "$remote" '.cas += [$remote]' "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" &&
    mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
}

# so that the harness's cleanup stops cfssl too, even when a check fails
_pc_track_cfssl() {
  local pid
  pid="$(cat "$PC_CFSSL_DIR/cfssl.pid")"
  printf '%s %s\n' "$pid" "$(_pc_starttime "$pid")" >"$PC_SERVERS_DIR/pids/cfssl"
}

pc_cfssl_stop() { bash "$_pc_lib_dir/cfssl.sh" stop "$PC_CFSSL_DIR"; }

pc_cfssl_restart() {
  bash "$_pc_lib_dir/cfssl.sh" start "$PC_CFSSL_DIR" "$PC_CFSSL_PORT" >/dev/null 2>&1 || return 1
  _pc_track_cfssl
}

# pc_cfssl_certs REQUEST_ID: "SERIAL_HEX STATUS REASON" of each certificate cfssl signed for the
# request (its label), from cfssl's database; the serial in the results' form (upper-case hex of
# even length, as BN_bn2hex writes it).
pc_cfssl_certs() {
  sqlite3 -separator ' ' "$PC_CFSSL_DIR/certs.db" \
    "select serial_number, status, reason from certificates where ca_label = '$1';" |
    while read -r dec status reason; do
      printf '%s %s %s\n' "$(python3 -c "h = '%X' % $dec; print('0' * (len(h) % 2) + h)")" \
        "$status" "$reason"
    done
}

# pc_coordinator_spawn [VAR=VALUE...]: pkcs-coordinator on $PC_CLUSTER_CONFIG with an HTTP port of
# its choice; sets PC_COORDINATOR_PORT once it listens (its log: $PC_SERVERS_DIR/coordinator.log).
pc_coordinator_spawn() {
  local log="$PC_SERVERS_DIR/coordinator.log" i
  _pc_launch coordinator "$log" env PC_COORDINATOR_PORT=0 "$@" \
    "$PC_BIN_DIR/pkcs-coordinator" --config "$PC_CLUSTER_CONFIG"
  for ((i = 0; i < 300; i++)); do
    PC_COORDINATOR_PORT="$(jq -r 'select(.event == "http") | .port' "$log" 2>/dev/null | head -1)"
    [[ -n $PC_COORDINATOR_PORT ]] && { export PC_COORDINATOR_PORT; return 0; }
    sleep 0.1
  done
  echo "the coordinator logged no HTTP port; log:" >&2
  tail -n 20 "$log" >&2
  return 1
}

# pc_fault_proxy NAME TARGET_URL [--fail PATH STATUS BODY]...: a proxy in front of a real server
# (tests/lib/fault_proxy.py) that answers the given paths with a fault instead; sets
# PC_PROXY_PORT. Stopped with the other servers.
pc_fault_proxy() {
  local name="$1" target="$2" log="$PC_SERVERS_DIR/$1.log" i
  shift 2
  _pc_launch "$name" "$log" python3 "$_pc_lib_dir/fault_proxy.py" --target "$target" "$@"
  for ((i = 0; i < 100; i++)); do
    PC_PROXY_PORT="$(head -1 "$log" 2>/dev/null)"
    [[ $PC_PROXY_PORT =~ ^[0-9]+$ ]] && { export PC_PROXY_PORT; return 0; }
    sleep 0.1
  done
  echo "the fault proxy did not start; log:" >&2
  cat "$log" >&2
  return 1
}

pc_worker_spawn() {
  local name="$1" port
  shift
  port="$(pc_free_port)" || return 1
  echo "$port" >"$PC_SERVERS_DIR/$name.port"
  _pc_launch "$name" "$PC_SERVERS_DIR/$name.log" \
    env PC_WORKER_ID="$name" PC_HTTP_PORT="$port" "$@" \
    "$PC_BIN_DIR/pkcs-worker" --config "$PC_CLUSTER_CONFIG"
  echo "$_pc_launched_pid" >"$PC_SERVERS_DIR/$name.pid"
}

pc_worker_pid() { cat "$PC_SERVERS_DIR/$1.pid"; }

# pc_worker_kill NAME: the worker dies as in a crash or an OOM kill: no drain, no unregister; its
# leases and partitions wait for the lease and session timeouts.
pc_worker_kill() { _pc_kill9 "$1"; }
pc_worker_port() { cat "$PC_SERVERS_DIR/$1.port"; }

# pc_http_status PORT PATH: the status code of a GET, or 000 when nothing answers.
pc_http_status() {
  local line
  {
    exec 3<>"/dev/tcp/127.0.0.1/$1" &&
      printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2" >&3 &&
      IFS=' ' read -r _ line _ <&3 && exec 3<&-
  } 2>/dev/null || line=000
  echo "${line:-000}"
}

pc_worker_wait_ready() {
  local name="$1" limit="${2:-60}" port i
  port="$(pc_worker_port "$name")"
  for ((i = 0; i < limit * 5; i++)); do
    [[ $(pc_http_status "$port" /readyz) == 200 ]] && return 0
    sleep 0.2
  done
  echo "worker $name not ready after ${limit}s; log:" >&2
  tail -n 20 "$PC_SERVERS_DIR/$name.log" >&2
  return 1
}

pc_submit() {
  "$PC_BIN_DIR/pkcsctl" submit --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
    --signer-key "$PC_SERVERS_DIR/signer.pem" "$@"
}

# pc_watch checks every result's signature with the cluster's result key (when it made one).
pc_watch() {
  local key=()
  [[ -f ${PC_SERVERS_DIR:-}/results.pub ]] && key=(--result-key "$PC_SERVERS_DIR/results.pub")
  "$PC_BIN_DIR/pkcsctl" watch --brokers "$PC_KAFKA_BROKERS" "${key[@]}" "$@"
}

# pc_ca_issued: the local CA's records of what it signed are in Redis (lib/ca/local/ca_index_redis.c);
# with sentinels (PC_REDIS_SENTINEL=1), on the master they name now. Counts the certificates
# signed for requests: the CA's own OCSP responder certificate, which the coordinator has it
# sign and record at start, has no request id.
pc_ca_issued() {
  local port="$PC_REDIS_PORT"
  [[ -n ${PC_TEST_SENTINELS:-} ]] && port="$(pc_redis_master_port)"
  # shellcheck disable=SC2016
  redis-cli -h 127.0.0.1 -p "$port" EVAL '
    local n = 0
    for _, s in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
      local rid = redis.call("HGET", KEYS[2] .. s, "request_id")
      if rid and rid ~= "" then n = n + 1 end
    end
    return n' 2 'pc:ca:{local}:issued' 'pc:ca:{local}:cert:'
}
