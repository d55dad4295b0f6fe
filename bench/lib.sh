# shellcheck shell=bash
# bench/lib.sh - the stack and the measuring steps of pkcs-bench: servers, worker sets, one
# measured run, CPU accounting, latency statistics. Sourced by bench/pkcs-bench after
# tests/lib/cluster.sh; uses its globals ($out, $raw, option values).

bench_log() { printf '[pkcs-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_fail() {
  bench_log "error: $*"
  exit 1
}

machine_cpu() {
  sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1
}

# ---- the stack --------------------------------------------------------------------------------

cfssl_sh="$PC_SOURCE_DIR/tests/lib/cfssl.sh"
cfssl_url=""

# bench_stack_start PARTITIONS: Redis, Kafka with the topics, cfssl (when a CA backend or the
# references need it), the worker configuration, one device key and the request templates.
bench_stack_start() {
  bench_log "starting Redis and a Kafka broker ($1 partitions)"
  pc_cluster_init "$1" >/dev/null 2>&1 || bench_fail "the servers did not start (PC_KEEP_SERVERS_DIR=1 keeps their logs)"
  # The bench measures the workers, not the test harness's short timeouts.
  jq '.worker.drain_timeout_ms = 60000 | .kafka.session_timeout_ms = 6000' \
    "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" && mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
  if [[ ,$cas, == *,cfssl,* ]] || has_scenario refs || has_scenario chaos; then
    bench_cfssl_start
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$PC_SERVERS_DIR/device.pem" 2>/dev/null
  device_spki="$(openssl pkey -in "$PC_SERVERS_DIR/device.pem" -pubout -outform DER | base64 -w0)"
}

# bench_cfssl_start: cfssl serve from Debian with its own CA, added to the workers' CAs as
# "cfssl" with the Device template.
bench_cfssl_start() {
  local cf="$PC_SERVERS_DIR/cfssl" port
  bash "$cfssl_sh" setup "$cf" >/dev/null 2>&1 || bench_fail "cfssl setup failed (is golang-cfssl installed?)"
  port="$(bash "$cfssl_sh" start "$cf" 2>/dev/null)" || bench_fail "cfssl did not start"
  printf '%s %s\n' "$(cat "$cf/cfssl.pid")" "$(_pc_starttime "$(cat "$cf/cfssl.pid")")" \
    >"$PC_SERVERS_DIR/pids/cfssl"
  cfssl_url="http://127.0.0.1:$port"
  jq --arg url "$cfssl_url" --arg key "$cf/auth_key.hex" \
    '.cas += [{"name": "cfssl", "type": "cfssl", "url": $url, "allow_http": true, "auth_key_file": $key,
               "templates": [{"name": "Device", "allowed_ekus": ["clientAuth"],
                 "allowed_key_usages": ["digitalSignature", "keyAgreement", "keyEncipherment"]}]}]' \
    "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" && mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
  bench_log "cfssl serves on $cfssl_url"
}

# The topics the runs use, and their partition count (use_topics switches).
req_topic=pkcs.requests res_topic=pkcs.results cur_partitions="$partitions"
topic_env=()

# use_topics SUFFIX PARTITIONS [RESULTS_PARTITIONS]: new requests and results topics for the runs
# that follow (the results with PARTITIONS unless given); the workers started from now on
# consume them.
use_topics() {
  req_topic="pkcs.requests.$1" res_topic="pkcs.results.$1" cur_partitions="$2"
  pc_kafka_create_topic "$req_topic" "$2" >/dev/null || bench_fail "cannot create $req_topic"
  pc_kafka_create_topic "$res_topic" "${3:-$2}" >/dev/null || bench_fail "cannot create $res_topic"
  topic_env=(PC_REQUESTS_TOPIC="$req_topic" PC_RESULTS_TOPIC="$res_topic")
  workers_stop
}

# bench_submit / bench_watch: pkcsctl submit and watch on the current topics. The watcher
# reads results produced from when it starts (or from watch_since, ms), not the whole topic:
# otherwise each run would read and check every earlier run's results again, and its broker
# and watcher CPU would grow with the runs before it.
bench_submit() { pc_submit --topic "$req_topic" "$@"; }
bench_watch() { pc_watch --topic "$res_topic" --since "${watch_since:-$(date +%s%3N)}" "$@"; }

# template_for ALG CA: the request template of one run (a device certificate with a DNS SAN,
# which both CAs keep), written once.
template_for() {
  local alg="$1" ca="$2" file="$PC_SERVERS_DIR/template-$1-$2.json" kalg ksize
  if [[ ! -f $file ]]; then
    kalg="${alg%%-*}" ksize="${alg##*-}"
    [[ $kalg == P ]] && kalg=EC
    jq -n --arg ca "$ca" --arg kalg "$kalg" --argjson ksize "$ksize" --arg spki "$device_spki" '
      {schemaVersion: 1, tenantId: "bench", kind: "ISSUE",
       issue: {devicePublicKey: $spki,
         profile: {caName: $ca, templateName: "Device", certificateType: "DEVICE",
           subjectFormat: "CN={{DeviceName}},O=Contoso",
           subjectAlternativeNames: [{type: "DNS", format: "{{DeviceName}}.corp.contoso.com"}],
           extendedKeyUsages: ["clientAuth"], keyAlgorithm: $kalg, keySize: $ksize},
         attributes: {DeviceName: "ws-{n}"}}}' >"$file"
  fi
  printf '%s\n' "$file"
}

count_for() { [[ $1 == RSA-* ]] && echo "$count_rsa" || echo "$count_ec"; }

# ---- worker sets ------------------------------------------------------------------------------

workers_running=()   # names of the running workers
workers_signature="" # "N|VAR=VALUE..." of the running set
worker_generation=0

# workers_up N [VAR=VALUE...]: exactly N workers with these settings, all in the group and
# together owning every partition. A running set with the same settings is kept.
workers_up() {
  local n="$1" sig="$*" i name
  shift
  [[ $sig == "$workers_signature" ]] && return 0
  workers_stop
  worker_generation=$((worker_generation + 1))
  bench_log "starting $n worker(s) ${*:-}"
  for ((i = 1; i <= n; i++)); do
    name="g$worker_generation-w$i"
    pc_worker_spawn "$name" PC_LOG_LEVEL=warn "${topic_env[@]}" "$@"
    workers_running+=("$name")
  done
  for name in "${workers_running[@]}"; do
    pc_worker_wait_ready "$name" 180 >/dev/null || bench_fail "worker $name did not become ready"
  done
  group_settled "$n" 300 || bench_fail "the $n workers did not share out the $cur_partitions partitions"
  workers_signature="$sig"
}

# workers_stop: SIGTERM to every running worker at once, then wait for all (SIGKILL after 60 s).
workers_stop() {
  local name pids=() pid i
  ((${#workers_running[@]} > 0)) || return 0
  for name in "${workers_running[@]}"; do
    pid="$(pc_worker_pid "$name")"
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for ((i = 0; i < 600; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1 && break; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for name in "${workers_running[@]}"; do rm -f "$PC_SERVERS_DIR/pids/$name"; done
  workers_running=()
  workers_signature=""
}

# live_counts: the counts JSON of every worker whose heartbeat is current, one per line.
live_counts() {
  local now id
  now="$(redis-cli -p "$PC_REDIS_PORT" TIME | head -1)"
  for id in $(redis-cli -p "$PC_REDIS_PORT" ZRANGEBYSCORE pc:workers "$((now * 1000))" +inf); do
    redis-cli -p "$PC_REDIS_PORT" HGET "pc:worker:{$id}" counts
  done
}

# assigned_partitions: how many distinct partitions the live workers own, and how many of
# them are in the group: "PARTITIONS MEMBERS".
assigned_partitions() {
  live_counts | jq -s -r '[.[] | select(.in_group)] as $m
    | "\([$m[].partitions[]?] | unique | length) \($m | length)"'
}

# group_settled N SECONDS: every partition owned by one of N members, and unchanged for 3 s.
group_settled() {
  local n="$1" limit="$2" i want="$cur_partitions $1" got stable=0
  for ((i = 0; i < limit * 2; i++)); do
    got="$(assigned_partitions 2>/dev/null || true)"
    if [[ $got == "$want" ]]; then
      stable=$((stable + 1))
      ((stable >= 6)) && return 0
    else
      stable=0
    fi
    sleep 0.5
  done
  bench_log "group not settled after ${limit}s: partitions/members $got, want $want"
  return 1
}

# ---- CPU accounting ---------------------------------------------------------------------------

clk_tck="$(getconf CLK_TCK)"

# cpu_ticks PID...: user + system clock ticks of these processes so far (gone ones count 0).
cpu_ticks() {
  local pid
  for pid in "$@"; do echo "/proc/$pid/stat"; done | stat_ticks
}

# stat_ticks: user + system clock ticks of the /proc stat files named on stdin, a path a line
# (a process's or one of its threads'; gone ones count 0).
stat_ticks() {
  local file total=0 stat
  while read -r file; do
    stat="$(cat "$file" 2>/dev/null)" || continue
    stat="${stat##*) }" # fields after the command name; utime and stime are 12th and 13th
    read -r -a f <<<"$stat"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# jit_ticks PID: user + system clock ticks so far of the JVM's JIT compiler threads in PID: a
# broker started for the bench compiles its hot code during the first runs, which a broker that
# has served for hours does not; the runs report it apart.
jit_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    if [[ $(cat "$t/comm" 2>/dev/null) == C[12]\ CompilerThre* ]]; then echo "$t/stat"; fi
  done | stat_ticks
}

worker_pids() {
  local name
  for name in "${workers_running[@]}"; do pc_worker_pid "$name"; done
}
server_pid() { cut -d' ' -f1 "$PC_SERVERS_DIR/pids/$1"; }
ticks_to_s() { awk -v t="$1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }'; }

# ---- one measured run -------------------------------------------------------------------------

run_seq=0

# latency_stats FILE [FROM_MS]: from a `pkcsctl watch --latency-csv` file (header
# request_id,status,created_at_ms,read_at_ms,latency_ms), for requests created at or after
# FROM_MS: "n ok errors seconds throughput p50 p90 p99 max mean".
latency_stats() {
  local file="$1" from="${2:-0}"
  awk -F, -v from="$from" 'NR > 1 && $3 >= from {
      n++; if ($2 ~ /ISSUED|REVOKED|IMPORTED/) ok++
      if (first == "" || $3 < first) first = $3
      if ($4 > last) last = $4
      print $5 > "/dev/stderr"
    }
    END {
      secs = (last - first) / 1000; if (secs <= 0) secs = 0.001
      printf "%d %d %d %.2f %.1f\n", n, ok, n - ok, secs, n / secs
    }' "$file" 2>"$file.lat" | {
    read -r n ok errors secs tput
    sort -n "$file.lat" | awk -v n="$n" -v head="$n $ok $errors $secs $tput" '
      function at(q,   i) { i = int(q * n + 0.999999); if (i < 1) i = 1; return v[i] }
      { v[NR] = $1; sum += $1 }
      END {
        if (n == 0) { print head " 0 0 0 0 0"; exit }
        printf "%s %.0f %.0f %.0f %.0f %.0f\n", head, at(0.5), at(0.9), at(0.99), v[n], sum / n
      }'
  }
  rm -f "$file.lat"
}

# measure SCENARIO ALG CA COUNT RATE [SUBMIT_ARGS...]: one run against the running workers:
# COUNT requests from ALG's template (RATE empty: as fast as possible), every result awaited.
# Appends a line to runs.csv and sets last_run to the run id (not printed: a $(...) subshell
# would lose the run counter).
measure() {
  local scenario="$1" alg="$2" ca="$3" count="$4" rate="$5" id ids lat watch_pid t0 tw tk tr tj
  shift 5
  run_seq=$((run_seq + 1))
  id="r$run_seq"
  ids="$raw/$id.ids" lat="$raw/$id.latency.csv"
  printf "$id-%06d\n" $(seq 1 "$count") >"$ids"
  bench_watch --ids "$ids" --latency-csv "$lat" --timeout 1800 >"$raw/$id.watch" 2>&1 &
  watch_pid=$!
  sleep 2 # the watcher has joined before the first request is created
  # counted before the CPU snapshot: the count is a script over every CA record in Redis, not
  # the workers' load
  local issued_before
  issued_before="$(pc_ca_issued)"
  t0=$(cpu_ticks $(worker_pids)) tk=$(cpu_ticks "$(server_pid kafka)") tr=$(cpu_ticks "$(server_pid redis)")
  tj=$(jit_ticks "$(server_pid kafka)")
  bench_submit --template "$(template_for "$alg" "$ca")" --count "$count" --id-prefix "$id" \
    ${rate:+--rate "$rate"} "$@" >"$raw/$id.submit" 2>&1 || bench_fail "run $id: submit failed: $(tail -2 "$raw/$id.submit")"
  wait "$watch_pid" || bench_fail "run $id: not every result arrived: $(tail -2 "$raw/$id.watch")"
  tw=$(($(cpu_ticks $(worker_pids)) - t0))
  tk=$(($(cpu_ticks "$(server_pid kafka)") - tk)) tr=$(($(cpu_ticks "$(server_pid redis)") - tr))
  tj=$(($(jit_ticks "$(server_pid kafka)") - tj))
  run_record "$id" "$scenario" "$alg" "$ca" "${#workers_running[@]}" "$rate" "$lat" "$tw" "$tk" "$tr" \
    "$(duplicates_of "$raw/$id.watch")" "$(( $(pc_ca_issued) - issued_before ))" "$tj"
  last_run="$id"
}

# duplicates_of WATCH_OUTPUT: results that gave one request a second, different certificate.
duplicates_of() {
  sed -n 's/.*DIFFERENT certificate: \([0-9]*\).*/\1/p' "$1" | head -1
}

runs_csv_header() {
  echo "run,scenario,alg,ca,workers,requests,rate_target,seconds,throughput,p50_ms,p90_ms,p99_ms,max_ms,mean_ms,ok,errors,duplicates,local_ca_signed,worker_cpu_s,worker_cpu_ms_per_req,kafka_cpu_s,redis_cpu_s,kafka_jit_cpu_s,kafka_cpu_ms_per_req,kafka_jit_ms_per_req,redis_cpu_ms_per_req"
}

# per_req TICKS N: milliseconds of CPU per request.
per_req() { awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN { printf "%.3f", n ? 1000 * t / hz / n : 0 }'; }

# run_record ID SCENARIO ALG CA WORKERS RATE LATENCY_CSV WORKER_TICKS KAFKA_TICKS REDIS_TICKS
#   DUPLICATES SIGNED KAFKA_JIT_TICKS: one runs.csv line, and a log line a person can read.
run_record() {
  local id="$1" scenario="$2" alg="$3" ca="$4" nw="$5" rate="$6" lat="$7" tw="$8" tk="$9"
  local tr="${10}" dups="${11:-0}" signed="${12}" tj="${13:-0}"
  local n ok errors secs tput p50 p90 p99 max mean
  read -r n ok errors secs tput p50 p90 p99 max mean <<<"$(latency_stats "$lat")"
  local w_req k_req j_req r_req
  w_req="$(per_req "$tw" "$n")" k_req="$(per_req "$tk" "$n")" j_req="$(per_req "$tj" "$n")" r_req="$(per_req "$tr" "$n")"
  [[ $ca == local ]] || signed=""
  echo "$id,$scenario,$alg,$ca,$nw,$n,${rate:-max},$secs,$tput,$p50,$p90,$p99,$max,$mean,$ok,$errors,$dups,$signed,$(ticks_to_s "$tw"),$w_req,$(ticks_to_s "$tk"),$(ticks_to_s "$tr"),$(ticks_to_s "$tj"),$k_req,$j_req,$r_req" \
    >>"$out/runs.csv"
  bench_log "$id $scenario $alg via $ca, $nw worker(s): $n requests, $tput req/s," \
    "p50 $p50 / p99 $p99 / max $max ms, errors $errors; CPU ms/request: workers $w_req," \
    "broker $k_req (JIT $j_req), Redis $r_req"
}

# runs_field RUN COLUMN: one value of runs.csv.
runs_field() {
  awk -F, -v run="$1" -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    $1 == run { print $c[col] }' "$out/runs.csv"
}
