# shellcheck shell=bash
# bench/scenarios.sh - the scenarios of pkcs-bench, one function each. Sourced by
# bench/pkcs-bench; each appends to runs.csv or references.csv through bench/lib.sh.

ncores="$(nproc)"

# Steady runs measure what the workers sustain, so no keys are made ahead of time: a key pool
# only moves work to quiet moments, it adds no capacity, and with a few hundred requests a warm
# pool would inflate the figure. The burst scenario measures the pool.
steady_env=(PC_KEY_POOL_SIZE=0)

# ---- references -------------------------------------------------------------------------------

refs_csv_header() { echo "reference,alg,concurrency,throughput,p50_ms,p90_ms,p99_ms,mean_ms,errors,cpu_us_per_op"; }

# engine_case NAME THREADS [ARGS...]: "RATE_1 RATE_N CPU_US_1 CPU_US_N" of one
# pkcs-bench-engine case, on one thread and on THREADS, its CA recording in this stack's Redis
# as the workers' CA does, the device key P-256 as in the end-to-end runs (ARGS may change it).
engine_case() {
  local name="$1" threads="$2"
  shift 2
  "$PC_BIN_DIR/pkcs-bench-engine" --seconds "$ref_seconds" --threads "$threads" --only "$name" \
    --redis "$PC_REDIS_PORT" "$@" |
    awk -F'|' -v name="$name" '{ n = $2; gsub(/^ +| +$/, "", n) }
      n == name { for (i = 3; i <= 7; i++) gsub(/ /, "", $i); print $3, $4, $6, $7 }'
}

# openssl_sign ALG: signatures/s of `openssl speed` for ALG's key on one thread (OpenSSL counts
# its CPU time, as the engine does): what the CA's one signature per certificate costs at least.
openssl_sign() {
  local what
  case "$1" in
  P-256) what=ecdsap256 ;; P-384) what=ecdsap384 ;; RSA-2048) what=rsa2048 ;; RSA-3072) what=rsa3072 ;;
  esac
  openssl speed -seconds "$ref_seconds" "$what" 2>/dev/null |
    awk '/^ *(rsa [0-9]+ bits|[0-9]+ bits ecdsa)/ { print $(NF - 1) }' | tail -1
}

# scenario_refs: per algorithm, the engine floor on every core (CPU per request on one thread,
# with a P-256 and, for P-256, an RSA device key), one CA signature by `openssl speed`, and cfssl
# newcert at the same concurrency, measured while no worker runs.
scenario_refs() {
  local alg rate line r1 rn c1 cn sign
  workers_stop
  for alg in ${algs//,/ }; do
    bench_log "reference: engine floor $alg on 1 and $ncores threads"
    read -r r1 rn c1 cn <<<"$(engine_case "engine request $alg" "$ncores")"
    echo "engine floor,$alg,$ncores,$rn,,,,,,$cn" >>"$out/references.csv"
    echo "engine request (1 thread),$alg,1,$r1,,,,,,$c1" >>"$out/references.csv"
    if [[ $alg == P-256 ]]; then
      read -r r1 rn c1 cn <<<"$(engine_case "engine request $alg" 1 --device-key rsa)"
      echo "engine request with an RSA device key (1 thread),$alg,1,$r1,,,,,,$c1" >>"$out/references.csv"
    fi
    sign="$(openssl_sign "$alg")"
    echo "openssl speed sign (1 thread),$alg,1,$sign,,,,,,$(awk -v s="$sign" 'BEGIN { if (s > 0) printf "%.1f", 1e6 / s }')" \
      >>"$out/references.csv"
    bench_log "reference: cfssl newcert $alg at concurrency $ncores"
    line="$("$PC_BIN_DIR/pkcs-bench-cfssl" --url "$cfssl_url" --alg "$alg" \
      --concurrency "$ncores" --seconds "$ref_seconds" --csv)" ||
      bench_fail "cfssl newcert $alg failed: $line"
    # alg,concurrency,requests,errors,seconds,req_per_s,p50,p90,p99,max,mean
    echo "$line" | awk -F, '{ printf "cfssl newcert,%s,%s,%s,%s,%s,%s,%s,%s,\n", $1, $2, $6, $7, $8, $9, $11, $4 }' \
      >>"$out/references.csv"
  done
  if [[ ,$algs, == *,RSA-2048,* ]]; then
    read -r r1 rn c1 cn <<<"$(engine_case "keygen RSA-2048 fast" 1)"
    echo "RSA-2048 keygen (1 thread),RSA-2048,1,$r1,,,,,,$c1" >>"$out/references.csv"
  fi
}

# ---- warm-up ----------------------------------------------------------------------------------

# bench_warmup: $warmup P-256 requests through the local CA before anything is measured, not
# recorded, so that the broker's JIT compiles its hot code under this load rather than during
# the measured runs (they report what JIT is left, apart).
bench_warmup() {
  ((warmup > 0)) || return 0
  local ids="$raw/warmup.ids" k0 j0 watch_pid
  workers_up "$ncores" "${steady_env[@]}"
  bench_log "warm-up: $warmup P-256 requests, not measured"
  printf "warmup-%06d\n" $(seq 1 "$warmup") >"$ids"
  k0=$(cpu_ticks "$(server_pid kafka)") j0=$(jit_ticks "$(server_pid kafka)")
  bench_watch --ids "$ids" --timeout 1800 >"$raw/warmup.watch" 2>&1 &
  watch_pid=$!
  sleep 2
  bench_submit --template "$(template_for P-256 local)" --count "$warmup" --id-prefix warmup \
    >"$raw/warmup.submit" 2>&1 || bench_fail "warm-up: submit failed: $(tail -2 "$raw/warmup.submit")"
  wait "$watch_pid" || bench_fail "warm-up: not every result arrived: $(tail -2 "$raw/warmup.watch")"
  bench_log "warm-up done: broker CPU $(ticks_to_s $(($(cpu_ticks "$(server_pid kafka)") - k0))) s," \
    "of it JIT $(ticks_to_s $(($(jit_ticks "$(server_pid kafka)") - j0))) s"
}

# ---- steady load ------------------------------------------------------------------------------

scenario_steady() {
  local ca alg nw
  for ca in ${cas//,/ }; do
    for alg in ${algs//,/ }; do
      for nw in ${workers_list//,/ }; do
        workers_up "$nw" "${steady_env[@]}"
        measure steady "$alg" "$ca" "$(count_for "$alg")" "$rate"
      done
    done
  done
}

# best_steady ALG CA: "RUN THROUGHPUT WORKERS" of the fastest steady run, or nothing.
best_steady() {
  awk -F, -v alg="$1" -v ca="$2" 'NR > 1 && $2 == "steady" && $3 == alg && $4 == ca &&
    $9 > best { best = $9; run = $1; w = $5 } END { if (run != "") print run, best, w }' "$out/runs.csv"
}

# ---- latency against load ---------------------------------------------------------------------

# load_alg: RSA-2048 when measured (the latency target is in RSA-2048 keygen times), else the
# first algorithm.
load_alg() { [[ ,$algs, == *,RSA-2048,* ]] && echo RSA-2048 || echo "${algs%%,*}"; }

# scenario_load: the capacity is the best steady run (measured here when there is none); then
# runs at 25, 50, 75 and 90% of it, each about 20 s long, on the same number of workers. These
# run as deployed, with the key pool on (its default size, for this algorithm): below capacity,
# idle moments make keys ahead, and latency is what a device sees.
scenario_load() {
  local alg best cap nw pct r count
  alg="$(load_alg)"
  best="$(best_steady "$alg" local)"
  if [[ -z $best ]]; then
    workers_up "$ncores" "${steady_env[@]}"
    measure steady "$alg" local "$(count_for "$alg")" ""
    best="$(best_steady "$alg" local)"
  fi
  read -r _ cap nw <<<"$best"
  workers_up "$nw" PC_KEY_POOL_ALGORITHMS="$alg"
  sleep 10 # the pools fill as they would between bursts of work
  for pct in 25 50 75 90; do
    r="$(awk -v c="$cap" -v p="$pct" 'BEGIN { printf "%.2f", c * p / 100 }')"
    count="$(awk -v r="$r" 'BEGIN { n = int(r * 20); print (n < 20 ? 20 : n) }')"
    bench_log "load: $alg at $pct% of $cap req/s = $r req/s"
    measure "load-$pct" "$alg" local "$count" "$r"
  done
}

# ---- burst after a quiet period ---------------------------------------------------------------

# pool_keys WORKER: keys ready in its pool (from /metrics).
pool_keys() {
  curl -s "http://127.0.0.1:$(pc_worker_port "$1")/metrics" |
    awk '/^pkcs_key_pool_keys/ { s += $2 } END { print s + 0 }'
}

# scenario_burst: per algorithm, BURST requests at once after QUIET seconds with no traffic, on
# as many workers as cores, each key pool holding its share of the burst.
scenario_burst() {
  local alg per name total
  per=$(((burst + ncores - 1) / ncores + 4))
  for alg in ${algs//,/ }; do
    workers_up "$ncores" PC_KEY_POOL_SIZE="$per" PC_KEY_POOL_ALGORITHMS="$alg"
    bench_log "burst: quiet for ${quiet}s while the key pools fill ($per $alg keys each)"
    sleep "$quiet"
    total=0
    for name in "${workers_running[@]}"; do total=$((total + $(pool_keys "$name"))); done
    bench_log "burst: $total keys ready; $burst $alg requests at once"
    measure burst "$alg" local "$burst" ""
  done
}

# ---- mixed kinds ------------------------------------------------------------------------------

mix_share() { # mix_share KIND: its percentage in --mix
  echo "$mix" | tr ',' '\n' | sed -n "s/^$1=\([0-9]*\)$/\1/p"
}

# mix_revokes N ISSUED_JSONL OUT: N REVOKE requests (JSON lines) for certificates of results.
mix_revokes() {
  jq -c --arg prefix "$4" 'select(.status == "ISSUED") |
    {schemaVersion: 1, tenantId: "bench", kind: "REVOKE",
     requestId: ($prefix + "-" + .requestId), deviceId: ("revoked-" + .requestId),
     revoke: {caName: "local", serialNumber: .serialNumber, reason: "SUPERSEDED"}}' "$2" |
    head -n "$1" >"$3"
}

# mix_imports N PREFIX OUT: N IMPORT_PFX requests for one administrator PFX.
mix_imports() {
  local n="$1" prefix="$2" d="$PC_SERVERS_DIR/import" i
  # the key and the password only for us: pkcsctl refuses a secret others can read
  (
    umask 077
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/smime.key" -out "$d/smime.crt" -days 30 \
      -subj "/CN=Bench Admin/emailAddress=admin@contoso.com" -addext "extendedKeyUsage=emailProtection" \
      -addext "keyUsage=digitalSignature,keyEncipherment" 2>/dev/null
    printf 'bench pfx password\n' >"$d/password"
  )
  openssl pkcs12 -export -inkey "$d/smime.key" -in "$d/smime.crt" -out "$d/smime.pfx" \
    -passout "file:$d/password"
  "$PC_BIN_DIR/pkcsctl" import-encrypt --pub "$d/../import.pub" --pfx "$d/smime.pfx" \
    --password-file "$d/password" --device-key "$PC_SERVERS_DIR/device.pem" \
    --request-id "$prefix-template" --tenant bench --user-id admin --device-id dev \
    --purpose smime_encryption --out "$d/template.json" >/dev/null ||
    bench_fail "pkcsctl import-encrypt failed"
  # Without the template's createdAtMs, submit stamps each request as it sends it (the
  # template's own time would count the wait here as latency).
  for ((i = 1; i <= n; i++)); do
    jq -c --arg id "$(printf '%s-%06d' "$prefix" "$i")" '.requestId = $id | .deviceId = ("dev-" + $id) | del(.createdAtMs)' \
      "$d/template.json"
  done >"$3"
}

# scenario_mix: first issue the certificates to revoke; then issue, revoke and import requests
# go in together (two producers), and each kind's latency is reported on its own.
scenario_mix() {
  local alg="${algs%%,*}" total n_rev n_imp n_iss id lat watch_pid
  total="$(count_for "$alg")"
  n_rev=$((total * $(mix_share revoke) / 100)) n_imp=$((total * $(mix_share import) / 100))
  n_iss=$((total - n_rev - n_imp))
  "$PC_BIN_DIR/pkcsctl" import-key --out-key "$PC_SERVERS_DIR/import.key" \
    --out-pub "$PC_SERVERS_DIR/import.pub" --bits 2048 >/dev/null
  workers_up "$ncores" "${steady_env[@]}" PC_IMPORT_KEY_FILE="$PC_SERVERS_DIR/import.key"
  bench_log "mix: issuing $n_rev certificates to revoke later"
  local pre setup_ms
  setup_ms="$(date +%s%3N)"
  measure mix-setup "$alg" local "$n_rev" ""
  pre="$last_run"
  watch_since="$setup_ms" bench_watch --ids "$raw/$pre.ids" --json --timeout 300 >"$raw/$pre.results" 2>/dev/null ||
    bench_fail "mix: could not read back the certificates to revoke"
  grep '^{' "$raw/$pre.results" >"$raw/$pre.jsonl"
  run_seq=$((run_seq + 1))
  id="r$run_seq"
  mix_revokes "$n_rev" "$raw/$pre.jsonl" "$raw/$id.revoke.jsonl" "$id"
  mix_imports "$n_imp" "$id-imp" "$raw/$id.import.jsonl"
  { printf "$id-%06d\n" $(seq 1 "$n_iss"); jq -r .requestId "$raw/$id.revoke.jsonl" "$raw/$id.import.jsonl"; } \
    >"$raw/$id.ids"
  lat="$raw/$id.latency.csv"
  bench_watch --ids "$raw/$id.ids" --latency-csv "$lat" --timeout 1800 >"$raw/$id.watch" 2>&1 &
  watch_pid=$!
  sleep 2
  local t0 tk tr
  t0=$(cpu_ticks $(worker_pids)) tk=$(cpu_ticks "$(server_pid kafka)") tr=$(cpu_ticks "$(server_pid redis)")
  bench_submit --template "$(template_for "$alg" local)" --count "$n_iss" --id-prefix "$id" >/dev/null 2>&1 &
  local issue_pid=$!
  cat "$raw/$id.revoke.jsonl" "$raw/$id.import.jsonl" | shuf >"$raw/$id.other.jsonl"
  bench_submit --requests "$raw/$id.other.jsonl" >/dev/null 2>&1 ||
    bench_fail "mix: submitting revoke and import requests failed"
  wait "$issue_pid" || bench_fail "mix: submitting issue requests failed"
  wait "$watch_pid" || bench_fail "mix: not every result arrived: $(tail -2 "$raw/$id.watch")"
  t0=$(($(cpu_ticks $(worker_pids)) - t0))
  tk=$(($(cpu_ticks "$(server_pid kafka)") - tk)) tr=$(($(cpu_ticks "$(server_pid redis)") - tr))
  run_record "$id" mix "$alg+revoke+import" local "${#workers_running[@]}" "" "$lat" "$t0" "$tk" "$tr" \
    "$(duplicates_of "$raw/$id.watch")" ""
  local kind status
  for kind in ISSUED:issue REVOKED:revoke IMPORTED:import; do
    status="${kind%%:*}"
    awk -F, -v s="$status" 'NR == 1 || $2 == s' "$lat" >"$lat.$status"
    run_record "$id-${kind#*:}" "mix-${kind#*:}" "$alg" local "${#workers_running[@]}" "" \
      "$lat.$status" 0 0 0 "" ""
  done
}

# ---- many workers -----------------------------------------------------------------------------

# Many workers on few cores: one pool thread each, and a smaller in-flight window, so that the
# machine is shared out rather than oversubscribed by hundreds of threads.
scale_env=(PC_THREADPOOL_SIZE=1 PC_MAX_IN_FLIGHT=8)

# scenario_scale: the same P-256 load on 4 workers, then on SCALE workers in one group.
scenario_scale() {
  local alg="P-256" count="$count_ec"
  workers_up 4 "${steady_env[@]}"
  idle_measure 4
  measure scale-4 "$alg" local "$count" ""
  workers_up "$scale" "${steady_env[@]}" "${scale_env[@]}"
  idle_measure "$scale"
  measure "scale-$scale" "$alg" local "$count" ""
}

# idle_measure N: what the N running workers cost while no request comes, over 20 s: CPU
# ms per second of each worker, and of the broker and Redis in all (heartbeats, fetches that
# wait at the broker, leases). Appends to idle.csv.
idle_measure() {
  local n="$1" secs=20 tw tk tr
  [[ -f $out/idle.csv ]] || echo "workers,seconds,worker_cpu_ms_per_s_each,broker_cpu_ms_per_s,redis_cpu_ms_per_s" >"$out/idle.csv"
  sleep 5 # past the start-up and the group's settling
  tw=$(cpu_ticks $(worker_pids)) tk=$(cpu_ticks "$(server_pid kafka)") tr=$(cpu_ticks "$(server_pid redis)")
  sleep "$secs"
  tw=$(($(cpu_ticks $(worker_pids)) - tw))
  tk=$(($(cpu_ticks "$(server_pid kafka)") - tk)) tr=$(($(cpu_ticks "$(server_pid redis)") - tr))
  awk -v n="$n" -v s="$secs" -v w="$tw" -v k="$tk" -v r="$tr" -v hz="$clk_tck" 'BEGIN {
    printf "%d,%d,%.2f,%.1f,%.1f\n", n, s, 1000 * w / hz / s / n, 1000 * k / hz / s, 1000 * r / hz / s }' \
    >>"$out/idle.csv"
  bench_log "idle, $n workers: $(tail -1 "$out/idle.csv") (workers,s,each ms/s,broker ms/s,Redis ms/s)"
}

# scenario_failover: SCALE workers under a steady P-256 load at half the 4-worker rate; one
# worker that owns partitions is killed (SIGKILL) a third of the way in. The requests created
# after the kill show how long its partitions went unserved.
scenario_failover() {
  local alg="P-256" r4 rate seconds count victim id lat watch_pid kill_ms
  workers_up "$scale" "${steady_env[@]}" "${scale_env[@]}"
  r4="$(awk -F, 'NR > 1 && $2 == "scale-4" { print $9 }' "$out/runs.csv" | tail -1)"
  rate="$(awk -v r="${r4:-100}" 'BEGIN { printf "%.0f", r / 2 }')"
  seconds=45
  count=$((rate * seconds))
  run_seq=$((run_seq + 1))
  id="r$run_seq" lat="$raw/r$run_seq.latency.csv"
  printf "$id-%06d\n" $(seq 1 "$count") >"$raw/$id.ids"
  bench_watch --ids "$raw/$id.ids" --latency-csv "$lat" --timeout 600 >"$raw/$id.watch" 2>&1 &
  watch_pid=$!
  sleep 2
  bench_submit --template "$(template_for "$alg" local)" --count "$count" --id-prefix "$id" \
    --rate "$rate" >"$raw/$id.submit" 2>&1 &
  local submit_pid=$!
  sleep $((seconds / 3))
  victim="$(victim_worker)"
  kill_ms="$(date +%s%3N)"
  kill -KILL "$(pc_worker_pid "$victim")"
  bench_log "failover: killed $victim (owned partitions $(victim_partitions "$victim")) at $rate req/s"
  wait "$submit_pid" || bench_fail "failover: submit failed: $(tail -2 "$raw/$id.submit")"
  wait "$watch_pid" || bench_fail "failover: not every result arrived: $(tail -2 "$raw/$id.watch")"
  run_record "$id" failover "$alg" local "$scale" "$rate" "$lat" 0 0 0 "$(duplicates_of "$raw/$id.watch")" ""
  local after
  after="$(latency_stats "$lat" "$kill_ms")"
  echo "$id $kill_ms $after" >"$raw/failover.result"
  printf '%s\n' "${workers_running[@]}" | grep -vx "$victim" >"$raw/survivors" || true
  mapfile -t workers_running <"$raw/survivors"
  rm -f "$PC_SERVERS_DIR/pids/$victim"
}

# victim_worker: a running worker that owns at least one partition.
victim_worker() {
  local name
  for name in "${workers_running[@]}"; do
    [[ -n $(victim_partitions "$name") ]] && { echo "$name"; return; }
  done
  echo "${workers_running[0]}"
}
victim_partitions() {
  redis-cli -p "$PC_REDIS_PORT" HGET "pc:worker:{$1}" counts | jq -r '.partitions | join(" ")'
}

# ---- chaos --------------------------------------------------------------------------------------

# scenario_chaos: tests/lib/chaos.sh's run, the same code as the CI suite's, on topics and a
# consumer group of its own: CHAOS requests (local CA and cfssl) through CHAOS_WORKERS workers
# while the schedule's faults happen, then the counts and the recovery times. Its latency line
# in runs.csv takes each request's first result read (the watcher reads the topic again from
# the start when the broker comes back). Sets chaos_verdict (0: the promise held).
scenario_chaos() {
  local dir="$raw/chaos" lat="$raw/chaos-first.latency.csv"
  workers_stop
  use_topics chaos "$partitions"
  bench_log "chaos: $chaos_requests requests through $chaos_workers workers over $chaos_seconds s;" \
    "faults $chaos_schedule"
  chaos_verdict=0
  PC_CHAOS_REQUESTS="$chaos_requests" PC_CHAOS_WORKERS="$chaos_workers" \
    PC_CHAOS_LOAD_SECONDS="$chaos_seconds" PC_CHAOS_REMOTE_PERCENT="$chaos_remote" \
    PC_CHAOS_SCHEDULE="$chaos_schedule" PC_CHAOS_SEED="$chaos_seed" \
    PC_CHAOS_LOCAL_CA=local PC_CHAOS_REMOTE_CA=cfssl \
    PC_CFSSL_DIR="$PC_SERVERS_DIR/cfssl" PC_CFSSL_PORT="${cfssl_url##*:}" \
    PC_CHAOS_REQUESTS_TOPIC="$req_topic" PC_CHAOS_RESULTS_TOPIC="$res_topic" \
    PC_CHAOS_GROUP=pkcs-workers-chaos PC_CHAOS_PARTITIONS="$cur_partitions" PC_CHAOS_PREFIX=chaos \
    pc_chaos_run "$dir" || chaos_verdict=1
  local f
  for f in counts.csv faults.csv report.txt; do
    [[ -f $dir/$f ]] && cp "$dir/$f" "$out/chaos-${f%.*}.${f##*.}"
  done
  if [[ -s $dir/latency.csv ]]; then
    awk -F, 'NR == 1 || !seen[$1]++' "$dir/latency.csv" >"$lat"
    run_record chaos chaos P-256 local+cfssl "$chaos_workers" \
      "$(awk -v n="$chaos_requests" -v s="$chaos_seconds" 'BEGIN { printf "%.2f", n / s }')" \
      "$lat" 0 0 0 "$(awk -F, '$1 == "two_certificates" { print $2 }' "$dir/counts.csv" 2>/dev/null)" ""
  fi
  ((chaos_verdict == 0)) || bench_log "chaos: the promise did NOT hold (see $out/chaos-report.txt)"
}
