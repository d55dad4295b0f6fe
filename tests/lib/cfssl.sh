#!/usr/bin/env bash
# A real cfssl CA for tests: "cfssl serve" (Debian's golang-cfssl, cfssl 1.2) on 127.0.0.1 with
# a freshly generated CA, a signing configuration with profiles and an auth key, and an SQLite
# certificate database so that revoke works.
#
#   bash tests/lib/cfssl.sh setup DIR          # CA, config.json, db.json, certs.db, auth_key.hex
#   bash tests/lib/cfssl.sh serve DIR PORT     # runs cfssl serve in the foreground (exec), for
#                                              # a caller that owns the process (unit tests)
#   bash tests/lib/cfssl.sh serve-tls DIR PORT # the same over https, requiring a client
#                                              # certificate from the CA (mutual TLS):
#                                              # server.pem, client.pem (+ -key.pem) in DIR
#   bash tests/lib/cfssl.sh start DIR [PORT]   # serve in the background; waits until /info
#                                              # answers; pid in DIR/cfssl.pid, port in
#                                              # DIR/cfssl.port (kept: a restart reuses it)
#   bash tests/lib/cfssl.sh stop DIR           # SIGTERM, then SIGKILL after 5 s
#   bash tests/lib/cfssl.sh modern             # prints the path of a cfssl 1.6 (its CRL
#                                              # endpoint), built once with the Go toolchain
#                                              # into the cache; fails when it cannot be
#
# Profiles: "User" (client auth + e-mail protection) and "Device" (client auth) need the auth
# key "primary" (hex in DIR/auth_key.hex), so they are served by /api/v1/cfssl/authsign; the
# default profile needs none, so /api/v1/cfssl/sign is enabled too. "DeviceSerial" is Device
# signing with the client's serial: "ClientProvidesSerialNumbers" is the Go field's name, which
# cfssl reads as the key (it has no JSON tag, so a snake_case key would be ignored); cfssl 1.2's
# API drops the serial, so only a cfssl 1.6 honours it. The certificate database
# schema is written here from what cfssl 1.2's certdb/sql code reads and writes (cfssl ships its
# migrations only in its source). Needs the Debian packages golang-cfssl, sqlite3 and curl.
# PC_CFSSL_BIN: the cfssl that serves (default: cfssl on PATH), e.g. a cfssl 1.6 for its CRL
# endpoint, which cfssl 1.2 lacks; the schema suits both.
set -euo pipefail

log() { printf 'cfssl.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool not found; install the Debian packages golang-cfssl, sqlite3 and curl"
  done
}

# TLS material for serve-tls, issued by the same CA: server.pem (127.0.0.1, localhost) and
# client.pem, each with its -key.pem. A separate signing config keeps the CA's profiles as the
# tests expect them.
write_tls() {
  local dir="$1"
  cat >"$dir/tls-config.json" <<'EOF'
{"signing": {"default": {"expiry": "8760h"}, "profiles": {
  "server": {"expiry": "8760h", "usages": ["digital signature", "key encipherment", "server auth"]},
  "client": {"expiry": "8760h", "usages": ["digital signature", "key encipherment", "client auth"]}}}}
EOF
  printf '%s' '{"CN": "127.0.0.1", "hosts": ["127.0.0.1", "localhost"],
    "key": {"algo": "ecdsa", "size": 256}}' >"$dir/server-csr.json"
  printf '%s' '{"CN": "pkcs-connector-test", "key": {"algo": "ecdsa", "size": 256}}' \
    >"$dir/client-csr.json"
  local who
  for who in server client; do
    (cd "$dir" && cfssl gencert -loglevel 5 -ca ca.pem -ca-key ca-key.pem \
      -config tls-config.json -profile "$who" "$who-csr.json" | cfssljson -bare "$who") ||
      die "cannot issue the TLS $who certificate in $dir"
  done
  chmod 600 "$dir"/*-key.pem # the client key is a secret the backend checks
}

# The key both sides share: cfssl reads it from config.json, the test from auth_key.hex.
auth_key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

write_config() {
  local dir="$1" key="$2"
  cat >"$dir/config.json" <<EOF
{
  "signing": {
    "default": {"expiry": "8760h", "usages": ["digital signature", "key encipherment", "client auth"]},
    "profiles": {
      "User": {"expiry": "8760h", "auth_key": "primary",
               "usages": ["digital signature", "key encipherment", "client auth", "email protection"]},
      "Device": {"expiry": "8760h", "auth_key": "primary",
                 "usages": ["digital signature", "key encipherment", "client auth"]},
      "DeviceSerial": {"expiry": "8760h", "auth_key": "primary", "ClientProvidesSerialNumbers": true,
                 "usages": ["digital signature", "key encipherment", "client auth"]}
    }
  },
  "auth_keys": {"primary": {"type": "standard", "key": "$key"}}
}
EOF
  (umask 077 && printf '%s\n' "$key" >"$dir/auth_key.hex") # a secret: the workers refuse it otherwise
  printf '{"driver": "sqlite3", "data_source": "%s/certs.db"}\n' "$dir" >"$dir/db.json"
}

# cfssl 1.2 inserts serial_number (decimal text), authority_key_identifier (hex; empty in 1.2),
# ca_label, status ("good"/"revoked"), reason, expiry, revoked_at, pem; revoke updates status,
# reason and revoked_at by (serial_number, authority_key_identifier). ocsp_responses is used by
# "cfssl ocsprefresh" and the OCSP signer. cfssl 1.6 also writes (and selects) issued_at,
# not_before, metadata, sans and common_name, and fills authority_key_identifier.
write_certdb() {
  sqlite3 "$1/certs.db" <<'EOF'
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  issued_at                timestamp,
  not_before               timestamp,
  metadata                 text,
  sans                     text,
  common_name              text,
  PRIMARY KEY (serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY (serial_number, authority_key_identifier),
  FOREIGN KEY (serial_number, authority_key_identifier)
    REFERENCES certificates (serial_number, authority_key_identifier)
);
EOF
}

setup() {
  local dir="$1"
  need cfssl cfssljson sqlite3
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  printf '%s' '{"CN": "PKCS Connector Test cfssl CA", "key": {"algo": "ecdsa", "size": 256},
    "names": [{"O": "PKCS Connector Test"}]}' >"$dir/ca-csr.json"
  (cd "$dir" && cfssl gencert -loglevel 5 -initca ca-csr.json | cfssljson -bare ca) ||
    die "cfssl gencert -initca failed in $dir"
  write_config "$dir" "$(auth_key)"
  write_tls "$dir"
  rm -f "$dir/certs.db"
  write_certdb "$dir"
}

# free_port: the harness's one port chooser (servers.sh): below the kernel's ephemeral range, so
# that no outgoing connection can hold the port when cfssl binds it, and not one handed to
# another server of the same test. A port picked anywhere in 20000-60000, as here before, can be
# an outgoing connection's, and cfssl then exits at start with "address already in use" (a CI
# run under ASan saw cfssl exit at start once; its log had gone with the test's folder, so
# start now says the log's last lines itself).
source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
free_port() { pc_free_port || die "no free port found on 127.0.0.1"; }

# serve DIR PORT [tls]: exec cfssl serve; over mutual TLS when a third argument is given.
serve() {
  local dir="$1" port="$2" tls=()
  need "${PC_CFSSL_BIN:-cfssl}"
  [[ -f $dir/config.json ]] || die "$dir has no config.json; run: $0 setup $dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -n ${3:-} ]]; then
    tls=(-tls-cert "$dir/server.pem" -tls-key "$dir/server-key.pem" -mutual-tls-ca "$dir/ca.pem")
  fi
  exec "${PC_CFSSL_BIN:-cfssl}" serve -address 127.0.0.1 -port "$port" -ca "$dir/ca.pem" -ca-key "$dir/ca-key.pem" \
    -config "$dir/config.json" -db-config "$dir/db.json" "${tls[@]}"
}

answers() { curl -s -o /dev/null -m 1 -d '{}' "http://127.0.0.1:$1/api/v1/cfssl/info"; }

start() {
  local dir="$1" port="${2:-}" pid i
  need cfssl curl
  [[ -f $dir/config.json ]] || die "$dir has no config.json; run: $0 setup $dir"
  dir="$(cd "$dir" && pwd)"
  if [[ -z $port && -f $dir/cfssl.port ]]; then port="$(cat "$dir/cfssl.port")"; fi
  [[ -n $port ]] || port="$(free_port)"
  serve "$dir" "$port" >>"$dir/cfssl.log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$dir/cfssl.pid"
  printf '%s\n' "$port" >"$dir/cfssl.port"
  # Up to 60 s: a loaded machine (CI, a sanitizer build beside it) starts Go programs slowly;
  # a cfssl that exits is reported at once.
  for ((i = 0; i < 1200; i++)); do
    if answers "$port"; then
      printf '%s\n' "$port"
      return 0
    fi
    # the log goes with the test's folder: say its end here, where CI shows it
    kill -0 "$pid" 2>/dev/null ||
      die "cfssl serve on port $port exited at start: $(tail -n 3 "$dir/cfssl.log" | tr '\n' ' ')"
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true
  die "cfssl serve did not answer on 127.0.0.1:$port within 60 s; see $dir/cfssl.log"
}

stop() {
  local dir="$1" pid i
  [[ -f $dir/cfssl.pid ]] || return 0
  pid="$(cat "$dir/cfssl.pid")"
  rm -f "$dir/cfssl.pid"
  # only a cfssl we started: the pid may have been reused since
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == cfssl ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# modern: cfssl $MODERN_VERSION, which serves /api/v1/cfssl/crl, installed once by "go install"
# (the Go module proxy) into the cache, like the Kafka jars; Debian has only cfssl 1.2.
MODERN_VERSION=v1.6.5
modern() {
  local dir="${PC_CFSSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pkcs-connector/cfssl-$MODERN_VERSION}"
  mkdir -p "$dir"
  # Tests running side by side may all ask at once: one builds, the others wait for it.
  exec 9>"$dir/.lock"
  flock 9
  if [[ ! -x $dir/bin/cfssl ]]; then
    command -v go >/dev/null || die "go not found: cannot build cfssl $MODERN_VERSION"
    mkdir -p "$dir"
    log "building cfssl $MODERN_VERSION into $dir (once; a few minutes)"
    GOBIN="$dir/bin.tmp" CGO_ENABLED=1 GOFLAGS=-buildvcs=false \
      go install "github.com/cloudflare/cfssl/cmd/cfssl@$MODERN_VERSION" >"$dir/build.log" 2>&1 ||
      die "go install cfssl@$MODERN_VERSION failed; see $dir/build.log"
    rm -rf "$dir/bin" && mv "$dir/bin.tmp" "$dir/bin"
  fi
  printf '%s\n' "$dir/bin/cfssl"
}

case "${1:-}" in
modern)
  modern
  ;;
setup | start | stop)
  [[ -n ${2:-} ]] || die "usage: $0 $1 DIR"
  "$@"
  ;;
serve)
  [[ -n ${2:-} && -n ${3:-} ]] || die "usage: $0 serve DIR PORT"
  serve "$2" "$3"
  ;;
serve-tls)
  [[ -n ${2:-} && -n ${3:-} ]] || die "usage: $0 serve-tls DIR PORT"
  serve "$2" "$3" tls
  ;;
*)
  die "usage: $0 setup|serve|serve-tls|start|stop DIR [PORT]"
  ;;
esac
