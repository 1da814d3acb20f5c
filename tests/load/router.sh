#!/usr/bin/env bash
# Router benchmark: a real cc-router (release build) against the stack started by
# tests/load/run.sh, driven by tests/load/router_bench.c (see its header for the phases).
#
# Usage: tests/load/router.sh BUILDROOT      (e.g. build/release; make bench-router)
# Steps: seed 10,000 agents / 500 queues / ~40,000 memberships into PostgreSQL (router_store),
#   start cc-router (it syncs them into Redis), log every agent in over its REST API, then
#   measure: burst throughput + latency inside the router, steady-rate end-to-end latency; then
#   redis-benchmark's EVALSHA rate of a trivial script on the same Redis (1 and 50 clients) as
#   the reference, and the ratio. Fails when anything fails (router died, a decision missing).
# Env:   the stack's (CC_KAFKA_BROKERS, CC_REDIS_URL, CC_PG_DSN, CC_DEVBROKER_CONTROL, ...);
#        CC_BENCH_ROUTER_AGENTS (10000), _QUEUES (500), _COUNT (50000 burst requests),
#        _RATE (500/s) and _SECONDS (10) of the steady phase; CC_ROUTER_CONSUMERS (2);
#        CC_BENCH_ROUTER_FETCH_WAIT_MS (1): cc-router's fetch.wait.max.ms. The dev broker holds
#        a fetch that finds no data for that long and does not answer it when data arrives (a
#        real broker does), so requests produced at a steady rate reach the router in waves of
#        that length and queue behind each other; 1 ms approximates a real broker's arrival
#        (it costs the dev broker and cc-router empty fetches: their CPU is printed).
#        CC_BENCH_ROUTER_KEEP=1 leaves the router running at the end until Enter (profiling).
# Prints:
#   bench: router.decisions_per_s <v> 1/s phase=burst ...
#   bench: router.decision_latency_p50_ms / _p99_ms <v> ms phase=burst|steady ... (inside: the
#          request polled -> its first event handed to the Kafka producer,
#          router_decision_latency_seconds{stage="produced"}; _delivered_: -> the broker's ack)
#   bench: router.decision_latency_within_2ms_share <v> ratio (the share of decisions produced
#          within 2 ms: the goal "p99 under 2 ms" is a share of 0.99)
#   bench: router.decision_ts_latency_p50_ms / _p99_ms (apply start -> Kafka CreateTime, 1 ms)
#   bench: router.apply_latency_p50_ms / _p99_ms / _mean_ms (the router's own histogram)
#   bench: router.e2e_latency_p50_ms / _p99_ms <v> ms phase=steady ...
#   bench: router.cpu_ms_per_decision <v> ms process=... ; router.redis_fcall_* ...
#   bench: router.cpu_ms_per_decision_all <v> ms ... cores_bound_per_s=<n> (every process of the
#          burst together -- the load generator, cc-router, Redis, PostgreSQL, the dev broker --,
#          and the decisions/s the machine's cores could carry at that cost if nothing waited)
#   bench: router.redis_evalsha_per_s <v> 1/s clients=1|50 ; router.ratio_decisions_to_evalsha
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
buildroot=${1:?usage: $0 BUILDROOT}
router=$buildroot/bin/cc-router
bench=$buildroot/bench/router_bench

for v in CC_KAFKA_BROKERS CC_REDIS_URL CC_PG_DSN; do
    [ -n "${!v:-}" ] || { echo "router.sh: $v is not set (run through tests/load/run.sh)" >&2; exit 1; }
done
for bin in "$router" "$bench"; do
    [ -x "$bin" ] || { echo "router.sh: missing '$bin' (build with make bench-build)" >&2; exit 1; }
done
command -v redis-benchmark >/dev/null || { echo "router.sh: redis-benchmark is not installed" >&2; exit 1; }
case $CC_REDIS_URL in
unix://*) sock=${CC_REDIS_URL#unix://} sock=${sock%%\?*} ;;
*) echo "router.sh: CC_REDIS_URL must be the stack's unix socket, not '$CC_REDIS_URL'" >&2; exit 1 ;;
esac

tmp=$(mktemp -d)
router_pid=
stop_router() {
    local rc=0
    if [ -n "$router_pid" ]; then
        kill -TERM "$router_pid" 2>/dev/null || true
        wait "$router_pid" || rc=$?
        router_pid=
    fi
    return "$rc"
}
# shellcheck disable=SC2317 # invoked by the EXIT trap
finish() {
    local rc=$?
    trap '' INT TERM HUP
    stop_router || true
    if ((rc != 0)); then
        echo "router.sh: failed; router log tail:" >&2
        tail -n 20 "$tmp/router.log" >&2 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# 1. configuration into PostgreSQL
"$bench" seed "$TOP/services/router/migrations" >"$tmp/seed.out"
members=$(awk '$1 == "members" { print $2 }' "$tmp/seed.out")

# 2. the router, with an admin token of the benchmark's tenant
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
tenant=${CC_BENCH_ROUTER_TENANT:-bench}
export CC_BENCH_ROUTER_FETCH_WAIT_MS=${CC_BENCH_ROUTER_FETCH_WAIT_MS:-1}
t0=$(date +%s.%N)
CC_AUTH_TOKENS="$(printf %s "$token" | sha256sum | cut -d' ' -f1):$tenant:admin" \
    CC_HTTP_ADDR=127.0.0.1 CC_HTTP_PORT=0 CC_INSTANCE_ID=bench-router CC_LOG_LEVEL=warn \
    CC_ROUTER_MIGRATIONS_DIR="$TOP/services/router/migrations" \
    CC_KAFKA_FETCH_WAIT_MAX_MS="$CC_BENCH_ROUTER_FETCH_WAIT_MS" \
    "$router" >"$tmp/router.out" 2>"$tmp/router.log" &
router_pid=$!
# the port: the router logs "routing: http ADDR:PORT" at info, which we keep quiet; find the
# listening socket of the process instead
port=
for _ in $(seq 1200); do
    kill -0 "$router_pid" 2>/dev/null || { echo "router.sh: cc-router exited at start" >&2; exit 1; }
    port=$(ss -Hltnp 2>/dev/null | awk -v pid="pid=$router_pid," '$0 ~ pid { n = split($4, a, ":"); print a[n]; exit }')
    if [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
        break
    fi
    port=
    sleep 0.1
done
[ -n "$port" ] || { echo "router.sh: cc-router not ready in 120 s" >&2; exit 1; }
# consumers start after HTTP: give the group a moment (the warm-up waits for decisions anyway)
echo "router.sh: cc-router ready on port $port after $(echo "$(date +%s.%N) - $t0" | bc) s (config synced into redis)" >&2

# the processes whose CPU time is accounted over the burst
redis_pid=$(redis-cli -s "$sock" info server | awk -F: '$1 == "process_id" { print $2 }' | tr -d '\r')
pg_pid=$(psql "$CC_PG_DSN" -Atc "select pid from pg_stat_activity where backend_type = 'checkpointer'" 2>/dev/null || true)
[ -n "$pg_pid" ] && pg_pid=$(awk '{ print $4 }' "/proc/$pg_pid/stat")
broker_pid=$(cat "$(dirname "$sock")/devbroker.pid" 2>/dev/null || true)
pids="cc-router:$router_pid,redis-server:$redis_pid"
[ -n "$pg_pid" ] && pids="$pids,postgres:$pg_pid"
[ -n "$broker_pid" ] && pids="$pids,cc-devbroker:$broker_pid"

# 3. the measured phases
CC_BENCH_ROUTER_PIDS=$pids "$bench" run "$port" "$token" | tee "$tmp/bench.out"
kill -0 "$router_pid" 2>/dev/null || { echo "router.sh: cc-router died during the benchmark" >&2; exit 1; }
keys="agents=${CC_BENCH_ROUTER_AGENTS:-10000} queues=${CC_BENCH_ROUTER_QUEUES:-500} skills=on channel=chat instances=1 consumers=${CC_ROUTER_CONSUMERS:-2} fetch_wait_ms=$CC_BENCH_ROUTER_FETCH_WAIT_MS"
echo "bench: router.members $members 1 $keys"

# 4. the reference: EVALSHA of a trivial script on the same Redis, router idle
sha=$(redis-cli -s "$sock" script load "return 1")
evalsha() { # CLIENTS -> requests/s
    redis-benchmark -s "$sock" -n 200000 -c "$1" -q EVALSHA "$sha" 0 |
        tr '\r' '\n' | awk '/requests per second/ { for (i = 1; i <= NF; i++) if ($(i+1) == "requests") v = $i } END { print v }'
}
ev1=$(evalsha 1)
ev50=$(evalsha 50)
[ -n "$ev1" ] && [ -n "$ev50" ] || { echo "router.sh: no rate in redis-benchmark's output" >&2; exit 1; }
printf 'bench: router.redis_evalsha_per_s %.0f 1/s clients=1 script=trivial\n' "$ev1"
printf 'bench: router.redis_evalsha_per_s %.0f 1/s clients=50 script=trivial\n' "$ev50"
dps=$(awk '$2 == "router.decisions_per_s" { print $3 }' "$tmp/bench.out")
awk -v a="$dps" -v b="$ev50" -v k="$keys" \
    'BEGIN { printf "bench: router.ratio_decisions_to_evalsha %.4f ratio evalsha_clients=50 %s\n", a / b, k }'

if [ "${CC_BENCH_ROUTER_KEEP:-0}" = 1 ]; then
    echo "router.sh: router pid $router_pid on port $port; press Enter to stop" >&2
    read -r _ || true # EOF on stdin: stop as well
fi
stop_router || { echo "router.sh: cc-router did not stop cleanly" >&2; exit 1; }
