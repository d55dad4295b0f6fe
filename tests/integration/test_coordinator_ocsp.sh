#!/usr/bin/env bash
# The coordinator's OCSP responder for the local CA, against a real Kafka broker and Redis with
# one worker: certificates carry the responder's URL (ocsp_url) in their AIA; openssl's own OCSP
# client finds an issued certificate good and, within seconds of `pkcsctl revoke`, revoked with
# its reason, and a serial the CA never issued unknown; each response verifies against the CA
# certificate alone (the delegated responder certificate is included) and echoes the nonce,
# also in the GET form of RFC 6960 appendix A; another CA's certificate is unauthorized,
# garbage malformed, an oversize request refused, an unknown CA a 404.
set -euo pipefail
source "$PC_SOURCE_DIR/tests/lib/cluster.sh"
data="$PC_SOURCE_DIR/tests/integration/data"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${PC_SERVERS_DIR:-}/coordinator.log ]] && {
    echo "end of the coordinator's log:" >&2
    tail -n 20 "$PC_SERVERS_DIR/coordinator.log" >&2
  }
  exit 1
}
for tool in jq curl openssl base64; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/setup.sh installs it)"
done

pc_cluster_init 2
d="$PC_SERVERS_DIR"
ca="$d/state/ca/local/ca.crt"
pc_coordinator_spawn
port="$PC_COORDINATOR_PORT" coord_pid="$_pc_launched_pid"
log="$d/coordinator.log"
for ((i = 0; i < 150; i++)); do
  grep -q '"event":"ocsp_ready"' "$log" && break
  grep -q '"event":"ocsp_failed"' "$log" && fail "no responder certificate: $(grep ocsp_failed "$log")"
  sleep 0.2
done
grep -q '"event":"ocsp_ready"' "$log" || fail "the coordinator did not make its responder certificate"
[[ -f $d/state/ca/local/ocsp.crt ]] && head -1 "$d/state/ca/local/ocsp.key" | grep -q 'ENCRYPTED PRIVATE KEY' \
  || fail "no responder certificate, or its key is not encrypted, in the CA's state folder"
ok "the coordinator made the CA's responder certificate at start; its key is encrypted on disk"

# The workers put the coordinator's responder into what they issue.
url="http://127.0.0.1:$port/ocsp/local"
jq --arg u "$url" '.cas[0].ocsp_url = $u' "$PC_CLUSTER_CONFIG" >"$PC_CLUSTER_CONFIG.new" &&
  mv "$PC_CLUSTER_CONFIG.new" "$PC_CLUSTER_CONFIG"
pc_worker_spawn w1
pc_worker_wait_ready w1 90

pc_submit --template "$data/user-ec.json" --count 2 --id-prefix ocsp --device-keys "$d/keys" 2>/dev/null
pc_watch --count 2 --json --timeout 120 --device-keys "$d/keys" --ca "$ca" >"$d/issued.out" \
  || fail "issuing: $(tail -1 "$d/issued.out")"
certs=()
for id in ocsp-000001 ocsp-000002; do
  grep "\"requestId\":\"$id\"" "$d/issued.out" | head -1 | jq -r .certificate | base64 -d |
    openssl x509 -inform DER -out "$d/$id.pem" || fail "no certificate for $id"
  certs+=("$d/$id.pem")
done
good="${certs[0]}" bad="${certs[1]}"
bad_serial=$(openssl x509 -in "$bad" -noout -serial | cut -d= -f2)
[[ $(openssl x509 -in "$good" -noout -ocsp_uri) == "$url" ]] \
  || fail "the certificate's AIA does not name $url: $(openssl x509 -in "$good" -noout -ocsp_uri)"
ok "2 certificates issued; their AIA names the responder $url"

# ask CERT NAME: openssl's OCSP client against the responder, trusting only the CA certificate;
# the request and the response are kept as $d/NAME.req and $d/NAME.resp.
ask() {
  openssl ocsp -issuer "$ca" -cert "$1" -url "$url" -CAfile "$ca" -resp_text \
    -reqout "$d/$2.req" -respout "$d/$2.resp" 2>&1
}
# nonce_of FILE KIND: the nonce in a request (req) or response (resp), as openssl prints it.
nonce_of() {
  openssl ocsp -"$2"in "$1" -"$2"_text -noverify 2>/dev/null | grep -A1 'OCSP Nonce' | tail -1 | tr -d ' '
}
out=$(ask "$good" good) || fail "openssl ocsp: $out"
grep -q "Response verify OK" <<<"$out" || fail "the response does not verify against the CA: $out"
grep -q "^$good: good$" <<<"$out" || fail "the issued certificate is not good: $out"
grep -qi "warning" <<<"$out" && fail "openssl warns: $out"
grep -q "Extended Key Usage" <<<"$out" && grep -q "OCSP Signing" <<<"$out" && grep -q "OCSP No Check" <<<"$out" \
  || fail "the response does not include the delegated responder certificate: $out"
req_nonce=$(nonce_of "$d/good.req" req) resp_nonce=$(nonce_of "$d/good.resp" resp)
[[ -n $req_nonce && $req_nonce == "$resp_nonce" ]] || fail "nonce sent $req_nonce, echoed $resp_nonce"
grep -q "Next Update:" <<<"$out" || fail "no nextUpdate: $out"
ok "the issued certificate is good; signed by the delegated responder, verified, nonce $req_nonce echoed"

"$PC_BIN_DIR/pkcsctl" revoke --brokers "$PC_KAFKA_BROKERS" --signer-key-id mdm-1 \
  --signer-key "$d/signer.pem" --ca local --tenant contoso --serial "$bad_serial" \
  --reason key-compromise --wait --timeout 60 | grep -q REVOKED || fail "revoking $bad_serial failed"
revoked=0
for ((i = 0; i < 40; i++)); do
  out=$(ask "$bad" bad) || fail "openssl ocsp: $out"
  grep -q "^$bad: revoked$" <<<"$out" && { revoked=1; break; }
  sleep 0.25
done
((revoked)) || fail "the revoked certificate is not revoked 10 s after its revocation: $out"
grep -q "Response verify OK" <<<"$out" || fail "the response does not verify: $out"
grep -q "Reason: keyCompromise" <<<"$out" || fail "no reason keyCompromise: $out"
grep -q "Revocation Time:" <<<"$out" || fail "no revocation time: $out"
out=$(ask "$good" good) || fail "openssl ocsp: $out"
grep -q "^$good: good$" <<<"$out" || fail "the other certificate is no longer good: $out"
ok "revoked $bad_serial with pkcsctl: revoked (keyCompromise, with its time); the other still good"

out=$(openssl ocsp -issuer "$ca" -serial 0x0123456789ABCDEF0123 -url "$url" -CAfile "$ca" 2>&1) \
  || fail "openssl ocsp: $out"
grep -q "Response verify OK" <<<"$out" && grep -q "^0x0123456789ABCDEF0123: unknown$" <<<"$out" \
  || fail "a serial the CA never issued is not unknown: $out"
ok "a serial the CA never issued is unknown"

# ---- GET (RFC 6960 appendix A.1): base64 of the DER request, URL-encoded ------------------
openssl ocsp -issuer "$ca" -cert "$bad" -reqout "$d/get.req" 2>/dev/null
enc=$(base64 -w0 "$d/get.req" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
type=$(curl -sf -o "$d/get.resp" -w '%{content_type}' "$url/$enc") || fail "GET $url/$enc failed"
[[ $type == application/ocsp-response ]] || fail "GET answered $type"
# (openssl checks the nonce of a request it sends itself; here the two are compared by hand)
out=$(openssl ocsp -respin "$d/get.resp" -issuer "$ca" -cert "$bad" -CAfile "$ca" -no_nonce 2>&1) \
  || fail "openssl ocsp -respin: $out"
grep -q "Response verify OK" <<<"$out" && grep -q "^$bad: revoked$" <<<"$out" \
  || fail "the GET answer: $out"
req_nonce=$(nonce_of "$d/get.req" req) resp_nonce=$(nonce_of "$d/get.resp" resp)
[[ -n $req_nonce && $req_nonce == "$resp_nonce" ]] || fail "GET: nonce sent $req_nonce, echoed $resp_nonce"
ok "GET /ocsp/local/{base64}: application/ocsp-response, verified, revoked, nonce echoed"

# ---- what is refused -----------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/other.key" \
  -subj "/CN=Another CA" -days 2 -out "$d/other.crt" 2>/dev/null
out=$(openssl ocsp -issuer "$d/other.crt" -serial 0x01 -url "$url" 2>&1) || true
grep -q "Responder Error: unauthorized" <<<"$out" || fail "another CA's certificate: $out"
curl -sf -X POST -H 'Content-Type: application/ocsp-request' --data-binary 'hello, responder' \
  -o "$d/garbage.resp" "$url" || fail "POST of garbage failed at the HTTP level"
out=$(openssl ocsp -respin "$d/garbage.resp" -resp_text 2>&1) || true
grep -q "Responder Error: malformedrequest" <<<"$out" || fail "garbage: $out"
head -c 20000 /dev/zero >"$d/big.req"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/ocsp-request' \
  --data-binary @"$d/big.req" "$url") == 413 ]] || fail "a 20000-byte request was not refused with 413"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/ocsp-request' \
  --data-binary @"$d/good.req" "http://127.0.0.1:$port/ocsp/nope") == 404 ]] || fail "unknown CA not 404"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: text/plain' \
  --data-binary @"$d/good.req" "$url") == 415 ]] || fail "a text/plain body was not refused with 415"
ok "another CA: unauthorized; garbage: malformedRequest; 20000 bytes: 413; unknown CA: 404; text/plain: 415"

kill -TERM "$(pc_worker_pid w1)"
wait "$(pc_worker_pid w1)" || fail "worker did not exit 0"
kill -TERM "$coord_pid"
rc=0
wait "$coord_pid" || rc=$?
[[ $rc -eq 0 ]] || fail "the coordinator exited $rc after SIGTERM"
grep -q '"event":"loop"' "$log" && fail "the coordinator left libuv handles open at exit"
ok "worker and coordinator stopped cleanly"
echo "$pass passed, 0 failed"
