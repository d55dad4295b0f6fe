#!/usr/bin/env bash
# The coordinator's status page in a real headless browser (Debian's chromium): with two
# workers running it lists both as Active, shows the number of active workers and a topic that
# differs from the configuration, once its script has fetched the API; a worker killed with
# SIGKILL turns Inactive, with the reason, on the page itself. Also: the page loads nothing from
# elsewhere, and a screenshot of it is a real PNG.
# Skips (exit 0) when chromium is not installed, unless PC_REQUIRE_BROWSER=1.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
source "$PC_SOURCE_DIR/tests/lib/browser.sh"
pc_browser_require || exit 0
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${log:-} ]] && { echo "end of the coordinator's log:" >&2; tail -n 20 "$log" >&2; }
  exit 1
}
command -v curl >/dev/null || fail "curl is not installed (deploy/setup.sh installs it)"

pc_cluster_init 4 # topics: requests and results with 4 partitions, the DLQ with 2
d="$PC_SERVERS_DIR"
log="$d/coordinator.log"
# Configured for 4 partitions and the broker's 24 h retention: only the DLQ differs
# (2 partitions where min(4, 8) = 4 are wanted).
_pc_launch coordinator "$log" env PC_COORDINATOR_PORT=0 PC_TOPIC_PARTITIONS=4 \
  PC_TOPIC_RETENTION_HOURS=24 "$PC_BIN_DIR/pkcs-coordinator" --config "$PC_CLUSTER_CONFIG"
coord_pid="$_pc_launched_pid"
for w in w1 w2; do pc_worker_spawn "$w"; done
port=""
for ((i = 0; i < 100; i++)); do
  port="$(sed -n 's/.*"event":"http".*"port":"\([0-9]*\)".*/\1/p' "$log" | head -1)"
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || fail "the coordinator logged no HTTP port"
url="http://127.0.0.1:$port/"
for w in w1 w2; do pc_worker_wait_ready "$w" 60; done

# wait_states W1_STATE W2_STATE: until the API (which the page reads) says so.
wait_states() {
  local i fleet
  for ((i = 0; i < 150; i++)); do
    fleet="$(curl -sf "${url}api/fleet" || true)"
    grep -q "\"id\":\"w1\",\"state\":\"$1\"" <<<"$fleet" &&
      grep -q "\"id\":\"w2\",\"state\":\"$2\"" <<<"$fleet" && return 0
    sleep 0.2
  done
  fail "the API never showed w1 $1 and w2 $2: $fleet"
}

# cells DOMFILE WORKER: the text of that worker's table cells, one per line.
cells() {
  tr -d '\n' <"$1" | sed 's/<tr/\n<tr/g' | grep "data-worker=\"$2\"" | head -1 |
    sed -e 's#</tr>.*##' -e 's#</span>#  #g' -e 's#</td>#\n#g' -e 's/<[^>]*>//g'
}
# term DOMFILE ID: the text of the summary value with that id.
term() { tr -d '\n' <"$1" | sed -n "s#.*<dd id=\"$2\">\\([^<]*\\)</dd>.*#\\1#p"; }

curl -sf "$url" >"$d/page.html" || fail "GET / failed"
grep -qi '<table' "$d/page.html" && grep -q '<th scope="col">State</th>' "$d/page.html" \
  || fail "the page has no workers table with column headers"
if grep -Eio '(src|href|action)="?(https?:)?//[^" >]*' "$d/page.html" | head -3 | grep .; then
  fail "the page loads resources from elsewhere"
fi
ok "GET / is an HTML page with a table of workers and no external resources"

wait_states Active Active
pc_browser_dom "$url" >"$d/dom1.html" || fail "chromium could not load $url (see chromium.log)"
for w in w1 w2; do
  row="$(cells "$d/dom1.html" "$w")"
  [[ $(sed -n 1p <<<"$row") == "$w" ]] || fail "the page lists no row for $w: $(head -c 3000 "$d/dom1.html")"
  [[ $(sed -n 2p <<<"$row") == "Active  " ]] || fail "$w is not shown Active: $row"
  [[ $(sed -n 3p <<<"$row") == "$("$PC_BIN_DIR/pkcs-worker" --version | cut -d' ' -f2)" ]] \
    || fail "$w's version is not shown: $row"
done
[[ $(term "$d/dom1.html" active) == 2 && $(term "$d/dom1.html" inactive) == 0 ]] \
  || fail "the summary does not say 2 active, 0 inactive: $(term "$d/dom1.html" active)/$(term "$d/dom1.html" inactive)"
[[ $(term "$d/dom1.html" lag) =~ ^[0-9]+$ ]] || fail "no lag shown: $(term "$d/dom1.html" lag)"
grep -q 'topic pkcs.requests.dlq has 2 partitions, the configuration wants 4' "$d/dom1.html" \
  || fail "the page does not show the DLQ's partition mismatch"
ok "the page, after its script ran, shows w1 and w2 Active with their version, 2 active, the lag and the topic problem"

pc_browser_screenshot "$url" "$d/page.png" || fail "no screenshot"
[[ $(head -c 8 "$d/page.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] \
  || fail "the screenshot is not a PNG"
size=$(stat -c %s "$d/page.png")
((size > 10000)) || fail "the screenshot is only $size bytes"
ok "a screenshot of the page is a PNG of $size bytes"

kill -KILL "$(pc_worker_pid w2)"
wait_states Active Inactive
pc_browser_dom "$url" >"$d/dom2.html" || fail "chromium could not load $url the second time"
row="$(cells "$d/dom2.html" w2)"
[[ $(sed -n 2p <<<"$row") =~ ^Inactive\ \ no\ heartbeat\ for\ [0-9]+\ s ]] \
  || fail "w2 is not shown Inactive with the reason: $row"
[[ $(sed -n 2p <<<"$(cells "$d/dom2.html" w1)") == "Active  " ]] || fail "w1 not Active any more"
[[ $(term "$d/dom2.html" active) == 1 && $(term "$d/dom2.html" inactive) == 1 ]] \
  || fail "the summary does not say 1 active, 1 inactive"
ok "after SIGKILL, the page shows w2 \"$(sed -n 2p <<<"$row" | sed 's/  */ /g')\" and w1 still Active"

kill -TERM "$coord_pid"
rc=0
wait "$coord_pid" || rc=$?
[[ $rc -eq 0 ]] || fail "the coordinator exited $rc after SIGTERM"
ok "the coordinator exited 0 on SIGTERM"
echo "$pass passed, 0 failed"
