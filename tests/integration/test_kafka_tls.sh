#!/usr/bin/env bash
# Kafka over TLS with SCRAM-SHA-512: a broker whose only client listener is SASL_SSL (a test CA,
# users created when its storage is formatted). A worker, the coordinator and pkcsctl with the
# right credentials issue certificates end to end; a worker with a wrong password, and clients
# that do not trust the broker's CA, stop with an error naming the setting to fix instead of
# retrying in silence; the coordinator says it on /readyz and keeps serving its CA files.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

export PC_KAFKA_SECURITY=sasl_ssl
pc_cluster_init 2
d="$PC_SERVERS_DIR"
ctl="$PC_BIN_DIR/pkcsctl"
grep -q '^listeners=SASL_SSL://127.0.0.1:[0-9]*,CONTROLLER' "$d/kafka/server.properties" ||
  fail "the broker's client listener is not SASL_SSL only: $(grep '^listeners=' "$d/kafka/server.properties")"

# A wrong password, and a CA that did not sign the broker's certificate.
(umask 077 && printf 'not-the-password\n' >"$d/wrong.password")
pc_secret_note_file "$d/wrong.password"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=some other CA" -keyout "$d/other-ca.key" -out "$d/other-ca.crt" 2>/dev/null

# logged FILE EVENT REGEX: FILE has a JSON log line of EVENT whose msg matches REGEX (librdkafka
# writes lines of its own to stderr too, which are skipped).
logged() {
  [[ -n $(jq -R -c --arg ev "$2" --arg re "$3" \
    'fromjson? | select(.event == $ev and (.msg | test($re)))' "$1" 2>/dev/null || true) ]]
}

# wait_exit NAME: waits (up to 120 s) for the worker to end; sets rc to its exit code, or to
# "running". Not in $(...): only this shell can wait for its children.
wait_exit() {
  local pid i
  pid="$(pc_worker_pid "$1")"
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    rc=running
  else
    rc=0
    wait "$pid" || rc=$?
  fi
}

# 1. The right credentials: issued end to end, pkcsctl included.
pc_worker_spawn good
pc_worker_wait_ready good 120
pc_submit --template "$data/user-rsa.json" --count 5 --id-prefix tls --key-alg ec \
  --device-keys "$d/keys" 2>"$d/submit.err" || fail "pkcsctl submit over TLS+SCRAM failed: $(cat "$d/submit.err")"
printf 'tls-%06d\n' $(seq 1 5) >"$d/tls.ids"
pc_watch --ids "$d/tls.ids" --json --timeout 120 --device-keys "$d/keys" \
  --ca "$d/state/ca/local/ca.crt" >"$d/tls.jsonl" 2>"$d/watch.err" ||
  fail "pkcsctl watch over TLS+SCRAM did not see the 5 results: $(cat "$d/watch.err")"
[[ $(grep -c '"status":"ISSUED"' "$d/tls.jsonl") == 5 ]] || fail "not 5 ISSUED: $(head -c 600 "$d/tls.jsonl")"
[[ $(pc_ca_issued) == 5 ]] || fail "the CA signed $(pc_ca_issued) certificates, not 5"
ok "worker, pkcsctl submit and watch over SASL_SSL: 5 certificates issued, opened and verified"

pc_coordinator_spawn
for _ in $(seq 1 300); do
  [[ $(pc_http_status "$PC_COORDINATOR_PORT" /readyz) == 200 ]] && break
  sleep 0.2
done
[[ $(pc_http_status "$PC_COORDINATOR_PORT" /readyz) == 200 ]] ||
  fail "the coordinator is not ready over SASL_SSL: $(curl -s "http://127.0.0.1:$PC_COORDINATOR_PORT/readyz")"
ok "the coordinator reads the topics and the group over SASL_SSL (/readyz 200)"

# 2. A wrong password: the worker stops, saying which settings to check.
pc_worker_spawn wrongpw PC_KAFKA_SASL_PASSWORD_FILE="$d/wrong.password"
wait_exit wrongpw
[[ $rc != running ]] || fail "the worker with a wrong Kafka password is still running (retrying silently?): $(tail -n 5 "$d/wrongpw.log")"
[[ $rc != 0 ]] || fail "the worker with a wrong Kafka password exited 0"
logged "$d/wrongpw.log" kafka_refused \
  "Kafka refused our credentials: check kafka.sasl_username and kafka.sasl_password" ||
  fail "no kafka_refused line naming the credentials: $(grep -v '"level":"debug"' "$d/wrongpw.log" | tail -n 5)"
! grep -q 'not-the-password' "$d/wrongpw.log" || fail "the wrong password is in the worker's log"
[[ $(pc_ca_issued) == 5 ]] || fail "the refused worker changed the CA's records"
ok "a wrong SCRAM password: the worker exits $rc with kafka_refused naming kafka.sasl_username/sasl_password"

# 3. A CA that does not vouch for the broker: the worker and pkcsctl stop with a clear error.
pc_worker_spawn untrusted PC_KAFKA_SSL_CA_FILE="$d/other-ca.crt"
wait_exit untrusted
[[ $rc != running && $rc != 0 ]] || fail "the worker that does not trust the broker did not stop with an error (rc $rc)"
logged "$d/untrusted.log" kafka_refused "certificate is not trusted: set kafka.ssl_ca_file" ||
  fail "no kafka_refused line naming kafka.ssl_ca_file: $(tail -n 5 "$d/untrusted.log")"
ok "an untrusted broker certificate: the worker exits $rc naming kafka.ssl_ca_file"

set +e
PC_KAFKA_SSL_CA_FILE="$d/other-ca.crt" pc_watch --count 1 --timeout 60 >/dev/null 2>"$d/watch-untrusted.err"
rc=$?
set -e
[[ $rc == 1 ]] || fail "pkcsctl watch that does not trust the broker exited $rc, not 1"
grep -q "certificate is not trusted: set kafka.ssl_ca_file" "$d/watch-untrusted.err" ||
  fail "pkcsctl watch did not say why: $(cat "$d/watch-untrusted.err")"
grep -q "timed out" "$d/watch-untrusted.err" && fail "pkcsctl watch waited for its timeout instead of stopping"
set +e
PC_KAFKA_SASL_PASSWORD_FILE="$d/wrong.password" pc_submit --template "$data/user-rsa.json" \
  --count 1 --id-prefix refused --key-alg ec --device-keys "$d/keys" >/dev/null 2>"$d/submit-wrongpw.err"
rc=$?
set -e
[[ $rc == 1 ]] || fail "pkcsctl submit with a wrong password exited $rc, not 1"
grep -q "Kafka refused our credentials" "$d/submit-wrongpw.err" ||
  fail "pkcsctl submit did not say why: $(cat "$d/submit-wrongpw.err")"
ok "pkcsctl watch (untrusted broker) and submit (wrong password) exit 1 at once, naming the settings"

# 4. The coordinator with a wrong password: /readyz 503 with the reason, CA files still served.
log2="$d/coordinator-wrongpw.log"
_pc_launch coordinator2 "$log2" env PC_COORDINATOR_PORT=0 PC_KAFKA_SASL_PASSWORD_FILE="$d/wrong.password" \
  "$PC_BIN_DIR/pkcs-coordinator" --config "$PC_CLUSTER_CONFIG"
port2=""
for _ in $(seq 1 300); do
  port2="$(jq -Rr 'fromjson? | select(.event == "http") | .port' "$log2" 2>/dev/null | head -1)"
  [[ -n $port2 ]] && grep -q '"event":"kafka_refused"' "$log2" && break
  sleep 0.2
done
[[ -n $port2 ]] || fail "the second coordinator did not start: $(tail -n 5 "$log2")"
logged "$log2" kafka_refused "Kafka refused our credentials" ||
  fail "the coordinator logged no kafka_refused line: $(tail -n 5 "$log2")"
for _ in $(seq 1 300); do
  curl -s "http://127.0.0.1:$port2/readyz" | grep -q "Kafka refused our credentials" && break
  sleep 0.2
done
[[ $(pc_http_status "$port2" /readyz) == 503 ]] || fail "the refused coordinator's /readyz is not 503"
curl -s "http://127.0.0.1:$port2/readyz" | grep -q "check kafka.sasl_username and kafka.sasl_password" ||
  fail "/readyz does not say why: $(curl -s "http://127.0.0.1:$port2/readyz")"
[[ $(pc_http_status "$port2" /ca/local.crt) == 200 ]] || fail "the refused coordinator stopped serving /ca/local.crt"
ok "coordinator with a wrong password: kafka_refused logged, /readyz 503 naming the settings, CA certificate still served"

kill -TERM "$(pc_worker_pid good)"
wait "$(pc_worker_pid good)" || fail "the good worker did not drain cleanly"
echo "$pass passed, 0 failed"
