#!/usr/bin/env bash
# The whole test suite: a warnings-as-errors build and its tests; then the same suite again in
# a clang build under AddressSanitizer + UndefinedBehaviorSanitizer (warnings are errors there
# too), which also builds the libFuzzer targets of tests/fuzz, each a ctest fuzz.<name> (its
# regression inputs, then 20 s of fuzzing), and runs the chaos suite (tests/chaos); then the
# formatting check.
# Usage: bash tests/run.sh            (after bash deploy/setup.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc)"

# The CMake options of each suite, besides PC_WERROR and PC_TEST_HOOKS (run_suite): add an
# option to a suite here.
first_suite=(
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DPC_FUZZ=OFF # libFuzzer is clang's: the sanitizer suite builds the fuzz targets
  -DPC_CHAOS=OFF # long: the chaos suite runs in the sanitizer suite only
)
sanitizer_suite=(
  -DCMAKE_BUILD_TYPE=Debug
  -DCMAKE_C_COMPILER=clang
  -DPC_SANITIZE=ON
  -DPC_FUZZ=ON
  -DPC_CHAOS=ON
)

run_suite() {
  local dir="$1"; shift
  echo "== configure $dir ($*)"
  cmake -S "$here" -B "$dir" -DPC_WERROR=ON -DPC_TEST_HOOKS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== ctest $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

if ! command -v clang >/dev/null 2>&1; then
  echo "tests/run.sh: the sanitizer suite needs clang and libFuzzer (Debian packages clang and" \
    "libclang-rt-14-dev): bash deploy/setup.sh --deps-only" >&2
  exit 1
fi

# cfssl 1.6 for the tests that need what Debian's cfssl 1.2 lacks (client serials, the CRL
# endpoint: the chaos suite, the cfssl orphans and CRL tests), built once with Go into the cache.
echo "== cfssl 1.6 for the tests"
if ! bash "$here/tests/lib/cfssl.sh" modern; then
  echo "tests/run.sh: cfssl 1.6 could not be built (Go and the Go module proxy are needed;" \
    "bash deploy/setup.sh --deps-only installs Go)" >&2
  exit 1
fi

run_suite "$here/build-test" "${first_suite[@]}"
# Its own folder: a build folder keeps the compiler it was first configured with.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "$here/build-asan-clang" "${sanitizer_suite[@]}"

echo "== clang-format check"
mapfile -t sources < <(cd "$here" && git ls-files '*.c' '*.h')
(cd "$here" && clang-format --dry-run --Werror "${sources[@]}")
echo "== all checks passed"
