#!/usr/bin/env bash
# `pkcsctl lint-profile` applies a template's name policy as the CAs do (the same library
# functions): a device profile whose DeviceName is "*" renders a wildcard DNS SAN, which a
# template without allow_wildcards refuses; a name outside the allowed domains and a SAN type the
# template does not list are named too, each on its own line, and the exit status is 1. The same
# profile with a proper device name passes. No servers: lint-profile only reads files.
set -euo pipefail
ctl="$PC_BIN_DIR/pkcsctl"
pass=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
d="$(mktemp -d)"
trap 'rm -rf "$d"' EXIT

cat >"$d/config.json" <<JSON
{"state_dir": "$d/state",
 "cas": [{"name": "local", "templates": [{"name": "Device", "allowed_ekus": ["clientAuth"],
   "allowed_key_usages": ["digitalSignature", "keyAgreement"], "max_validity_days": 365,
   "allowed_san_types": ["DNS", "email"], "allowed_dns_domains": ["contoso.com"],
   "allow_subdomains": true, "allowed_email_domains": ["contoso.com"]}]}]}
JSON
cat >"$d/profile.json" <<'JSON'
{"profileId": "device-vpn", "caName": "local", "templateName": "Device",
 "certificateType": "DEVICE", "subjectFormat": "CN={{DeviceName}}",
 "subjectAlternativeNames": [{"type": "DNS", "format": "{{DeviceName}}.contoso.com"},
                             {"type": "DNS", "format": "{{DeviceName}}.fabrikam.com"},
                             {"type": "URI", "format": "urn:device:{{DeviceId}}"}],
 "extendedKeyUsages": ["clientAuth"], "validityDays": 365, "keyAlgorithm": "EC", "keySize": 256}
JSON
printf '{"DeviceName": "*", "DeviceId": "d-42"}\n' >"$d/wild.json"
printf '{"DeviceName": "pc-42", "DeviceId": "d-42"}\n' >"$d/plain.json"

rc=0
"$ctl" lint-profile --config "$d/config.json" --profile "$d/profile.json" \
  --attributes "$d/wild.json" >"$d/wild.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "lint-profile on the wildcard device name exited $rc: $(cat "$d/wild.out")"
for problem in \
  'template "Device" does not allow the wildcard DNS SAN "*.contoso.com"' \
  'template "Device" does not allow the wildcard DNS SAN "*.fabrikam.com"' \
  'template "Device" does not allow URI SANs ("urn:device:d-42"); allowed SAN types: email, DNS'; do
  grep -qF "error: $problem" "$d/wild.out" ||
    fail "lint-profile did not report \"$problem\": $(cat "$d/wild.out")"
done
ok "a DeviceName of \"*\": both wildcards and the URI SAN named ($(grep -c '^error: ' "$d/wild.out") errors)"

rc=0
"$ctl" lint-profile --config "$d/config.json" --profile "$d/profile.json" \
  --attributes "$d/plain.json" >"$d/plain.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "lint-profile on pc-42 exited $rc: $(cat "$d/plain.out")"
grep -qF 'error: template "Device" does not allow DNS SAN "pc-42.fabrikam.com": it is in none of its DNS domains (contoso.com)' \
  "$d/plain.out" || fail "the fabrikam.com name was not named: $(cat "$d/plain.out")"
grep -qF 'DNS:pc-42.contoso.com' "$d/plain.out" && ! grep -qF '"pc-42.contoso.com"' "$d/plain.out" ||
  fail "pc-42.contoso.com was not shown, or was refused: $(cat "$d/plain.out")"
ok "pc-42: the name outside contoso.com is named, pc-42.contoso.com passes"

# Without the names the template refuses, the profile passes.
jq '.subjectAlternativeNames |= [.[0]]' "$d/profile.json" >"$d/good.json"
"$ctl" lint-profile --config "$d/config.json" --profile "$d/good.json" \
  --attributes "$d/plain.json" >"$d/good.out" 2>&1 || fail "the good profile was refused: $(cat "$d/good.out")"
ok "DNS {{DeviceName}}.contoso.com alone passes"

echo "all $pass checks passed"
