#!/usr/bin/env bash
# run.sh: runs the benchmarks under tests/load against a private local stack.
#
#   tests/load/run.sh BUILDROOT [name]      e.g. tests/load/run.sh build/release bus
#
# Starts a stack in .stack/bench-<pid>, exports its env plus
# CC_BENCH_BIN_DIR=BUILDROOT/bench and CC_BENCH_BUILDROOT=BUILDROOT, then runs
# every tests/load/*.sh but this one (or only tests/load/<name>.sh) as
# `<script> BUILDROOT`, in name order, and stops the stack. Each script prints
# "bench: <name> <value> <unit> [key=value ...]" lines. Exits non-zero when a
# script fails (the others still run).
set -euo pipefail
set +m

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=$TOP/deploy/local/stack.sh
DIR=$TOP/.stack/bench-$$
STACK_UP=0

# shellcheck disable=SC2317 # invoked by the EXIT trap
finish() {
    local rc=$?
    trap '' INT TERM HUP
    if ((STACK_UP)); then
        "$STACK" stop "$DIR" || rc=1
    fi
    ((rc != 0)) || rm -rf "$DIR"
    ((rc == 0)) || echo "bench: logs kept in $DIR" >&2
    exit "$rc"
}

main() {
    local root=${1:-} name=${2:-} scripts=() s failed=0
    [[ -n $root ]] || {
        echo "usage: tests/load/run.sh BUILDROOT [name]" >&2
        exit 2
    }
    root=$(cd "$root" 2>/dev/null && pwd) || {
        echo "bench: error: no build directory '$1'" >&2
        exit 2
    }
    if [[ -n $name ]]; then
        [[ -f $TOP/tests/load/$name.sh ]] || {
            echo "bench: error: no benchmark 'tests/load/$name.sh'" >&2
            exit 2
        }
        scripts=("$TOP/tests/load/$name.sh")
    else
        for s in "$TOP"/tests/load/*.sh; do
            [[ ${s##*/} == run.sh ]] || scripts+=("$s")
        done
    fi
    if ((${#scripts[@]} == 0)); then
        echo "bench: no benchmarks under tests/load yet"
        exit 0
    fi

    mkdir -p "$DIR"
    trap finish EXIT
    trap 'exit 130' INT TERM HUP
    STACK_UP=1
    "$STACK" start "$DIR" "$root" || {
        STACK_UP=0
        exit 1
    }
    # shellcheck source=/dev/null
    . "$DIR/env"
    export CC_BENCH_BIN_DIR=$root/bench CC_BENCH_BUILDROOT=$root

    for s in "${scripts[@]}"; do
        echo "== ${s#"$TOP"/}" >&2
        if ! bash "$s" "$root"; then
            echo "bench: error: ${s#"$TOP"/} failed" >&2
            failed=1
        fi
    done
    return "$failed"
}

main "$@"
