#!/usr/bin/env bash
# The local stack as the README's main job runs it: deploy/stack.sh up with 2 workers and a
# demo batch of 60 requests (user Wi-Fi, device VPN and S/MIME profiles from the sample CSVs),
# on free ports so it never meets a stack the developer runs; every request must be issued.
# `up` again only runs another batch; `down --purge` leaves no process and no state behind.
# Whatever fails, the trap takes the stack down.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh" # pc_free_port, pc_http_status, _pc_alive
stack="$PC_SOURCE_DIR/deploy/stack.sh"
pass=0
ok() {
  pass=$((pass + 1))
  echo "ok - $*"
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pc-stack-test-XXXXXX")"
st="$tmp/stack"
cleanup() {
  local rc=$?
  if [[ -d $st ]]; then
    if ((rc != 0)); then
      echo "--- stack status and logs at the failure:" >&2
      bash "$stack" status --state "$st" >&2 || true
      tail -n 5 "$st"/logs/*.log >&2 2>/dev/null || true
    fi
    bash "$stack" down --state "$st" --purge >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Five distinct free ports (pc_free_port records what it handed out under PC_SERVERS_DIR; it is
# not exported, so the stack does not see it).
PC_SERVERS_DIR="$tmp"
ports=()
for _ in 1 2 3 4 5; do ports+=("$(pc_free_port)"); done
unset PC_SERVERS_DIR
port_args=(--kafka-port "${ports[0]}" --controller-port "${ports[1]}" --redis-port "${ports[2]}"
  --coordinator-port "${ports[3]}" --worker-port "${ports[4]}")

t0=$SECONDS
rc=0
PC_STACK_NO_SETUP=1 bash "$stack" up --state "$st" --workers 2 --demo 60 "${port_args[@]}" \
  >"$tmp/up.log" 2>&1 || rc=$?
if ((rc != 0)); then
  cat "$tmp/up.log" >&2
  fail "stack.sh up exited $rc"
fi
grep -q '^summary: 60 requests: issued 60, failed 0, missing 0' "$tmp/up.log" ||
  fail "not all 60 demo requests issued: $(grep '^summary' "$tmp/up.log" || tail -n 20 "$tmp/up.log")"
grep -q 'every result opened with its device key and verified against the CA' "$tmp/up.log" ||
  fail "the demo results were not all opened and verified: $(grep -A3 '^summary' "$tmp/up.log")"
ok "up: 2 workers, 60 demo requests all issued, opened and verified ($((SECONDS - t0)) s)"

# What up started: every recorded process alive, each worker ready.
mapfile -t records < <(for f in "$st"/pids/*; do printf '%s %s\n' "${f##*/}" "$(cat "$f")"; done)
((${#records[@]} >= 4)) || fail "expected Redis, Kafka and 2 workers recorded, got: ${records[*]}"
for r in "${records[@]}"; do
  read -r name pid start <<<"$r"
  _pc_alive "$pid" "$start" || fail "$name (pid $pid) is not running after up"
done
bash "$stack" status --state "$st" >"$tmp/status.log" || fail "status: $(cat "$tmp/status.log")"
[[ $(grep -c 'worker-[12] .* ready ' "$tmp/status.log") == 2 ]] ||
  fail "status does not show 2 ready workers: $(cat "$tmp/status.log")"
if [[ -x $PC_BIN_DIR/pkcs-coordinator ]]; then
  [[ $(pc_http_status "${ports[3]}" /) == 200 ]] || fail "no status page on port ${ports[3]}"
  ok "status: ${#records[@]} processes running, 2 workers ready, status page up"
else
  ok "status: ${#records[@]} processes running, 2 workers ready (no coordinator in this build)"
fi

# up again: the stack is left as it is and only a new batch runs.
PC_STACK_NO_SETUP=1 bash "$stack" up --state "$st" --demo 5 >"$tmp/up2.log" 2>&1 ||
  fail "second up: $(tail -n 20 "$tmp/up2.log")"
grep -q 'already up' "$tmp/up2.log" || fail "second up did not say the stack is already up"
grep -q '^summary: 5 requests: issued 5, failed 0' "$tmp/up2.log" ||
  fail "second batch: $(grep '^summary' "$tmp/up2.log" || tail -n 20 "$tmp/up2.log")"
for r in "${records[@]}"; do
  read -r name pid start <<<"$r"
  _pc_alive "$pid" "$start" || fail "$name (pid $pid) was restarted or stopped by the second up"
done
ok "up again: 'already up', the same processes, a new batch of 5 issued"

bash "$stack" down --state "$st" --purge >"$tmp/down.log" 2>&1 || fail "down: $(cat "$tmp/down.log")"
[[ ! -e $st ]] || fail "down --purge left $st"
for r in "${records[@]}"; do
  read -r name pid start <<<"$r"
  ! _pc_alive "$pid" "$start" || fail "$name (pid $pid) still runs after down"
done
left="$(pgrep -f -- "$st/" || true)"
[[ -z $left ]] || fail "processes naming the state folder remain: $(ps -o pid,args -p "${left//$'\n'/,}")"
ok "down --purge: no process left, state folder removed"
echo "$pass passed, 0 failed"
