#!/usr/bin/env bash
# pkcsctl submit --csv, without a broker (--dry-run prints the requests it would send): the
# sample CSVs and profiles become the right requests; RFC 4180 quoting, CRLF, a byte-order mark
# and UTF-8 come through exactly; a malformed file is refused naming FILE:LINE and sends
# nothing; --csv/--profile pair up in order.
set -euo pipefail
pkcsctl="$PC_BIN_DIR/pkcsctl"
samples="$PC_SOURCE_DIR/deploy/samples"
pass=0
ok() {
  pass=$((pass + 1))
  echo "ok - $*"
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pc-csv-test-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

dry() { "$pkcsctl" submit --dry-run --device-keys "$tmp/keys" "$@"; }

# The samples: one request per row, default ids counted on across files, a key per request.
dry --id-prefix s --csv "$samples/users.csv" --profile "$samples/profiles/user-wifi.json" \
  --csv "$samples/devices.csv" --profile "$samples/profiles/device-vpn.json" >out.jsonl 2>err.txt ||
  fail "samples: $(cat err.txt)"
[[ $(wc -l <out.jsonl) == 150 ]] || fail "samples: $(wc -l <out.jsonl) requests, not 150"
grep -q '"requestId":"s-000001"' out.jsonl && grep -q '"requestId":"s-000150"' out.jsonl ||
  fail "default request ids are not s-000001..s-000150"
grep -q '"UserName":"O'"'"'Neil, Ann"' out.jsonl || fail "the name with a comma did not come through"
grep -q '"UserName":"Zoë Ångström"' out.jsonl || fail "the UTF-8 name did not come through"
grep -q '"UserName":"Robert \\"Bob\\" Tables"' out.jsonl || fail "the quoted name did not come through"
sed -n 101p out.jsonl | grep -q '"profileId":"device-vpn"' || fail "row 101 does not have the device profile"
[[ $(find keys -name 's-*.pem' -perm 600 | wc -l) == 150 ]] || fail "not 150 device keys of mode 0600"
! grep -q warning err.txt || fail "the samples raised warnings: $(cat err.txt)"
ok "samples: 150 requests, ids counted on across files, names exact, 150 device keys"

# RFC 4180 details: BOM, CRLF, "" escapes, a line break in a field, blank lines, an empty cell.
printf '\xef\xbb\xbfrequestId,userId,tenantId,UserName,EmailAddress\r\n' >q.csv
printf 'r1,ann,contoso,"Doe, ""JD"" John",jd@example.com\r\n\r\n' >>q.csv
printf 'r2,bob,,"two\nlines",\n' >>q.csv
dry --csv q.csv --profile "$samples/profiles/user-wifi.json" >q.jsonl 2>err.txt || fail "q.csv: $(cat err.txt)"
[[ $(wc -l <q.jsonl) == 2 ]] || fail "q.csv: $(wc -l <q.jsonl) requests, not 2"
grep -q '"tenantId":"contoso".*"UserName":"Doe, \\"JD\\" John","EmailAddress":"jd@example.com"' q.jsonl ||
  fail "row 1 is not exact: $(head -n 1 q.jsonl | cut -c1-300)"
sed -n 2p q.jsonl | grep -q '"tenantId":"default".*"UserName":"two\\nlines"' ||
  fail "row 2 is not exact: $(sed -n 2p q.jsonl | cut -c1-300)"
! sed -n 2p q.jsonl | grep -q '"EmailAddress"' || fail "an empty cell was sent as a value"
ok "BOM, CRLF, \"\" escapes, a line break in a field, a blank line, an empty cell"

# A device key given per row, relative to the CSV's folder.
mkdir -p sub
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sub/dev.pem 2>/dev/null
openssl pkey -in sub/dev.pem -pubout -out sub/dev.pub
want="$(openssl pkey -pubin -in sub/dev.pub -outform DER | base64 -w0)"
printf 'requestId,deviceId,devicePublicKeyFile,AAD_Device_ID,Device_Serial,DeviceName\n' >sub/d.csv
printf 'd1,dev1,dev.pub,aad-1,SER1,ws-1\nd2,dev2,dev.pem,aad-2,SER2,ws-2\n' >>sub/d.csv
"$pkcsctl" submit --dry-run --csv sub/d.csv --profile "$samples/profiles/device-vpn.json" \
  >d.jsonl 2>err.txt || fail "d.csv: $(cat err.txt)"
[[ $(grep -c "\"devicePublicKey\":\"$want\"" d.jsonl) == 2 ]] ||
  fail "devicePublicKeyFile (public and private PEM) did not give the device key"
ok "devicePublicKeyFile: public or private PEM, relative to the CSV's folder"

# Malformed files: exit 1, FILE:LINE in the message, nothing sent.
bad() { # bad NAME CONTENT EXPECTED-MESSAGE
  printf "$2" >"$1.csv"
  local rc=0
  dry --csv "$1.csv" --profile "$samples/profiles/user-wifi.json" >"$1.out" 2>"$1.err" || rc=$?
  [[ $rc == 1 ]] || fail "$1: exit $rc, not 1"
  [[ ! -s $1.out ]] || fail "$1: requests were printed for a malformed file"
  grep -qF "$3" "$1.err" || fail "$1: expected '$3', got: $(cat "$1.err")"
}
bad unterminated 'userId,UserName\nann,ok\nbob,"never closed\ncarl,x\n' "unterminated.csv:3: the double quote"
bad stray 'userId,UserName\nann,a"b\n' 'stray.csv:2: a double quote inside an unquoted field'
bad after 'userId,UserName\nann,"a"b\n' 'after.csv:2: text after the closing double quote'
bad count 'userId,UserName\nann,ok\nbob,Doe, Bob\n' 'count.csv:3: 3 fields, but the header names 2'
bad utf8 'userId,UserName\nann,\xe9t\xe9\n' 'utf8.csv:2: field 2 is not valid UTF-8'
bad nohead '' 'nohead.csv:1: the file is empty'
bad typo 'userid,UserName\nann,ok\n' 'typo.csv:1: column "userid": did you mean userId?'
bad twice 'userId,UserName,username\nann,a,b\n' 'twice.csv:1: columns "UserName" and "username"'
ok "malformed files refused with FILE:LINE, nothing sent"

rc=0
"$pkcsctl" submit --dry-run --csv q.csv >/dev/null 2>err.txt || rc=$?
[[ $rc == 2 ]] && grep -q 'needs --profile' err.txt || fail "--csv without --profile: exit $rc"
rc=0
dry --csv q.csv --csv q.csv --profile "$samples/profiles/user-wifi.json" \
  --profile "$samples/profiles/user-smime.json" --profile "$samples/profiles/user-wifi.json" \
  >/dev/null 2>err.txt || rc=$?
[[ $rc == 2 ]] && grep -q '2 --csv and 3 --profile' err.txt || fail "2 --csv, 3 --profile: exit $rc"
printf 'userId,UserName,EmailAddress\nann,Ann,ann@example.com\n' >p.csv
dry --csv p.csv --profile "$samples/profiles/user-wifi.json" --csv p.csv \
  --profile "$samples/profiles/user-smime.json" --id-prefix pp >pair.jsonl 2>err.txt
sed -n 1p pair.jsonl | grep -q '"requestId":"pp-000001".*"profileId":"user-wifi"' &&
  sed -n 2p pair.jsonl | grep -q '"requestId":"pp-000002".*"profileId":"user-smime"' ||
  fail "the i-th --csv did not get the i-th --profile: $(cut -c1-200 pair.jsonl)"
ok "--csv and --profile pair up in order; a missing or extra --profile is a usage error"
echo "$pass passed, 0 failed"
