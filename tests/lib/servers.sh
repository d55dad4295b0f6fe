# shellcheck shell=bash
# Real servers on loopback for integration and fault tests and the local stack: a single-node
# Apache Kafka broker in KRaft mode (jars from Maven Central, run on the machine's Java) and
# redis-server. Source this file, then:
#
#   pc_servers_init            # state folder + cleanup trap; call first, in the main shell
#   pc_redis_start             # exports PC_REDIS_PORT, PC_REDIS_PID
#   pc_kafka_start [PARTS]     # exports PC_KAFKA_BROKERS=127.0.0.1:PORT, PC_KAFKA_PORT, PC_KAFKA_PID
#   pc_kafka_create_topic NAME PARTITIONS [TopicCommand options...]
#   pc_kafka_tool CLASS ARGS.. # any Kafka command-line class, e.g. the console producer
#   pc_redis_stop / pc_redis_restart [DOWN_SECONDS]   (same port, for fault tests)
#   pc_kafka_stop / pc_kafka_restart [DOWN_SECONDS]   (same ports, data kept)
#   pc_redis_kill / pc_kafka_kill                     (SIGKILL: a crash; start again as above)
#   pc_kafka_end_offsets TOPIC                        messages ever written to TOPIC
#   pc_kafka_group_lag GROUP TOPIC PARTITIONS         messages of TOPIC GROUP has not committed
#   pc_servers_cleanup         # stops everything, removes the state folder (the trap does this)
#   pc_secret_note VALUE... / pc_secret_note_file FILE...   secrets the logs must never show
#
# Cleanup also reads the logs of our own programs (every *.log and *.err directly in the state
# folder: workers, coordinator, captured pkcsctl output) for private key material: a PEM
# "PRIVATE KEY" header, base64 DER of the kind a PKCS#8 key or a PKCS#12 file makes, and any
# secret noted with pc_secret_note. It names the file and fails the test (exit 1) when one has
# any, even when every check of the test passed.
#
# The start functions set variables and must run in the calling shell itself, not in $(...) or
# a pipeline. Everything binds 127.0.0.1 and keeps its state under $PC_SERVERS_DIR. Messages go
# to stderr; functions return non-zero with a message saying what to do instead of exiting, so
# they work with and without `set -e`.
#
# Environment (all optional):
#   PC_KAFKA_VERSION        Kafka release to fetch (default 3.9.2, see tests/lib/kafka-pom.xml)
#   PC_KAFKA_CACHE          jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/pkcs-connector/kafka-VERSION)
#   PC_KAFKA_HEAP_OPTS      broker heap (default -Xms256m -Xmx512m)
#   PC_KAFKA_JVM_OPTS       broker JVM flags (default: tuned for start-up time, see below)
#   PC_KAFKA_START_TIMEOUT  seconds to wait for the broker (default 90)
#   PC_KAFKA_CDS=0          no class-data-sharing archive for the broker (see _pc_kafka_launch)
#   PC_KEEP_SERVERS_DIR=1   keep the state folder (logs, data) after cleanup, for debugging
#   PC_KAFKA_SECURITY=sasl_ssl  pc_kafka_start makes a broker whose client listener wants TLS and
#                           SCRAM (see _pc_kafka_secure_setup); it exports PC_TEST_KAFKA_CA (the
#                           test CA's certificate), PC_TEST_KAFKA_USER and
#                           PC_TEST_KAFKA_PASSWORD_FILE (a SCRAM-SHA-512 user)
#   PC_REDIS_AOF=1          Redis with an append-only file, as deploy/stack.sh runs it (see
#                           pc_redis_start)

PC_KAFKA_VERSION="${PC_KAFKA_VERSION:-3.9.2}"
_pc_lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Start-up dominates test time and the broker only ever sees test traffic, so: the serial
# collector (no GC threads to spin up), C1 only (compiles sooner; steady-state speed does not
# matter here), no perf-data mmap file. Measured on 2 cores, from launch to ready: about 2.5 s
# with these against 3.4 s with the JVM defaults; the class archive below takes it to 1.5 s.
_pc_kafka_jvm_default="-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
# Command-line tools are short-lived JVMs: same reasoning, small heap.
_pc_kafka_tool_jvm="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
-Djava.awt.headless=true"

_pc_log() { printf 'servers: %s\n' "$*" >&2; }
_pc_err() { printf 'servers: error: %s\n' "$*" >&2; }

_pc_require_init() {
  if [[ -z ${PC_SERVERS_DIR:-} || ! -d $PC_SERVERS_DIR ]]; then
    _pc_err "${FUNCNAME[1]}: call pc_servers_init first (no state folder)"
    return 1
  fi
}

# _pc_starttime PID: prints the process start time (field 22 of /proc/PID/stat), so a recorded
# pid is only ever signalled while it still names the process we started, not a reused pid.
_pc_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }" # the command name may contain spaces; fields after it do not
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s\n' "${20}"
}

# _pc_alive PID STARTTIME: true while that very process exists and is not a zombie.
_pc_alive() {
  local state
  [[ -n $1 ]] || return 1
  [[ $(_pc_starttime "$1") == "$2" ]] || return 1
  state="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  state="${state##*) }"
  [[ ${state:0:1} != Z ]]
}

# _pc_kill_wait PID STARTTIME NAME: SIGTERM, up to 10 s for a clean exit, then SIGKILL.
_pc_kill_wait() {
  local pid="$1" start="$2" name="$3" i
  _pc_killed=""
  _pc_alive "$pid" "$start" || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    _pc_alive "$pid" "$start" || break
    sleep 0.1
  done
  if _pc_alive "$pid" "$start"; then
    _pc_log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    _pc_killed=1
    for ((i = 0; i < 50; i++)); do
      _pc_alive "$pid" "$start" || break
      sleep 0.1
    done
  fi
  # Reap it if it is our child, so no zombie outlives the stop.
  wait "$pid" 2>/dev/null
  if _pc_alive "$pid" "$start"; then
    _pc_err "$name (pid $pid) is still running after SIGKILL"
    return 1
  fi
  return 0
}

# _pc_kill9 NAME: SIGKILL to the server recorded under NAME (if it still runs), waits until it
# is gone (up to 10 s) and forgets it; the server's own state (ports, data) is kept.
_pc_kill9() {
  local file="$PC_SERVERS_DIR/pids/$1" pid start i
  [[ -f $file ]] || return 0
  read -r pid start <"$file" || true
  if _pc_alive "$pid" "$start"; then
    disown "$pid" 2>/dev/null # no "Killed" job notice from bash: this death is intended
    kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      _pc_alive "$pid" "$start" || break
      sleep 0.1
    done
  fi
  wait "$pid" 2>/dev/null
  if _pc_alive "$pid" "$start"; then
    _pc_err "$1 (pid $pid) is still running 10 s after SIGKILL"
    return 1
  fi
  rm -f "$file"
}

# _pc_launch NAME LOG CMD...: starts CMD in the background (stdin closed, output to LOG) and
# records its pid and start time under $PC_SERVERS_DIR/pids for pc_servers_cleanup.
_pc_launch() {
  local name="$1" log="$2" pid start
  shift 2
  "$@" </dev/null >>"$log" 2>&1 &
  pid=$!
  start="$(_pc_starttime "$pid")" || start=""
  mkdir -p "$PC_SERVERS_DIR/pids"
  printf '%s %s\n' "$pid" "$start" >"$PC_SERVERS_DIR/pids/$name"
  _pc_launched_pid="$pid"
  _pc_launched_start="$start"
}

# _pc_stop NAME: stops the server recorded under NAME, if any.
_pc_stop() {
  local file="$PC_SERVERS_DIR/pids/$1" pid start rc=0
  [[ -f $file ]] || return 0
  read -r pid start <"$file" || true
  _pc_kill_wait "$pid" "$start" "$1" || rc=1
  rm -f "$file"
  [[ $1 != kafka ]] || _pc_kafka_cds_collect
  return "$rc"
}

# _pc_tcp_open PORT: true when something accepts connections on 127.0.0.1:PORT.
_pc_tcp_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pc_free_port prints a TCP port that nothing uses on this machine right now. It picks random
# ports below the kernel's ephemeral range (so outgoing connections cannot take it meanwhile),
# skips ports that accept a connection or that `ss` lists in any state, and ports this harness
# already handed out (recorded in $PC_SERVERS_DIR, so two calls before either server binds, as
# for Kafka's two listeners, never collide). Race: another program on the machine can still
# bind the port between this check and the server's bind; the server then fails to start with
# "address in use" and the test fails loudly rather than talking to the wrong server.
pc_free_port() {
  local lo=20000 hi=60000 eph_lo eph_hi p tries taken=""
  if read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
    ((eph_lo > lo + 1000)); then
    hi=$((eph_lo - 1))
  fi
  [[ -n ${PC_SERVERS_DIR:-} && -d $PC_SERVERS_DIR ]] && taken="$PC_SERVERS_DIR/ports.taken"
  for ((tries = 0; tries < 200; tries++)); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    [[ -n $taken && -f $taken ]] && grep -qx "$p" "$taken" && continue
    _pc_tcp_open "$p" && continue
    if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; then
      continue
    fi
    [[ -n $taken ]] && printf '%s\n' "$p" >>"$taken"
    printf '%s\n' "$p"
    return 0
  done
  _pc_err "pc_free_port: no free TCP port found in $lo-$hi after 200 tries"
  return 1
}

# pc_servers_init [DIR] creates the state folder for every server (DIR, which must not exist
# or be empty, or a new mktemp -d folder), exports PC_SERVERS_DIR and installs
# `trap pc_servers_cleanup EXIT` (INT and TERM clean up and exit 130/143). Bash keeps one trap
# per signal, so a caller that needs its own cleanup installs its trap after this call and calls
# pc_servers_cleanup from it.
pc_servers_init() {
  local dir="${1:-}"
  if [[ -n ${PC_SERVERS_DIR:-} && -d $PC_SERVERS_DIR ]]; then
    _pc_err "pc_servers_init: already initialised with $PC_SERVERS_DIR"
    return 1
  fi
  if [[ -z $dir ]]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/pc-servers-XXXXXX")" || {
      _pc_err "pc_servers_init: mktemp -d failed in ${TMPDIR:-/tmp}"
      return 1
    }
  else
    if [[ -e $dir && -n $(ls -A "$dir" 2>/dev/null) ]]; then
      _pc_err "pc_servers_init: $dir is not empty; it is removed at cleanup, so pass a new folder"
      return 1
    fi
    mkdir -p "$dir" || { _pc_err "pc_servers_init: cannot create $dir"; return 1; }
    dir="$(cd "$dir" && pwd)"
  fi
  export PC_SERVERS_DIR="$dir"
  _pc_cleaned=""
  trap pc_servers_cleanup EXIT
  trap 'pc_servers_cleanup; exit 130' INT
  trap 'pc_servers_cleanup; exit 143' TERM
}

# pc_secret_note VALUE...: secrets the test uses (passwords, passphrases) that no log may show;
# checked at cleanup. Values shorter than 8 bytes are refused (they would match by chance).
pc_secret_note() {
  local v
  _pc_require_init || return 1
  for v in "$@"; do
    if ((${#v} < 8)); then
      _pc_err "pc_secret_note: a secret of ${#v} bytes would match innocent text; use 8 or more"
      return 1
    fi
    [[ $v != *$'\n'* ]] || { _pc_err "pc_secret_note: one line per secret"; return 1; }
    printf '%s\n' "$v" >>"$PC_SERVERS_DIR/secrets.list"
  done
}

# pc_secret_note_file FILE...: pc_secret_note of each file's first line (a password file).
pc_secret_note_file() {
  local f line
  for f in "$@"; do
    IFS= read -r line <"$f" || [[ -n $line ]] || continue
    pc_secret_note "${line%$'\r'}" || return 1
  done
}

# _pc_logs_leak: scans our programs' logs (see the top of this file); prints each finding and
# returns 1 if there is any. Base64 DER: "MII" then 60 more base64 characters is the start of
# any DER structure over 255 bytes (a PKCS#8 RSA key, a PKCS#12 file; certificates too, which a
# log has no business holding either); "MIG" followed by PKCS#8's version and EC algorithm is
# an EC key. The secrets are matched as fixed strings.
_pc_logs_leak() {
  local f found=0 secrets="$PC_SERVERS_DIR/secrets.list" files=()
  for f in "$PC_SERVERS_DIR"/*.log "$PC_SERVERS_DIR"/*.err; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]} > 0)) || return 0
  for f in "${files[@]}"; do
    if grep -q 'PRIVATE KEY' "$f"; then
      _pc_err "${f##*/} holds a PEM private key (\"PRIVATE KEY\", line $(grep -n -m1 'PRIVATE KEY' "$f" | cut -d: -f1))"
      found=1
    fi
    if grep -Eq 'MII[A-Za-z0-9+/]{60}|MIG[A-Za-z0-9+/]AgEAMBMGByqGSM49' "$f"; then
      _pc_err "${f##*/} holds base64 DER, as a PKCS#8 key or a PKCS#12 file would be (line $(grep -En -m1 'MII[A-Za-z0-9+/]{60}|MIG[A-Za-z0-9+/]AgEAMBMGByqGSM49' "$f" | cut -d: -f1))"
      found=1
    fi
    if [[ -s $secrets ]] && grep -qFf "$secrets" "$f"; then
      _pc_err "${f##*/} holds a password or passphrase of the test (line $(grep -nFf "$secrets" -m1 "$f" | cut -d: -f1))"
      found=1
    fi
  done
  return "$found"
}

# pc_servers_cleanup stops every server this harness started (SIGTERM, up to 10 s, SIGKILL),
# checks our programs' logs for key material and secrets (a finding fails the test), and removes
# $PC_SERVERS_DIR. Safe to call more than once. When the shell is exiting with a failure it
# first shows the end of each server log, since the folder is about to go.
pc_servers_cleanup() {
  local rc=$? f name
  [[ -n ${PC_SERVERS_DIR:-} && -z ${_pc_cleaned:-} ]] || return "$rc"
  _pc_cleaned=1
  if [[ -d $PC_SERVERS_DIR/pids ]]; then
    for f in "$PC_SERVERS_DIR"/pids/*; do
      [[ -f $f ]] || continue
      name="${f##*/}"
      _pc_stop "$name" || true
    done
  fi
  local leak=0
  if ! _pc_logs_leak; then
    _pc_err "private key material or a secret reached a log (above); the test fails"
    leak=1
    ((rc != 0)) || rc=1
  fi
  if ((rc != 0)); then
    for f in "$PC_SERVERS_DIR/kafka/server.log" "$PC_SERVERS_DIR/redis/redis.log"; do
      [[ -s $f ]] || continue
      _pc_log "last lines of $f:"
      tail -n 15 "$f" | sed 's/^/    /' >&2
    done
  fi
  if [[ ${PC_KEEP_SERVERS_DIR:-} == 1 ]]; then
    _pc_log "kept $PC_SERVERS_DIR (PC_KEEP_SERVERS_DIR=1)"
  else
    rm -rf "$PC_SERVERS_DIR"
  fi
  unset PC_REDIS_PORT PC_REDIS_PID PC_KAFKA_PORT PC_KAFKA_BROKERS PC_KAFKA_PID
  # From the EXIT trap a return status is ignored: only exit changes the test's.
  ((leak == 0)) || exit "$rc"
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Redis

# pc_redis_ping [PORT] is true when the Redis on 127.0.0.1:PORT (default $PC_REDIS_PORT)
# answers PING. Uses redis-cli when installed, else speaks RESP over bash's /dev/tcp.
pc_redis_ping() {
  local port="${1:-${PC_REDIS_PORT:-}}" reply
  [[ -n $port ]] || { _pc_err "pc_redis_ping: no port (start Redis first)"; return 1; }
  if command -v redis-cli >/dev/null 2>&1; then
    reply="$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)"
    [[ $reply == PONG ]]
  else
    reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
      printf 'PING\r\n' >&3
      IFS= read -r -t 2 line <&3 && printf '%s' "$line") 2>/dev/null)"
    [[ $reply == "+PONG"* ]]
  fi
}

# pc_redis_start [ARGS...] starts redis-server on 127.0.0.1 without persistence and waits until
# it answers PING; exports PC_REDIS_PORT and PC_REDIS_PID. ARGS are more redis-server options
# (--maxmemory-policy allkeys-lru), kept for later starts. After pc_redis_stop it comes back on
# the same port (with an empty dataset: there is no persistence, as after a real crash).
# With PC_REDIS_AOF=1 it runs as deploy/stack.sh runs it in production: an append-only file
# written every second (appendfsync everysec) and no eviction; a restart then reloads the data,
# also after pc_redis_kill.
pc_redis_start() {
  _pc_require_init || return 1
  local dir="$PC_SERVERS_DIR/redis" port i extra=() persistence=(--save '' --appendonly no)
  if [[ ${PC_REDIS_AOF:-0} == 1 ]]; then
    persistence=(--save '' --appendonly yes --appendfsync everysec --maxmemory-policy noeviction)
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    _pc_err "redis-server not found; install the Debian package redis-server (apt-get install redis-server redis-tools)"
    return 1
  fi
  if [[ -f $PC_SERVERS_DIR/pids/redis ]]; then
    _pc_err "pc_redis_start: Redis is already running on port ${PC_REDIS_PORT:-?}"
    return 1
  fi
  mkdir -p "$dir"
  if [[ -s $dir/port ]]; then
    port="$(<"$dir/port")"
  else
    port="$(pc_free_port)" || return 1
    printf '%s\n' "$port" >"$dir/port"
  fi
  (($# == 0)) || printf '%s\0' "$@" >"$dir/args"
  [[ -f $dir/args ]] && mapfile -d '' -t extra <"$dir/args"
  _pc_launch redis "$dir/stdout.log" redis-server --bind 127.0.0.1 --port "$port" \
    "${persistence[@]}" --dir "$dir" --logfile "$dir/redis.log" --daemonize no "${extra[@]}"
  for ((i = 0; i < 100; i++)); do
    pc_redis_ping "$port" && break
    if ! _pc_alive "$_pc_launched_pid" "$_pc_launched_start"; then
      _pc_err "redis-server exited during start-up on port $port; its log says:"
      tail -n 5 "$dir/redis.log" "$dir/stdout.log" 2>/dev/null | sed 's/^/    /' >&2
      _pc_stop redis
      return 1
    fi
    sleep 0.1
  done
  if ! pc_redis_ping "$port"; then
    _pc_err "redis-server on port $port did not answer PING within 10 s; see $dir/redis.log"
    _pc_stop redis
    return 1
  fi
  export PC_REDIS_PORT="$port" PC_REDIS_PID="$_pc_launched_pid"
}

# pc_redis_stop stops Redis (SIGTERM, then SIGKILL after 10 s); the port is kept for a restart.
pc_redis_stop() {
  _pc_require_init || return 1
  _pc_stop redis || return 1
  unset PC_REDIS_PID
}

# pc_redis_kill kills Redis with SIGKILL, as a crash would: no shutdown, nothing flushed beyond
# what it already wrote. The port is kept for pc_redis_start.
pc_redis_kill() {
  _pc_require_init || return 1
  _pc_kill9 redis || return 1
  unset PC_REDIS_PID
}

# pc_redis_restart [DOWN_SECONDS] stops Redis, waits DOWN_SECONDS (default 0) and starts it
# again on the same port.
pc_redis_restart() {
  pc_redis_stop || return 1
  sleep "${1:-0}"
  pc_redis_start
}

# pc_redis_tls_start [ARGS...] starts redis-server with TLS only (tls-port, port 0: no plaintext
# listener; clients must present a certificate of the test CA) and in front of it a client-mode
# stunnel on a plaintext loopback port, as docs/operations.md describes for hiredis 0.14, which
# has no TLS. Exports PC_REDIS_PORT (stunnel's port: what the connector and redis-cli use),
# PC_REDIS_TLS_PORT, PC_REDIS_PID and PC_REDIS_TLS_DIR (ca.crt, client.crt, client.key).
pc_redis_tls_start() {
  _pc_require_init || return 1
  local dir="$PC_SERVERS_DIR/redis" tls port local_port i
  tls="$dir/tls"
  if ! command -v stunnel4 >/dev/null 2>&1 && ! command -v stunnel >/dev/null 2>&1; then
    _pc_err "stunnel not found; install the Debian package stunnel4 (apt-get install stunnel4)"
    return 1
  fi
  mkdir -p "$tls" && chmod 700 "$tls"
  port="$(pc_free_port)" || return 1
  local_port="$(pc_free_port)" || return 1
  # a subshell: "exit" below leaves only it
  if ! (
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=pkcs-connector test Redis CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" || exit 1
    for who in server client; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=redis-$who" \
        -keyout "$tls/$who.key" -out "$tls/$who.csr" &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%sAuth\n' "$who" \
          >"$tls/$who.ext" &&
        openssl x509 -req -in "$tls/$who.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
          -CAcreateserial -days 2 -extfile "$tls/$who.ext" -out "$tls/$who.crt" || exit 1
    done
  ) >"$tls/openssl.log" 2>&1; then
    _pc_err "pc_redis_tls_start: openssl failed making the test certificates:"
    sed 's/^/    /' "$tls/openssl.log" >&2
    return 1
  fi
  _pc_launch redis "$dir/stdout.log" redis-server --bind 127.0.0.1 --port 0 --tls-port "$port" \
    --tls-cert-file "$tls/server.crt" --tls-key-file "$tls/server.key" \
    --tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients yes \
    --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" --daemonize no "$@"
  local redis_pid="$_pc_launched_pid" redis_start="$_pc_launched_start"
  cat >"$tls/stunnel.conf" <<EOF
; client-mode stunnel for the tests (docs/operations.md, deploy/stunnel/redis-client.conf)
foreground = yes
pid =
debug = notice
[redis]
client = yes
accept = 127.0.0.1:$local_port
connect = 127.0.0.1:$port
CAfile = $tls/ca.crt
verifyChain = yes
checkIP = 127.0.0.1
cert = $tls/client.crt
key = $tls/client.key
sslVersionMin = TLSv1.2
EOF
  _pc_launch stunnel-redis "$dir/stunnel.log" "$(command -v stunnel4 || command -v stunnel)" "$tls/stunnel.conf"
  for ((i = 0; i < 100; i++)); do
    pc_redis_ping "$local_port" && break
    if ! _pc_alive "$redis_pid" "$redis_start" || ! _pc_alive "$_pc_launched_pid" "$_pc_launched_start"; then
      _pc_err "redis-server (TLS) or stunnel exited during start-up; their logs say:"
      tail -n 5 "$dir/redis.log" "$dir/stdout.log" "$dir/stunnel.log" 2>/dev/null | sed 's/^/    /' >&2
      return 1
    fi
    sleep 0.1
  done
  if ! pc_redis_ping "$local_port"; then
    _pc_err "Redis behind stunnel (127.0.0.1:$local_port -> TLS $port) did not answer PING within 10 s"
    tail -n 5 "$dir/redis.log" "$dir/stunnel.log" 2>/dev/null | sed 's/^/    /' >&2
    return 1
  fi
  export PC_REDIS_PORT="$local_port" PC_REDIS_TLS_PORT="$port" PC_REDIS_PID="$redis_pid" \
    PC_REDIS_TLS_DIR="$tls"
}

# pc_redis_sentinel_start [NAME]: a replicated Redis watched by Redis Sentinel: the master (the
# usual pc_redis_start, with an append-only file), a replica of it, and three sentinels
# monitoring it as NAME (default mymaster, quorum 2, down after 2 s); waits until every sentinel
# knows the replica and the other two sentinels, so that a failover can run. Exports
# PC_TEST_SENTINELS ("127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"), PC_TEST_MASTER_NAME and
# PC_REDIS_REPLICA_PORT; PC_REDIS_PORT is the first master's. pc_redis_master_port prints the
# master's port as the sentinels see it now.
pc_redis_sentinel_start() {
  local name="${1:-mymaster}" dir="$PC_SERVERS_DIR/redis-replica" port i k ports=() list=""
  _pc_require_init || return 1
  pc_redis_start --appendonly yes --appendfsync everysec || return 1
  mkdir -p "$dir"
  port="$(pc_free_port)" || return 1
  _pc_launch redis-replica "$dir/stdout.log" redis-server --bind 127.0.0.1 --port "$port" \
    --save '' --appendonly yes --dir "$dir" --logfile "$dir/redis.log" --daemonize no \
    --replicaof 127.0.0.1 "$PC_REDIS_PORT"
  export PC_REDIS_REPLICA_PORT="$port"
  for k in 1 2 3; do
    dir="$PC_SERVERS_DIR/sentinel-$k"
    mkdir -p "$dir"
    port="$(pc_free_port)" || return 1
    ports+=("$port")
    list+="${list:+,}127.0.0.1:$port"
    # Sentinel rewrites its own configuration file: one per sentinel, in its folder.
    cat >"$dir/sentinel.conf" <<EOF
bind 127.0.0.1
port $port
daemonize no
dir $dir
logfile $dir/sentinel.log
sentinel monitor $name 127.0.0.1 $PC_REDIS_PORT 2
sentinel down-after-milliseconds $name 2000
sentinel failover-timeout $name 10000
sentinel parallel-syncs $name 1
EOF
    _pc_launch "sentinel-$k" "$dir/stdout.log" redis-server "$dir/sentinel.conf" --sentinel
  done
  export PC_TEST_SENTINELS="$list" PC_TEST_MASTER_NAME="$name"
  for ((i = 0; i < 300; i++)); do
    local ready=0
    for port in "${ports[@]}"; do
      [[ $(redis-cli -p "$port" SENTINEL replicas "$name" 2>/dev/null | grep -c "^$PC_REDIS_REPLICA_PORT$") == 1 &&
        $(redis-cli -p "$port" SENTINEL sentinels "$name" 2>/dev/null | grep -c '^name$') == 2 ]] &&
        ready=$((ready + 1))
    done
    ((ready == 3)) && return 0
    sleep 0.1
  done
  _pc_err "pc_redis_sentinel_start: the sentinels did not all see the replica and each other in 30 s"
  tail -n 5 "$PC_SERVERS_DIR"/sentinel-*/sentinel.log | sed 's/^/    /' >&2
  return 1
}

# pc_redis_master_port prints the port of the master the first answering sentinel names.
pc_redis_master_port() {
  local s
  for s in ${PC_TEST_SENTINELS//,/ }; do
    redis-cli -p "${s##*:}" SENTINEL get-master-addr-by-name "$PC_TEST_MASTER_NAME" 2>/dev/null |
      sed -n 2p | grep . && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Kafka

_pc_kafka_cache() {
  printf '%s\n' "${PC_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pkcs-connector/kafka-$PC_KAFKA_VERSION}"
}

_pc_require_java() {
  if ! command -v java >/dev/null 2>&1; then
    _pc_err "java not found; install default-jre-headless and maven (apt-get install default-jre-headless maven)"
    return 1
  fi
}

# pc_kafka_fetch makes sure the Kafka jars and their runtime dependencies are in the cache
# (downloaded once with Maven from Maven Central through tests/lib/kafka-pom.xml; later calls
# only check a marker file). Concurrent callers wait for one another (flock).
pc_kafka_fetch() {
  local cache t0 rc=0
  cache="$(_pc_kafka_cache)"
  [[ -f $cache/.complete ]] && return 0
  _pc_require_java || return 1
  if ! command -v mvn >/dev/null 2>&1; then
    _pc_err "mvn not found; install default-jre-headless and maven (apt-get install default-jre-headless maven)"
    return 1
  fi
  mkdir -p "$cache" || { _pc_err "pc_kafka_fetch: cannot create $cache"; return 1; }
  (
    flock 9 || exit 1
    [[ -f $cache/.complete ]] && exit 0 # another test fetched it while we waited
    t0=$SECONDS
    _pc_log "fetching Apache Kafka $PC_KAFKA_VERSION from Maven Central into $cache (once)"
    rm -rf "$cache/libs" "$cache/libs.tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$_pc_lib_dir/kafka-pom.xml" \
      -Dkafka.version="$PC_KAFKA_VERSION" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$cache/libs.tmp" >"$cache/fetch.log" 2>&1; then
      _pc_err "pc_kafka_fetch: Maven could not fetch Kafka $PC_KAFKA_VERSION (is Maven Central reachable? proxies go in ~/.m2/settings.xml); end of $cache/fetch.log:"
      tail -n 20 "$cache/fetch.log" | sed 's/^/    /' >&2
      exit 1
    fi
    if ! ls "$cache/libs.tmp"/kafka_2.13-*.jar >/dev/null 2>&1; then
      _pc_err "pc_kafka_fetch: Maven finished but no kafka_2.13 jar is in $cache/libs.tmp"
      exit 1
    fi
    mv "$cache/libs.tmp" "$cache/libs" && printf '%s\n' "$PC_KAFKA_VERSION" >"$cache/.complete"
    _pc_log "fetched Kafka $PC_KAFKA_VERSION in $((SECONDS - t0)) s"
  ) 9>"$cache/.lock" || rc=1
  return "$rc"
}

# pc_kafka_tool CLASS ARGS... runs a Kafka command-line class (org.apache.kafka.tools.TopicCommand,
# kafka.tools.ConsoleProducer, ...) on the cached jars; tool logging goes to stderr at WARN.
pc_kafka_tool() {
  local cache
  cache="$(_pc_kafka_cache)"
  pc_kafka_fetch || return 1
  _pc_require_init || return 1
  _pc_kafka_write_log4j
  # shellcheck disable=SC2086
  java $_pc_kafka_tool_jvm -Dlog4j.configuration="file:$PC_SERVERS_DIR/kafka/tools-log4j.properties" \
    -cp "$cache/libs/*" "$@"
}

_pc_kafka_write_log4j() {
  local dir="$PC_SERVERS_DIR/kafka"
  [[ -f $dir/tools-log4j.properties ]] && return 0
  mkdir -p "$dir"
  cat >"$dir/log4j.properties" <<EOF
# Broker log: everything to one file in the state folder, nothing on the terminal.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
  cat >"$dir/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# _pc_kafka_cluster_id prints a new cluster id in Kafka's Uuid format (16 random bytes,
# URL-safe base64 without padding), as `StorageTool random-uuid` would, without starting a JVM.
# Like Kafka's own Uuid.randomUuid it avoids ids starting with "-", which CLIs read as options.
_pc_kafka_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ $id != -* && ${#id} -eq 22 ]] && break
  done
  printf '%s\n' "$id"
}

# _pc_kafka_launch: starts the broker on the existing server.properties and waits until it is
# ready: the log says "Kafka Server started" (KRaft logs it only once the broker is unfenced,
# i.e. it can create topics and serve clients) and the port accepts connections. Polling with a
# CLI class instead would cost a JVM start (about 1 s) per poll.
_pc_kafka_launch() {
  local dir="$PC_SERVERS_DIR/kafka" cache port t0 timeout="${PC_KAFKA_START_TIMEOUT:-90}"
  cache="$(_pc_kafka_cache)"
  port="$(<"$dir/port")"
  t0="$(date +%s%N)"
  : >>"$dir/server.log"
  local mark
  mark="$(wc -l <"$dir/server.log")"
  # Class-data sharing: the first broker started with this cache (and this Java) records the
  # classes it loads into an archive when it exits; later brokers map it instead of parsing
  # ~100 jars, which cuts start-up from about 2.5 s to 1.5 s. Each recording goes to its own
  # file and is renamed into place after the broker exits, so parallel tests cannot see a
  # half-written archive. A stale archive (other jars or Java) is ignored by the JVM.
  local cds="" jsa
  jsa="$(_pc_kafka_cds_archive)"
  if [[ ${PC_KAFKA_CDS:-1} == 1 && -n $jsa ]]; then
    if [[ -s $jsa ]]; then
      cds="-XX:SharedArchiveFile=$jsa"
    else
      cds="-XX:ArchiveClassesAtExit=$jsa.tmp.$$.$RANDOM"
      printf '%s\n' "${cds#*=}" >"$dir/cds.pending"
    fi
  fi
  # shellcheck disable=SC2086
  _pc_launch kafka "$dir/stdout.log" java ${PC_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
    ${PC_KAFKA_JVM_OPTS:-$_pc_kafka_jvm_default} $cds \
    -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
    -cp "$cache/libs/*" kafka.Kafka "$dir/server.properties"
  while :; do
    # awk rather than tail | grep -q: under pipefail, grep -q closing the pipe early would
    # make the pipeline fail even on a match.
    if awk -v mark="$mark" 'NR > mark && /Kafka Server started/ { found = 1 } END { exit !found }' \
      "$dir/server.log" && _pc_tcp_open "$port"; then
      break
    fi
    if ! _pc_alive "$_pc_launched_pid" "$_pc_launched_start"; then
      _pc_err "the Kafka broker exited during start-up (port $port); end of its logs:"
      tail -n 20 "$dir/server.log" "$dir/stdout.log" 2>/dev/null | sed 's/^/    /' >&2
      _pc_stop kafka
      return 1
    fi
    if (($(date +%s%N) - t0 > timeout * 1000000000)); then
      _pc_err "the Kafka broker was not ready after $timeout s (PC_KAFKA_START_TIMEOUT); see $dir/server.log"
      _pc_stop kafka
      return 1
    fi
    sleep 0.1
  done
  export PC_KAFKA_PORT="$port" PC_KAFKA_BROKERS="127.0.0.1:$port" PC_KAFKA_PID="$_pc_launched_pid"
  local ms=$((($(date +%s%N) - t0) / 1000000))
  _pc_log "Kafka $PC_KAFKA_VERSION ready on $PC_KAFKA_BROKERS in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s"
}

# _pc_kafka_cds_archive prints the class-data-sharing archive path for the broker, keyed by
# the Java installation (its binary's path and time stamp), so a Java upgrade starts a new one.
_pc_kafka_cds_archive() {
  local java key
  java="$(readlink -f "$(command -v java)")" || return 0
  key="$(printf '%s %s' "$java" "$(stat -c %Y "$java" 2>/dev/null)" | cksum | cut -d' ' -f1)"
  printf '%s/kafka-broker-%s.jsa\n' "$(_pc_kafka_cache)" "$key"
}

# _pc_kafka_cds_collect: after the broker exited, moves a class archive it recorded into place.
_pc_kafka_cds_collect() {
  local pending="$PC_SERVERS_DIR/kafka/cds.pending" tmp
  [[ -f $pending ]] || return 0
  tmp="$(<"$pending")"
  rm -f "$pending"
  # A broker that needed SIGKILL may have died half-way through writing it.
  if [[ -s $tmp && -z ${_pc_killed:-} ]]; then
    mv -f "$tmp" "${tmp%.tmp.*}" 2>/dev/null || rm -f "$tmp"
  else
    rm -f "$tmp"
  fi
}

# pc_kafka_start [PARTITIONS] starts a single-node KRaft broker+controller on 127.0.0.1 whose
# automatic default is PARTITIONS (default 8) per topic, fetching the jars first if needed, and
# waits until it serves clients; exports PC_KAFKA_BROKERS, PC_KAFKA_PORT and PC_KAFKA_PID.
# After pc_kafka_stop it restarts on the same ports with its data (PARTITIONS is then ignored).
pc_kafka_start() {
  local partitions="${1:-8}" dir cache port cport
  _pc_require_init || return 1
  _pc_require_java || return 1
  pc_kafka_fetch || return 1
  dir="$PC_SERVERS_DIR/kafka"
  cache="$(_pc_kafka_cache)"
  if [[ -f $PC_SERVERS_DIR/pids/kafka ]]; then
    _pc_err "pc_kafka_start: Kafka is already running at ${PC_KAFKA_BROKERS:-?}"
    return 1
  fi
  if [[ -f $dir/server.properties ]]; then
    _pc_kafka_launch
    return
  fi
  if ! [[ $partitions =~ ^[1-9][0-9]*$ ]]; then
    _pc_err "pc_kafka_start: PARTITIONS must be a positive number, not '$partitions'"
    return 1
  fi
  mkdir -p "$dir/data"
  port="$(pc_free_port)" || return 1
  cport="$(pc_free_port)" || return 1
  _pc_kafka_write_log4j
  local proto=PLAINTEXT scram=()
  if [[ ${PC_KAFKA_SECURITY:-plaintext} == sasl_ssl ]]; then
    proto=SASL_SSL
  elif [[ ${PC_KAFKA_SECURITY:-plaintext} != plaintext ]]; then
    _pc_err "pc_kafka_start: PC_KAFKA_SECURITY is plaintext or sasl_ssl, not '$PC_KAFKA_SECURITY'"
    return 1
  fi
  cat >"$dir/server.properties.tmp" <<EOF
# Single-node KRaft broker+controller for tests, written by tests/lib/servers.sh.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$proto://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$proto://127.0.0.1:$port
inter.broker.listener.name=$proto
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$proto:$proto
log.dirs=$dir/data

# Topics are created explicitly, as in production.
num.partitions=$partitions
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1

# One node: internal topics with replication factor 1, and few partitions so the first
# consumer group and the first transaction do not wait for 50 partitions to be created.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0

# Small and quick: few threads, small buffers, no compaction dedupe buffer of 128 MB.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=4194304
log.segment.bytes=16777216
log.retention.hours=24
socket.send.buffer.bytes=131072
socket.receive.buffer.bytes=131072
EOF
  if [[ $proto == SASL_SSL ]]; then
    _pc_kafka_secure_setup "$dir" >>"$dir/server.properties.tmp" || return 1
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(<"$dir/tls/admin.password")]"
      --add-scram "SCRAM-SHA-512=[name=$PC_TEST_KAFKA_USER,password=$(<"$PC_TEST_KAFKA_PASSWORD_FILE")]")
  fi
  mv "$dir/server.properties.tmp" "$dir/server.properties"
  printf '%s\n' "$port" >"$dir/port"
  local id
  id="$(_pc_kafka_cluster_id)"
  # shellcheck disable=SC2086
  if ! java $_pc_kafka_tool_jvm -Dlog4j.configuration="file:$dir/tools-log4j.properties" \
    -cp "$cache/libs/*" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
    "${scram[@]}" >"$dir/format.log" 2>&1; then
    _pc_err "pc_kafka_start: formatting the KRaft storage in $dir/data failed:"
    sed 's/^/    /' "$dir/format.log" >&2
    rm -f "$dir/server.properties"
    return 1
  fi
  _pc_kafka_launch
}

# _pc_kafka_secure_setup DIR: for a SASL_SSL broker, makes a test CA and the broker's certificate
# (for 127.0.0.1 and localhost) in a PKCS#12 keystore, two SCRAM-SHA-512 users (admin for the
# broker itself, and the clients' user), the properties the Kafka tools need
# (DIR/client.properties), and prints the broker's security properties. Passwords are random
# and kept in files under DIR/tls (mode 600).
_pc_kafka_secure_setup() {
  local dir="$1" tls="$1/tls" kspw adminpw
  mkdir -p "$tls" && chmod 700 "$tls"
  (
    umask 077
    openssl rand -hex 16 >"$tls/keystore.password"
    openssl rand -hex 16 >"$tls/admin.password"
    openssl rand -hex 16 >"$tls/pkcs.password"
  ) || return 1
  kspw="$(<"$tls/keystore.password")"
  adminpw="$(<"$tls/admin.password")"
  pc_secret_note "$kspw" "$adminpw" "$(<"$tls/pkcs.password")" || return 1
  if ! {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=pkcs-connector test Kafka CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$tls/broker.key" -out "$tls/broker.csr" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
        >"$tls/broker.ext" &&
      openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 2 -extfile "$tls/broker.ext" -out "$tls/broker.crt" &&
      openssl pkcs12 -export -inkey "$tls/broker.key" -in "$tls/broker.crt" \
        -certfile "$tls/ca.crt" -name broker -passout "file:$tls/keystore.password" \
        -out "$tls/broker.p12"
  } >"$tls/openssl.log" 2>&1; then
    _pc_err "_pc_kafka_secure_setup: openssl failed making the test CA and broker certificate:"
    sed 's/^/    /' "$tls/openssl.log" >&2
    return 1
  fi
  export PC_TEST_KAFKA_CA="$tls/ca.crt" PC_TEST_KAFKA_USER=pkcs \
    PC_TEST_KAFKA_PASSWORD_FILE="$tls/pkcs.password"
  (
    umask 077
    cat >"$dir/client.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$adminpw";
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.crt
EOF
  )
  cat <<EOF

# SASL_SSL for clients and the broker itself (written by _pc_kafka_secure_setup): TLS with a
# test CA, SCRAM-SHA-512 users created at format time; the controller stays plaintext on loopback.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$adminpw";
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$kspw
ssl.key.password=$kspw
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.crt
ssl.client.auth=none
EOF
}

# pc_kafka_stop stops the broker (SIGTERM for a controlled shutdown, SIGKILL after 10 s); its
# ports, configuration and data stay for pc_kafka_start / pc_kafka_restart.
pc_kafka_stop() {
  _pc_require_init || return 1
  _pc_stop kafka || return 1
  unset PC_KAFKA_PID
}

# pc_kafka_kill kills the broker with SIGKILL, as a crash would (no controlled shutdown: the
# next start recovers its logs); ports, configuration and data stay for pc_kafka_start.
pc_kafka_kill() {
  _pc_require_init || return 1
  _pc_kill9 kafka || return 1
  _pc_killed=1 _pc_kafka_cds_collect # a class archive being written at exit is incomplete
  unset PC_KAFKA_PID
}

# pc_kafka_restart [DOWN_SECONDS] stops the broker, waits DOWN_SECONDS (default 0) and starts
# it again on the same ports with the same data.
pc_kafka_restart() {
  pc_kafka_stop || return 1
  sleep "${1:-0}"
  pc_kafka_start
}

# pc_kafka_create_topic NAME PARTITIONS [OPTIONS...] creates a topic with replication factor 1;
# further TopicCommand options (e.g. --config retention.ms=60000) are passed through.
pc_kafka_create_topic() {
  local name="${1:-}" partitions="${2:-}" out
  if [[ -z $name || ! $partitions =~ ^[1-9][0-9]*$ ]]; then
    _pc_err "usage: pc_kafka_create_topic NAME PARTITIONS [TopicCommand options...]"
    return 1
  fi
  [[ -n ${PC_KAFKA_BROKERS:-} ]] || { _pc_err "pc_kafka_create_topic: start Kafka first (pc_kafka_start)"; return 1; }
  shift 2
  # a SASL_SSL broker (PC_KAFKA_SECURITY) wants the tools to authenticate too
  [[ -f $PC_SERVERS_DIR/kafka/client.properties ]] &&
    set -- --command-config "$PC_SERVERS_DIR/kafka/client.properties" "$@"
  if ! out="$(pc_kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$PC_KAFKA_BROKERS" \
    --create --topic "$name" --partitions "$partitions" --replication-factor 1 "$@" 2>&1)"; then
    _pc_err "creating topic '$name' with $partitions partitions on $PC_KAFKA_BROKERS failed:"
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    return 1
  fi
}

# pc_kafka_end_offsets TOPIC prints how many messages were ever written to TOPIC: the sum of
# its partitions' end offsets (the topics here are never compacted or truncated).
pc_kafka_end_offsets() {
  local out
  [[ -n ${PC_KAFKA_BROKERS:-} ]] || { _pc_err "pc_kafka_end_offsets: start Kafka first (pc_kafka_start)"; return 1; }
  out="$(pc_kafka_tool org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$PC_KAFKA_BROKERS" \
    --topic "$1" 2>&1)" || { _pc_err "reading the end offsets of '$1' failed: $out"; return 1; }
  # lines TOPIC:PARTITION:OFFSET
  printf '%s\n' "$out" | awk -F: -v t="$1" '$1 == t && $3 ~ /^[0-9]+$/ { n++; sum += $3 }
    END { if (n == 0) exit 1; print sum }' ||
    { _pc_err "no end offsets for '$1' in: $out"; return 1; }
}

# pc_kafka_group_lag GROUP TOPIC PARTITIONS prints how many messages of TOPIC the consumer group
# GROUP has not committed yet (a partition without a committed offset counts whole). Fails,
# printing nothing, while the answer is not known for all PARTITIONS partitions (the group is
# rebalancing, the broker is starting).
pc_kafka_group_lag() {
  local out
  [[ -n ${PC_KAFKA_BROKERS:-} ]] || { _pc_err "pc_kafka_group_lag: start Kafka first (pc_kafka_start)"; return 1; }
  out="$(pc_kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "$PC_KAFKA_BROKERS" --describe --offsets --group "$1" 2>/dev/null)" || return 1
  # columns: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
  printf '%s\n' "$out" | awk -v g="$1" -v t="$2" -v want="$3" '$1 == g && $2 == t && $5 ~ /^[0-9]+$/ {
      if (seen[$3]++) next
      n++; lag += ($4 ~ /^[0-9]+$/) ? $5 - $4 : $5
    } END { if (n != want) exit 1; print lag }'
}
