#!/usr/bin/env bash
# run.sh - longer fuzzing than the test suite's 20 seconds a target: builds the fuzz targets
# (clang, ASan + UBSan) and runs each for N minutes, one after the other, then prints per target
# the executions, executions per second and coverage from libFuzzer's final statistics. A crash,
# timeout or out-of-memory input is kept in tests/fuzz/regressions/<target>/ (commit it with the
# fix: every ctest run replays it). The corpus each run grows stays in the build folder, so the
# next run starts from it; --merge adds the inputs that bring new coverage to
# tests/fuzz/corpus/<target>/ for committing.
#
# Usage: bash tests/fuzz/run.sh [--minutes N] [--build DIR] [--merge] [target...]
#   --minutes N  minutes per target (default 5)
#   --build DIR  build folder (default build-fuzz/, configured here when missing)
#   target...    some of: request pbjson subject san http cfssl pfx spki config result
#                (default all)
# The machine has few cores: targets run one at a time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=tests/fuzz/targets.sh
source "$here/targets.sh"

minutes=5
build="$root/build-fuzz"
merge=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --merge) merge=1; shift ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$fuzz_all_targets"
for t in "${targets[@]}"; do
  fuzz_flags "$t" >/dev/null || { echo "run.sh: no fuzz target $t" >&2; exit 2; }
done
case "$minutes" in '' | *[!0-9]*) echo "run.sh: --minutes takes a whole number" >&2; exit 2 ;; esac

if ! command -v clang >/dev/null 2>&1; then
  echo "run.sh: clang is missing; install the Debian packages clang and libclang-rt-14-dev" \
    "(bash deploy/setup.sh --deps-only)" >&2
  exit 1
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "== configure $build"
  cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DPC_SANITIZE=ON -DPC_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
echo "== build ${targets[*]}"
cmake --build "$build" -j"$(nproc)" --target fuzz-seedgen "${targets[@]/#/fuzz-}" \
  >/dev/null
seeds="$(fuzz_seeds "$build/fuzz")"

# final_stat NAME LOG prints libFuzzer's final statistic NAME (stat::NAME: value), or "?".
final_stat() {
  local v
  v="$(sed -n "s/^stat::$1: *//p" "$2" | tail -n 1)"
  echo "${v:-?}"
}

summary=()
failed=0
for t in "${targets[@]}"; do
  work="$build/fuzz/run/$t"
  log="$work/fuzz.log"
  mkdir -p "$work/corpus" "$here/regressions/$t"
  read -r -a flags <<<"$(fuzz_flags "$t")"
  mapfile -t corpora < <(fuzz_corpora "$t" "$seeds")
  echo "== fuzz-$t for $minutes min (log: $log)"
  rc=0
  "$build/fuzz/fuzz-$t" "${flags[@]}" -max_total_time=$((minutes * 60)) -print_final_stats=1 \
    -artifact_prefix="$here/regressions/$t/" "$work/corpus" "${corpora[@]}" >"$log" 2>&1 ||
    rc=$?
  # the last status line: "#123 DONE cov: 456 ft: 789 corp: 12/3456b ..."
  line="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")"
  corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$line")"
  result="ok"
  if [ "$rc" -ne 0 ]; then
    failed=1
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    result="FOUND (exit $rc) ${artifact:-see the log}"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|ALARM|.*fuzz_[a-z]+: )' "$log" | head -n 5 || true
  fi
  summary+=("$(printf '%-8s executions %-10s exec/s %-7s cov %-6s ft %-6s corpus %-6s %s' \
    "$t" "$(final_stat number_of_executed_units "$log")" "$(final_stat average_exec_per_sec "$log")" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
  if [ "$merge" -eq 1 ]; then
    mkdir -p "$here/corpus/$t"
    "$build/fuzz/fuzz-$t" "${flags[@]}" -merge=1 "$here/corpus/$t" "$work/corpus" \
      >"$work/merge.log" 2>&1 || echo "run.sh: merging $t failed, see $work/merge.log" >&2
  fi
done

echo "== summary ($minutes min per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
