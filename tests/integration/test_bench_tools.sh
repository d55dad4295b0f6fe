#!/usr/bin/env bash
# The measuring tools of the benchmark: pkcs-bench-cfssl against a real `cfssl serve` (20 P-256
# certificates through newcert, each in cfssl's database, and a sane CSV line; an unreachable
# URL fails at once with a clear error), and against a real Kafka broker with a pkcs-worker:
# `pkcsctl submit --rate 15` spreads 30 requests over about 2 s, each stamped when it is sent
# and never ahead of its schedule; `pkcsctl watch --latency-csv` writes one line per result,
# consistent with the results' timing and with the printed max, mean and throughput; `watch
# --since` reads only the results produced from then on.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
cfssl_sh="$PC_SOURCE_DIR/tests/lib/cfssl.sh"
ctl="$PC_BIN_DIR/pkcsctl"
bench="$PC_BIN_DIR/pkcs-bench-cfssl"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

"$bench" --help >/dev/null || fail "pkcs-bench-cfssl --help exited non-zero"
rc=0
"$bench" --alg P-521 2>"${TMPDIR:-/tmp}/bench-tools-alg.$$" || rc=$?
grep -q -- "--alg wants P-256, P-384, RSA-2048 or RSA-3072" "${TMPDIR:-/tmp}/bench-tools-alg.$$" ||
  fail "--alg P-521: $(cat "${TMPDIR:-/tmp}/bench-tools-alg.$$")"
rm -f "${TMPDIR:-/tmp}/bench-tools-alg.$$"
[ "$rc" -eq 2 ] || fail "pkcs-bench-cfssl --alg P-521 exited $rc, not 2"
for bad in 0 -3 abc; do
  rc=0
  "$ctl" submit --dry-run --rate "$bad" --template "$data/user-ec.json" --count 1 >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "submit --rate $bad exited $rc, not 2"
done
ok "bad options: --alg P-521 and --rate 0, -3, abc are usage errors (exit 2)"

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_worker_spawn w1

# ---- pkcs-bench-cfssl against a real cfssl -----------------------------------------------------
cf="$d/cfssl"
bash "$cfssl_sh" setup "$cf" >/dev/null 2>&1 || fail "cfssl.sh setup failed"
port="$(pc_free_port)"
bash "$cfssl_sh" start "$cf" "$port" >/dev/null 2>"$d/cfssl-start.err" ||
  fail "cfssl did not start: $(cat "$d/cfssl-start.err")"
# so that the harness's cleanup stops cfssl too, even when a check fails
pid="$(cat "$cf/cfssl.pid")"
printf '%s %s\n' "$pid" "$(_pc_starttime "$pid")" >"$d/pids/cfssl"

before=$(sqlite3 "$cf/certs.db" "select count(*) from certificates;")
"$bench" --url "http://127.0.0.1:$port" --alg P-256 --count 20 --csv >"$d/newcert.csv" \
  2>"$d/newcert.err" || fail "pkcs-bench-cfssl --count 20: $(cat "$d/newcert.err" "$d/newcert.csv")"
[ "$(wc -l <"$d/newcert.csv")" -eq 1 ] || fail "--csv printed more than one line: $(cat "$d/newcert.csv")"
IFS=, read -r alg conc requests errors secs rate p50 p90 p99 max mean <"$d/newcert.csv"
[ "$alg,$conc,$requests,$errors" = "P-256,2,20,0" ] ||
  fail "CSV line does not say P-256, concurrency 2, 20 requests, 0 errors: $(cat "$d/newcert.csv")"
# seconds are printed to the millisecond, so products and bounds get that much slack
awk -v s="$secs" -v r="$rate" -v a="$p50" -v b="$p90" -v c="$p99" -v m="$max" -v e="$mean" \
  'BEGIN { exit !(s > 0 && r > 0 && (r * s > 19.5 && r * s < 20.5) && 0 < a && a <= b && b <= c &&
    c <= m && 0 < e && e <= m && m <= s * 1000 + 1) }' ||
  fail "CSV figures are not consistent: $(cat "$d/newcert.csv")"
after=$(sqlite3 "$cf/certs.db" "select count(*) from certificates;")
[ $((after - before)) -eq 20 ] || fail "cfssl's database holds $((after - before)) new certificates, not 20"
ok "pkcs-bench-cfssl --count 20 P-256: 20 certificates in cfssl's database; CSV $(cat "$d/newcert.csv")"

"$bench" --url "http://127.0.0.1:$port/" --alg RSA-2048 --count 2 --profile Device >"$d/newcert.txt" \
  2>"$d/newcert.err" || fail "pkcs-bench-cfssl RSA-2048: $(cat "$d/newcert.err" "$d/newcert.txt")"
grep -q "^cfssl newcert RSA-2048 at http://127.0.0.1:$port (profile Device), concurrency 2: 2 requests, 0 errors" \
  "$d/newcert.txt" && grep -q "^latency ms (request -> response): p50 .*, mean .* over 2 successes" \
  "$d/newcert.txt" || fail "the readable summary: $(cat "$d/newcert.txt")"
ok "readable summary: $(head -1 "$d/newcert.txt")"

nothing="$(pc_free_port)"
rc=0
t0=$(now_ms)
"$bench" --url "http://127.0.0.1:$nothing" --seconds 30 >"$d/unreach.out" 2>"$d/unreach.err" || rc=$?
elapsed=$(($(now_ms) - t0))
[ "$rc" -eq 1 ] || fail "an unreachable cfssl exited $rc, not 1: $(cat "$d/unreach.err")"
grep -q "cannot reach cfssl at http://127.0.0.1:$nothing: .*; is \`cfssl serve\` running there?" \
  "$d/unreach.err" || fail "unclear error for an unreachable cfssl: $(cat "$d/unreach.err")"
[ "$elapsed" -lt 5000 ] || fail "an unreachable cfssl took $elapsed ms to report"
[ ! -s "$d/unreach.out" ] || fail "an unreachable cfssl still printed figures: $(cat "$d/unreach.out")"
ok "unreachable cfssl: exit 1 in $elapsed ms: $(cut -c1-90 "$d/unreach.err")..."

# ---- submit --rate and watch --latency-csv against Kafka and a worker ---------------------------
pc_worker_wait_ready w1 90
printf 'rate-%06d\n' $(seq 1 30) >"$d/rate.ids"
# watch first, so that each result is read as it arrives
pc_watch --ids "$d/rate.ids" --json --timeout 120 --latency-csv "$d/latency.csv" \
  >"$d/rate.jsonl" 2>"$d/watch.err" &
watch_pid=$!
t0=$(now_ms)
pc_submit --template "$data/user-ec.json" --count 30 --id-prefix rate --rate 15 --device-keys "$d/keys" \
  2>"$d/submit.err" || fail "submit --rate 15: $(cat "$d/submit.err")"
elapsed=$(($(now_ms) - t0))
rc=0
wait "$watch_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "watch exited $rc: $(cat "$d/watch.err"; tail -2 "$d/rate.jsonl")"
[ "$elapsed" -ge 1800 ] || fail "30 requests at --rate 15 took only $elapsed ms"
achieved=$(sed -n 's/^paced at 15\/s: 30 requests produced over .* s from the first to the last: achieved \([0-9.]*\)\/s; at most [0-9]* ms behind schedule$/\1/p' \
  "$d/submit.err")
[ -n "$achieved" ] || fail "submit did not print the achieved rate: $(cat "$d/submit.err")"
awk -v a="$achieved" 'BEGIN { exit !(a > 12 && a <= 15.05) }' || fail "achieved rate $achieved/s for --rate 15"
ok "submit --rate 15: 30 requests in $elapsed ms; $(grep '^paced' "$d/submit.err")"

# created_at_ms of each request, as the worker saw it (the results' timing), sorted by id
grep -o '"requestId":"rate-[0-9]*".*"requestCreatedAtMs":"[0-9]*"' "$d/rate.jsonl" |
  sed 's/"requestId":"\([^"]*\)".*"requestCreatedAtMs":"\([0-9]*\)"/\1 \2/' | sort -u >"$d/created.txt"
[ "$(wc -l <"$d/created.txt")" -eq 30 ] ||
  fail "$(wc -l <"$d/created.txt") of 30 results carry requestCreatedAtMs: $(head -2 "$d/rate.jsonl")"
# the k-th request is never produced before k/15 s after the first, and the spread is ~1.93 s
awk 'NR == 1 { first = $2 } { k = NR - 1; if ($2 - first < k * 1000 / 15 - 5) { bad = 1; print $0 } }
  END { spread = $2 - first; print "spread " spread; exit bad || spread < 1800 || spread > 4000 }' \
  "$d/created.txt" >"$d/spread.txt" || fail "created_at_ms not paced at 15/s: $(cat "$d/spread.txt")"
ok "created_at_ms stamped at send: spread over $(grep spread "$d/spread.txt" | cut -d' ' -f2) ms, none ahead of schedule"

summary="$(grep '^results: ' "$d/rate.jsonl")" || fail "no summary from watch"
latline="$(grep '^latency ms ' "$d/rate.jsonl")" || fail "no latency line from watch: $summary"
results=$(sed -n 's/^results: \([0-9]*\) .*/\1/p' <<<"$summary")
[ "$(head -1 "$d/latency.csv")" = "request_id,status,created_at_ms,read_at_ms,latency_ms" ] ||
  fail "latency CSV header: $(head -1 "$d/latency.csv")"
[ "$(($(wc -l <"$d/latency.csv") - 1))" -eq "$results" ] ||
  fail "latency CSV has $(($(wc -l <"$d/latency.csv") - 1)) lines for $results results"
# each line: ISSUED, the created_at_ms of the result, latency = read - created >= 0
tail -n +2 "$d/latency.csv" | sort -t, -k1,1 | awk -F, 'NR == FNR { split($0, f, " "); c[f[1]] = f[2]; next }
  $2 != "ISSUED" || $3 != c[$1] || $5 != $4 - $3 || $5 < 0 { print "bad line: " $0; bad = 1 }
  END { exit bad }' "$d/created.txt" - >"$d/csvcheck.txt" ||
  fail "latency CSV: $(head -3 "$d/csvcheck.txt")"
# the printed max, mean and throughput come from the same figures
read -r pmax pmean pthr < <(sed -n 's/.* max \([0-9]*\), mean \([0-9.]*\) over [0-9]* results; throughput \([0-9.]*\) results\/s .*/\1 \2 \3/p' <<<"$latline") || true
[ -n "${pthr:-}" ] || fail "latency line lacks max, mean or throughput: $latline"
tail -n +2 "$d/latency.csv" | awk -F, -v pmax="$pmax" -v pmean="$pmean" -v pthr="$pthr" '
  { n++; sum += $5; if ($5 > max) max = $5; if (first == "" || $3 < first) first = $3;
    if ($4 > last) last = $4 }
  END { thr = n / ((last - first) / 1000); printf "csv: max %d, mean %.1f, throughput %.1f\n", max, sum / n, thr
    d1 = sum / n - pmean; d2 = thr - pthr
    exit !(max == pmax && d1 < 0.051 && d1 > -0.051 && d2 < 0.051 && d2 > -0.051) }' \
  >"$d/agree.txt" || fail "latency CSV disagrees with \"$latline\": $(cat "$d/agree.txt")"
ok "watch --latency-csv: $results lines, consistent with the results; $(cut -c1-110 <<<"$latline")..."

# ---- watch --since: only results produced from then on ----------------------------------------
# The 30 results above are on the topic; a watcher with --since reads only the 5 that follow.
since=$(now_ms)
pc_submit --template "$data/user-ec.json" --count 5 --id-prefix since 2>"$d/submit.err" >/dev/null ||
  fail "submit of 5: $(cat "$d/submit.err")"
rc=0
pc_watch --since "$since" --total 5 --json --timeout 60 >"$d/since.jsonl" 2>"$d/since.err" || rc=$?
[ "$rc" -eq 0 ] || fail "watch --since exited $rc: $(cat "$d/since.err")"
ids="$(grep -o '"requestId":"[a-z]*-[0-9]*"' "$d/since.jsonl" | sort -u | tr '\n' ' ')"
[ "$(grep -c '"requestId":"since-' "$d/since.jsonl")" -eq 5 ] && ! grep -q '"requestId":"rate-' "$d/since.jsonl" ||
  fail "watch --since read other results than the 5 after it: $ids"
rc=0
"$ctl" watch --since yesterday --total 1 >/dev/null 2>"$d/since.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--since wants a Unix time in milliseconds" "$d/since.err" ||
  fail "watch --since yesterday: exit $rc, $(cat "$d/since.err")"
ok "watch --since: the 5 results produced after it, none of the 30 before; a bad time is a usage error"

kill -TERM "$(pc_worker_pid w1)"
rc=0
wait "$(pc_worker_pid w1)" || rc=$?
[ "$rc" -eq 0 ] || fail "worker exited $rc after SIGTERM"
echo "$pass passed, 0 failed"
