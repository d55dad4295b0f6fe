#!/usr/bin/env bash
# The coordinator serves the CRL of a cfssl CA, fetched from cfssl through the backend, against
# real Kafka, Redis, a worker and `cfssl serve` with its database. Debian's cfssl 1.2 has no CRL
# endpoint: /crl/remote.crl is then a 503 that says so, logged once (crl_failed), and /api/cas
# shows the CA's CRL failing. A cfssl 1.6 (built once with the Go toolchain into the cache, see
# tests/lib/cfssl.sh modern) on the same database: a certificate the worker issued through cfssl
# and revoked with `pkcsctl revoke` appears in the CRL the coordinator serves (which verifies
# against cfssl's CA), the other one does not; with cfssl stopped the last CRL is still served
# and the failure logged. A newer cfssl in PC_CFSSL_BIN serves the second part instead of the
# one built; the first part is always Debian's cfssl, whose lack of an endpoint it shows.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
given_cfssl=${PC_CFSSL_BIN:-}
unset PC_CFSSL_BIN
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${log:-} ]] && { echo "end of the coordinator's log:" >&2; tail -n 20 "$log" >&2; }
  exit 1
}
for tool in jq curl openssl sqlite3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/setup.sh installs it)"
done

pc_cluster_init 2
d="$PC_SERVERS_DIR"
pc_cluster_add_cfssl || fail "could not start cfssl or add it to the configuration"
cf="$PC_CFSSL_DIR"
log="$d/coordinator.log"
crl_url() { echo "http://127.0.0.1:$PC_COORDINATOR_PORT/crl/remote.crl"; }
# remote_ca_is JQ-FILTER: /api/cas' entry for remote passes the filter within 30 s.
remote_ca_is() {
  local i
  for ((i = 0; i < 150; i++)); do
    curl -sf "http://127.0.0.1:$PC_COORDINATOR_PORT/api/cas" |
      jq -e ".[] | select(.name == \"remote\") | $1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
# stop_coordinator: SIGTERM, exit 0 expected; its log is kept as coordinator-N.log.
stop_coordinator() {
  local rc=0
  kill -TERM "$coord_pid"
  wait "$coord_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "the coordinator exited $rc after SIGTERM"
  grep -q '"event":"loop"' "$log" && fail "the coordinator left libuv handles open at exit"
  mv "$log" "$d/coordinator-$1.log"
}

# ---- cfssl 1.2: no CRL to be had ----------------------------------------------------------
pc_coordinator_spawn
coord_pid="$_pc_launched_pid"
no_endpoint='"event":"crl_failed".*no CRL endpoint.*"ca":"remote"'
for ((i = 0; i < 150; i++)); do
  grep -q "$no_endpoint" "$log" && break
  sleep 0.2
done
grep -q "$no_endpoint" "$log" || fail "no crl_failed log line naming cfssl's missing CRL endpoint: $(grep crl_ "$log")"
status=$(curl -s -o "$d/no-crl.txt" -w '%{http_code}' "$(crl_url)")
[[ $status == 503 ]] && grep -q 'no CRL endpoint' "$d/no-crl.txt" && grep -q 'cfssl 1.3 or later' "$d/no-crl.txt" \
  || fail "/crl/remote.crl with cfssl 1.2: $status $(cat "$d/no-crl.txt")"
sleep 6 # a second fetch, which fails the same way, is not logged again
[[ $(grep -c "$no_endpoint" "$log") -eq 1 ]] \
  || fail "the same failure was logged more than once: $(grep crl_failed "$log")"
curl -sf "http://127.0.0.1:$PC_COORDINATOR_PORT/ca/remote.der" | cmp -s - <(openssl x509 -in "$cf/ca.pem" -outform DER) \
  || fail "/ca/remote.der is not cfssl's CA certificate"
remote_ca_is '.health == "Failing" and (.reason | test("no CRL endpoint"))
  and (.crl | type) == "object" and .crl.age_s == null and .crl.revoked == null' \
  || fail "/api/cas does not show remote's CRL failing: $(curl -s "http://127.0.0.1:$PC_COORDINATOR_PORT/api/cas")"
ok "cfssl 1.2: /crl/remote.crl is 503 naming the missing endpoint, logged once (and in /api/cas); /ca/remote.der is cfssl's CA"
stop_coordinator 1

# ---- cfssl 1.6 on the same database --------------------------------------------------------
if [[ -n $given_cfssl ]]; then
  modern=$given_cfssl
elif ! modern="$(bash "$PC_SOURCE_DIR/tests/lib/cfssl.sh" modern 2>"$d/cfssl-modern.log")"; then
  echo "SKIP: no cfssl with a CRL endpoint could be built ($(tail -1 "$d/cfssl-modern.log")):" \
    "the CRL of a revoked cfssl certificate was not checked"
  echo "$pass passed, 0 failed"
  exit 0
fi
pc_cfssl_stop
PC_CFSSL_BIN="$modern" pc_cfssl_restart || fail "cfssl 1.6 did not start on the same database"
pc_coordinator_spawn
coord_pid="$_pc_launched_pid"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

pc_submit --template "$data/device-remote.json" --count 2 --id-prefix crl --device-keys "$d/keys" 2>/dev/null
pc_watch --count 2 --json --timeout 120 --device-keys "$d/keys" --ca "$cf/ca.pem" >"$d/issued.out" \
  || fail "issuing through cfssl: $(tail -1 "$d/issued.out")"
serials=($(grep '^{' "$d/issued.out" | jq -r 'select(.status == "ISSUED") | .serialNumber' | sort -u))
[[ ${#serials[@]} -eq 2 ]] || fail "not 2 certificates: $(cat "$d/issued.out")"
revoked="${serials[0]}" kept="${serials[1]}"
"$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
  --signer-key "$d/signer.pem" --ca remote --tenant contoso --serial "$revoked" \
  --reason key-compromise --wait --timeout 60 | grep -q REVOKED || fail "revoking $revoked failed"
ok "2 certificates issued through cfssl 1.6; $revoked revoked with pkcsctl"

# listed SERIAL FILE: the CRL text lists the serial (openssl prints it in upper-case hex).
listed() { grep -qi "Serial Number: 0*${1#"${1%%[!0]*}"}$" "$2"; }
found=0
for ((i = 0; i < 120; i++)); do
  if curl -sf -o "$d/remote.crl" "$(crl_url)" &&
    openssl crl -inform DER -in "$d/remote.crl" -noout -text >"$d/remote.txt" 2>/dev/null &&
    listed "$revoked" "$d/remote.txt"; then
    found=1
    break
  fi
  sleep 0.5
done
((found)) || fail "the served CRL does not list $revoked within 60 s: $(cat "$d/remote.txt" 2>/dev/null)"
openssl crl -inform DER -in "$d/remote.crl" -noout -CAfile "$cf/ca.pem" 2>&1 | grep -q 'verify OK' \
  || fail "the served CRL does not verify against cfssl's CA"
listed "$kept" "$d/remote.txt" && fail "the CRL lists $kept, which was not revoked"
grep -q "Next Update:" "$d/remote.txt" || fail "the CRL has no nextUpdate"
grep -q '"event":"crl_published".*"ca":"remote"' "$log" || fail "no crl_published line for remote"
remote_ca_is '.health == "OK" and .crl.age_s != null and .crl.error == null' \
  || fail "/api/cas does not show remote's CRL: $(curl -s "http://127.0.0.1:$PC_COORDINATOR_PORT/api/cas")"
ok "/crl/remote.crl lists $revoked (not $kept) and verifies against cfssl's CA; /api/cas shows its age"

pc_cfssl_stop
unreachable='"event":"crl_failed".*cannot reach cfssl.*"ca":"remote"'
for ((i = 0; i < 200; i++)); do
  curl -sf -o /dev/null "$(crl_url)" || fail "the last CRL is no longer served with cfssl down"
  grep -q "$unreachable" "$log" && break
  sleep 0.3
done
grep -q "$unreachable" "$log" \
  || fail "cfssl down: no crl_failed log line: $(grep crl_ "$log")"
curl -sf -o "$d/stale.crl" "$(crl_url)" && cmp -s "$d/stale.crl" "$d/remote.crl" \
  || fail "cfssl down: the last CRL is not the one served"
ok "cfssl down: the last CRL is still served, the failure logged"

kill -TERM "$(pc_worker_pid w1)"
wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
stop_coordinator 2
ok "worker and coordinator stopped cleanly"
echo "$pass passed, 0 failed"
