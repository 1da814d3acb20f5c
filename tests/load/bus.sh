#!/usr/bin/env bash
# Bus benchmark: produce -> consume latency through the dev broker at a steady rate, with
# fetch.wait.max.ms 1 and 10, and the producer's burst throughput (tests/load/bus_latency.c).
#
# Usage: tests/load/bus.sh BUILDROOT      (e.g. build/release; binary in BUILDROOT/bench/)
# Env:   CC_KAFKA_BROKERS (and CC_DEVBROKER_CONTROL) of the stack started by tests/load/run.sh;
#        CC_BENCH_BUS_RATE (messages/s, default 2000), CC_BENCH_BUS_SECONDS (default 5).
# Prints:
#   bench: bus.latency_p50_ms <v> ms fetch_wait_ms=1 ...   (and p99, and fetch_wait_ms=10)
#   bench: bus.produce_per_s <v> 1/s ...
set -euo pipefail

buildroot=${1:-}
bin=${buildroot:+$buildroot/bench}
bin=${bin:-${CC_BENCH_BIN_DIR:?usage: $0 BUILDROOT}}/bus_latency

[ -n "${CC_KAFKA_BROKERS:-}" ] || { echo "bus.sh: CC_KAFKA_BROKERS is not set (run through tests/load/run.sh)" >&2; exit 1; }
[ -x "$bin" ] || { echo "bus.sh: missing '$bin' (build with make bench-build)" >&2; exit 1; }

exec "$bin" "${CC_BENCH_BUS_RATE:-2000}" "${CC_BENCH_BUS_SECONDS:-5}" 1 10
