#!/usr/bin/env bash
# Renewal, against a real Kafka broker and Redis with one worker and the local CA: a request that
# names the certificate it renews gets a new one, and only once that result is delivered is the
# old one revoked as superseded (the CRL says so; the inventory marks it superseded, renewed by
# the new one); "renew the current one" finds the device's newest valid certificate of the
# profile itself; a renewal of a serial the tenant does not have is refused, and another
# tenant's certificate cannot be renewed away. At every point the device has one valid
# certificate of the profile.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pc_cluster_init 2
d="$PC_SERVERS_DIR"
ca="$d/state/ca/local/ca.crt"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

# send PREFIX JQ: one request of device R1, profile wifi, tenant contoso, changed by JQ; waits
# for its result (in $d/PREFIX.out) and prints its serial.
send() {
  pc_submit --template "$data/user-ec.json" --count 1 --id-prefix "$1" --device-keys "$d/keys" \
    --dry-run 2>/dev/null |
    jq -c '.tenantId = "contoso" | .deviceId = "R1" | .issue.profile.profileId = "wifi"' |
    jq -c "$2" > "$d/$1.jsonl"
  pc_submit --requests "$d/$1.jsonl" 2>/dev/null
  printf '%s-000001\n' "$1" > "$d/$1.ids"
  pc_watch --ids "$d/$1.ids" --json --timeout 120 > "$d/$1.all" || fail "no result for $1"
  grep '^{' "$d/$1.all" > "$d/$1.out"
  jq -r '.serialNumber // ""' "$d/$1.out"
}
status() { redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" HGET "pc:cert:{$1}:c:local:$2" "${3:-status}"; }
valid_of_R1() { # the serials the inventory holds valid for device R1
  redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" ZRANGE 'pc:cert:{contoso}:dev:R1' 0 -1 |
    while read -r m; do
      [ "$(redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" HGET "pc:cert:{contoso}:c:$m" status)" = valid ] && echo "${m#local:}"
    done
}
in_crl_superseded() { # in_crl_superseded SERIAL: listed with reason Superseded
  "$PC_BIN_DIR/pkcsctl" crl --ca local --config "$PC_CLUSTER_CONFIG" --out "$d/crl.pem"
  openssl crl -in "$d/crl.pem" -noout -text | grep -i -A5 "Serial Number: 0*${1#"${1%%[!0]*}"}$" | grep -q Superseded
}
wait_superseded() { # the old certificate is revoked after the new result was delivered
  for _ in $(seq 1 100); do in_crl_superseded "$1" && return 0; sleep 0.2; done
  return 1
}

A=$(send a '.')
[ -n "$A" ] && [ "$(status contoso "$A")" = valid ] || fail "the first certificate: $(head -c 300 "$d/a.out")"
ok "device R1, profile wifi: certificate $A"

B=$(send b ".issue.renewsSerialNumber = \"$A\"")
grep -q '"status":"ISSUED"' "$d/b.out" || fail "the renewal was not issued: $(head -c 300 "$d/b.out")"
[ "$(jq -r '.renews.serialNumber' "$d/b.out")" = "$A" ] || fail "the result does not say it renews $A"
wait_superseded "$A" || fail "$A is not on the CRL as superseded after the renewal's result"
[ "$(status contoso "$A")" = superseded ] && [ "$(status contoso "$A" renewed_by)" = "$B" ] \
  || fail "the inventory does not say $A was superseded by $B: $(status contoso "$A"), $(status contoso "$A" renewed_by)"
[ "$(valid_of_R1)" = "$B" ] || fail "R1's valid certificates are not just $B: $(valid_of_R1 | tr '\n' ' ')"
grep -q '"event":"superseded"' "$d/w1.log" || fail "no superseded log line"
ok "renews $A: new $B delivered, then $A revoked (superseded, renewed by $B); R1 has one valid"

C=$(send c '.issue.renewCurrent = true')
grep -q '"status":"ISSUED"' "$d/c.out" || fail "renew current was not issued: $(head -c 300 "$d/c.out")"
[ "$(jq -r '.renews.serialNumber' "$d/c.out")" = "$B" ] || fail "renew current did not find $B: $(jq -c .renews "$d/c.out")"
wait_superseded "$B" || fail "$B is not on the CRL as superseded"
[ "$(valid_of_R1)" = "$C" ] || fail "R1's valid certificates are not just $C: $(valid_of_R1 | tr '\n' ' ')"
ok "renew the current one: found $B itself, issued $C, superseded $B"

send x '.issue.renewsSerialNumber = "0BADC0DE"' > /dev/null
jq -e '.status == "FAILED" and .errorCode == "CERTIFICATE_NOT_FOUND"' "$d/x.out" >/dev/null \
  || fail "renewing an unknown serial: $(head -c 300 "$d/x.out")"
send y ".tenantId = \"fabrikam\" | .issue.renewsSerialNumber = \"$C\"" > /dev/null
jq -e '.status == "FAILED" and .errorCode == "CERTIFICATE_NOT_FOUND"' "$d/y.out" >/dev/null \
  || fail "another tenant renewed contoso's certificate: $(head -c 300 "$d/y.out")"
[ "$(status contoso "$C")" = valid ] || fail "$C is no longer valid after another tenant's attempt"
ok "a serial the tenant does not have cannot be renewed (unknown, or another tenant's): CERTIFICATE_NOT_FOUND"

kill -TERM "$(pc_worker_pid w1)"; wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
echo "$pass passed, 0 failed"
