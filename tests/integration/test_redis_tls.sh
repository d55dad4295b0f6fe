#!/usr/bin/env bash
# Redis over TLS through a local stunnel, with an ACL user: redis-server listens with TLS only
# (port 0, tls-port, client certificates required), a client-mode stunnel on loopback forwards
# to it (hiredis 0.14 has no TLS; docs/operations.md). A worker logged in as the ACL user pkcs,
# whose rights are the ones operations.md documents, issues end to end through the tunnel; a
# worker with a wrong ACL password stops at once, saying which settings to check.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

export PC_REDIS_TLS=1
pc_cluster_init 2
d="$PC_SERVERS_DIR"
rcli() { redis-cli -h 127.0.0.1 -p "$PC_REDIS_PORT" "$@"; }

# TLS only: the server has no plaintext listener, and a plaintext client on its port fails.
[[ $(rcli CONFIG GET port | tail -1) == 0 ]] || fail "redis-server has a plaintext port"
! redis-cli -h 127.0.0.1 -p "$PC_REDIS_TLS_PORT" PING 2>/dev/null | grep -q PONG ||
  fail "the TLS port answered a plaintext PING"
redis-cli --tls --cacert "$PC_REDIS_TLS_DIR/ca.crt" --cert "$PC_REDIS_TLS_DIR/client.crt" \
  --key "$PC_REDIS_TLS_DIR/client.key" -h 127.0.0.1 -p "$PC_REDIS_TLS_PORT" PING | grep -q PONG ||
  fail "redis-cli --tls cannot reach the TLS port"
ok "redis-server listens with TLS only; stunnel on 127.0.0.1:$PC_REDIS_PORT forwards to it"

# The ACL user of docs/operations.md, its password in a file as in production.
(umask 077 && openssl rand -hex 16 >"$d/redis.password" && printf 'wrong-acl-pass\n' >"$d/wrong.password")
pc_secret_note_file "$d/redis.password" "$d/wrong.password"
rcli ACL SETUSER pkcs on ">$(<"$d/redis.password")" '~pc:*' '&*' +@all -@dangerous \
  +info '+config|get' +role >/dev/null
jq --arg pw "$d/redis.password" '.redis += {username: "pkcs", password_file: $pw}' \
  "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" && mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"

pc_worker_spawn acl
pc_worker_wait_ready acl 120
pc_submit --template "$data/user-rsa.json" --count 6 --id-prefix tls --key-alg ec \
  --device-keys "$d/keys" 2>/dev/null
printf 'tls-%06d\n' $(seq 1 6) >"$d/tls.ids"
pc_watch --ids "$d/tls.ids" --json --timeout 120 --device-keys "$d/keys" \
  --ca "$d/state/ca/local/ca.crt" >"$d/tls.jsonl" 2>"$d/watch.err" ||
  fail "the worker behind stunnel did not answer: $(cat "$d/watch.err")"
[[ $(grep -c '"status":"ISSUED"' "$d/tls.jsonl") == 6 ]] || fail "not 6 ISSUED: $(head -c 600 "$d/tls.jsonl")"
[[ $(pc_ca_issued) == 6 ]] || fail "the CA's records in Redis hold $(pc_ca_issued) certificates, not 6"
# The worker's connection (claims, leases and, from the loop, the local CA's records) is
# logged in as pkcs; no write came as the default user.
[[ $(rcli CLIENT LIST | grep -c ' user=pkcs ') -ge 1 ]] ||
  fail "the worker's connections are not logged in as pkcs: $(rcli CLIENT LIST)"
! rcli CLIENT LIST | grep -q ' user=default .*cmd=evalsha' || fail "something wrote as the default user"
ok "a worker logged in as the ACL user pkcs issues 6 certificates through stunnel and TLS"

pc_worker_spawn wrongpw PC_REDIS_PASSWORD_FILE="$d/wrong.password"
pid="$(pc_worker_pid wrongpw)"
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
! kill -0 "$pid" 2>/dev/null || fail "the worker with a wrong Redis password is still running: $(tail -n 3 "$d/wrongpw.log")"
rc=0
wait "$pid" || rc=$?
[[ $rc != 0 ]] || fail "the worker with a wrong Redis password exited 0"
grep '"event":"redis_refused"' "$d/wrongpw.log" |
  grep -q 'WRONGPASS.*check redis.username and redis.password' ||
  fail "no redis_refused line naming redis.username and redis.password: $(tail -n 5 "$d/wrongpw.log")"
! grep -q 'wrong-acl-pass' "$d/wrongpw.log" || fail "the wrong password is in the log"
ok "a wrong ACL password: the worker exits $rc with redis_refused naming redis.username/password"

kill -TERM "$(pc_worker_pid acl)"
wait "$(pc_worker_pid acl)" || fail "the worker did not drain cleanly"
echo "$pass passed, 0 failed"
