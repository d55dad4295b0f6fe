# shellcheck shell=bash
# bench/report.sh - turns runs.csv and references.csv into report.md (tables and the targets)
# and PNG plots (gnuplot). Sourced by bench/pkcs-bench.

# csv_rows FILE AWK_FILTER FORMAT COLUMNS...: Markdown rows of the lines matching the filter.
md_table() {
  local file="$1" filter="$2" header="$3" cols="$4"
  echo "$header"
  echo "$header" | sed 's/[^|]*|/---|/g; s/^---|/|/'
  awk -F, -v cols="$cols" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    '"$filter"' { n = split(cols, k, " "); line = "|"
      for (i = 1; i <= n; i++) line = line " " $c[k[i]] " |"
      print line }' "$file"
}

ref_rate() { # ref_rate REFERENCE ALG
  awk -F, -v r="$1" -v a="$2" '$1 == r && $2 == a { print $4 }' "$out/references.csv" | tail -1
}
ref_cpu() { # ref_cpu REFERENCE ALG: its CPU us per operation
  awk -F, -v r="$1" -v a="$2" '$1 == r && $2 == a { print $10 }' "$out/references.csv" | tail -1
}
best_rate() { # best_rate ALG: best steady end-to-end req/s on the local CA
  best_steady "$1" local | awk '{ print $2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else printf "%.2f", a / b }'; }
meets() { # meets VALUE OP LIMIT: yes / no / "not measured"
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "") { print "not measured"; exit }
    ok = (op == ">=") ? v >= l : (op == "<=") ? v <= l : v < l
    print ok ? "yes" : "**no**" }'
}

# target_rows: the issue's targets, measured value and verdict, one Markdown row each.
target_rows() {
  local r_rsa r_ec f_rsa f_ec c_rsa keygen p99_half burst_p50 scale4 scalen dup signed n
  r_rsa="$(best_rate RSA-2048)" r_ec="$(best_rate P-256)"
  f_rsa="$(ref_rate "engine floor" RSA-2048)" f_ec="$(ref_rate "engine floor" P-256)"
  c_rsa="$(ref_rate "cfssl newcert" RSA-2048)"
  keygen="$(ref_rate "RSA-2048 keygen (1 thread)" RSA-2048)"
  local v e_rsa e_ec sign run k j r
  e_rsa="$(ref_cpu "engine request with an RSA device key (1 thread)" P-256)"
  e_ec="$(ref_cpu "engine request (1 thread)" P-256)"
  sign="$(ref_cpu "openssl speed sign (1 thread)" P-256)"
  echo "| engine, P-256 request with an RSA-2048 device key, 1 thread: CPU | <= 400 us | ${e_rsa:+$e_rsa us} | $(meets "$e_rsa" "<=" 400) |"
  echo "| engine, P-256 request with a P-256 device key, 1 thread: CPU | <= 500 us | ${e_ec:+$e_ec us} | $(meets "$e_ec" "<=" 500) |"
  v="$(ratio "$e_rsa" "$sign")"
  echo "| the same (RSA device key) in ECDSA P-256 signatures of \`openssl speed\` (${sign:-?} us each) | <= 11 | $v | $(meets "$v" "<=" 11) |"
  echo "| P-256 end to end, local CA | >= 2000 req/s | ${r_ec:-} req/s | $(meets "$r_ec" ">=" 2000) |"
  v="$(ratio "$r_ec" "$f_ec")"
  echo "| P-256 end to end vs engine floor (same work: P-256 device keys, CA records in Redis) | >= 70% | $(pct "$v") ($r_ec vs $f_ec req/s) | $(meets "$v" ">=" 0.7) |"
  run="$(best_steady P-256 local | awk '{ print $1 }')"
  if [[ -n $run ]]; then
    k="$(runs_field "$run" kafka_cpu_ms_per_req)" j="$(runs_field "$run" kafka_jit_ms_per_req)"
    r="$(runs_field "$run" redis_cpu_ms_per_req)"
  fi
  echo "| broker CPU per request (that run) | <= 0.2 ms | ${k:+$k ms, of it the JIT compiler $j ms} | $(meets "${k:-}" "<=" 0.2) |"
  echo "| Redis CPU per request (that run) | <= 0.08 ms | ${r:+$r ms} | $(meets "${r:-}" "<=" 0.08) |"
  v="$(ratio "$r_rsa" "$c_rsa")"
  echo "| RSA-2048 end to end vs cfssl newcert (same concurrency) | >= 1.8x | ${v:+${v}x} ($r_rsa vs $c_rsa req/s) | $(meets "$v" ">=" 1.8) |"
  v="$(ratio "$r_rsa" "$f_rsa")"
  echo "| RSA-2048 end to end vs engine floor | >= 90% | $(pct "$v") ($r_rsa vs $f_rsa req/s) | $(meets "$v" ">=" 0.9) |"
  p99_half="$(awk -F, 'NR > 1 && $2 == "load-50" { print $12 }' "$out/runs.csv" | tail -1)"
  v="$(awk -v k="$keygen" 'BEGIN { if (k > 0) printf "%.0f", 2 * 1000 / k }')"
  echo "| p99 at half capacity ($(load_alg)) | <= 2x mean RSA-2048 keygen = ${v:-?} ms | ${p99_half:+$p99_half ms} | $(meets "$p99_half" "<=" "$v") |"
  local alg
  for alg in ${algs//,/ }; do
    burst_p50="$(awk -F, -v a="$alg" 'NR > 1 && $2 == "burst" && $3 == a { print $10 }' "$out/runs.csv" | tail -1)"
    echo "| burst of $burst $alg after ${quiet}s quiet, key pool warm: p50 | < 40 ms | ${burst_p50:+$burst_p50 ms} | $(meets "$burst_p50" "<" 40) |"
  done
  scale4="$(awk -F, 'NR > 1 && $2 == "scale-4" { print $9 }' "$out/runs.csv" | tail -1)"
  scalen="$(awk -F, -v s="scale-$scale" 'NR > 1 && $2 == s { print $9 }' "$out/runs.csv" | tail -1)"
  v="$(ratio "$scalen" "$scale4")"
  local idle=""
  [[ -f $out/idle.csv ]] && idle="$(awk -F, -v n="$scale" '$1 == n { printf "; idle, each worker %s ms CPU/s, the broker %s ms/s and Redis %s ms/s for all %s", $3, $4, $5, n }' "$out/idle.csv" | tail -1)"
  echo "| $scale workers vs 4 workers, throughput | >= 80% | $(pct "$v") ($scalen vs $scale4 req/s$idle) | $(meets "$v" ">=" 0.8) |"
  read -r dup signed n <<<"$(awk -F, -v s="scale-$scale" 'NR > 1 && $2 == s { print $17, $18, $6 }' "$out/runs.csv" | tail -1)"
  if [[ -n ${n:-} ]]; then
    echo "| $scale workers: every one of $scale_partitions partitions assigned, no request done twice | all assigned; 0 duplicates; CA signed = requests | assigned (the run waits for it); $dup duplicates; signed $signed of $n | $( [[ $dup == 0 && $signed == "$n" ]] && echo yes || echo "**no**") |"
  else
    echo "| $scale workers: every partition assigned, no request done twice | | | not measured |"
  fi
  local max_after limit
  limit=$((6 + 5))
  if [[ -f $raw/failover.result ]]; then
    max_after="$(awk '{ print $11 }' "$raw/failover.result")"
    v="$(awk -v m="$max_after" 'BEGIN { printf "%.1f", m / 1000 }')"
  else
    v=""
  fi
  echo "| a killed worker's partitions served again | <= session timeout (6 s) + 5 s = ${limit} s | ${v:+longest wait of a request created after the kill: $v s} | $(meets "$v" "<=" "$limit") |"
}
pct() { [[ -n $1 ]] && awk -v r="$1" 'BEGIN { printf "%.0f%%", r * 100 }'; }

# report_write OUT SECONDS: report.md.
report_write() {
  local o="$1" secs="$2" f="$1/runs.csv"
  {
    echo "# pkcs-bench report"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores ($(machine_cpu)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM;" \
      "OpenSSL $(openssl version | awk '{ print $2 }'); Kafka, Redis, cfssl and the workers all on this machine; $secs s in all."
    echo "Latency is request created -> result read; throughput is requests / (last result read - first request created)."
    echo "Worker CPU is user + system time of every worker process during the run."
    echo
    # A chaos-only run measures no performance: it has a section of its own and no other.
    local perf=1
    awk -F, 'NR > 1 && $2 != "chaos" { found = 1 } END { exit !found }' "$f" ||
      [[ $(wc -l <"$o/references.csv") -gt 1 ]] || perf=0
    if ((perf)); then
      echo "## End to end"
      echo
      md_table "$f" '$2 == "steady" || $2 ~ /^scale/' \
        "| alg | CA | workers | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU ms/request: workers | broker | of it JIT | Redis |" \
        "alg ca workers requests throughput p50_ms p90_ms p99_ms max_ms errors worker_cpu_ms_per_req kafka_cpu_ms_per_req kafka_jit_ms_per_req redis_cpu_ms_per_req"
      echo
      echo "## References (same machine, same cores, measured with no worker running)"
      echo
      echo "| reference | alg | concurrency | req/s | CPU us/op | p50 ms | p99 ms | errors |"
      echo "|---|---|---:|---:|---:|---:|---:|---:|"
      awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $10, $5, $7, $9 }' "$o/references.csv"
      if [[ -f $o/idle.csv ]]; then
        echo
        echo "## Idle workers (no requests, 20 s)"
        echo
        md_table "$o/idle.csv" 'NR > 1' "| workers | CPU ms/s of each worker | broker CPU ms/s | Redis CPU ms/s |" \
          "workers worker_cpu_ms_per_s_each broker_cpu_ms_per_s redis_cpu_ms_per_s"
      fi
    fi
    if grep -q ',load-' "$f"; then
      echo
      echo "## Latency against load"
      echo
      md_table "$f" '$2 ~ /^load-/' "| load | alg | workers | offered req/s | req/s | p50 ms | p90 ms | p99 ms | max ms |" \
        "scenario alg workers rate_target throughput p50_ms p90_ms p99_ms max_ms"
    fi
    if grep -q ',burst,\|,mix' "$f"; then
      echo
      echo "## Burst and mixed requests"
      echo
      md_table "$f" '$2 == "burst" || $2 ~ /^mix-/' "| run | alg | workers | requests | p50 ms | p90 ms | p99 ms | max ms | errors |" \
        "scenario alg workers requests p50_ms p90_ms p99_ms max_ms errors"
    fi
    if [[ -f $raw/failover.result ]]; then
      echo
      echo "## Failover"
      echo
      read -r _ _ n ok errors _ _ p50 p90 p99 max _ <"$raw/failover.result"
      echo "$scale workers at a steady rate; one killed with SIGKILL. Requests created after the kill:" \
        "$n, $errors errors; latency p50 $p50 ms, p90 $p90 ms, p99 $p99 ms, max $max ms."
    fi
    [[ -f $o/chaos-report.txt ]] && chaos_section "$o"
    if ((perf)); then
      echo
      echo "## Targets"
      echo
      echo "| target | goal | measured | met |"
      echo "|---|---|---|---|"
      target_rows
    fi
    echo
    echo "Raw figures: runs.csv, references.csv$([[ -f $o/idle.csv ]] && echo ", idle.csv")$([[ -f $o/chaos-counts.csv ]] && echo ", chaos-counts.csv, chaos-faults.csv, chaos-report.txt")."
  } >"$o/report.md"
}

# chaos_section OUT: the chaos run's counts, faults and recovery times (chaos-*.csv).
chaos_section() {
  local o="$1" held
  if [[ ! -f $o/chaos-counts.csv ]]; then
    printf '\n## Chaos\n\n**The run broke down before anything could be counted:**\n\n```\n%s\n```\n' \
      "$(cat "$o/chaos-report.txt")"
    return
  fi
  chaos_count() { awk -F, -v k="$1" '$1 == k { print $2 }' "$o/chaos-counts.csv"; }
  held="$(awk -F, 'NR > 1 { n++ } END { print n + 0 }' "$o/chaos-faults.csv")"
  echo
  echo "## Chaos"
  echo
  echo "$(chaos_count requests) requests ($(chaos_count requests_local) for the local CA, $(chaos_count requests_remote) for cfssl)" \
    "through $chaos_workers workers, produced evenly over $chaos_seconds s while $held faults happened on the schedule" \
    "\`$chaos_schedule\` (seed $(chaos_count seed)). Counted after every worker drained and stopped, from a" \
    "final read of the results topic and the CAs' own records (docs/chaos.md)."
  echo
  echo "| count | value | must be |"
  echo "|---|---:|---:|"
  echo "| answered | $(chaos_count answered) | $(chaos_count requests) |"
  local k
  for k in "never_answered:never answered" "failed:answered FAILED" \
    "two_certificates:request ids with two different certificates" \
    "signed_not_delivered_not_revoked:certificates signed, neither delivered nor revoked" \
    "delivered_but_revoked:delivered certificates the CA revoked" \
    "delivered_unknown_to_ca:delivered certificates the CA has no record of" \
    "results_not_opening:results that do not open or verify"; do
    echo "| ${k#*:} | $(chaos_count "${k%%:*}") | 0 |"
  done
  echo
  echo "Result messages read: $(chaos_count result_messages) (replays included). CA records for these requests:" \
    "local $(chaos_count signed_local) signed, $(chaos_count revoked_local) revoked; cfssl" \
    "$(chaos_count signed_remote) signed, $(chaos_count revoked_remote) revoked."
  if grep -q '^chaos,' "$o/runs.csv"; then
    local n p50 p99 max tput
    read -r n tput p50 p99 max <<<"$(awk -F, '$1 == "chaos" { print $6, $9, $10, $12, $13 }' "$o/runs.csv")"
    echo "Latency under chaos (request created -> its first result read): p50 $p50 ms, p99 $p99 ms," \
      "max $max ms over $n requests; $tput results/s."
  fi
  echo
  echo "Recovery: from a fault's end (the server answers again; for a worker, its SIGKILL) to the first" \
    "result published afterwards that it held up (a worker: a request on a partition it owned;" \
    "Redis, Kafka: any; cfssl: a new cfssl certificate). A worker that owned no partition when it" \
    "was killed held nothing up: not measured."
  echo
  awk -F, 'NR > 1 { k = $1; n[k]++; if ($6 != "") { m[k]++; s[k] += $6; if ($6 > mx[k]) mx[k] = $6 } }
    END {
      print "| fault | times | measured | mean recovery s | longest recovery s |"
      print "|---|---:|---:|---:|---:|"
      for (k in n) printf "| %s | %d | %d | %s | %s |\n", k, n[k], m[k],
        m[k] ? sprintf("%.1f", s[k] / m[k]) : "", m[k] ? sprintf("%.1f", mx[k]) : ""
    }' "$o/chaos-faults.csv"
  echo
  echo "| fault | target | at (UTC) | start s | end s | down s | recovery s | held up |"
  echo "|---|---|---|---:|---:|---:|---:|---|"
  awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $8, $3, $4, $5, $6, $7 }' \
    "$o/chaos-faults.csv"
  echo
  if grep -q '^FAIL' "$o/chaos-report.txt" 2>/dev/null; then
    echo "**The promise did NOT hold**: see chaos-report.txt for the offending requests and serials."
  else
    echo "The promise held: every request answered once, nothing signed left valid and undelivered."
  fi
}

# report_plots OUT: throughput-vs-workers.png, latency-vs-load.png, vs-references.png.
report_plots() {
  local o="$1" d
  d="$(mktemp -d)"
  awk -F, 'NR > 1 && $2 == "steady" { print $5, $9 > (dir "/" $3 "_" $4 ".dat") }' dir="$d" "$o/runs.csv"
  local series="" file name
  for file in "$d"/*.dat; do
    [[ -f $file ]] || continue
    name="$(basename "$file" .dat)"
    series+="${series:+, }'$file' using 1:2 with linespoints lw 2 title '${name/_/ via }'"
  done
  if [[ -n $series ]]; then
    gnuplot <<EOF
set terminal pngcairo size 900,500 font ",11"
set output "$o/throughput-vs-workers.png"
set title "End-to-end throughput against worker processes ($(nproc) cores)"
set xlabel "worker processes"; set ylabel "certificates / s (log scale)"
set key outside right; set grid; set logscale y; set xtics 1; set offsets 0.2, 0.2, 0, 0
plot $series
EOF
  fi
  awk -F, 'NR > 1 && $2 ~ /^load-/ { print $7, $10, $11, $12 }' "$o/runs.csv" >"$d/load.dat"
  if [[ -s $d/load.dat ]]; then
    gnuplot <<EOF
set terminal pngcairo size 900,500 font ",11"
set output "$o/latency-vs-load.png"
set title "Latency against offered load ($(load_alg), local CA)"
set xlabel "offered requests / s"; set ylabel "latency ms"
set key top left; set grid; set yrange [0:*]
plot "$d/load.dat" using 1:2 with linespoints lw 2 title "p50", \
     "" using 1:3 with linespoints lw 2 title "p90", "" using 1:4 with linespoints lw 2 title "p99"
EOF
  fi
  local alg
  : >"$d/refs.dat"
  for alg in ${algs//,/ }; do
    echo "$alg $(best_rate "$alg") $(ref_rate "engine floor" "$alg") $(ref_rate "cfssl newcert" "$alg")" |
      awk 'NF == 4' >>"$d/refs.dat"
  done
  if [[ -s $d/refs.dat ]]; then
    gnuplot <<EOF
set terminal pngcairo size 900,500 font ",11"
set output "$o/vs-references.png"
set title "This system against the references ($(nproc) cores)"
set ylabel "certificates / s"; set logscale y; set grid ytics
set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1
set key top right
plot "$d/refs.dat" using 2:xtic(1) title "pkcs-connector end to end (best steady)", \
     "" using 3 title "engine floor (no Kafka, no Redis)", "" using 4 title "cfssl newcert"
EOF
  fi
  rm -rf "$d"
}
