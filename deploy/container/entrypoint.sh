#!/bin/sh
# Entry point of the PKCS Connector image: runs one program, chosen by the first argument.
#
#   worker [ARGS...]          pkcs-worker (the default)
#   coordinator [ARGS...]     pkcs-coordinator
#   pkcsctl ARGS...           the command-line tool
#   healthcheck [worker|coordinator]
#                             exit 0 when the program running in this container answers 200 on
#                             /readyz (the image's HEALTHCHECK); without a name it looks for
#                             the running program. Ports: PC_HTTP_PORT (9464) for a worker,
#                             PC_COORDINATOR_PORT (9470) for the coordinator.
#
# The configuration is PC_CONFIG, or --config FILE, or else the mounted
# /etc/pkcs-connector/config/config.json when it exists.
set -eu

bindir=/usr/local/bin
confdir=/etc/pkcs-connector/config

usage() {
  echo "usage: pkcs-entrypoint worker|coordinator|pkcsctl|healthcheck [ARGS...]" >&2
  exit 2
}

default_config() {
  if [ -z "${PC_CONFIG:-}" ] && [ -r "$confdir/config.json" ]; then
    PC_CONFIG="$confdir/config.json"
    export PC_CONFIG
  fi
}

# running_program prints worker or coordinator: the one running in this container (the
# kernel keeps 15 characters of a name, so pkcs-coordinator shows as pkcs-coordinato).
running_program() {
  for comm in /proc/[0-9]*/comm; do
    case "$(cat "$comm" 2>/dev/null || true)" in
      pkcs-worker) echo worker; return 0 ;;
      pkcs-coordinat*) echo coordinator; return 0 ;;
    esac
  done
  return 1
}

healthcheck() {
  role="${1:-}"
  if [ -z "$role" ]; then
    role="$(running_program)" || { echo "healthcheck: neither pkcs-worker nor pkcs-coordinator is running" >&2; exit 1; }
  fi
  case "$role" in
    worker) port="${PC_HTTP_PORT:-9464}" ;;
    coordinator) port="${PC_COORDINATOR_PORT:-9470}" ;;
    *) usage ;;
  esac
  # --fail-with-body: a 503 fails the check and shows /readyz's reason in the health log.
  exec curl --silent --show-error --fail-with-body --max-time 3 "http://127.0.0.1:$port/readyz"
}

[ $# -gt 0 ] || usage
program="$1"
shift
case "$program" in
  worker) default_config; exec "$bindir/pkcs-worker" "$@" ;;
  coordinator) default_config; exec "$bindir/pkcs-coordinator" "$@" ;;
  pkcsctl) default_config; exec "$bindir/pkcsctl" "$@" ;;
  healthcheck) healthcheck "$@" ;;
  -h | --help | help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "pkcs-entrypoint: unknown program '$program'" >&2; usage ;;
esac
