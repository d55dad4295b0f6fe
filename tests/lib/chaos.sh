# shellcheck shell=bash
# The chaos run: N requests through K pkcs-worker processes while workers are killed with
# SIGKILL and started again, Redis (append-only file on) and the Kafka broker are killed and
# started again, and the remote CA (cfssl) is stopped for a while; then the count of what came
# out, from the results topic and from the CAs' own records. Shared by tests/chaos/ (CI) and
# `bench/pkcs-bench --scenarios chaos` (large runs); docs/chaos.md says what is counted and why.
#
# Source it after the servers are up: pc_cluster_init with PC_REDIS_AOF=1, and a cfssl CA
# (pc_cluster_add_cfssl, or PC_CFSSL_DIR and PC_CFSSL_PORT of one tracked by the harness). Then
#
#   pc_chaos_run DIR    the whole run, in the calling shell (it starts and stops servers);
#                       prints the counts and the recovery times and writes them to DIR
#                       (counts.csv, faults.csv, report.txt, the lists of offending ids);
#                       returns 0 when the promise held, 1 otherwise
#
# Settings (variables of the environment or the shell, read when pc_chaos_run starts):
#   PC_CHAOS_REQUESTS        N requests (default 400)
#   PC_CHAOS_WORKERS         K workers (default 4)
#   PC_CHAOS_REMOTE_PERCENT  share of the requests for the remote CA, the rest for the local
#                            CA (default 50)
#   PC_CHAOS_LOAD_SECONDS    the requests are produced evenly over this long (default 60)
#   PC_CHAOS_SCHEDULE        the faults (default: $pc_chaos_default_schedule), see below
#   PC_CHAOS_DEADLINE        seconds after the load for every request to be answered (default 300)
#   PC_CHAOS_SEED            seed of the choice of workers to kill (default: random; printed)
#   PC_CHAOS_LOCAL_CA, PC_CHAOS_REMOTE_CA    the CAs' names in the workers' configuration
#                            (default local, remote)
#   PC_CHAOS_REQUESTS_TOPIC, PC_CHAOS_RESULTS_TOPIC, PC_CHAOS_GROUP, PC_CHAOS_PARTITIONS
#                            (default pkcs.requests, pkcs.results, pkcs-workers, 8)
#   PC_CHAOS_PREFIX          request ids are PREFIXl-000001... (local) and PREFIXr-... (remote);
#                            worker names PREFIX-wSLOT.INCARNATION (default ch)
#   pc_chaos_worker_env      (shell array) VAR=VALUE settings for every worker started
#
# The schedule: comma-separated FAULT=AT[+DOWN][/EVERY], in seconds from the start of the load
# (decimals allowed), or "none" (a control run); AT must fall inside the load, and with /EVERY
# the fault repeats while the load lasts:
#   worker=3/5     a running worker, chosen at random, gets SIGKILL at 3 s, then every 5 s; it is
#                  started again (a new process, a new name) DOWN s later (default 0: at once)
#   redis=40+3     Redis gets SIGKILL at 40 s and is started again 3 s later (same port; it
#                  reloads its append-only file)
#   kafka=50+3     the broker gets SIGKILL at 50 s and is started again 3 s later (same data)
#   cfssl=5+30     cfssl is stopped at 5 s and started again 30 s later
# A fault due while another is being carried out (a broker takes seconds to start) runs late;
# the times printed are the real ones.
#
# Recovery time of a fault: from its end (the server answers again; for a worker, the kill: the
# others must take over its partitions) to the first result published afterwards that the fault
# held up - for a worker, a result for a request on a partition it owned; for Redis and Kafka,
# any result; for cfssl, a new certificate of the remote CA. Published means the broker
# acknowledged it: the time stamp of the worker's log line for the outcome (issued, replayed...).

declare -F pc_cluster_init >/dev/null || source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

pc_chaos_default_schedule="worker=3/5,cfssl=5+30,redis=40+3,kafka=50+3"
declare -p pc_chaos_worker_env >/dev/null 2>&1 || pc_chaos_worker_env=()

# ---- small helpers -----------------------------------------------------------------------------

# _pc_chaos_clock sets _ch_now to the wall clock in ms (no fork: this runs many times a second).
_pc_chaos_clock() {
  local t="${EPOCHREALTIME//[!0-9]/}"
  _ch_now=$((10#$t / 1000))
}

# _pc_chaos_secs MS prints MS as seconds with one decimal ("12.3"); negative as "-".
_pc_chaos_secs() {
  if (($1 < 0)); then
    printf -- '-'
  else
    printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100))
  fi
}

_pc_chaos_log() {
  _pc_chaos_clock
  if [[ -n ${_ch_t0:-} ]]; then
    printf '[chaos +%ss] %s\n' "$(_pc_chaos_secs $((_ch_now - _ch_t0)))" "$*" >&2
  else
    printf '[chaos] %s\n' "$*" >&2
  fi
}

# _pc_chaos_problem TEXT: something that makes the run fail besides the counts (a worker that
# died by itself, a server that did not come back...); all are printed at the end.
_pc_chaos_problem() {
  _pc_chaos_log "PROBLEM: $*"
  printf '%s\n' "$*" >>"$_ch_dir/problems.txt"
}

# _pc_chaos_running PID START: that very process exists and is not a zombie (builtins only).
_pc_chaos_running() {
  local stat f
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -r -a f <<<"${stat##*) }"
  [[ ${f[0]} != Z && ${f[19]} == "$2" ]]
}

_pc_chaos_number() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
_pc_chaos_ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 + 0.5 }'; }

# ---- settings and the schedule -----------------------------------------------------------------

_pc_chaos_settings() {
  _ch_n="${PC_CHAOS_REQUESTS:-400}"
  _ch_k="${PC_CHAOS_WORKERS:-4}"
  _ch_remote_pct="${PC_CHAOS_REMOTE_PERCENT:-50}"
  _ch_load_s="${PC_CHAOS_LOAD_SECONDS:-60}"
  _ch_schedule="${PC_CHAOS_SCHEDULE:-$pc_chaos_default_schedule}"
  _ch_deadline="${PC_CHAOS_DEADLINE:-300}"
  _ch_seed="${PC_CHAOS_SEED:-$(((EPOCHSECONDS ^ $$) % 32768))}"
  _ch_local_ca="${PC_CHAOS_LOCAL_CA:-local}"
  _ch_remote_ca="${PC_CHAOS_REMOTE_CA:-remote}"
  _ch_req_topic="${PC_CHAOS_REQUESTS_TOPIC:-pkcs.requests}"
  _ch_res_topic="${PC_CHAOS_RESULTS_TOPIC:-pkcs.results}"
  _ch_group="${PC_CHAOS_GROUP:-pkcs-workers}"
  _ch_partitions="${PC_CHAOS_PARTITIONS:-8}"
  _ch_prefix="${PC_CHAOS_PREFIX:-ch}"
  local v
  for v in "_ch_n:$_ch_n" "_ch_k:$_ch_k" "_ch_load_s:$_ch_load_s" "_ch_deadline:$_ch_deadline" \
    "_ch_partitions:$_ch_partitions"; do
    [[ ${v#*:} =~ ^[1-9][0-9]*$ ]] || {
      _pc_err "chaos: ${v%%:*} must be a positive whole number, not '${v#*:}'"
      return 1
    }
  done
  [[ $_ch_remote_pct =~ ^[0-9]+$ ]] && ((_ch_remote_pct <= 100)) ||
    { _pc_err "chaos: PC_CHAOS_REMOTE_PERCENT must be 0-100, not '$_ch_remote_pct'"; return 1; }
  [[ $_ch_seed =~ ^[0-9]+$ ]] || { _pc_err "chaos: PC_CHAOS_SEED must be a number"; return 1; }
  [[ -n ${PC_CFSSL_DIR:-} && -n ${PC_CFSSL_PORT:-} ]] ||
    { _pc_err "chaos: no cfssl CA (pc_cluster_add_cfssl, or PC_CFSSL_DIR and PC_CFSSL_PORT)"; return 1; }
}

# _pc_chaos_events SCHEDULE LOAD_SECONDS: the schedule as events "MS<TAB>SEQ<TAB>FAULT<TAB>down|up",
# sorted by time, on stdout; fails with a message on a malformed schedule.
_pc_chaos_events() {
  local entry name spec at down every load_ms at_ms down_ms every_ms t seq=0 raw="$_ch_dir/events.raw"
  load_ms="$(_pc_chaos_ms "$2")"
  [[ -n ${1//[ ,]/} ]] || { _pc_err "chaos: the schedule is empty (none: no faults)"; return 1; }
  : >"$raw"
  [[ $1 == none ]] && set -- "" "$2" # a control run
  for entry in ${1//,/ }; do
    name="${entry%%=*}" spec="${entry#*=}" every="" down=0
    [[ $entry == *=* ]] || { _pc_err "chaos: schedule entry '$entry' is not FAULT=AT[+DOWN][/EVERY]"; return 1; }
    case "$name" in worker | redis | kafka | cfssl) ;;
    *) _pc_err "chaos: unknown fault '$name' in the schedule (worker, redis, kafka, cfssl)"; return 1 ;;
    esac
    if [[ $spec == */* ]]; then every="${spec#*/}" spec="${spec%%/*}"; fi
    if [[ $spec == *+* ]]; then down="${spec#*+}" at="${spec%%+*}"; else at="$spec"; fi
    for t in "$at" "$down" ${every:+"$every"}; do
      _pc_chaos_number "$t" || { _pc_err "chaos: '$t' in schedule entry '$entry' is not a number of seconds"; return 1; }
    done
    at_ms="$(_pc_chaos_ms "$at")" down_ms="$(_pc_chaos_ms "$down")"
    ((at_ms < load_ms)) || { _pc_err "chaos: '$entry' starts after the load ($2 s)"; return 1; }
    if [[ -n $every ]]; then
      every_ms="$(_pc_chaos_ms "$every")"
      ((every_ms > down_ms)) || { _pc_err "chaos: in '$entry' the fault must end before it repeats"; return 1; }
    else
      every_ms=$((load_ms + 1))
    fi
    for ((t = at_ms; t < load_ms; t += every_ms)); do
      printf '%d\t%d\t%s\tdown\n' "$t" $((seq++)) "$name"
      printf '%d\t%d\t%s\tup\n' $((t + down_ms)) $((seq++)) "$name"
    done >>"$raw"
  done
  sort -t$'\t' -k1,1n -k2,2n "$raw" | cut -f1,3,4 >"$_ch_dir/events.tsv"
  rm -f "$raw"
  # One server cannot go down twice without coming back in between.
  awk -F'\t' '$2 != "worker" { if (($3 == "down") == (state[$2] == "down")) { print $2; exit 1 }
    state[$2] = $3 }' "$_ch_dir/events.tsv" >/dev/null ||
    { _pc_err "chaos: the schedule takes one server down again before it is back: $1"; return 1; }
}

# ---- the load ------------------------------------------------------------------------------------

# _pc_chaos_make_load: DIR/requests.jsonl (local and remote requests interleaved evenly, one
# device key each in DIR/keys), DIR/ids (one request id a line) and DIR/ids.tsv (id, local|remote).
_pc_chaos_make_load() {
  local d="$_ch_dir" nr nl
  nr=$((_ch_n * _ch_remote_pct / 100)) nl=$((_ch_n - nr))
  mkdir -p "$d/keys"
  jq -n -c --arg ca "$_ch_local_ca" '{schemaVersion: 1, tenantId: "contoso", kind: "ISSUE",
    userId: "user-{n}",
    issue: {profile: {caName: $ca, templateName: "User", certificateType: "USER",
      subjectFormat: "CN={{UserName}},OU=Chaos,O=Contoso",
      subjectAlternativeNames: [{type: "UPN", format: "{{UserPrincipalName}}"}],
      extendedKeyUsages: ["clientAuth"], keyAlgorithm: "EC", keySize: 256},
    attributes: {UserName: "User {n}", UserPrincipalName: "user{n}@contoso.com"}}}' >"$d/template-local.json"
  jq -n -c --arg ca "$_ch_remote_ca" '{schemaVersion: 1, tenantId: "contoso", kind: "ISSUE",
    issue: {profile: {caName: $ca, templateName: "Device", certificateType: "DEVICE",
      subjectFormat: "CN={{DeviceName}},O=Contoso",
      subjectAlternativeNames: [{type: "DNS", format: "{{DeviceName}}.corp.contoso.com"}],
      extendedKeyUsages: ["clientAuth"], keyAlgorithm: "EC", keySize: 256},
    attributes: {DeviceName: "ws-{n}"}}}' >"$d/template-remote.json"
  : >"$d/local.jsonl"
  : >"$d/remote.jsonl"
  if ((nl > 0)); then
    pc_submit --dry-run --template "$d/template-local.json" --count "$nl" \
      --id-prefix "${_ch_prefix}l" --device-keys "$d/keys" >"$d/local.jsonl" 2>"$d/make-load.err" ||
      { _pc_err "chaos: generating the local requests failed: $(cat "$d/make-load.err")"; return 1; }
  fi
  if ((nr > 0)); then
    pc_submit --dry-run --template "$d/template-remote.json" --count "$nr" \
      --id-prefix "${_ch_prefix}r" --device-keys "$d/keys" >"$d/remote.jsonl" 2>"$d/make-load.err" ||
      { _pc_err "chaos: generating the remote requests failed: $(cat "$d/make-load.err")"; return 1; }
  fi
  # --dry-run stamps createdAtMs when it prints; without it, submit stamps each request when it
  # sends it, so that latency counts from the send.
  local f
  for f in local remote; do
    jq -c 'del(.createdAtMs)' "$d/$f.jsonl" >"$d/$f.jsonl.tmp" && mv "$d/$f.jsonl.tmp" "$d/$f.jsonl" ||
      { _pc_err "chaos: cannot rewrite $d/$f.jsonl"; return 1; }
  done
  # Evenly interleaved: after k requests, k * nr / N of them were remote.
  awk -v L="$d/local.jsonl" -v R="$d/remote.jsonl" 'BEGIN {
      while ((getline line < L) > 0) loc[++a] = line
      while ((getline line < R) > 0) rem[++b] = line
      n = a + b
      for (k = 1; k <= n; k++) if (j < int(k * b / n)) print rem[++j]; else print loc[++i]
    }' >"$d/requests.jsonl"
  jq -r --arg remote "$_ch_remote_ca" \
    '[.requestId, (if .issue.profile.caName == $remote then "remote" else "local" end)] | @tsv' \
    "$d/requests.jsonl" >"$d/ids.tsv"
  cut -f1 "$d/ids.tsv" >"$d/ids"
  [[ $(wc -l <"$d/ids") -eq $_ch_n ]] ||
    { _pc_err "chaos: made $(wc -l <"$d/ids") requests, not $_ch_n"; return 1; }
}

# ---- workers ---------------------------------------------------------------------------------

# Slot i runs incarnation _ch_gen[i] of worker PREFIX-wi; a killed worker's slot is started
# again as the next incarnation, under a new name and with a log of its own.
_pc_chaos_spawn() {
  local i="$1" name pid start
  _ch_gen[i]=$((${_ch_gen[i]:-0} + 1))
  name="$_ch_prefix-w$i.${_ch_gen[i]}"
  pc_worker_spawn "$name" PC_REQUESTS_TOPIC="$_ch_req_topic" PC_RESULTS_TOPIC="$_ch_res_topic" \
    PC_KAFKA_GROUP_ID="$_ch_group" "${pc_chaos_worker_env[@]}" || return 1
  read -r pid start <"$PC_SERVERS_DIR/pids/$name"
  _ch_name[i]="$name" _ch_pid[i]="$pid" _ch_start[i]="$start" _ch_up[i]=1
  _ch_workers+=("$name")
}

# _pc_chaos_partitions_of NAME: the partitions the worker owns now, from its log's rebalanced
# events ("0,3,5"; empty when none). The log, not Redis: Redis may be the server that is down.
_pc_chaos_partitions_of() {
  jq -R -r 'fromjson? | select(.event == "rebalanced") | "\(.msg)\t\(.partitions)"' \
    "$PC_SERVERS_DIR/$1.log" 2>/dev/null | awk -F'\t' '
      { n = split($2, p, ","); for (i = 1; i <= n; i++) if (p[i] != "") {
          if ($1 ~ /assigned/) own[p[i]] = 1; else delete own[p[i]] } }
      END { s = ""; for (x in own) s = s (s == "" ? "" : ",") x; print s }' |
    tr ',' '\n' | sort -n | paste -sd, -
}

# _pc_chaos_died SLOT WHY: a worker that ended without being told to: noted, and its slot
# started again so that the run goes on.
_pc_chaos_died() {
  local i="$1" rc=0
  wait "${_ch_pid[i]}" 2>/dev/null || rc=$?
  _pc_chaos_problem "worker ${_ch_name[i]} died by itself ($2; exit status $rc); end of its log:
$(tail -n 15 "$PC_SERVERS_DIR/${_ch_name[i]}.log" | sed 's/^/    /')"
  rm -f "$PC_SERVERS_DIR/pids/${_ch_name[i]}"
  _ch_up[i]=0
  _pc_chaos_spawn "$i" || _pc_chaos_problem "could not start worker slot $i again"
}

# _pc_chaos_tick: between events, look for workers that died by themselves.
_pc_chaos_tick() {
  local i
  for i in "${!_ch_up[@]}"; do
    if ((_ch_up[i])) && ! _pc_chaos_running "${_ch_pid[i]}" "${_ch_start[i]}"; then
      _pc_chaos_died "$i" "noticed while running"
    fi
  done
}

_pc_chaos_kill_worker() {
  local up=() i name parts
  for i in "${!_ch_up[@]}"; do ((_ch_up[i])) && up+=("$i"); done
  if ((${#up[@]} == 0)); then
    _pc_chaos_log "no worker running to kill"
    return 0
  fi
  i="${up[RANDOM % ${#up[@]}]}"
  name="${_ch_name[i]}"
  if ! _pc_chaos_running "${_ch_pid[i]}" "${_ch_start[i]}"; then
    _pc_chaos_died "$i" "found dead when it was to be killed"
    return 0
  fi
  parts="$(_pc_chaos_partitions_of "$name")"
  _pc_chaos_clock
  printf 'worker\t%s\t%s\t%s\t%s\n' "$name" "$_ch_now" "$_ch_now" "${parts:--}" >>"$_ch_dir/faults.tsv"
  pc_worker_kill "$name" || return 1
  _ch_up[i]=0
  _ch_down_slots+=("$i")
  _pc_chaos_log "SIGKILL worker $name (partitions ${parts:-none})"
}

_pc_chaos_restart_worker() {
  local i
  ((${#_ch_down_slots[@]} > 0)) || return 0
  i="${_ch_down_slots[0]}"
  _ch_down_slots=("${_ch_down_slots[@]:1}")
  _pc_chaos_spawn "$i" || return 1
  _pc_chaos_log "started worker ${_ch_name[i]}"
}

# _pc_chaos_fault FAULT down|up: carries out one event of the schedule.
_pc_chaos_fault() {
  _pc_chaos_clock
  case "$1:$2" in
  worker:down) _pc_chaos_kill_worker ;;
  worker:up) _pc_chaos_restart_worker ;;
  redis:down)
    _ch_fault_start="$_ch_now"
    pc_redis_kill || return 1
    _pc_chaos_log "SIGKILL Redis"
    ;;
  redis:up)
    pc_redis_start || return 1
    _pc_chaos_server_back redis
    ;;
  kafka:down)
    _ch_fault_start="$_ch_now"
    pc_kafka_kill || return 1
    _pc_chaos_log "SIGKILL the Kafka broker"
    ;;
  kafka:up)
    pc_kafka_start || return 1
    _pc_chaos_server_back kafka
    ;;
  cfssl:down)
    _ch_fault_start="$_ch_now"
    pc_cfssl_stop || return 1
    _pc_chaos_log "stopped cfssl"
    ;;
  cfssl:up)
    pc_cfssl_restart || return 1
    _pc_chaos_server_back cfssl
    ;;
  esac
}

_pc_chaos_server_back() {
  _pc_chaos_clock
  printf '%s\t%s\t%s\t%s\t-\n' "$1" "$1" "$_ch_fault_start" "$_ch_now" >>"$_ch_dir/faults.tsv"
  _pc_chaos_log "$1 is back after $(_pc_chaos_secs $((_ch_now - _ch_fault_start))) s"
}

# _pc_chaos_stop_workers: SIGTERM to every running worker; each must drain and exit 0.
_pc_chaos_stop_workers() {
  local i left rc waited
  for i in "${!_ch_up[@]}"; do ((_ch_up[i])) && kill -TERM "${_ch_pid[i]}" 2>/dev/null; done
  for ((waited = 0; waited < 900; waited++)); do
    left=0
    for i in "${!_ch_up[@]}"; do
      ((_ch_up[i])) && _pc_chaos_running "${_ch_pid[i]}" "${_ch_start[i]}" && left=1
    done
    ((left)) || break
    sleep 0.1
  done
  for i in "${!_ch_up[@]}"; do
    ((_ch_up[i])) || continue
    if _pc_chaos_running "${_ch_pid[i]}" "${_ch_start[i]}"; then
      _pc_chaos_problem "worker ${_ch_name[i]} did not exit within 90 s of SIGTERM"
      kill -KILL "${_ch_pid[i]}" 2>/dev/null
    fi
    rc=0
    wait "${_ch_pid[i]}" 2>/dev/null || rc=$?
    ((rc == 0)) || _pc_chaos_problem "worker ${_ch_name[i]} exited $rc after SIGTERM; end of its log:
$(tail -n 15 "$PC_SERVERS_DIR/${_ch_name[i]}.log" | sed 's/^/    /')"
    rm -f "$PC_SERVERS_DIR/pids/${_ch_name[i]}"
    _ch_up[i]=0
  done
}

# ---- the phases of a run -------------------------------------------------------------------------

# _pc_chaos_loop: the schedule, on time, while the load is produced; then waits for the producer.
_pc_chaos_loop() {
  local due fault action
  while IFS=$'\t' read -r -u 7 due fault action; do
    while :; do
      _pc_chaos_clock
      ((_ch_now - _ch_t0 >= due)) && break
      _pc_chaos_tick
      sleep 0.2
    done
    _pc_chaos_fault "$fault" "$action" || {
      _pc_chaos_problem "carrying out '$fault $action' failed (see the messages above)"
      return 1
    }
  done 7<"$_ch_dir/events.tsv"
  while _pc_chaos_running "$_ch_submit_pid" "$_ch_submit_start"; do
    _pc_chaos_tick
    sleep 0.2
  done
  local rc=0
  wait "$_ch_submit_pid" 2>/dev/null || rc=$?
  rm -f "$PC_SERVERS_DIR/pids/chaos-submit"
  if ((rc != 0)); then
    _pc_chaos_problem "pkcsctl submit exited $rc: not every request was produced; $(tail -n 3 "$_ch_dir/submit.log")"
    return 1
  fi
  _pc_chaos_log "all $_ch_n requests produced; $(grep -o 'achieved.*' "$_ch_dir/submit.log" | head -1)"
}

# _pc_chaos_settle: every slot running and ready, every request answered (the live watcher),
# every request message committed by the group (nothing left to redeliver), then the workers
# drained and stopped, so that the CAs' records are final.
_pc_chaos_settle() {
  local i rc=0 lag="" deadline
  while ((${#_ch_down_slots[@]} > 0)); do _pc_chaos_restart_worker || return 1; done
  for i in "${!_ch_up[@]}"; do
    pc_worker_wait_ready "${_ch_name[i]}" 180 ||
      { _pc_chaos_problem "worker ${_ch_name[i]} was not ready 180 s after the faults"; return 1; }
  done
  _pc_chaos_log "every worker ready; waiting for every request to be answered (deadline ${_ch_deadline} s)"
  while _pc_chaos_running "$_ch_watch_pid" "$_ch_watch_start"; do
    _pc_chaos_tick
    sleep 0.5
  done
  wait "$_ch_watch_pid" 2>/dev/null || rc=$?
  rm -f "$PC_SERVERS_DIR/pids/chaos-watch"
  _ch_all_answered=0
  if grep -q 'timed out after' "$_ch_dir/live.log"; then
    _pc_chaos_log "not every request was answered in time: $(grep -o 'timed out after.*' "$_ch_dir/live.log")"
  else
    _ch_all_answered=1
    _pc_chaos_log "every request answered; waiting until the group committed every request message"
    _pc_chaos_clock
    deadline=$((_ch_now + 180000))
    while ((_ch_now < deadline)); do
      lag="$(pc_kafka_group_lag "$_ch_group" "$_ch_req_topic" "$_ch_partitions")" && [[ $lag == 0 ]] && break
      _pc_chaos_tick
      sleep 1
      _pc_chaos_clock
    done
    [[ $lag == 0 ]] ||
      _pc_chaos_problem "the group $_ch_group had not committed every request message 180 s after the last answer (lag ${lag:-unknown})"
  fi
  _pc_chaos_log "stopping the workers (SIGTERM: each drains and must exit 0)"
  _pc_chaos_stop_workers
  local f
  for f in "${_ch_workers[@]}"; do
    if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$PC_SERVERS_DIR/$f.log"; then
      _pc_chaos_problem "worker $f reported a sanitizer error:
$(grep -m 5 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$PC_SERVERS_DIR/$f.log" | sed 's/^/    /')"
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# ORPHANS STEP. cfssl cannot look certificates up by request: a worker killed between cfssl's
# answer and its own Redis write leaves a certificate that none of the connector's records
# names (its successor logs orphan_unknown). `pkcsctl orphans` (to come) finds such
# certificates in the CA's records and revokes them; once it exists, run it here, after the
# workers have stopped and before anything is counted, e.g.
#   "$PC_BIN_DIR/pkcsctl" orphans --revoke ... >"$_ch_dir/orphans.log"
# Until then nothing is swept: such certificates are counted and fail the run.
_pc_chaos_sweep_orphans() {
  _pc_chaos_log "no orphan sweep before counting (there is no pkcsctl orphans yet)"
}
# ---------------------------------------------------------------------------------------------

# _pc_chaos_final_pass: every result message of the run, read once more after everything
# stopped: opened with its device key and verified against both CAs' certificates.
_pc_chaos_final_pass() {
  local d="$_ch_dir" total timeout=300
  cat "$PC_CFSSL_DIR/ca.pem" "$PC_SERVERS_DIR/state/ca/$_ch_local_ca/ca.crt" >"$d/ca-bundle.pem" ||
    { _pc_chaos_problem "no CA certificates to verify the results against"; return 1; }
  total="$(pc_kafka_end_offsets "$_ch_res_topic")" ||
    { _pc_chaos_problem "cannot read the end offsets of $_ch_res_topic"; return 1; }
  _ch_result_messages="$total"
  ((total > 0)) || { : >"$d/final.out"; : >"$d/final.err"; return 0; }
  _pc_chaos_log "final pass: reading all $total result messages, opening and verifying each"
  pc_watch --topic "$_ch_res_topic" --total "$total" --timeout "$timeout" --json \
    --device-keys "$d/keys" --ca "$d/ca-bundle.pem" >"$d/final.out" 2>"$d/final.err" || true
  if grep -q 'timed out after' "$d/final.err"; then
    _pc_chaos_problem "the final pass did not read all $total result messages in $timeout s: $(grep -o 'timed out.*' "$d/final.err")"
  fi
}

# _pc_chaos_records: every certificate either CA signed, "local|remote SERIAL REQUEST_ID good|revoked",
# from the CAs' own records: the local CA's in Redis (lib/ca/local/ca_index_redis.c, its
# request_id "TENANT:REQUEST", a tenant holding no colon), cfssl's in its certificate database
# (ca_label = request id; serials decimal there, hex in results).
_pc_chaos_records() {
  local k="pc:ca:{$_ch_local_ca}:"
  # shellcheck disable=SC2016
  redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" --raw EVAL '
    local out = {}
    for _, s in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
      local rid = string.gsub(redis.call("HGET", KEYS[2] .. s, "request_id") or "-", "^[^:]*:", "", 1)
      local state = redis.call("HEXISTS", KEYS[3], s) == 1 and "revoked" or "good"
      local at = redis.call("HGET", KEYS[2] .. s, "issued_at") or "-"
      out[#out + 1] = s .. "\t" .. rid .. "\t" .. state .. "\t" .. at
    end
    return out' 3 "${k}issued" "${k}cert:" "${k}revoked" >"$_ch_dir/records-local.tsv" ||
    { _pc_chaos_problem "cannot read the local CA's records from Redis"; return 1; }
  sqlite3 -separator $'\t' "$PC_CFSSL_DIR/certs.db" \
    "select serial_number, ca_label, status from certificates;" >"$_ch_dir/records-cfssl.tsv" ||
    { _pc_chaos_problem "cannot read cfssl's certificate database"; return 1; }
  # kind, serial (hex), request id, good|revoked, when the CA signed it (UTC time of day:
  # the local CA's issued_at, cfssl's log line)
  {
    awk -F'\t' 'NF == 4 { t = length($4) == 15 && $4 ~ /^[0-9]+Z$/ ? substr($4, 9, 2) ":" substr($4, 11, 2) ":" substr($4, 13, 2) : "-"
      print "local\t" $1 "\t" $2 "\t" $3 "\t" t }' "$_ch_dir/records-local.tsv"
    python3 -c '
import re, sys
signed = {}
try:
    with open(sys.argv[1], errors="replace") as log:
        for line in log:
            m = re.search(r" (\d\d:\d\d:\d\d) \[INFO\] signed certificate with serial number (\d+)", line)
            if m:
                signed.setdefault(m.group(2), m.group(1))
except OSError:
    pass
for line in sys.stdin:
    dec, label, status = line.rstrip("\n").split("\t")
    h = "%X" % int(dec)
    print("remote\t%s%s\t%s\t%s\t%s" % ("0" * (len(h) % 2), h, label, status, signed.get(dec, "-")))
' "$PC_CFSSL_DIR/cfssl.log" <"$_ch_dir/records-cfssl.tsv"
  } >"$_ch_dir/records.tsv"
}

# _pc_chaos_count: the counts, from ids.tsv, the final pass and records.tsv; writes counts.tsv
# (name, value) and one list per count of what it counted.
_pc_chaos_count() {
  local d="$_ch_dir"
  grep '^{' "$d/final.out" | jq -r '[.requestId, .status, (.serialNumber // "-"),
      (.errorCode // "-")] | @tsv' >"$d/results.tsv"
  # watch's complaints about single results: "request ID: why" (does not open, does not verify)
  sed -n 's/^pkcsctl watch: request \([^ :]*\): \(.*\)$/\1\t\2/p' "$d/final.err" >"$d/bad-results.tsv"
  sed -n 's/^pkcsctl watch: request \([^ ]*\) got a DIFFERENT certificate.*/\1/p' "$d/final.err" >"$d/different.txt"
  awk -F'\t' -v d="$d" '
    BEGIN {
      split("never-answered.txt failed.tsv two-certificates.tsv undelivered.tsv " \
            "delivered-revoked.tsv delivered-unknown.tsv", files, " ")
      for (i in files) printf "" > (d "/" files[i])
    }
    FILENAME == ARGV[1] { kind[$1] = $2; n++; nk[$2]++; next }
    FILENAME == ARGV[2] {
      id = $1
      if (!(id in kind)) { foreign++; next }
      msgs++; answered[id] = 1
      if ($2 == "ISSUED") {
        issued[id] = 1
        if (!((id, $3) in got)) { got[id, $3] = 1; certs[id]++; serials[id] = serials[id] " " $3 }
        delivered[kind[id], $3] = id
      } else {
        failed[id] = failed[id] " " $2 "/" $4
      }
      next
    }
    FILENAME == ARGV[3] { bad[$1] = bad[$1] "; " $2; nbad++; next }
    FILENAME == ARGV[4] { if ($1 in kind) { certs[$1] = certs[$1] < 2 ? 2 : certs[$1] }; next }
    FILENAME == ARGV[5] {
      # kind serial request_id state signed_at
      if (!($3 in kind)) next
      rec[$1, $2] = $4; recid[$1, $2] = $3; signed[$1]++
      if ($4 == "revoked") revoked[$1]++
      if ($4 != "revoked" && !(($1, $2) in delivered)) {
        undelivered++; print $1 "\t" $2 "\t" $3 "\tsigned " $5 > (d "/undelivered.tsv") }
      next
    }
    END {
      for (id in kind) {
        if (!(id in answered)) { never++; print id > (d "/never-answered.txt") }
        if (id in answered) nans++
        if (id in issued) nissued++
        if (id in failed) { nfailed++; print id "\t" failed[id] > (d "/failed.tsv") }
        if (certs[id] > 1) { two++; print id "\t" serials[id] > (d "/two-certificates.tsv") }
      }
      for (key in delivered) {
        split(key, p, SUBSEP)
        if (!(key in rec) || recid[key] != delivered[key]) {
          unknown++; print p[1] "\t" p[2] "\t" delivered[key] > (d "/delivered-unknown.tsv") }
        else if (rec[key] == "revoked") {
          delrev++; print p[1] "\t" p[2] "\t" delivered[key] > (d "/delivered-revoked.tsv") }
      }
      nbadids = 0; for (id in bad) nbadids++
      printf "requests\t%d\nrequests_local\t%d\nrequests_remote\t%d\n", n, nk["local"], nk["remote"]
      printf "answered\t%d\nissued\t%d\nnever_answered\t%d\nfailed\t%d\n", nans, nissued, never, nfailed
      printf "two_certificates\t%d\n", two
      printf "signed_not_delivered_not_revoked\t%d\n", undelivered
      printf "delivered_but_revoked\t%d\ndelivered_unknown_to_ca\t%d\n", delrev, unknown
      printf "results_not_opening\t%d\nresults_not_opening_ids\t%d\n", nbad, nbadids
      printf "result_messages\t%d\nforeign_result_messages\t%d\n", msgs, foreign
      printf "signed_local\t%d\nrevoked_local\t%d\nsigned_remote\t%d\nrevoked_remote\t%d\n", \
        signed["local"], revoked["local"], signed["remote"], revoked["remote"]
    }' "$d/ids.tsv" "$d/results.tsv" "$d/bad-results.tsv" "$d/different.txt" "$d/records.tsv" \
    >"$d/counts.tsv"
}

# _pc_chaos_events_of ID: the worker log lines about request ID (time of day UTC, worker,
# event, message), a run of `retried` lines of one worker shown as its first and last.
_pc_chaos_events_of() {
  awk -F'\t' -v id="$1" '
    function flush() { if (n > 1) printf "      %12s %s retried: %d more times, the last at %s\n", "...", w, n - 1, last; n = 0 }
    $4 != id { next }
    $5 == "retried" && n > 0 && $3 == w { n++; last = $2; next }
    { flush() }
    $5 == "retried" { n = 1; w = $3; last = $2 }
    { printf "      %s %s %s: %s\n", $2, $3, $5, substr($6, 1, 160) }
    END { flush() }' "$_ch_dir/log-events.tsv" | head -n 30
}

# _pc_chaos_recovery: faults.tsv + the outcome log lines -> recovery.tsv, one line per fault:
# fault, target, start, end, down, recovery (seconds from the load's start), what it held up.
_pc_chaos_recovery() {
  local d="$_ch_dir" f
  # ms since the epoch, time of day (UTC), worker, request id, event, message, partition
  for f in "${_ch_workers[@]}"; do
    jq -R -r --arg w "$f" 'fromjson? | select(.request_id? != null) |
        [((.ts[0:19] + "Z" | fromdateiso8601) * 1000 + (.ts[20:23] | tonumber)), .ts[11:23], $w,
         .request_id, .event, (.msg // ""), (.partition // "-")] | @tsv' "$PC_SERVERS_DIR/$f.log"
  done | sort -t$'\t' -k1,1n >"$d/log-events.tsv"
  awk -F'\t' -v t0="$_ch_t0" '
    FILENAME == ARGV[1] { kind[$1] = $2; next }
    FILENAME == ARGV[2] {
      if ($5 !~ /^(issued|replayed|failed|revoked|imported)$/) next
      m++; ts[m] = $1; rid[m] = $4; ev[m] = $5; part[m] = $7; next
    }
    {
      # fault target start end partitions
      first = ""
      if ($1 == "worker") { split($5, p, ","); delete own; for (i in p) own[p[i]] = 1 }
      for (i = 1; i <= m; i++) {
        if (ts[i] < $4) continue
        if ($1 == "worker" && !(part[i] in own)) continue
        if ($1 == "cfssl" && (ev[i] != "issued" || kind[rid[i]] != "remote")) continue
        first = ts[i]; break
      }
      pl = $5; gsub(/,/, " ", pl)
      held = $1 == "worker" ? ($5 == "-" ? "no partitions" : "partitions " pl) : \
             $1 == "cfssl" ? "new remote certificates" : "all results"
      rec = first == "" ? -1 : first - $4
      if ($1 == "worker" && $5 == "-") rec = -2
      day = int($3 / 1000) % 86400
      printf "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%02d:%02d:%02d.%03d\n", $1, $2, $3 - t0, $4 - t0, $4 - $3, rec, held,
        int(day / 3600), int(day / 60) % 60, day % 60, $3 % 1000
    }' "$d/ids.tsv" "$d/log-events.tsv" "$d/faults.tsv" | sort -t$'\t' -k3,3n >"$d/recovery.tsv"
}

# _pc_chaos_report: counts and recovery times printed (and to report.txt, counts.csv,
# faults.csv); returns 1 when the promise did not hold.
_pc_chaos_report() {
  local d="$_ch_dir" rc=0 name value
  declare -A c=()
  while IFS=$'\t' read -r name value; do c[$name]="$value"; done <"$d/counts.tsv"
  if [[ -z ${c[answered]:-} ]]; then
    _pc_chaos_problem "the counting produced nothing (see $d)"
    c[answered]=0
  fi
  {
    echo "chaos: $_ch_n requests (${c[requests_local]} local CA, ${c[requests_remote]} remote CA) through" \
      "$_ch_k workers over $_ch_load_s s; schedule $_ch_schedule; seed $_ch_seed"
    printf '  %-52s %6s\n' \
      "answered (must be $_ch_n)" "${c[answered]}" \
      "never answered" "${c[never_answered]}" \
      "answered FAILED" "${c[failed]}" \
      "request ids with two different certificates" "${c[two_certificates]}" \
      "certificates signed, neither delivered nor revoked" "${c[signed_not_delivered_not_revoked]}" \
      "delivered certificates the CA revoked" "${c[delivered_but_revoked]}" \
      "delivered certificates the CA has no record of" "${c[delivered_unknown_to_ca]}" \
      "results that do not open or verify" "${c[results_not_opening]}"
    echo "  result messages read: ${c[result_messages]} (replays included); CA records for these requests:" \
      "local ${c[signed_local]} signed, ${c[revoked_local]} revoked; remote ${c[signed_remote]} signed, ${c[revoked_remote]} revoked"
    echo "  worker events: $(awk -F'\t' '$5 ~ /^(orphan_|own_revoked|lease_lost|abandoned|gave_up|conflict)/ { n[$5]++ }
      END { s = ""; for (e in n) s = s (s == "" ? "" : ", ") e " " n[e]; print (s == "" ? "none of orphan_*, own_revoked, lease_lost, abandoned, gave_up, conflict" : s) }' \
      "$d/log-events.tsv")"
    echo "  recovery (from a fault's end to the first result published that it held up; the load" \
      "started at $(date -u -d "@$((_ch_t0 / 1000))" +%H:%M:%S).$(printf '%03d' $((_ch_t0 % 1000))) UTC):"
    printf '    %-7s %-12s %12s %8s %8s %8s %9s  %s\n' fault target "UTC" "start s" "end s" "down s" "recovery" "held up"
    awk -F'\t' '{ r = $6 == -1 ? "none" : $6 == -2 ? "n/a" : sprintf("%.1f s", $6 / 1000)
        printf "    %-7s %-12s %12s %8.1f %8.1f %8.1f %9s  %s\n", $1, $2, $8, $3 / 1000, $4 / 1000, $5 / 1000, r, $7 }' \
      "$d/recovery.tsv"
  } | tee "$d/report.txt"
  {
    echo "count,value"
    awk -F'\t' '{ print $1 "," $2 }' "$d/counts.tsv"
    echo "seed,$_ch_seed"
  } >"$d/counts.csv"
  {
    echo "fault,target,start_s,end_s,down_s,recovery_s,held_up,start_utc"
    awk -F'\t' '{ r = $6 < 0 ? "" : sprintf("%.3f", $6 / 1000)
        printf "%s,%s,%.3f,%.3f,%.3f,%s,%s,%s\n", $1, $2, $3 / 1000, $4 / 1000, $5 / 1000, r, $7, $8 }' "$d/recovery.tsv"
  } >"$d/faults.csv"

  ((c[answered] == _ch_n)) || rc=1
  local key file
  declare -A label=([never_answered]="requests never answered"
    [failed]="requests answered FAILED" [two_certificates]="request ids with two different certificates"
    [signed_not_delivered_not_revoked]="certificates signed, neither delivered nor revoked (CA, serial, request)"
    [delivered_but_revoked]="delivered certificates the CA revoked (CA, serial, request)"
    [delivered_unknown_to_ca]="delivered certificates the CA has no record of (CA, serial, request)"
    [results_not_opening]="results that do not open or verify")
  for key in never_answered:never-answered.txt failed:failed.tsv two_certificates:two-certificates.tsv \
    signed_not_delivered_not_revoked:undelivered.tsv delivered_but_revoked:delivered-revoked.tsv \
    delivered_unknown_to_ca:delivered-unknown.tsv results_not_opening:bad-results.tsv; do
    name="${key%%:*}" file="$d/${key#*:}"
    ((c[$name] == 0)) && continue
    rc=1
    echo "FAIL: ${label[$name]}: ${c[$name]} (with the workers' log lines about each request)" |
      tee -a "$d/report.txt"
    head -n 20 "$file" | while IFS=$'\t' read -r a b e rest; do
      # lists are "ID ..." or "CA SERIAL ID ...": show the worker's events about the request id
      local id="$a"
      [[ $a == local || $a == remote ]] && id="$e"
      printf '    %s\n' "$a${b:+ $b}${e:+ $e}${rest:+ $rest}"
      _pc_chaos_events_of "$id"
    done | tee -a "$d/report.txt"
    (($(wc -l <"$file") > 20)) && echo "    ... $(($(wc -l <"$file") - 20)) more in $file" | tee -a "$d/report.txt"
  done
  if [[ -s $d/problems.txt ]]; then
    rc=1
    echo "FAIL: the run itself went wrong:" | tee -a "$d/report.txt"
    sed 's/^/    /' "$d/problems.txt" | tee -a "$d/report.txt"
  fi
  return "$rc"
}

# ---- the run -------------------------------------------------------------------------------------

pc_chaos_run() {
  _ch_dir="$1"
  mkdir -p "$_ch_dir" && _ch_dir="$(cd "$_ch_dir" && pwd)" || return 1
  _ch_t0=""
  _ch_up=() _ch_gen=() _ch_name=() _ch_pid=() _ch_start=() _ch_down_slots=() _ch_workers=()
  : >"$_ch_dir/faults.tsv"
  : >"$_ch_dir/problems.txt"
  _pc_chaos_settings || return 1
  _pc_chaos_events "$_ch_schedule" "$_ch_load_s" || return 1
  RANDOM="$_ch_seed"
  _pc_chaos_log "$_ch_n requests, $_ch_k workers, $_ch_remote_pct% for the remote CA, over $_ch_load_s s;" \
    "faults $_ch_schedule; seed $_ch_seed (PC_CHAOS_SEED)"
  _pc_chaos_make_load || return 1
  local i
  for ((i = 1; i <= _ch_k; i++)); do _pc_chaos_spawn "$i" || return 1; done
  for ((i = 1; i <= _ch_k; i++)); do pc_worker_wait_ready "${_ch_name[i]}" 180 || return 1; done

  # The live watcher says when every request has been answered; the producer paces the load.
  local rate last_event_s
  last_event_s="$(awk -F'\t' -v l="$_ch_load_s" 'END { s = int($1 / 1000) + 1; print (s > l ? s : l) }' \
    "$_ch_dir/events.tsv")"
  rate="$(awk -v n="$_ch_n" -v s="$_ch_load_s" 'BEGIN { printf "%.3f", n / s }')"
  _pc_launch chaos-watch "$_ch_dir/live.log" "$PC_BIN_DIR/pkcsctl" watch --brokers "$PC_KAFKA_BROKERS" \
    --topic "$_ch_res_topic" --ids "$_ch_dir/ids" --latency-csv "$_ch_dir/latency.csv" \
    --timeout $((last_event_s + _ch_deadline))
  _ch_watch_pid="$_pc_launched_pid" _ch_watch_start="$_pc_launched_start"
  _pc_chaos_clock
  _ch_t0="$_ch_now"
  _pc_launch chaos-submit "$_ch_dir/submit.log" "$PC_BIN_DIR/pkcsctl" submit --brokers "$PC_KAFKA_BROKERS" \
    --topic "$_ch_req_topic" --signer-key-id mdm-1 --signer-key "$PC_SERVERS_DIR/signer.pem" \
    --requests "$_ch_dir/requests.jsonl" --rate "$rate" --timeout 120
  _ch_submit_pid="$_pc_launched_pid" _ch_submit_start="$_pc_launched_start"
  _pc_chaos_log "load started: $rate requests/s"

  local ok=1
  _pc_chaos_loop || ok=0
  if ((ok)); then
    _pc_chaos_settle || ok=0
  fi
  if ((!ok)); then
    # The run broke down (a server that did not come back...): nothing sensible to count.
    _pc_chaos_stop_workers
    _pc_stop chaos-submit
    _pc_stop chaos-watch
    _pc_chaos_report_problems_only
    return 1
  fi
  _pc_chaos_sweep_orphans
  _pc_chaos_final_pass
  _pc_chaos_records
  _pc_chaos_count
  _pc_chaos_recovery
  _pc_chaos_report
}

_pc_chaos_report_problems_only() {
  echo "FAIL: the chaos run broke down before anything could be counted:" | tee "$_ch_dir/report.txt"
  sed 's/^/    /' "$_ch_dir/problems.txt" | tee -a "$_ch_dir/report.txt"
}
