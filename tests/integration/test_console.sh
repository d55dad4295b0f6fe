#!/usr/bin/env bash
# The operator's console in a real headless browser (Debian's chromium), after a worker issued
# certificates of two devices through the cluster and set a message aside: the charts of the last
# hour have points (issued per second above zero, latency p50 and p99), the totals count the
# certificates and the dead letter, the local CA is OK with its certificate's expiry and CRL age,
# a linked search (#tenant=contoso&device=D1) finds that device's certificates and no other, and
# the tenant's certificates expiring within 30 days are listed. With the fault-injection hooks of
# test builds, a worker holding a request is shown Degraded (its partition lags) with the
# reason. Screenshots go to the test's output folder ($PC_TEST_OUTPUT_DIR, else
# $PC_BIN_DIR/test-output/test_console); their paths are printed.
# Skips (exit 0) when chromium is not installed, unless PC_REQUIRE_BROWSER=1.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
source "$PC_SOURCE_DIR/tests/lib/browser.sh"
pc_browser_require || exit 0
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${PC_SERVERS_DIR:-}/coordinator.log ]] && tail -n 5 "$PC_SERVERS_DIR/coordinator.log" >&2
  exit 1
}
command -v curl >/dev/null || fail "curl is not installed (deploy/setup.sh installs it)"
out="${PC_TEST_OUTPUT_DIR:-$PC_BIN_DIR/test-output}/test_console"
mkdir -p "$out"
hooks=0
"$PC_BIN_DIR/pkcs-worker" --version | grep -q "test hooks" && hooks=1

pc_cluster_init 2
d="$PC_SERVERS_DIR"
# A worker whose partitions hold one unfinished request is Degraded (coordinator.degraded_lag);
# the topics as the harness made them, so that the page shows no topic problem.
export PC_DEGRADED_LAG=1 PC_TOPIC_PARTITIONS=2 PC_TOPIC_RETENTION_HOURS=24
pc_coordinator_spawn || fail "no coordinator"
unset PC_DEGRADED_LAG PC_TOPIC_PARTITIONS PC_TOPIC_RETENTION_HOURS
pc_worker_spawn w1 PC_TEST_STALL_AFTER_CA=stall-000001:600000
pc_worker_wait_ready w1 90
url="http://127.0.0.1:$PC_COORDINATOR_PORT/"
api() { curl -sf "${url}api/$1"; }
wait_for() { # wait_for SECONDS JQ-FILTER API-PATH
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    api "$3" 2>/dev/null | jq -e "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# request PREFIX DEVICE USER DAYS: one ISSUE request of tenant contoso (JSON line).
request() {
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null |
    jq -c --arg dev "$2" --arg u "$3" --argjson days "$4" \
      '.deviceId = $dev | .userId = $u | .issue.profile.profileId = "wifi" | .issue.profile.validityDays = $days'
}
{
  request a D1 alice 365
  request b D1 alice 365
  request c D2 bob 10
} >"$d/issue.jsonl"
pc_submit --requests "$d/issue.jsonl" 2>/dev/null
printf '%s\n' a-000001 b-000001 c-000001 >"$d/issue.ids"
pc_watch --ids "$d/issue.ids" --json --timeout 120 >"$d/issued.out" || fail "issuing: $(tail -1 "$d/issued.out")"
serial() { grep "\"requestId\":\"$1\"" "$d/issued.out" | head -1 | jq -r .serialNumber; }
A=$(serial a-000001) B=$(serial b-000001) C=$(serial c-000001)
printf 'not a message' >"$d/garbage.bin"
pc_submit --raw "$d/garbage.bin" 2>/dev/null
wait_for 60 '.issued == 3 and .dlq == 1' totals || fail "totals: $(api totals)"
wait_for 60 '.hour.issued == 3 and .hour.p50_ms > 0' stats || fail "stats: $(api stats | jq -c .hour)"
wait_for 60 '.[] | select(.name == "local") | .health == "OK" and .crl.age_s != null' cas || fail "cas: $(api cas)"
wait_for 60 '.workers[0].state == "Active" and .workers[0].lag == 0' fleet || fail "fleet: $(api fleet)"
ok "3 certificates issued (D1: $A, $B; D2, 10 days: $C) and 1 dead letter"

# dom-of FILE: the DOM of the console with a linked search for contoso's D1.
link="${url}#tenant=contoso&device=D1"
pc_browser_dom "$link" >"$d/dom1.html" || fail "chromium could not load $link (see chromium.log)"
flat() { tr -d '\n' <"$1"; }
# element FILE ID: the element with that id, up to its end tag (SVGs, tbodies).
element() { flat "$1" | grep -o "<[a-z]* [^>]*id=\"$2\".*" | sed -E 's#(</tbody>|</svg>).*#\1#'; }
term() { flat "$1" | sed -n "s#.*<dd id=\"$2\">\\([^<]*\\)</dd>.*#\\1#p"; }

chart="$(element "$d/dom1.html" chart-issued)"
grep -q 'data-points="60"' <<<"$chart" || fail "the issued chart has no 60 points: ${chart:0:300}"
grep -Eq 'data-v="0\.[0-9]*[1-9][0-9]*"|data-v="[1-9]' <<<"$chart" || fail "the issued chart has no point above zero: ${chart:0:600}"
grep -q '<polyline' <<<"$chart" || fail "the issued chart has no line"
lat="$(element "$d/dom1.html" chart-latency)"
grep -q 'data-series="p50"' <<<"$lat" && grep -q 'data-series="p99"' <<<"$lat" || fail "the latency chart has no p50 and p99 points: ${lat:0:600}"
[[ $(element "$d/dom1.html" chart-failed) == *'data-points="60"'* ]] || fail "the failed chart has no points"
ok "charts: issued per second has 60 minutes, one above zero; latency has p50 and p99 points"

grep -q '<ul id="problems"></ul>' "$d/dom1.html" || fail "the page shows problems: $(element "$d/dom1.html" problems | head -c 600)"
[[ $(term "$d/dom1.html" issued) == 3 && $(term "$d/dom1.html" dlq) == 1 && $(term "$d/dom1.html" failed) == 0 ]] ||
  fail "summary: issued $(term "$d/dom1.html" issued), dead letters $(term "$d/dom1.html" dlq)"
ca_row="$(flat "$d/dom1.html" | grep -o '<tr data-ca="local"[^>]*>.*' | sed 's#</tr>.*##')"
grep -q 'data-health="OK"' <<<"$ca_row" && grep -Eq '\(in [0-9]+ days\)' <<<"$ca_row" &&
  grep -Eq '<td>[0-9]+ (s|min)' <<<"$ca_row" || fail "the local CA's row: $ca_row"
worker_row="$(flat "$d/dom1.html" | grep -o '<tr data-worker="w1"[^>]*>.*' | sed 's#</tr>.*##')"
grep -q 'data-state="Active"' <<<"$worker_row" || fail "w1 is not Active: $worker_row"
ok "summary: 3 issued, 0 failed, 1 dead letter; CA local OK with its expiry and CRL age; w1 Active"

found="$(element "$d/dom1.html" certs)"
for s in "$A" "$B"; do grep -q "data-serial=\"$s\"" <<<"$found" || fail "the search for D1 does not show $s: ${found:0:800}"; done
grep -q "data-serial=\"$C\"" <<<"$found" && fail "the search for D1 shows D2's $C"
grep -q '<td>D1</td>' <<<"$found" && grep -q '>valid<' <<<"$found" || fail "the results lack device or status: ${found:0:800}"
expiring="$(element "$d/dom1.html" expiring)"
grep -q "data-serial=\"$C\"" <<<"$expiring" || fail "the 10-day certificate $C is not listed as expiring: ${expiring:0:600}"
grep -q "data-serial=\"$A\"" <<<"$expiring" && fail "a 1-year certificate is listed as expiring within 30 days"
ok "the linked search finds D1's two certificates (not D2's); expiring within 30 days lists $C only"

pc_browser_screenshot "$link" "$out/console.png" 1280,2200 || fail "no screenshot"
[[ $(head -c 8 "$out/console.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "the screenshot is not a PNG"
ok "screenshot: $out/console.png"

if [[ $hooks == 1 ]]; then
  request stall D3 carol 365 >"$d/stall.jsonl"
  pc_submit --requests "$d/stall.jsonl" 2>/dev/null
  wait_for 60 '.workers[0].state == "Degraded" and .workers[0].lag >= 1' fleet ||
    fail "w1 holding a request is not Degraded: $(api fleet | jq -c '.workers[0] | {state, reason, lag}')"
  pc_browser_dom "$url" >"$d/dom2.html" || fail "chromium could not load $url the second time"
  worker_row="$(flat "$d/dom2.html" | grep -o '<tr data-worker="w1"[^>]*>.*' | sed 's#</tr>.*##')"
  grep -q 'data-state="Degraded"' <<<"$worker_row" &&
    grep -q 'request(s) waiting on its partitions (coordinator.degraded_lag is 1)' <<<"$worker_row" ||
    fail "the page does not show w1 Degraded with the reason: $worker_row"
  [[ $(term "$d/dom2.html" degraded) == 1 ]] || fail "the summary does not count 1 degraded worker"
  pc_browser_screenshot "$url" "$out/console-degraded.png" 1280,2200 || fail "no second screenshot"
  ok "a worker holding a request shows Degraded (lag $(api fleet | jq '.workers[0].lag')); screenshot: $out/console-degraded.png"
  kill -KILL "$(pc_worker_pid w1)" # it holds the request for 10 minutes
else
  echo "SKIP: the Degraded worker (pkcs-worker was built without -DPC_TEST_HOOKS=ON)"
  kill -TERM "$(pc_worker_pid w1)"
  wait "$(pc_worker_pid w1)" || fail "the worker did not exit 0"
fi
coord_pid="$(cut -d' ' -f1 "$d/pids/coordinator")"
kill -TERM "$coord_pid"
wait "$coord_pid" || fail "the coordinator did not exit 0 (a sanitizer build also checks for leaks)"
echo "$pass passed, 0 failed"
