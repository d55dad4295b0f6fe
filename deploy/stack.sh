#!/usr/bin/env bash
# The local stack, the README's main job: Redis and a single-node Kafka (KRaft) on loopback,
# the topics, an upstream signing key, the local CA, the coordinator and N workers, started as
# background processes with their state, logs and pids in one folder; then a demo batch from
# deploy/samples/*.csv and deploy/samples/profiles/*.json, followed until every result is in.
# The stack keeps running when this script ends; `down` stops it.
#
#   bash deploy/stack.sh up [--workers N] [--demo N] [--state DIR] [--no-setup] [PORTS]
#   bash deploy/stack.sh down [--state DIR] [--purge]
#   bash deploy/stack.sh status [--state DIR]
#
# PORTS (fixed when a state folder is first brought up; `down --purge` to change them):
#   --kafka-port P (19092), --controller-port P (Kafka's + 1), --redis-port P (16379),
#   --coordinator-port P (9470), --worker-port P (9464: worker i gets the i-th free port from P)
# Environment: PC_BIN_DIR (binaries; default build/ of this repository), PC_STACK_STATE,
# PC_STACK_WORKERS, PC_STACK_DEMO, PC_STACK_PARTITIONS (128), PC_STACK_KAFKA_PORT,
# PC_STACK_CONTROLLER_PORT, PC_STACK_REDIS_PORT, PC_STACK_COORDINATOR_PORT,
# PC_STACK_WORKER_PORT, PC_STACK_NO_SETUP=1. The stack's processes read their settings from
# STATE/config.json only: PC_* variables of the calling shell are not passed on to them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
self="$here/deploy/stack.sh"
samples="$here/deploy/samples"
# servers.sh (Redis, Kafka from the Maven Central jars, pid records) and cluster.sh
# (pc_http_status); sourcing them only defines functions: their cleanup trap is installed by
# pc_servers_init, which the stack never calls, since its servers must outlive this script.
# shellcheck source=tests/lib/cluster.sh
source "$here/tests/lib/cluster.sh"

say() { printf 'stack: %s\n' "$*" >&2; }
die() {
  printf 'stack: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self"
}

# ---------------------------------------------------------------------------------------------
# Options and the state folder's settings (STATE/stack.env, KEY=VALUE lines)

opt_state="${PC_STACK_STATE:-$here/state/stack}"
opt_workers="${PC_STACK_WORKERS:-}"
opt_demo="${PC_STACK_DEMO:-200}"
opt_partitions="${PC_STACK_PARTITIONS:-}"
opt_kafka_port="${PC_STACK_KAFKA_PORT:-}"
opt_controller_port="${PC_STACK_CONTROLLER_PORT:-}"
opt_redis_port="${PC_STACK_REDIS_PORT:-}"
opt_coordinator_port="${PC_STACK_COORDINATOR_PORT:-}"
opt_worker_port="${PC_STACK_WORKER_PORT:-}"
opt_no_setup="${PC_STACK_NO_SETUP:-0}"
opt_purge=0
bin="${PC_BIN_DIR:-$here/build}"

need_number() { # need_number OPTION VALUE MIN MAX
  [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) || die "$1 wants a number from $3 to $4, not '$2'"
}

parse_options() {
  while (($#)); do
    case "$1" in
      --state) state_arg "$@"; opt_state="$2"; shift 2 ;;
      --workers) state_arg "$@"; need_number "$1" "$2" 1 100; opt_workers="$2"; shift 2 ;;
      --demo) state_arg "$@"; need_number "$1" "$2" 0 1000000; opt_demo="$2"; shift 2 ;;
      --partitions) state_arg "$@"; need_number "$1" "$2" 1 10000; opt_partitions="$2"; shift 2 ;;
      --kafka-port) state_arg "$@"; need_number "$1" "$2" 1 65535; opt_kafka_port="$2"; shift 2 ;;
      --controller-port) state_arg "$@"; need_number "$1" "$2" 1 65535; opt_controller_port="$2"; shift 2 ;;
      --redis-port) state_arg "$@"; need_number "$1" "$2" 1 65535; opt_redis_port="$2"; shift 2 ;;
      --coordinator-port) state_arg "$@"; need_number "$1" "$2" 1 65535; opt_coordinator_port="$2"; shift 2 ;;
      --worker-port) state_arg "$@"; need_number "$1" "$2" 1 65535; opt_worker_port="$2"; shift 2 ;;
      --no-setup) opt_no_setup=1; shift ;;
      --purge) opt_purge=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option '$1' (see: bash deploy/stack.sh --help)" ;;
    esac
  done
  [[ -n $opt_state ]] || die "--state wants a folder"
  state="$(realpath -m -- "$opt_state")"
  [[ $state != / ]] || die "--state / is not a state folder"
  # It goes into config.json as it is.
  [[ $state != *[\"\\]* && $state != *[[:cntrl:]]* ]] ||
    die "the state folder's path must not hold quotes, backslashes or control characters: $state"
}

state_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 wants a value"; }

env_get() { # env_get KEY: the value of KEY in STATE/stack.env, or nothing
  [[ -f $state/stack.env ]] || return 0
  sed -n "s/^$1=//p" "$state/stack.env" | tail -n 1
}

# load_settings: the settings for up: options, else what the state folder recorded, else the
# defaults. Kafka's two ports cannot change once a state folder was up: its data names them.
load_settings() {
  local k v want
  for k in kafka_port controller_port redis_port coordinator_port worker_port; do
    v="$(env_get "$k")"
    want="opt_$k"
    if [[ $k == kafka_port || $k == controller_port ]] && [[ -n $v && -n ${!want} && ${!want} != "$v" ]]; then
      die "this state folder ($state) has a Kafka on ${k//_/-} $v, not ${!want}: use that port, or run 'bash deploy/stack.sh down --state $state --purge' to start over"
    fi
    printf -v "$k" '%s' "${!want:-$v}"
  done
  kafka_port="${kafka_port:-19092}"
  controller_port="${controller_port:-$((kafka_port + 1))}"
  redis_port="${redis_port:-16379}"
  coordinator_port="${coordinator_port:-9470}"
  worker_port="${worker_port:-9464}"
  workers="${opt_workers:-$(env_get workers)}"
  workers="${workers:-2}"
  partitions="$(env_get partitions)"
  if [[ -n $partitions && -n $opt_partitions && $opt_partitions != "$partitions" ]]; then
    say "the topics exist with $partitions partitions; --partitions $opt_partitions is ignored (down --purge to change it)"
  fi
  partitions="${partitions:-${opt_partitions:-128}}"
}

# load_saved: the settings as up saved them, for the _start process.
load_saved() {
  local k
  for k in kafka_port controller_port redis_port coordinator_port worker_port workers \
    partitions bin worker_ports; do
    printf -v "$k" '%s' "$(env_get "$k")"
  done
}

save_settings() {
  local tmp="$state/stack.env.tmp" k
  {
    echo "# Settings of this local stack, written by deploy/stack.sh up."
    for k in kafka_port controller_port redis_port coordinator_port worker_port workers \
      partitions; do
      printf '%s=%s\n' "$k" "${!k}"
    done
    printf 'bin=%s\n' "$bin"
    printf 'worker_ports=%s\n' "${worker_ports:-}"
  } >"$tmp"
  mv "$tmp" "$state/stack.env"
}

# ---------------------------------------------------------------------------------------------
# Processes: pid records are servers.sh's ("pid starttime" in STATE/pids/NAME), so a pid is
# only ever signalled while it still names the process the stack started.

export PC_SERVERS_DIR # set to $state once it is known

proc_alive() { # proc_alive NAME
  local pid start
  [[ -f $state/pids/$1 ]] || return 1
  read -r pid start <"$state/pids/$1" || return 1
  _pc_alive "$pid" "$start"
}

proc_pid() { local pid _; read -r pid _ <"$state/pids/$1" && echo "$pid"; }

recorded() { # recorded: names with a pid record, workers first, then the rest in stop order
  local f names=()
  [[ -d $state/pids ]] || return 0
  for f in "$state"/pids/worker-*; do [[ -f $f ]] && names+=("${f##*/}"); done
  for f in coordinator kafka redis; do [[ -f $state/pids/$f ]] && names+=("$f"); done
  ((${#names[@]})) && printf '%s\n' "${names[@]}"
  return 0
}

# stack_condition prints up (every recorded process alive), down (none) or partial.
stack_condition() {
  local name alive=0 dead=0
  while read -r name; do
    [[ -n $name ]] || continue
    if proc_alive "$name"; then alive=$((alive + 1)); else dead=$((dead + 1)); fi
  done < <(recorded)
  if ((alive == 0)); then echo down; elif ((dead == 0)); then echo up; else echo partial; fi
}

# stop_all: workers first (they drain: in-flight work ends, offsets are committed), all at
# once; then the coordinator, Kafka and Redis. Each gets SIGTERM, then SIGKILL after 10 s.
stop_all() {
  local name pids=() rc=0
  while read -r name; do
    [[ $name == worker-* ]] || continue
    _pc_stop "$name" &
    pids+=($!)
  done < <(recorded)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for name in coordinator kafka redis; do
    [[ -f $state/pids/$name ]] || continue
    _pc_stop "$name" || rc=1
  done
  sweep_leftovers || rc=1
  return "$rc"
}

# sweep_leftovers stops stack processes that have no pid record any more (a record lost to a
# crash): ours by their executable, and by the state folder on their command line.
sweep_leftovers() {
  local pid exe start found=0
  for pid in $(pgrep -f -- "$state/" 2>/dev/null || true); do
    [[ $pid != "$$" ]] || continue
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || continue
    case "${exe##*/}" in
      pkcs-worker | pkcs-coordinator | pkcsctl | redis-server | java) ;;
      *) continue ;;
    esac
    start="$(_pc_starttime "$pid")" || continue
    say "stopping leftover ${exe##*/} (pid $pid), which has no pid record"
    _pc_kill_wait "$pid" "$start" "${exe##*/}" || found=1
  done
  return "$found"
}

# ---------------------------------------------------------------------------------------------
# up: the servers, topics, keys, configuration, coordinator and workers

port_busy() { _pc_tcp_open "$1"; }

check_ports() {
  local p name
  for name in kafka_port controller_port redis_port coordinator_port; do
    p="${!name}"
    if port_busy "$p"; then
      die "port $p (${name//_/ }) is in use by another program: stop it, or give this stack other ports (--${name//_/-} P, see --help)"
    fi
  done
}

# pick_worker_ports: worker i gets the i-th port from worker_port on that nothing listens on
# and that is not one of the stack's other ports.
pick_worker_ports() {
  local p="$worker_port" i
  worker_ports=""
  for ((i = 0; i < workers; i++)); do
    while port_busy "$p" || [[ $p == "$kafka_port" || $p == "$controller_port" ||
      $p == "$redis_port" || $p == "$coordinator_port" ]]; do
      p=$((p + 1))
      ((p < 65536)) || die "no free port for worker $((i + 1)) from $worker_port on"
    done
    worker_ports+="${worker_ports:+ }$p"
    p=$((p + 1))
  done
}

run_setup() {
  [[ $opt_no_setup == 1 ]] && return 0
  if [[ $bin == "$here/build" ]]; then
    say "running deploy/setup.sh (packages and build; quick when both are up to date)"
    bash "$here/deploy/setup.sh" >&2
  else
    say "running deploy/setup.sh --deps-only (binaries come from PC_BIN_DIR=$bin)"
    bash "$here/deploy/setup.sh" --deps-only >&2
  fi
}

check_binaries() {
  local b
  for b in pkcs-worker pkcsctl; do
    [[ -x $bin/$b ]] || die "$bin/$b is missing: build first (bash deploy/setup.sh), or point PC_BIN_DIR at a build folder"
  done
  command -v redis-server >/dev/null || die "redis-server is missing: bash deploy/setup.sh installs it"
  command -v setsid >/dev/null || die "setsid is missing: install util-linux"
}

make_keys() {
  mkdir -p "$state/keys" "$state/logs" "$state/runs"
  chmod 700 "$state" "$state/keys"
  if [[ ! -s $state/keys/upstream.pem ]]; then
    (umask 077 && openssl genpkey -algorithm ed25519 -out "$state/keys/upstream.pem" 2>/dev/null)
    openssl pkey -in "$state/keys/upstream.pem" -pubout -out "$state/keys/upstream.pub"
    say "made the upstream signing key $state/keys/upstream.pem (key id stack-upstream)"
  fi
  # The local CA key is stored encrypted; its passphrase lives in a file only this user can
  # read. In production, mount it from your secret store instead.
  if [[ ! -s $state/ca-passphrase ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$state/ca-passphrase")
  fi
  chmod 600 "$state/ca-passphrase"
}

write_config() {
  cat >"$state/config.json.tmp" <<JSON
{
  "state_dir": "$state",
  "cas": [{"name": "local", "key_passphrase_file": "$state/ca-passphrase",
           "crl_url": "http://127.0.0.1:$coordinator_port/crl/local.crl",
           "aia_url": "http://127.0.0.1:$coordinator_port/ca/local.crt",
           "ocsp_url": "http://127.0.0.1:$coordinator_port/ocsp/local"}],
  "worker": {"http_port": $worker_port, "drain_timeout_ms": 8000, "key_pool_size": 16,
             "key_pool_algorithms": "RSA-2048,P-256"},
  "kafka": {"brokers": "127.0.0.1:$kafka_port"},
  "redis": {"port": $redis_port},
  "coordinator": {"http_port": $coordinator_port, "topic_partitions": $partitions},
  "signers": [{"id": "stack-upstream", "algorithm": "ed25519",
               "public_key_file": "$state/keys/upstream.pub", "tenants": ["*"]}]
}
JSON
  mv "$state/config.json.tmp" "$state/config.json"
}

# start_redis: like servers.sh's pc_redis_start, on the stack's fixed port, with set-proc-title
# off so the command line keeps naming the state folder (down finds it by that), and with an
# append-only file: Redis holds the local CA's issued and revoked certificates and CRL number,
# which must survive a restart of the stack.
start_redis() {
  local dir="$state/redis" i
  mkdir -p "$dir"
  _pc_launch redis "$dir/stdout.log" redis-server --bind 127.0.0.1 --port "$redis_port" \
    --save '' --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no --set-proc-title no
  for ((i = 0; i < 100; i++)); do
    pc_redis_ping "$redis_port" && return 0
    _pc_alive "$_pc_launched_pid" "$_pc_launched_start" || break
    sleep 0.1
  done
  say "Redis did not start on port $redis_port; end of $dir/redis.log:"
  tail -n 5 "$dir/redis.log" "$dir/stdout.log" 2>/dev/null | sed 's/^/    /' >&2
  return 1
}

# start_kafka: servers.sh's pc_kafka_start (fetch, format, launch, wait), on fixed ports. It
# picks its listener and then its controller port with pc_free_port; while it runs, that hands
# out the stack's two ports instead. A state folder that had Kafka before restarts it with its
# data and ports.
start_kafka() {
  local given="$state/kafka/.stack-port-given" rc=0 saved
  mkdir -p "$state/kafka"
  rm -f "$given"
  saved="$(declare -f pc_free_port)"
  pc_free_port() {
    if [[ -e $state/kafka/.stack-port-given ]]; then
      echo "$controller_port"
    else
      : >"$state/kafka/.stack-port-given"
      echo "$kafka_port"
    fi
  }
  pc_kafka_start "$partitions" || rc=1
  eval "$saved"
  rm -f "$given"
  ((rc == 0)) || return 1
  if [[ ${PC_KAFKA_PORT:-} != "$kafka_port" ]]; then
    say "Kafka listens on ${PC_KAFKA_PORT:-?}, not $kafka_port (tests/lib/servers.sh changed how it picks ports?)"
    return 1
  fi
}

# create_topics: the cluster's topics, side by side (each tool run is a JVM start); existing
# ones are kept. The coordinator creates them too, but workers must not depend on it.
create_topics() {
  # results and the audit trail: as many partitions as the coordinator wants them to have
  # (coordinator.results_partitions, 16 by default, the config this script writes), so that
  # it finds them as it would make them; one partition per worker is for the requests only.
  local dlq=$((partitions < 8 ? partitions : 8)) out=$((partitions < 16 ? partitions : 16))
  local pids=() rc=0 p
  # 7 days, as coordinator.topic_retention_hours wants by default (the broker's is 1 day).
  local opts=(--if-not-exists --config retention.ms=604800000)
  pc_kafka_create_topic pkcs.requests "$partitions" "${opts[@]}" &
  pids+=($!)
  pc_kafka_create_topic pkcs.results "$out" "${opts[@]}" &
  pids+=($!)
  pc_kafka_create_topic pkcs.requests.dlq "$dlq" "${opts[@]}" &
  pids+=($!)
  # the audit trail: a year, as coordinator.audit_retention_hours wants by default
  pc_kafka_create_topic pkcs.audit "$out" --if-not-exists --config retention.ms=31536000000 &
  pids+=($!)
  pc_kafka_create_topic pkcs.notices "$dlq" "${opts[@]}" &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

# launch NAME [VAR=VALUE...] PROGRAM: a stack process with the settings of config.json (PC_*
# variables of the caller's shell removed, the given ones added), its log in
# STATE/logs/NAME.log.
launch() {
  local name="$1" v unset_args=()
  shift
  for v in $(compgen -e); do [[ $v == PC_* ]] && unset_args+=(-u "$v"); done
  _pc_launch "$name" "$state/logs/$name.log" env "${unset_args[@]}" "$@" \
    --config "$state/config.json"
}

# coordinator_listening: our coordinator process is alive and logged that it listens on its port
# (anything else answering on the port does not count).
coordinator_listening() {
  _pc_alive "$_pc_launched_pid" "$_pc_launched_start" &&
    grep -q "\"event\":\"http\".*\"port\":\"$coordinator_port\"" "$state/logs/coordinator.log" 2>/dev/null
}

# start_coordinator starts the coordinator and waits until it listens. Its port may be taken for
# a moment (a program that just exited, another test): it is tried three times; then the stack
# stops with the reason, never up without its coordinator.
start_coordinator() {
  local attempt i
  [[ -x $bin/pkcs-coordinator ]] || die "no $bin/pkcs-coordinator in this build: rebuild (bash deploy/setup.sh)"
  for attempt in 1 2 3; do
    ((attempt == 1)) || say "starting the coordinator again (attempt $attempt of 3)"
    launch coordinator "$bin/pkcs-coordinator"
    for ((i = 0; i < 150; i++)); do
      coordinator_listening && return 0
      _pc_alive "$_pc_launched_pid" "$_pc_launched_start" || break
      sleep 0.2
    done
    _pc_stop coordinator || true
    sleep "$attempt"
  done
  say "end of $state/logs/coordinator.log:"
  tail -n 10 "$state/logs/coordinator.log" | sed 's/^/    /' >&2
  die "the coordinator could not listen on 127.0.0.1:$coordinator_port (see its log above); free the port, or give the stack another one (--coordinator-port P)"
}

start_workers() {
  local i=0 p
  for p in $worker_ports; do
    i=$((i + 1))
    launch "worker-$i" PC_WORKER_ID="worker-$i" PC_HTTP_PORT="$p" "$bin/pkcs-worker"
  done
}

# wait_ready: every worker's /readyz answers 200 (Kafka and Redis reachable, registered).
wait_ready() {
  local deadline=$((SECONDS + 90)) i p left
  while :; do
    left=0
    i=0
    for p in $worker_ports; do
      i=$((i + 1))
      [[ $(pc_http_status "$p" /readyz) == 200 ]] && continue
      left=$((left + 1))
      if ! proc_alive "worker-$i"; then
        say "worker-$i exited during start-up; end of $state/logs/worker-$i.log:"
        tail -n 15 "$state/logs/worker-$i.log" | sed 's/^/    /' >&2
        return 1
      fi
    done
    ((left == 0)) && return 0
    if ((SECONDS > deadline)); then
      say "$left of $workers workers not ready after 90 s; see $state/logs/worker-*.log"
      return 1
    fi
    sleep 0.2
  done
}

# cmd_start (internal, run under setsid by up): everything that must outlive up, in a session
# of its own so that a Ctrl-C in the terminal (meant for up's demo) never reaches it.
cmd_start() {
  trap 'stop_all; exit 143' TERM
  trap 'stop_all; exit 130' INT
  say "starting Redis on 127.0.0.1:$redis_port"
  start_redis
  say "starting Kafka on 127.0.0.1:$kafka_port (KRaft, one node)"
  start_kafka
  say "creating topics pkcs.requests ($partitions partitions), pkcs.results, pkcs.audit, pkcs.requests.dlq and pkcs.notices"
  create_topics
  start_coordinator
  say "starting $workers workers (health ports $worker_ports)"
  start_workers
  wait_ready
  say "all $workers workers ready"
  wait_assigned
}

# metric PORT NAME: the value of an unlabelled metric on a worker's /metrics, or nothing.
metric() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
    timeout 2 cat <&3
  ) 2>/dev/null | awk -v name="$2" '$1 == name { print $2 }' | tr -d '\r'
}

# wait_assigned: ready workers still join the consumer group; a batch sent while partitions
# move between them is replayed by their new owners. Waits (up to 30 s) until each worker
# holds partitions of the requests topic (as many workers as there are partitions, if fewer):
# the group has settled.
wait_assigned() {
  local deadline=$((SECONDS + 30)) p n holding want
  want=$((workers < partitions ? workers : partitions))
  while :; do
    holding=0
    for p in $worker_ports; do
      n="$(metric "$p" pkcs_assigned_partitions)"
      [[ ${n%%.*} =~ ^[1-9][0-9]*$ ]] && holding=$((holding + 1))
    done
    if ((holding >= want)); then
      say "the consumer group has settled: $holding workers hold the $partitions partitions of pkcs.requests"
      return 0
    fi
    if ((SECONDS > deadline)); then
      say "the consumer group is still settling after 30 s ($holding of $want workers hold partitions); going on"
      return 0
    fi
    sleep 0.5
  done
}

cmd_up() {
  run_setup
  check_binaries
  mkdir -p "$state"
  PC_SERVERS_DIR="$state"
  load_settings
  case "$(stack_condition)" in
    up)
      say "the stack in $state is already up; running the demo batch only"
      [[ -z $opt_workers || $opt_workers == "$(env_get workers)" ]] ||
        say "it runs $(env_get workers) workers; --workers $opt_workers is ignored (down, then up --workers $opt_workers)"
      load_saved # the running stack's ports, whatever the options say
      run_demo_and_report
      return
      ;;
    partial)
      status_table >&2
      die "the stack in $state is partly up (see above); run 'bash deploy/stack.sh down --state $state' first, then up again"
      ;;
  esac
  rm -f "$state"/pids/* # records of processes that are gone (a reboot, a crash)
  check_ports
  pick_worker_ports
  make_keys
  save_settings
  write_config
  pc_kafka_fetch || die "could not fetch the Kafka jars (see above)"
  local start_pid rc=0 t0=$SECONDS
  trap 'kill -TERM "$start_pid" 2>/dev/null; wait "$start_pid"; say "interrupted: stopped what was started"; exit 130' INT TERM
  setsid bash "$self" _start --state "$state" &
  start_pid=$!
  wait "$start_pid" || rc=$?
  trap - INT TERM
  if ((rc != 0)); then
    stop_all || true
    die "the stack did not come up (see above); stopped what was started. Logs: $state/logs, $state/kafka/server.log, $state/redis/redis.log"
  fi
  say "stack up in $((SECONDS - t0)) s"
  run_demo_and_report
}

run_demo_and_report() {
  local rc=0
  if ((opt_demo > 0)); then
    run_demo "$opt_demo" || rc=$?
  fi
  echo
  echo "The stack keeps running (state, logs and pids in $state)."
  report_stopped
  if proc_alive coordinator; then
    echo "  status page:  http://127.0.0.1:$coordinator_port/"
  fi
  echo "  status:       bash deploy/stack.sh status$(state_flag)"
  echo "  stop:         bash deploy/stack.sh down$(state_flag)      (add --purge to remove $state)"
  return "$rc"
}

# report_stopped warns about stack processes that have stopped since they were started.
report_stopped() {
  local name log
  while read -r name; do
    [[ -n $name ]] && ! proc_alive "$name" || continue
    case "$name" in
      redis) log="$state/redis/redis.log" ;;
      kafka) log="$state/kafka/server.log" ;;
      *) log="$state/logs/$name.log" ;;
    esac
    echo "  warning: $name has stopped; the end of $log says:"
    tail -n 3 "$log" 2>/dev/null | cut -c1-300 | sed 's/^/      /'
  done < <(recorded)
}

state_flag() {
  [[ $state == "$here/state/stack" ]] || printf ' --state %q' "$state"
}

# ---------------------------------------------------------------------------------------------
# The demo batch: N requests split 2:1:2 over user Wi-Fi certificates with a UPN SAN
# (users.csv), device VPN certificates (devices.csv) and S/MIME certificates (users.csv again),
# each part taking the first rows of its file (from the top again if N asks for more). The
# sample CSVs have no line breaks inside fields, so rows can be taken line by line.

demo_rows() { # demo_rows SRC COUNT OUT: the header and COUNT data rows of SRC
  awk -v n="$2" 'NR == 1 { print; next } NF { rows[m++] = $0 }
    END { for (i = 0; i < n && m > 0; i++) print rows[i % m] }' "$1" >"$3"
}

run_demo() {
  local n="$1" run dir a b c t0 watch_pid rc=0
  local -a parts=()
  run="demo-$(date +%Y%m%d-%H%M%S)-$$"
  dir="$state/runs/$run"
  mkdir -p "$dir/keys"
  a=$((n * 2 / 5)) b=$((n / 5))
  c=$((n - a - b))
  demo_rows "$samples/users.csv" "$a" "$dir/user-wifi.csv"
  demo_rows "$samples/devices.csv" "$b" "$dir/device-vpn.csv"
  demo_rows "$samples/users.csv" "$c" "$dir/user-smime.csv"
  ((a > 0)) && parts+=(--csv "$dir/user-wifi.csv" --profile "$samples/profiles/user-wifi.json")
  ((b > 0)) && parts+=(--csv "$dir/device-vpn.csv" --profile "$samples/profiles/device-vpn.json")
  ((c > 0)) && parts+=(--csv "$dir/user-smime.csv" --profile "$samples/profiles/user-smime.json")
  awk -v r="$run" -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "%s-%06d\n", r, i }' \
    >"$dir/ids.txt"
  echo
  echo "Demo batch $run: $n requests: $a user Wi-Fi certificates with a UPN SAN, $b device VPN certificates, $c S/MIME certificates"
  # Results are read from the start of the topic, so the watcher may start before the batch.
  "$bin/pkcsctl" watch --brokers "127.0.0.1:$kafka_port" --ids "$dir/ids.txt" --json \
    --device-keys "$dir/keys" --ca "$state/ca/local/ca.crt" --timeout $((120 + n / 4)) \
    >"$dir/results.jsonl" 2>"$dir/watch.log" &
  watch_pid=$!
  trap 'kill -TERM "$watch_pid" 2>/dev/null; echo; say "demo interrupted; the stack keeps running"; exit 130' INT TERM
  t0="$(date +%s%N)"
  if ! "$bin/pkcsctl" submit --brokers "127.0.0.1:$kafka_port" --signer-key-id stack-upstream \
    --signer-key "$state/keys/upstream.pem" --id-prefix "$run" --device-keys "$dir/keys" \
    "${parts[@]}" >"$dir/submit.log" 2>&1; then
    kill -TERM "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
    trap - INT TERM
    sed 's/^/    /' "$dir/submit.log" >&2
    say "submitting the demo batch failed (see above)"
    return 1
  fi
  echo "$(tail -n 1 "$dir/submit.log" | sed 's/^pkcsctl submit: //')"
  show_progress "$dir/results.jsonl" "$n" "$watch_pid"
  wait "$watch_pid" || rc=$?
  trap - INT TERM
  summarize "$dir" "$n" "$a" "$b" "$t0" "$rc"
}

# show_progress FILE N PID: "results K/N" once a second until the watcher ends (one line that
# updates on a terminal; a line every 5 s otherwise).
show_progress() {
  local file="$1" n="$2" pid="$3" k f tick=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    tick=$((tick + 1))
    read -r k f < <(tally "$file" 0 0 2>/dev/null | head -n 1)
    k=$((${k:-0} + ${f:-0}))
    if [[ -t 1 ]]; then
      printf '\rresults %d/%d (failed %d)   ' "$k" "$n" "$f"
    elif ((tick % 5 == 0)); then
      printf 'results %d/%d (failed %d)\n' "$k" "$n" "$f"
    fi
  done
  [[ -t 1 ]] && printf '\n'
  return 0
}

# summarize DIR N A B T0 WATCH_RC: issued and failed per profile, failure reasons, time taken,
# certificates per second; also kept in DIR/summary.txt for status. Counts are of distinct
# request ids (at-least-once delivery may publish a result twice).
summarize() {
  local dir="$1" n="$2" a="$3" b="$4" t0="$5" rc="$6" ms issued failed missing per_s tally
  ms=$((($(date +%s%N) - t0) / 1000000))
  tally="$(tally "$dir/results.jsonl" "$a" "$b")"
  read -r issued failed <<<"$(head -n 1 <<<"$tally")"
  missing=$((n - issued - failed))
  per_s="$(awk -v k="$issued" -v ms="$ms" 'BEGIN { printf "%.1f", (ms > 0 ? k * 1000 / ms : 0) }')"
  {
    echo
    printf 'summary: %d requests: issued %d, failed %d, missing %d, in %d.%01d s (%s certificates/s)\n' \
      "$n" "$issued" "$failed" "$missing" $((ms / 1000)) $((ms % 1000 / 100)) "$per_s"
    tail -n +2 <<<"$tally"
    verified_line "$dir/results.jsonl" "$rc"
    if ((failed > 0)); then
      echo "  failed, by reason:"
      failure_reasons "$dir/results.jsonl" | sed 's/^/    /'
    fi
    grep '^latency' "$dir/results.jsonl" | sed 's/^/  /' || true
    if ((rc != 0)); then
      echo "  the watcher reported a problem:"
      sed 's/^/    /' "$dir/watch.log"
    fi
    echo "  results: $dir/results.jsonl; device keys: $dir/keys; CA: $state/ca/local/ca.crt"
  } | tee "$dir/summary.txt"
  ln -sfn "$dir" "$state/runs/latest"
  ((rc == 0 && failed == 0 && issued == n))
}

# verified_line RESULTS WATCH_RC: what the watcher found opening the results as the devices do.
verified_line() {
  local line verified bad
  line="$(grep '^results: ' "$1" | tail -n 1 || true)"
  verified="$(sed -n 's/.*opened+verified: \([0-9]*\).*/\1/p' <<<"$line")"
  bad="$(sed -n 's/.*verification failures: \([0-9]*\).*/\1/p' <<<"$line")"
  if [[ -n $bad ]]; then
    echo "  $bad results FAILED to open with their device keys or to verify against the CA"
  elif [[ -n $verified ]] && (($2 == 0)); then
    echo "  every result opened with its device key and verified against the CA ($verified results, replays included)"
  else
    echo "  ${verified:-0} results opened with their device keys and verified against the CA"
  fi
}

# tally RESULTS A B prints "ISSUED FAILED" (distinct request ids, first result of each), then
# a line per profile of the batch (request numbers 1..A, A+1..A+B, the rest).
tally() {
  awk -v a="$2" -v b="$3" '
    /^\{/ {
      if (!match($0, /"requestId":"[^"]*"/)) next
      id = substr($0, RSTART + 13, RLENGTH - 14)
      if (id in seen) next
      seen[id] = 1
      k = id; sub(/.*-/, "", k); k += 0
      part = k <= a ? 1 : k <= a + b ? 2 : 3
      if (index($0, "\"status\":\"ISSUED\"")) { ok[part]++; issued++ } else { bad[part]++; failed++ }
    }
    END {
      printf "%d %d\n", issued, failed
      split("user Wi-Fi (UPN SAN)|device VPN|S/MIME", name, "|")
      for (p = 1; p <= 3; p++)
        if (ok[p] + bad[p] > 0)
          printf "  %-22s issued %d, failed %d\n", name[p], ok[p], bad[p]
    }' "$1"
}

failure_reasons() { # failure_reasons RESULTS: "COUNT CODE: message", most frequent first
  awk '
    /"status":"FAILED"/ {
      code = "?"; msg = ""
      if (match($0, /"errorCode":"[A-Z_]*"/)) code = substr($0, RSTART + 13, RLENGTH - 14)
      if (match($0, /"errorMessage":"([^"\\]|\\.)*"/)) msg = substr($0, RSTART + 16, RLENGTH - 17)
      n[code ": " msg]++
    }
    END { for (r in n) printf "%6d  %s\n", n[r], r }' "$1" | sort -rn | head -n 10
}

# ---------------------------------------------------------------------------------------------
# status and down

status_table() {
  local name pid state_word where p i=0
  if [[ -z $(recorded) ]]; then
    echo "  no processes recorded"
    return 0
  fi
  printf '  %-12s %-8s %-9s %s\n' PROCESS PID STATE WHERE
  while read -r name; do
    [[ -n $name ]] || continue
    pid="$(proc_pid "$name")"
    if proc_alive "$name"; then state_word=running; else state_word=stopped; fi
    case "$name" in
      redis) where="127.0.0.1:$(env_get redis_port)   log $state/redis/redis.log" ;;
      kafka) where="127.0.0.1:$(env_get kafka_port)   log $state/kafka/server.log" ;;
      coordinator) where="http://127.0.0.1:$(env_get coordinator_port)/" ;;
      worker-*)
        i="${name#worker-}"
        p="$(env_get worker_ports | awk -v i="$i" '{ print $i }')"
        where="http://127.0.0.1:$p/metrics"
        if [[ $state_word == running ]]; then
          [[ $(pc_http_status "$p" /readyz) == 200 ]] && state_word=ready || state_word=not-ready
        fi
        ;;
    esac
    printf '  %-12s %-8s %-9s %s\n' "$name" "$pid" "$state_word" "$where"
  done < <(recorded)
}

cmd_status() {
  PC_SERVERS_DIR="$state"
  if [[ ! -f $state/stack.env ]]; then
    echo "no stack in $state (start one: bash deploy/stack.sh up$(state_flag))"
    return 3
  fi
  local cond
  cond="$(stack_condition)"
  echo "stack in $state: $cond"
  status_table
  if [[ -f $state/runs/latest/summary.txt ]]; then
    echo "last demo batch ($(basename "$(readlink "$state/runs/latest")")):"
    grep '^summary: ' "$state/runs/latest/summary.txt" | sed 's/^/  /'
  fi
  [[ $cond == up ]] && return 0
  [[ $cond == partial ]] && return 1
  return 3
}

cmd_down() {
  PC_SERVERS_DIR="$state"
  if [[ ! -d $state ]]; then
    say "nothing to stop: $state does not exist"
    return 0
  fi
  local rc=0 n
  n="$(recorded | wc -l)"
  if ((n > 0)); then
    say "stopping $n processes (workers drain first; SIGKILL after 10 s)"
  fi
  stop_all || rc=1
  ((rc == 0)) && say "stopped" || say "some processes could not be stopped (see above)"
  if ((opt_purge)); then
    if [[ ! -f $state/stack.env ]]; then
      die "$state has no stack.env: it does not look like a stack state folder, so it is not removed"
    fi
    rm -rf "$state"
    say "removed $state"
  fi
  return "$rc"
}

# ---------------------------------------------------------------------------------------------

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    up)
      parse_options "$@"
      bin="$(realpath -m -- "$bin")"
      cmd_up
      ;;
    down)
      parse_options "$@"
      cmd_down
      ;;
    status)
      parse_options "$@"
      cmd_status
      ;;
    _start)
      parse_options "$@"
      PC_SERVERS_DIR="$state"
      load_saved
      cmd_start
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
