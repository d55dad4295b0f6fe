#!/usr/bin/env bash
# The inventory as an operator reads it, against a real Kafka broker, Redis, one worker with the
# local CA and the coordinator: certificates issued for two devices and two users of tenant
# contoso and one of tenant fabrikam, one revoked; then `pkcsctl certs list` (all, by device,
# user and request, by profile, valid only, paged with and without --all), `certs expiring`,
# `certs show`, and the same API through curl: each tenant sees only its own certificates, an
# unknown serial is a 404 and a bad query a 400 whose message says what to send.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
ctl="$PC_BIN_DIR/pkcsctl"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${PC_SERVERS_DIR:-}/coordinator.log ]] && tail -n 5 "$PC_SERVERS_DIR/coordinator.log" >&2
  exit 1
}
command -v curl >/dev/null || fail "curl is not installed (deploy/setup.sh installs it)"
"$ctl" certs --help >/dev/null || fail "pkcsctl certs --help exited non-zero"

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_worker_spawn w1
pc_coordinator_spawn || fail "no coordinator"
api="http://127.0.0.1:$PC_COORDINATOR_PORT"
pc_worker_wait_ready w1 90

# request PREFIX TENANT DEVICE USER PROFILE DAYS: one ISSUE request (JSON line).
request() {
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null |
    jq -c --arg t "$2" --arg dev "$3" --arg u "$4" --arg p "$5" --argjson days "$6" \
      '.tenantId = $t | .deviceId = $dev | .userId = $u | .issue.profile.profileId = $p
       | .issue.profile.validityDays = $days'
}
{
  request a contoso D1 alice wifi 365
  request b contoso D1 alice wifi 365
  request c contoso D2 bob vpn 10
  request f fabrikam D1 alice wifi 10
} >"$d/issue.jsonl"
printf '%s\n' a-000001 b-000001 c-000001 f-000001 >"$d/issue.ids"
# One at a time, so that the inventory's order (newest first) is the order sent.
for i in 1 2 3 4; do
  sed -n "${i}p" "$d/issue.jsonl" >"$d/one.jsonl"
  id="$(sed -n "${i}p" "$d/issue.ids")"
  echo "$id" >"$d/one.ids"
  pc_submit --requests "$d/one.jsonl" 2>/dev/null
  pc_watch --ids "$d/one.ids" --json --timeout 120 --device-keys "$d/keys" >>"$d/issued.out" ||
    fail "issuing $id: $(tail -1 "$d/issued.out")"
done
serial() { grep "\"requestId\":\"$1\"" "$d/issued.out" | head -1 | jq -r .serialNumber; }
A=$(serial a-000001) B=$(serial b-000001) C=$(serial c-000001) F=$(serial f-000001)
[[ -n $A && -n $B && -n $C && -n $F && $A != null ]] || fail "missing serials: $(cat "$d/issued.out")"
out=$("$ctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 --signer-key "$d/signer.pem" \
  --tenant contoso --serial "$A" --ca local --wait --timeout 60 2>&1) || fail "revoke $A: $out"
ok "issued contoso D1/alice $A (revoked), $B; contoso D2/bob $C (10 days); fabrikam D1/alice $F"

# certs LIST-ARGS...: the serials pkcsctl certs list --json prints, in order, on one line.
certs() { "$ctl" certs list --coordinator "$api" --json "$@" | jq -r .serial | paste -sd' '; }
got=$(certs --tenant contoso) || fail "certs list --tenant contoso failed"
[[ $got == "$C $B $A" ]] || fail "contoso's list is \"$got\", not \"$C $B $A\" (newest first)"
got=$(certs --tenant fabrikam)
[[ $got == "$F" ]] || fail "fabrikam's list is \"$got\", not its one certificate $F"
ok "list: contoso has its 3 certificates newest first, fabrikam only its own"

[[ $(certs --tenant contoso --device D1) == "$B $A" ]] || fail "contoso D1: $(certs --tenant contoso --device D1)"
[[ $(certs --tenant fabrikam --device D1) == "$F" ]] || fail "fabrikam D1: $(certs --tenant fabrikam --device D1)"
[[ $(certs --tenant contoso --user bob) == "$C" ]] || fail "contoso bob: $(certs --tenant contoso --user bob)"
[[ $(certs --tenant contoso --user alice) == "$B $A" ]] || fail "contoso alice: $(certs --tenant contoso --user alice)"
[[ $(certs --tenant contoso --request a-000001) == "$A" ]] || fail "request a-000001: $(certs --tenant contoso --request a-000001)"
[[ -z $(certs --tenant contoso --request f-000001) ]] || fail "contoso sees fabrikam's request f-000001"
[[ -z $(certs --tenant contoso --device D3) ]] || fail "an unknown device has certificates"
ok "search: by device (D1 in each tenant its own), by user, by request; nothing across tenants"

[[ $(certs --tenant contoso --valid) == "$C $B" ]] || fail "--valid: $(certs --tenant contoso --valid)"
[[ $(certs --tenant contoso --profile vpn) == "$C" ]] || fail "--profile vpn: $(certs --tenant contoso --profile vpn)"
[[ -z $(certs --tenant contoso --ca other) ]] || fail "--ca other lists certificates"
"$ctl" certs list --coordinator "$api" --json --tenant contoso --device D1 |
  jq -e --arg a "$A" 'select(.serial == $a) | .status == "revoked" and .reason != null and .revoked_at_ms > 0
    and .device == "D1" and .user == "alice" and .profile == "wifi" and .tenant == "contoso"
    and .ca == "local" and .request == "a-000001" and (.subject | test("CN=User 0*1$"))' >/dev/null ||
  fail "the revoked certificate's record: $("$ctl" certs list --coordinator "$api" --json --tenant contoso --device D1)"
ok "filters: --valid leaves out the revoked one, --profile and --ca select; the record says revoked with who and what"

# Paging: one per page says there is more; --all follows the pages to the end.
"$ctl" certs list --coordinator "$api" --tenant contoso --limit 1 --json >"$d/page1" 2>"$d/page1.err"
[[ $(jq -r .serial "$d/page1") == "$C" ]] || fail "page 1: $(cat "$d/page1")"
grep -q -- "more certificates follow: --all for every page, or --offset 1 for the next" "$d/page1.err" ||
  fail "no hint that more follow: $(cat "$d/page1.err")"
[[ $(certs --tenant contoso --limit 1 --offset 1) == "$B" ]] || fail "page 2: $(certs --tenant contoso --limit 1 --offset 1)"
[[ $(certs --tenant contoso --limit 1 --all) == "$C $B $A" ]] || fail "--all by one: $(certs --tenant contoso --limit 1 --all)"
[[ $(certs --tenant contoso --limit 2 --all) == "$C $B $A" ]] || fail "--all by two: $(certs --tenant contoso --limit 2 --all)"
curl -sf "$api/api/certs?tenant=contoso&limit=2" | jq -e '(.certs | length) == 2 and .more == true and .next_offset == 2' >/dev/null ||
  fail "API page 1 of 2: $(curl -s "$api/api/certs?tenant=contoso&limit=2")"
curl -sf "$api/api/certs?tenant=contoso&limit=2&offset=2" | jq -e '(.certs | length) == 1 and .more == false and .next_offset == null' >/dev/null ||
  fail "API page 2 of 2: $(curl -s "$api/api/certs?tenant=contoso&limit=2&offset=2")"
ok "paging: a page of 1 hints at --offset 1; --all by 1 and by 2 gives every certificate once, in order"

# Expiring: within 30 days only the 10-day certificate; within 400 days both valid ones,
# soonest first; never the revoked one, never another tenant's.
got=$("$ctl" certs expiring --coordinator "$api" --tenant contoso --days 30 --json | jq -r .serial | paste -sd' ')
[[ $got == "$C" ]] || fail "expiring in 30 days: \"$got\", not $C"
got=$("$ctl" certs expiring --coordinator "$api" --tenant contoso --days 400 --json | jq -r .serial | paste -sd' ')
[[ $got == "$C $B" ]] || fail "expiring in 400 days: \"$got\", not \"$C $B\""
got=$("$ctl" certs expiring --coordinator "$api" --tenant contoso --json | jq -r .serial | paste -sd' ')
[[ $got == "$C" ]] || fail "expiring (default 30 days): \"$got\""
got=$("$ctl" certs expiring --coordinator "$api" --tenant fabrikam --days 30 --json | jq -r .serial | paste -sd' ')
[[ $got == "$F" ]] || fail "fabrikam expiring: \"$got\""
ok "expiring: 30 days finds $C only, 400 days $C then $B; fabrikam finds its own"

# The table for people.
"$ctl" certs list --coordinator "$api" --tenant contoso >"$d/table"
head -1 "$d/table" | grep -Eq '^SERIAL +CA +STATUS +SUBJECT +DEVICE +USER +NOT-AFTER$' || fail "table header: $(head -1 "$d/table")"
[[ $(wc -l <"$d/table") -eq 4 ]] || fail "table rows: $(cat "$d/table")"
grep -Eq "^$A +local +revoked +O=Contoso,OU=Load,CN=User 0*1 +D1 +alice +20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}Z$" "$d/table" ||
  fail "table row of $A: $(cat "$d/table")"
ok "the table: $(sed -n 2p "$d/table" | tr -s ' ')"

# show: one certificate, by CA and serial (any case, with colons), within its tenant only.
lower=$(tr 'A-F' 'a-f' <<<"$B" | sed 's/../&:/g; s/:$//')
"$ctl" certs show --coordinator "$api" --tenant contoso --ca local "$lower" >"$d/show" || fail "show $lower: $(cat "$d/show")"
grep -Eq "^serial +$B$" "$d/show" && grep -Eq '^status +valid$' "$d/show" &&
  grep -Eq '^device +D1$' "$d/show" && grep -Eq '^request +b-000001$' "$d/show" &&
  grep -Eq '^sha256 +[0-9A-F]{64}$' "$d/show" || fail "show: $(cat "$d/show")"
curl -sf "$api/api/certs/local/$A?tenant=contoso" | jq -e --arg a "$A" '.serial == $a and .status == "revoked"' >/dev/null ||
  fail "GET /api/certs/local/$A: $(curl -s "$api/api/certs/local/$A?tenant=contoso")"
rc=0
"$ctl" certs show --coordinator "$api" --tenant contoso --ca local "$F" >"$d/show404" 2>&1 || rc=$?
[[ $rc -eq 1 ]] && grep -q "tenant contoso has no certificate $F of CA local" "$d/show404" ||
  fail "show of fabrikam's certificate as contoso: exit $rc: $(cat "$d/show404")"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$api/api/certs/local/$F?tenant=contoso") == 404 ]] || fail "no 404 across tenants"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$api/api/certs/local/$F?tenant=fabrikam") == 200 ]] || fail "fabrikam cannot read its own"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$api/api/certs/local/ABCDEF01?tenant=contoso") == 404 ]] || fail "an unknown serial is not a 404"
ok "show: $B by its lower-case serial with colons; another tenant's certificate and an unknown serial are 404"

# Bad queries: 400 with a message that says what to send instead.
bad() { # bad QUERY EXPECTED-TEXT
  local body code
  body=$(curl -s -w '\n%{http_code}' "$api/api/certs$1")
  code=${body##*$'\n'}
  [[ $code == 400 ]] || fail "GET /api/certs$1 answered $code, not 400: $body"
  jq -r .error <<<"${body%$'\n'*}" | grep -qF "$2" || fail "GET /api/certs$1: the message does not say \"$2\": $body"
}
bad "" "add tenant=T"
bad "?tenant=contoso&colour=red" "unknown parameter \"colour\"; use tenant, device"
bad "?tenant=contoso&device=D1&user=alice" "give one of device, user or request"
bad "?tenant=contoso&limit=0" "limit wants a whole number from 1 to 1000"
bad "?tenant=contoso&status=bogus" "is not one of valid, revoked, superseded, expired"
bad "?tenant=contoso&device=D1&expiring_days=30" "expiring_days lists the whole tenant"
bad "?tenant=contoso&tenant=fabrikam" "parameter tenant is given twice"
bad "?tenant=contoso&device=%zz" "parameter device is malformed"
bad "/local/XYZ?tenant=contoso" "the serial in hex"
rc=0
"$ctl" certs list --coordinator "$api" >/dev/null 2>"$d/usage.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--tenant T is required" "$d/usage.err" || fail "list without --tenant: exit $rc: $(cat "$d/usage.err")"
rc=0
"$ctl" certs list --coordinator "$api" --tenant contoso --device "$(head -c 300 /dev/zero | tr '\0' x)" \
  >/dev/null 2>"$d/long.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "the coordinator refused the query: parameter device is malformed or longer than 256 bytes" "$d/long.err" ||
  fail "an over-long device id: exit $rc: $(cat "$d/long.err")"
ok "bad queries are 400s naming the fix; pkcsctl exits 2 for them and for a missing --tenant"

kill -TERM "$(pc_worker_pid w1)"
wait "$(pc_worker_pid w1)" || fail "the worker did not exit 0"
coord_pid="$(cut -d' ' -f1 "$d/pids/coordinator")"
kill -TERM "$coord_pid"
wait "$coord_pid" || fail "the coordinator did not exit 0 (a sanitizer build also checks for leaks)"
echo "$pass passed, 0 failed"
