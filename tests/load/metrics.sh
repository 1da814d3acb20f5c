#!/usr/bin/env bash
# metrics-aggregator benchmark: events/s end to end (produced on the dev broker -> consumed ->
# rollups committed in PostgreSQL), with the bus's own consume rate of the same events as the
# reference, measured in the same run (tests/load/metrics_bench.c).
#
# Usage: tests/load/metrics.sh BUILDROOT      (e.g. build/release; make bench-metrics)
# Steps: produce N events (a realistic mix, see metrics_bench.c) onto cc.interactions/cc.agents;
#   read them all with a plain cc_bus batch consumer (the reference); start cc-metrics-aggregator
#   (a new group: it reads everything from the start) and time from its first committed batch
#   until metrics.events_seen holds all N.
# Env:   the stack's (CC_KAFKA_BROKERS, CC_PG_DSN, ...); CC_BENCH_METRICS_EVENTS (300000);
#        CC_METRICS_BATCH_MAX (4096), CC_METRICS_CONSUMERS (2); CC_METRICS_STORE_TIMING=1 (with
#        CC_LOG_LEVEL=info) logs every statement's time into the service log.
# Prints:
#   bench: metrics.events_per_s <v> 1/s events=N batch=...
#   bench: bus.consume_per_s <v> 1/s events=N ...
#   bench: metrics.cpu_us_per_event <v> us service=.. postgres=.. ceiling_2_cores_per_s=..
#   bench: metrics.ratio_to_bus <r> ratio goal_events_per_s=50000
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
buildroot=${1:?usage: $0 BUILDROOT}
svc=$buildroot/bin/cc-metrics-aggregator
bench=$buildroot/bench/metrics_bench
n=${CC_BENCH_METRICS_EVENTS:-300000}
batch=${CC_METRICS_BATCH_MAX:-4096}
consumers=${CC_METRICS_CONSUMERS:-2}

for v in CC_KAFKA_BROKERS CC_PG_DSN; do
    [ -n "${!v:-}" ] || { echo "metrics.sh: $v is not set (run through tests/load/run.sh)" >&2; exit 1; }
done
for bin in "$svc" "$bench"; do
    [ -x "$bin" ] || { echo "metrics.sh: missing '$bin' (build with make bench-build)" >&2; exit 1; }
done

tmp=$(mktemp -d)
svc_pid=
stop_svc() {
    local rc=0
    if [ -n "$svc_pid" ]; then
        kill -TERM "$svc_pid" 2>/dev/null || true
        wait "$svc_pid" || rc=$?
        svc_pid=
    fi
    return "$rc"
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
finish() {
    local rc=$?
    trap '' INT TERM HUP
    stop_svc || true
    if ((rc != 0)); then
        echo "metrics.sh: failed; service log tail:" >&2
        tail -n 20 "$tmp/svc.log" >&2 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# 1. the events, on the broker before anything consumes them
"$bench" produce "$n" | tee "$tmp/produce.out" >&2
produced=$(awk '$1 == "produced" { print $2 }' "$tmp/produce.out")

# 2. the reference: the bus alone
"$bench" consume "$produced" | tee "$tmp/bus.out"
bus=$(awk '$2 == "bus.consume_per_s" { print $3 }' "$tmp/bus.out")

# 3. the service from the start of the topics
CC_HTTP_ADDR=127.0.0.1 CC_HTTP_PORT=0 CC_INSTANCE_ID=bench-metrics CC_LOG_LEVEL=${CC_LOG_LEVEL:-warn} \
    CC_METRICS_GROUP="bench-metrics-$$" CC_METRICS_BATCH_MAX="$batch" CC_METRICS_CONSUMERS="$consumers" \
    CC_METRICS_MIGRATIONS_DIR="$TOP/services/metrics-aggregator/migrations" \
    "$svc" >"$tmp/svc.out" 2>"$tmp/svc.log" &
svc_pid=$!
"$bench" wait "$produced" | tee "$tmp/wait.out" >&2
kill -0 "$svc_pid" 2>/dev/null || { echo "metrics.sh: the service died" >&2; exit 1; }
read -r _ applied secs total < "$tmp/wait.out"
# CPU spent by the service and its PostgreSQL backends (the stack is this run's alone), per event:
# the cost figure that the machine's other load does not distort
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
svc_ticks=$(ticks "$svc_pid")
pg_ticks=0
for p in $(psql "$CC_PG_DSN" -Atc "select pid from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"); do
    pg_ticks=$((pg_ticks + $(ticks "$p")))
done
eps=$(awk -v n="$applied" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
echo "bench: metrics.events_per_s $eps 1/s events=$applied batch=$batch consumers=$consumers seconds=$secs with_startup_s=$total"
awk -v s="$svc_ticks" -v p="$pg_ticks" -v hz="$hz" -v n="$applied" 'BEGIN {
    printf "bench: metrics.cpu_us_per_event %.1f us service=%.1f postgres=%.1f ceiling_2_cores_per_s=%.0f\n",
        (s + p) * 1e6 / hz / n, s * 1e6 / hz / n, p * 1e6 / hz / n, 2 * n * hz / (s + p) }'
awk -v a="$eps" -v b="$bus" 'BEGIN { printf "bench: metrics.ratio_to_bus %.4f ratio goal_events_per_s=50000\n", a / b }'
psql "$CC_PG_DSN" -Atc "select 'rollup rows', count(*) from metrics.rollup union all select 'interactions', count(*) from metrics.interactions union all select 'agent_state_rollup rows', count(*) from metrics.agent_state_rollup" 2>/dev/null | tr '|' ' ' | sed 's/^/metrics.sh: /' >&2 || true
stop_svc || { echo "metrics.sh: cc-metrics-aggregator did not stop cleanly" >&2; exit 1; }
