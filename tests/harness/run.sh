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
# 3. a check that no process started by this run is still running: every
#    child inherits ARBITER_TEST_RUN (a random marker), and after the
#    suites and the cluster are stopped any process whose environment
#    holds it is listed, killed and counted as a failure ("leftovers").
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

ARBITER_TEST_RUN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ARBITER_TEST_RUN
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
    # TESTS="pat1|pat2" runs only the suites whose path contains one of them
    IFS='|' read -r -a only <<< "${TESTS:-}"
    for f in tests/integration/test_*.py tests/e2e/test_*.py tests/oracle/test_*.py; do
        [ -f "$f" ] || continue
        if [ ${#only[@]} -gt 0 ]; then
            hit=0
            for p in "${only[@]}"; do [[ "$f" == *$p* ]] && hit=1; done
            [ $hit = 1 ] || continue
        fi
        suite "$f" /usr/bin/python3 "$f"
    done
fi

cleanup; trap - EXIT
# Nothing this run started may outlive it (the scanner itself runs without
# the marker). A process that is still stopping gets 5 s.
leftovers() {
    env -u ARBITER_TEST_RUN /usr/bin/python3 - "$ARBITER_TEST_RUN" "$@" <<'PY'
import os, signal, sys, time
marker = ("ARBITER_TEST_RUN=" + sys.argv[1]).encode()
kill = len(sys.argv) > 2
def scan():
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in env and state != "Z":
            found.append((int(pid), cmd.strip()))
    return found
found = scan()
for _ in range(50):
    if not found:
        break
    time.sleep(0.1)
    found = scan()
for pid, cmd in found:
    print(f"left running: pid {pid}: {cmd}")
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
sys.exit(1 if found else 0)
PY
}
echo "=== leftovers"
if leftovers kill; then
    passed=$((passed + 1)); echo "--- ok   leftovers (no process of this run is still running)"
else
    failed=$((failed + 1)); failures+=("leftovers"); echo "--- FAIL leftovers"
fi

if [ $failed -gt 0 ]; then
    echo "failed suites: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
