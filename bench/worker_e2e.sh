#!/usr/bin/env bash
# End-to-end figures of the worker on this machine: requests/s and latency (request created ->
# result read) for P-256 and RSA-2048 certificates with 1 and 2 workers, against a real Kafka
# broker and Redis on loopback, beside the engine's own figure on the same cores
# (pkcs-bench-engine: no Kafka, no Redis). Prints a Markdown table.
#
# usage: bash bench/worker_e2e.sh [BUILD_DIR]      (default: build)
#        PC_BENCH_EC=2000 PC_BENCH_RSA=300 PC_BENCH_WORKERS="1 2" to change the sizes
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PC_BIN_DIR="$(cd "${1:-$here/build}" && pwd)"
export PC_SOURCE_DIR="$here"
source "$here/tests/lib/cluster.sh"
data="$here/tests/integration/data"
ec_n="${PC_BENCH_EC:-2000}"
rsa_n="${PC_BENCH_RSA:-300}"
workers_list="${PC_BENCH_WORKERS:-1 2}"

engine_floor() { # engine_floor "engine request P-256": requests/s on all cores
  "$PC_BIN_DIR/pkcs-bench-engine" --seconds 5 --only "$1" | awk -F'|' 'NR == 3 { gsub(/ /, "", $4); print $4 }'
}

pc_cluster_init 8 >/dev/null 2>&1
d="$PC_SERVERS_DIR"
# No pre-generated keys: this measures steady throughput, not a burst after a quiet period.
sed -i 's/"key_pool_size": 4/"key_pool_size": 0/' "$PC_CLUSTER_CONFIG"

run=0
measure() { # measure WORKERS TEMPLATE COUNT LABEL
  local nw="$1" tmpl="$2" count="$3" label="$4" prefix i
  run=$((run + 1)); prefix="b$run"
  for ((i = 1; i <= nw; i++)); do pc_worker_spawn "$prefix-w$i"; done
  for ((i = 1; i <= nw; i++)); do pc_worker_wait_ready "$prefix-w$i" 90 >/dev/null; done
  sleep 3 # let the group settle, so the figure is not a rebalance
  printf "$prefix-%06d\n" $(seq 1 "$count") > "$d/$prefix.ids"
  pc_watch --ids "$d/$prefix.ids" --timeout 900 > "$d/$prefix.out" &
  local watch_pid=$!
  sleep 2 # the watcher has joined before the first request is created
  pc_submit --template "$tmpl" --count "$count" --id-prefix "$prefix" >/dev/null 2>&1
  wait "$watch_pid" || { echo "bench: run $prefix failed: $(cat "$d/$prefix.out")" >&2; exit 1; }
  local line tput p50 p99
  line="$(grep '^latency' "$d/$prefix.out")"
  tput="$(sed -n 's/.*throughput \([0-9.]*\) results.*/\1/p' <<<"$line")"
  p50="$(sed -n 's/.*p50 \([0-9]*\),.*/\1/p' <<<"$line")"
  p99="$(sed -n 's/.*p99 \([0-9]*\),.*/\1/p' <<<"$line")"
  for ((i = 1; i <= nw; i++)); do kill -TERM "$(pc_worker_pid "$prefix-w$i")"; done
  for ((i = 1; i <= nw; i++)); do wait "$(pc_worker_pid "$prefix-w$i")" || true; done
  printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$nw" "$count" "$tput" "$p50" "$p99"
}

# The device keys in the template are irrelevant to the cost; one shared device key is used.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/device.pem" 2>/dev/null
device_spki="$(openssl pkey -in "$d/device.pem" -pubout -outform DER | base64 -w0)"
for alg in ec rsa; do
  sed "s|\"issue\": {|\"issue\": {\"devicePublicKey\": \"$device_spki\", |" "$data/user-$alg.json" > "$d/bench-$alg.json"
done

floor_ec="$(engine_floor "engine request P-256")"
floor_rsa="$(engine_floor "engine request RSA-2048")"
echo "| certificate | workers | requests | end-to-end req/s | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|"
for nw in $workers_list; do
  measure "$nw" "$d/bench-ec.json" "$ec_n" "P-256"
  measure "$nw" "$d/bench-rsa.json" "$rsa_n" "RSA-2048"
done
echo
echo "Engine floor on the same $(nproc) cores (pkcs-bench-engine, no Kafka, no Redis):" \
  "P-256 $floor_ec req/s, RSA-2048 $floor_rsa req/s"
