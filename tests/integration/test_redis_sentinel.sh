#!/usr/bin/env bash
# Redis failover under load: a master, a replica and three sentinels; two workers find the
# master through the sentinels. With a few hundred requests in flight, SENTINEL FAILOVER
# promotes the replica. Then every request has exactly one result, the local CA's records on
# the new master list exactly the certificates the results carry (none issued twice, none
# forgotten), and both workers serve and heart-beat on the new master.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
N=300

export PC_REDIS_SENTINEL=1
pc_cluster_init 8
d="$PC_SERVERS_DIR"
first_sentinel="${PC_TEST_SENTINELS%%,*}"
master() { pc_redis_master_port; }
rmaster() { redis-cli -h 127.0.0.1 -p "$(master)" "$@"; }
old_master="$(master)"
[[ $old_master == "$PC_REDIS_PORT" ]] || fail "the sentinels name $old_master, not the master $PC_REDIS_PORT"

pc_worker_spawn w1
pc_worker_spawn w2
pc_worker_wait_ready w1 120
pc_worker_wait_ready w2 120
ok "two workers found the master through the sentinels ($PC_TEST_SENTINELS)"

pc_submit --template "$data/user-rsa.json" --count "$N" --id-prefix fo --key-alg ec \
  --device-keys "$d/keys" 2>/dev/null
printf 'fo-%06d\n' $(seq 1 "$N") >"$d/fo.ids"

# The failover once a tenth of the batch is issued: most of it is still in flight.
for _ in $(seq 1 600); do
  (($(pc_ca_issued) >= N / 10)) && break
  sleep 0.1
done
before="$(pc_ca_issued)"
((before >= N / 10 && before < N)) || fail "the batch was not in the middle at the failover: $before of $N issued"
redis-cli -p "${first_sentinel##*:}" SENTINEL FAILOVER "$PC_TEST_MASTER_NAME" >/dev/null
for _ in $(seq 1 300); do
  [[ $(master) != "$old_master" ]] && break
  sleep 0.1
done
[[ $(master) == "$PC_REDIS_REPLICA_PORT" ]] || fail "the sentinels did not promote the replica: master $(master)"
ok "SENTINEL FAILOVER with $before of $N certificates issued: the master is now $(master)"

pc_watch --ids "$d/fo.ids" --json --timeout 300 --device-keys "$d/keys" \
  --ca "$d/state/ca/local/ca.crt" >"$d/fo.jsonl" 2>"$d/watch.err" ||
  fail "not every request was answered, or a request got two different certificates: $(tail -n 5 "$d/watch.err")"

# exactly one certificate per request, all ISSUED
jq -Rr 'fromjson? | select(.requestId? // "" | startswith("fo-")) | [.requestId, .status, .serialNumber] | @tsv' \
  "$d/fo.jsonl" | sort -u >"$d/results.tsv"
[[ $(cut -f1 "$d/results.tsv" | sort -u | wc -l) == "$N" ]] ||
  fail "$(cut -f1 "$d/results.tsv" | sort -u | wc -l) of $N requests have a result"
[[ $(wc -l <"$d/results.tsv") == "$N" ]] ||
  fail "some request has two different results: $(cut -f1 "$d/results.tsv" | uniq -d | head -3)"
! grep -vq $'\tISSUED\t' "$d/results.tsv" || fail "not all ISSUED: $(grep -v $'\tISSUED\t' "$d/results.tsv" | head -3)"
ok "each of the $N requests has exactly one result, ISSUED"

# the CA's records on the new master: the same certificates, one per request
issued="$(pc_ca_issued)"
[[ $issued == "$N" ]] || fail "the CA's records list $issued certificates for $N requests"
bad=0
while IFS=$'\t' read -r id _ serial; do
  got="$(rmaster LRANGE "pc:ca:{local}:req:contoso:$id" 0 -1 | tr '\n' ' ')"
  [[ $got == "$serial " ]] || { bad=$((bad + 1)); echo "  $id: result $serial, CA records: ${got:-none}" >&2; }
done <"$d/results.tsv"
((bad == 0)) || fail "$bad requests' CA records differ from their results"
[[ $(rmaster HLEN 'pc:ca:{local}:revoked') == 0 ]] || fail "certificates were revoked (orphans of a lost claim?)"
ok "the CA's records on the new master: $N certificates, each request's one serial is its result's"

# both workers on the new master: ready, heart-beating there
for w in w1 w2; do
  [[ $(pc_http_status "$(pc_worker_port "$w")" /readyz) == 200 ]] || fail "$w is not ready after the failover"
done
for w in w1 w2; do # the registry's score is the last heartbeat: it moves on the new master
  s1="$(rmaster ZSCORE pc:workers "$w")"
  [[ -n $s1 ]] || fail "$w is not in the registry on the new master"
  for _ in $(seq 1 100); do
    [[ $(rmaster ZSCORE pc:workers "$w") != "$s1" ]] && break
    sleep 0.1
  done
  [[ $(rmaster ZSCORE pc:workers "$w") != "$s1" ]] || fail "$w's heartbeat on the new master did not move"
done
ok "both workers ready and heart-beating on the new master"

for w in w1 w2; do kill -TERM "$(pc_worker_pid "$w")"; done
for w in w1 w2; do wait "$(pc_worker_pid "$w")" || fail "$w did not drain cleanly"; done
echo "$pass passed, 0 failed"
