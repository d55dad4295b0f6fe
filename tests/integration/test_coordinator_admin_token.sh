#!/usr/bin/env bash
# pkcs-coordinator's HTTP limits, as a client sees them: write endpoints (every method but GET
# and HEAD under /api/; today POST /api/topics/ensure) answer 403 while no admin token is
# configured, 401 with WWW-Authenticate without the token or with a wrong one, 202 with it,
# while the read-only pages stay open; an admin token file readable by others keeps it from
# starting ("chmod 600");
# connections beyond coordinator.http_max_connections get 503 at once, a client that never
# finishes its request is cut off after coordinator.http_timeout_ms, and the server then serves
# again. Kafka and Redis are not needed for any of this: the coordinator points at closed ports.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/servers.sh"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${log:-} ]] && { echo "end of the coordinator's log:" >&2; tail -n 20 "$log" >&2; }
  exit 1
}
for tool in jq curl openssl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/setup.sh installs it)"
done

pc_servers_init
d="$PC_SERVERS_DIR"
(umask 077 && head -c 32 /dev/urandom | base64 >"$d/ca-passphrase")
(umask 077 && openssl rand -hex 32 >"$d/admin-token")
token="$(cat "$d/admin-token")"

# config [TOKEN_FILE]: the coordinator's configuration, with an admin token file or without.
config() {
  local token_line=""
  [[ -n ${1:-} ]] && token_line="\"admin_token_file\": \"$1\","
  cat <<JSON
{"state_dir": "$d/state",
 "cas": [{"name": "local", "key_passphrase_file": "$d/ca-passphrase"}],
 "kafka": {"brokers": "127.0.0.1:$(pc_free_port)"},
 "redis": {"port": $(pc_free_port), "command_timeout_ms": 500},
 "coordinator": {$token_line "http_port": 0, "http_max_connections": 4, "http_timeout_ms": 1500}}
JSON
}

# start NAME CONFIG: launches a coordinator and sets port to the port it logged.
start() {
  log="$d/$1.log"
  _pc_launch "$1" "$log" "$PC_BIN_DIR/pkcs-coordinator" --config "$2"
  port=""
  for ((i = 0; i < 100; i++)); do
    port="$(jq -r 'select(.event == "http") | .port' "$log" 2>/dev/null | head -1)"
    [[ -n $port ]] && return 0
    sleep 0.1
  done
  fail "$1 logged no HTTP port"
}
code() { curl -s -o "$d/body" -D "$d/headers" -w '%{http_code}' "$@"; }
ensure() { code -X POST "$@" "http://127.0.0.1:$port/api/topics/ensure"; }

# ---- no token configured: write endpoints are off ----------------------------------------
config >"$d/open.json"
start open "$d/open.json"
[[ $(ensure) == 403 ]] || fail "POST without a configured token: $(cat "$d/body")"
grep -q 'coordinator.admin_token_file' "$d/body" || fail "the 403 does not name the setting: $(cat "$d/body")"
[[ $(ensure -H "Authorization: Bearer $token") == 403 ]] || fail "a token is accepted though none is configured"
[[ $(code "http://127.0.0.1:$port/healthz") == 200 ]] || fail "/healthz is not open"
grep -q '"event":"http".*"write_endpoints":"off"' "$log" ||
  fail "the start log does not say the write endpoints are off"
ok "without coordinator.admin_token_file: POST is 403 naming the setting, /healthz open"
_pc_stop open

# ---- an admin token file others can read: refused at start --------------------------------
chmod 644 "$d/admin-token"
config "$d/admin-token" >"$d/loose.json"
rc=0
timeout 20 "$PC_BIN_DIR/pkcs-coordinator" --config "$d/loose.json" >"$d/loose.log" 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "the coordinator ran with a world-readable token file (rc $rc)"
grep -q "chmod 600 $d/admin-token" "$d/loose.log" || fail "no 'chmod 600' advice: $(cat "$d/loose.log")"
ok "a token file readable by others stops the start: $(grep -o 'admin_token_file[^"]*mode 0644' "$d/loose.log" | head -1)"
chmod 600 "$d/admin-token"

# ---- with the token -----------------------------------------------------------------------
config "$d/admin-token" >"$d/token.json"
start token "$d/token.json"
[[ $(ensure) == 401 ]] || fail "POST without Authorization: $(cat "$d/body")"
grep -qi '^WWW-Authenticate: Bearer realm="pkcs-coordinator"' "$d/headers" ||
  fail "the 401 has no WWW-Authenticate: $(cat "$d/headers")"
[[ $(ensure -H "Authorization: Bearer ${token}x") == 401 ]] || fail "a longer token was accepted"
[[ $(ensure -H "Authorization: Bearer ${token:0:63}") == 401 ]] || fail "a shorter token was accepted"
[[ $(ensure -H "Authorization: Basic $token") == 401 ]] || fail "another scheme was accepted"
[[ $(ensure -H "Authorization: Bearer $token" -H "Authorization: Bearer $token") == 401 ]] ||
  fail "a repeated Authorization header was accepted"
[[ $(code -X DELETE -H "Authorization: Bearer nope-nope-nope-nope" "http://127.0.0.1:$port/api/fleet") == 401 ]] ||
  fail "another write method under /api/ without the token was not refused"
[[ $(code -X POST "http://127.0.0.1:$port/healthz") == 405 ]] ||
  fail "a POST outside /api/ should be the route's business (405 here), not the token's"
[[ $(ensure -H "Authorization: Bearer $token") == 202 ]] || fail "POST with the token: $(cat "$d/body")"
[[ $(ensure -H "authorization:   bearer $token") == 202 ]] ||
  fail "header name and scheme are case-insensitive, blanks ignored: $(cat "$d/body")"
[[ $(code "http://127.0.0.1:$port/") == 200 && $(code "http://127.0.0.1:$port/metrics") == 200 ]] ||
  fail "the read-only pages are not open"
grep -q '"event":"admin_refused"' "$log" || fail "refused write requests were not logged"
ok "with the token: 401 (+ WWW-Authenticate) without it, wrong or repeated; 202 with it; reading open"

# ---- connections: 4 at most, idle ones cut off -------------------------------------------
# Four clients that connect and send nothing hold every slot.
for i in 1 2 3 4; do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  eval "held$i=$fd"
done
sleep 0.3
[[ $(code -m 5 "http://127.0.0.1:$port/healthz") == 503 ]] || fail "a fifth connection was not refused"
grep -q 'too many connections' "$d/body" || fail "the 503 does not say why: $(cat "$d/body")"
ok "with 4 connections held open, a fifth gets 503 \"too many connections\" at once"

# The held ones are closed by the server once http_timeout_ms passed without a request; read
# them until EOF (bounded by a generous read timeout: an open connection fails the check).
for i in 1 2 3 4; do
  fd_var="held$i"
  if ! timeout 10 cat <&"${!fd_var}" >/dev/null; then
    fail "connection $i was still open 10 s after a 1.5 s timeout"
  fi
  eval "exec {held$i}>&-"
done
[[ $(code "http://127.0.0.1:$port/healthz") == 200 ]] || fail "not serving again after the idle clients went"
ok "idle connections are closed by the server; it serves again"

_pc_stop token
echo "all $pass checks passed"
