#!/usr/bin/env bash
# ctest.sh - one fuzz target as a ctest (fuzz.<name>): every regression input of the target
# once, then fuzzing for a short fixed time over its corpus. New inputs and any crash go to
# WORK_DIR/<name>, never into the source tree.
# Usage: ctest.sh BINARY NAME SECONDS WORK_DIR
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/fuzz/targets.sh
source "$here/targets.sh"
bin="$1" name="$2" seconds="$3" work="$4/$2"

read -r -a flags <<<"$(fuzz_flags "$name")"
rm -rf "$work"
mkdir -p "$work/corpus"
seeds="$(fuzz_seeds "$(dirname "$bin")")"
mapfile -t corpora < <(fuzz_corpora "$name" "$seeds")

mapfile -t regressions < <(fuzz_regressions "$name")
if [ ${#regressions[@]} -gt 0 ]; then
  echo "== fuzz.$name: ${#regressions[@]} regression inputs"
  "$bin" "${flags[@]}" "${regressions[@]}"
fi

echo "== fuzz.$name: fuzzing for ${seconds}s"
"$bin" "${flags[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "${corpora[@]}"
