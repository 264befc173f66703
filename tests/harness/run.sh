#!/usr/bin/env bash
# run.sh -- the body of `make test`.
#
#   tests/harness/run.sh BUILD BIN UNIT_TEST_BINARIES...
#
# 1. every cmocka unit test binary (built with ASan+UBSan);
# 2. a private PostgreSQL on a free port (tests/harness/pg.sh), then every
#    integration, end-to-end and oracle suite: tests/{integration,e2e,
#    oracle}/test_*.py, each run by /usr/bin/python3 (Debian's scipy and
#    statsmodels live there) with the environment described in
#    tests/harness/harness.py.
# Ends with one line "N passed, N failed" counting suites, and exits
# non-zero when any suite failed.
set -u
cd "$(dirname "$0")/../.."
build=$1; bin=$2; shift 2

passed=0; failed=0; failures=()
suite() {
    local name=$1; shift
    local t0=$SECONDS
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1)); echo "--- ok   $name ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "--- FAIL $name ($((SECONDS - t0)) s)"
    fi
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in "$@"; do suite "unit $(basename "$t")" "$t"; done

pgdir=$(mktemp -d /tmp/arbiter-test-pg.XXXXXX)
cleanup() { tests/harness/pg.sh stop "$pgdir" >/dev/null 2>&1; rm -rf "$pgdir"; }
trap cleanup EXIT
if ! url=$(tests/harness/pg.sh start "$pgdir"); then
    echo "run.sh: could not start PostgreSQL" >&2
    failed=$((failed + 1)); failures+=("postgres")
else
    export ARBITER_TEST_DATABASE_URL=$url
    export ARBITER_TEST_PGDIR=$pgdir
    export ARBITER_BIN=$PWD/$bin
    export ARBITER_BUILD=$PWD/$build
    only=${TESTS:-}   # TESTS=pattern runs only matching suites
    for f in tests/integration/test_*.py tests/e2e/test_*.py tests/oracle/test_*.py; do
        [ -f "$f" ] || continue
        [ -n "$only" ] && [[ "$f" != *$only* ]] && continue
        suite "$f" /usr/bin/python3 "$f"
    done
fi

if [ $failed -gt 0 ]; then
    echo "failed suites: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
