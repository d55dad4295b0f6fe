# shellcheck shell=bash
# targets.sh - the fuzz targets and their libFuzzer flags, shared by ctest.sh and run.sh
# (sourced). Each target's inputs are bounded near what its decoder is given in production,
# and every run has a per-input timeout so that a slow input is reported instead of stalling.

# shellcheck disable=SC2034 # used by the scripts that source this file
fuzz_all_targets="request pbjson subject san http cfssl pfx spki config result"

# fuzz_flags NAME prints the libFuzzer flags of target NAME (dictionaries from this folder).
fuzz_flags() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  local common="-timeout=10 -rss_limit_mb=2048"
  case "$1" in
    request | result) echo "$common -max_len=8192 -dict=$dir/dict/request.dict" ;;
    pbjson) echo "$common -max_len=8192 -dict=$dir/dict/json.dict" ;;
    config) echo "$common -max_len=8192 -dict=$dir/dict/config.dict" ;;
    cfssl) echo "$common -max_len=16384 -dict=$dir/dict/json.dict" ;;
    subject | san) echo "$common -max_len=4096 -dict=$dir/dict/names.dict" ;;
    http) echo "$common -max_len=9000 -dict=$dir/dict/http.dict" ;;
    pfx) echo "$common -max_len=16384" ;;
    spki) echo "$common -max_len=2048" ;;
    *) return 1 ;;
  esac
}

# fuzz_seeds FUZZ_BIN_DIR prints the folder of the generated seeds (FUZZ_BIN_DIR/seeds, one
# folder per target), first writing them with FUZZ_BIN_DIR/fuzz-seedgen when the folder is not
# there yet. The seeds are made at test time rather than kept in git: they hold keys and PFX
# files (test keys, but keys), and seedgen makes fresh ones of the same kinds.
fuzz_seeds() {
  local seeds="$1/seeds" src tmp
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if [ ! -d "$seeds" ]; then
    tmp="$(mktemp -d "$1/seeds.XXXXXX")"
    "$1/fuzz-seedgen" "$tmp" "$src" >&2 || { rm -rf "$tmp"; return 1; }
    mv "$tmp" "$seeds" 2>/dev/null || rm -rf "$tmp" # another run made them first
  fi
  echo "$seeds"
}

# fuzz_corpora NAME SEEDS prints the read-only corpus folders of target NAME, one per line: its
# generated seeds, and corpus/NAME when inputs that found coverage were merged there.
fuzz_corpora() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  [ -d "$2/$1" ] && echo "$2/$1"
  [ -d "$dir/corpus/$1" ] && echo "$dir/corpus/$1"
  return 0
}

# fuzz_regressions NAME prints the regression inputs of target NAME, one per line: every file
# of regressions/NAME except notes (*.md) and known-slow inputs (regressions/NAME/slow/), which
# wait for a fix that is tracked elsewhere and would only time out.
fuzz_regressions() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/regressions/$1"
  [ -d "$dir" ] || return 0
  find "$dir" -path "$dir/slow" -prune -o -type f ! -name '*.md' -print | sort
}
