#!/usr/bin/env bash
# The whole test suite: a warnings-as-errors build and its tests, then the same suite again in
# an AddressSanitizer + UndefinedBehaviorSanitizer build, then the formatting check.
# Usage: bash tests/run.sh            (after bash deploy/setup.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc)"

run_suite() {
  local dir="$1"; shift
  echo "== configure $dir ($*)"
  cmake -S "$here" -B "$dir" -DPC_WERROR=ON -DPC_TEST_HOOKS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== ctest $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

# The chaos suite (tests/chaos) is long: it runs in the sanitizer build only.
run_suite "$here/build-test" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPC_CHAOS=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DPC_SANITIZE=ON -DPC_CHAOS=ON

echo "== clang-format check"
mapfile -t sources < <(cd "$here" && git ls-files '*.c' '*.h')
(cd "$here" && clang-format --dry-run --Werror "${sources[@]}")
echo "== all checks passed"
