#!/usr/bin/env bash
# run-tests.sh: runs the Criterion test binaries of one build.
#
#   tests/run-tests.sh BUILDROOT unit|integration|all [criterion args...]
#
# unit:        BUILDROOT/tests/unit-tests (no servers needed)
# integration: starts a private local stack in .stack/test-<pid>, exports its
#              env plus CC_TEST_BIN_DIR=BUILDROOT and CC_TEST_TOP=<repo root>,
#              runs BUILDROOT/tests/integration-tests, stops the stack.
# Criterion runs with --jobs ${CC_TEST_JOBS:-2}; extra arguments pass through
# (e.g. --filter 'bus/*' --verbose). All output is also written to
# .stack/test-<pid>/<binary>.log; a run fails on any failing test and on any
# sanitizer report, even one Criterion did not count. The directory is removed
# after a passing run and kept (and named) after a failing one.
set -euo pipefail
set +m

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$TOP/deploy/local/stack.sh
RUN_DIR=$TOP/.stack/test-$$
SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer'
ERROR_RE='ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer'
STACK_UP=0
FAILED=0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

usage() {
    sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
finish() {
    local rc=$?
    if ((STACK_UP)); then
        "$STACK" stop "$RUN_DIR" || rc=1
        STACK_UP=0
        # the dev broker is a sanitized binary too: its report counts
        if [[ -f $RUN_DIR/devbroker.log ]] && grep -E -q "$SANITIZER_RE" "$RUN_DIR/devbroker.log"; then
            echo "run-tests: FAIL: sanitizer report in $RUN_DIR/devbroker.log" >&2
            rc=1
        fi
    fi
    if ((rc == 0 && FAILED == 0)); then
        rm -rf "$RUN_DIR"
    else
        echo "run-tests: logs kept in $RUN_DIR" >&2
        ((rc != 0)) || rc=1
    fi
    exit "$rc"
}

# foreign_leaks LOG: prints how many LeakSanitizer records have a frame outside
# libcriterion. Criterion 2.4.1's parallel runner (--jobs > 1) leaks one 48-byte
# calloc of its own at exit (every frame in libcriterion.so); that record alone
# is not our bug. Any record with one of our frames counts.
foreign_leaks() {
    awk '
        /^(Direct|Indirect) leak of/ { inrec = 1; foreign = 0; next }
        inrec && /^ *#[0-9]+ / {
            if ($1 != "#0" && $0 !~ /libcriterion\.so/) foreign = 1
            next
        }
        inrec { n += foreign; inrec = 0 }
        END { if (inrec) n += foreign; print n + 0 }
    ' "$1"
}

# sanitizer_report LOG: true when LOG holds a sanitizer report that counts.
sanitizer_report() {
    grep -a -E -q "$ERROR_RE" "$1" && return 0
    grep -a -q 'ERROR: LeakSanitizer' "$1" || return 1
    if (($(foreign_leaks "$1") == 0)); then
        echo "run-tests: note: ignoring a leak inside libcriterion's runner (no frame of ours) in $1" >&2
        return 1
    fi
}

# run_binary NAME PATH ARGS...: runs one Criterion binary, prints its verdict line.
run_binary() {
    local name=$1 bin=$2 log=$RUN_DIR/$1.log rc summary
    shift 2
    if [[ ! -x $bin ]]; then
        echo "run-tests: $name: FAIL ($bin not built)" >&2
        FAILED=1
        return
    fi
    set +e
    "$bin" --jobs "${CC_TEST_JOBS:-2}" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    summary=$(grep -a -E '^\[====\] Synthesis:' "$log" | tail -n 1 | sed 's/^\[====\] //')
    if sanitizer_report "$log"; then
        echo "run-tests: $name: FAIL (sanitizer report in $log) ${summary}" >&2
        FAILED=1
        return
    fi
    # the runner's exit status after an ignored libcriterion leak (ASan exitcode 1, LSan 23)
    if ((rc == 1 || rc == 23)) && grep -a -q 'ERROR: LeakSanitizer' "$log" && [[ $summary == *"Failing: 0 | Crashing: 0"* ]]; then
        rc=0
    fi
    if ((rc != 0)) || [[ -z $summary ]]; then
        echo "run-tests: $name: FAIL (exit $rc) ${summary:-no Criterion summary}" >&2
        FAILED=1
    else
        echo "run-tests: $name: PASS ${summary}" >&2
    fi
}

run_integration() {
    STACK_UP=1
    "$STACK" start "$RUN_DIR" "$B" || {
        STACK_UP=0
        echo "run-tests: integration-tests: FAIL (the local stack did not start)" >&2
        FAILED=1
        return
    }
    # shellcheck source=/dev/null
    . "$RUN_DIR/env"
    export CC_TEST_BIN_DIR=$B CC_TEST_TOP=$TOP
    run_binary integration-tests "$B/tests/integration-tests" "$@"
}

main() {
    (($# >= 2)) || usage
    B=$(cd "$1" 2>/dev/null && pwd) || {
        echo "run-tests: error: no build directory '$1'" >&2
        exit 2
    }
    local mode=$2
    shift 2
    case $mode in
    unit | integration | all) ;;
    *) usage ;;
    esac
    mkdir -p "$RUN_DIR"
    trap finish EXIT
    trap 'exit 130' INT TERM HUP

    if [[ $mode == unit || $mode == all ]]; then
        run_binary unit-tests "$B/tests/unit-tests" "$@"
    fi
    if [[ $mode == integration || $mode == all ]]; then
        run_integration "$@"
    fi
    exit "$FAILED"
}

main "$@"
