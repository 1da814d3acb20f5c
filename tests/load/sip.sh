#!/usr/bin/env bash
# SIP benchmark: the highest calls per second with zero failed calls and zero retransmissions,
# stepped up in one run, through a bare Sofia-SIP UAS (the reference, tests/load/sofia_uas.c)
# and through sip-edge (caller -> sip-edge -> router -> agent phone), with their ratio.
#
# Usage: tests/load/sip.sh BUILDROOT       (e.g. build/release; make bench-sip)
# Each step runs sipp (tests/load/sip/uac_1s.xml: INVITE, 200, ACK, 1 s of call, BYE) at a rate
# for CC_BENCH_SIP_STEP_S seconds (10) and passes when every call succeeded and sipp counted no
# retransmission; stepping stops at the first step that does not pass.
# Env:   CC_BENCH_SIP_RATES ("100 200 300 400 500 600 800 1000 1200 1400 1600 2000"),
#        CC_BENCH_SIP_STEP_S (10).
# Prints:
#   bench: sofia.step / sipedge.step <rate> 1/s target=uas|sipedge ok=<0|1> calls=<n> failed=<n> retrans=<n>
#   bench: sofia.uas_cps <v> 1/s ...
#   bench: sipedge.cps <v> 1/s ...   (CC_BENCH_SIP_AGENTS agent phones, 2000, answer at once)
#   bench: sipedge.ratio_to_uas <v> ratio
# The sip-edge half needs the stack of tests/load/run.sh (CC_KAFKA_BROKERS, CC_REDIS_URL,
# CC_PG_DSN); it starts cc-router and cc-sip-edge (release build), seeds a voice queue, agents,
# their SIP credentials and a DID over the REST APIs, registers every agent phone through
# sip-edge with digest authentication (sipp), makes them available, and steps the callers.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
buildroot=${1:?usage: $0 BUILDROOT}
uas=$buildroot/bench/sofia_uas
scenario=$TOP/tests/load/sip/uac_1s.xml
router=$buildroot/bin/cc-router
sipedge=$buildroot/bin/cc-sip-edge
agents=${CC_BENCH_SIP_AGENTS:-2000}
rates=${CC_BENCH_SIP_RATES:-100 200 300 400 500 600 800 1000 1200 1400 1600 2000}
step_s=${CC_BENCH_SIP_STEP_S:-10}

command -v sipp >/dev/null || { echo "sip.sh: sipp is not installed (package sip-tester)" >&2; exit 1; }
[ -x "$uas" ] || { echo "sip.sh: missing '$uas' (build with make bench-build)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
finish() {
    local rc=$? p
    trap '' INT TERM HUP
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    ((rc == 0)) && rm -rf "$tmp" || echo "sip.sh: logs kept in $tmp" >&2
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# A free UDP port on 127.0.0.1 (bound and released by python's socket module).
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_step TARGET PORT SERVICE RATE -> prints "calls failed retrans" of one sipp run
run_step() {
    local target=$1 port=$2 service=$3 rate=$4 calls stat last
    calls=$((rate * step_s))
    stat=$tmp/$target-$rate.csv
    # -nd: no default behaviour (a lost message is a failure, not a silent BYE); the stat file's
    # last line holds the cumulative counters
    timeout $((step_s + 40)) sipp "127.0.0.1:$port" -sf "$scenario" -s "$service" -i 127.0.0.1 \
        -p "$(free_port)" -r "$rate" -m "$calls" -l $((rate * 4)) -nd -recv_timeout 10000 \
        -trace_stat -stf "$stat" -fd 1 -trace_err -error_file "$tmp/$target-$rate.err" \
        >/dev/null 2>&1 || true
    last=$(tail -n 1 "$stat" 2>/dev/null || true)
    if [ -z "$last" ]; then
        echo "0 $calls 0"
        return
    fi
    # columns (1-based): 16 SuccessfulCall(C), 18 FailedCall(C), 58 Retransmissions(C)
    awk -F';' '{ print $16, $18, $58 }' <<<"$last"
}

# step_up TARGET PORT SERVICE METRIC: steps the rates, prints each step and the best rate
step_up() {
    local target=$1 port=$2 service=$3 metric=$4 best=0 rate ok out ok_calls failed retrans
    for rate in $rates; do
        out=$(run_step "$target" "$port" "$service" "$rate")
        read -r ok_calls failed retrans <<<"$out"
        ok=0
        if [ "$ok_calls" -eq $((rate * step_s)) ] && [ "$failed" -eq 0 ] && [ "$retrans" -eq 0 ]; then
            ok=1
            best=$rate
        fi
        echo "bench: ${metric%%.*}.step $rate 1/s target=$target ok=$ok calls=$ok_calls failed=$failed retrans=$retrans step_s=$step_s"
        ((ok)) || break
    done
    echo "bench: $metric $best 1/s step_s=$step_s call_s=1 transport=udp"
    eval "${target}_best=$best"
}

uas_port=$(free_port)
"$uas" "$uas_port" >"$tmp/uas.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$tmp/uas.log" && break; sleep 0.1; done
grep -q ready "$tmp/uas.log" || { echo "sip.sh: sofia_uas did not start" >&2; cat "$tmp/uas.log" >&2; exit 1; }
step_up uas "$uas_port" 1000 sofia.uas_cps

uas_pid=${pids[-1]}
kill -TERM "$uas_pid" && wait "$uas_pid" || true
unset 'pids[-1]'

# ---- sip-edge: caller -> sip-edge -> router -> agent phone --------------------------------
for v in CC_KAFKA_BROKERS CC_REDIS_URL CC_PG_DSN; do
    [ -n "${!v:-}" ] || { echo "sip.sh: $v is not set (run through tests/load/run.sh)" >&2; exit 1; }
done
for bin in "$router" "$sipedge"; do
    [ -x "$bin" ] || { echo "sip.sh: missing '$bin' (build with make bench-build)" >&2; exit 1; }
done
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export CC_AUTH_TOKENS="$(printf %s "$token" | sha256sum | cut -d' ' -f1):bench:admin"
export CC_LOG_LEVEL=warn CC_HTTP_ADDR=127.0.0.1
router_http=$(free_port) edge_http=$(free_port) edge_sip=$(free_port) agent_sip=$(free_port)

CC_HTTP_PORT=$router_http CC_INSTANCE_ID=bench-router CC_ROUTER_CONSUMERS=2 \
    CC_ROUTER_MIGRATIONS_DIR=$TOP/services/router/migrations \
    "$router" >"$tmp/router.log" 2>&1 &
pids+=($!)
CC_HTTP_PORT=$edge_http CC_INSTANCE_ID=bench-edge CC_SIPEDGE_SIP_URL="sip:127.0.0.1:$edge_sip" \
    CC_SIPEDGE_MAX_CALLS=20000 CC_SIPEDGE_MIGRATIONS_DIR=$TOP/services/sip-edge/migrations \
    CC_SIPEDGE_NONCE_SECRET=$token "$sipedge" >"$tmp/sip-edge.log" 2>&1 &
pids+=($!)
for port in "$router_http" "$edge_http"; do
    for _ in $(seq 300); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
        sleep 0.1
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" ||
        { echo "sip.sh: a service on port $port is not ready" >&2; tail -n 20 "$tmp"/*.log >&2; exit 1; }
done

# seed: a voice queue (longest idle, no wrap-up), the agents with their SIP credentials, a DID
python3 - "$router_http" "$edge_http" "$token" "$agents" "$agent_sip" "$tmp/agents.csv" <<'PY'
import http.client, json, sys
rport, eport, token, n, agent_port, csv = sys.argv[1:7]
n = int(n)
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
def call(conn, method, path, body=None, ok=(200, 201, 204)):
    conn.request(method, path, json.dumps(body) if body is not None else None, hdr)
    r = conn.getresponse(); data = r.read()
    if r.status not in ok:
        sys.exit(f"sip.sh seed: {method} {path} -> {r.status} {data[:300]!r}")
r = http.client.HTTPConnection("127.0.0.1", int(rport))
e = http.client.HTTPConnection("127.0.0.1", int(eport))
call(r, "POST", "/v1/queues", {"id": "bench", "name": "Bench", "channels": ["voice"],
     "strategy": "longest_idle", "wrapup_s": 0, "ring_timeout_s": 20})
call(e, "POST", "/v1/sip/dids", {"number": "1000", "queue_id": "bench"})
with open(csv, "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(n):
        a = f"a{i:05d}"
        call(r, "POST", "/v1/agents", {"id": a, "name": a, "capacity": {"voice": 1}})
        call(r, "PUT", f"/v1/queues/bench/members/{a}", {})
        call(e, "POST", "/v1/sip/credentials", {"username": a, "password": "pw-" + a + "-x",
             "agent_id": a, "domain": "bench"})
        f.write(f"{a};pw-{a}-x;bench;{agent_port}\n")
PY

# the agents' phones: one UAS answering for every contact, then every agent registers
sipp -sf "$TOP/tests/load/sip/agents_answer.xml" -i 127.0.0.1 -p "$agent_sip" -nd \
    -trace_err -error_file "$tmp/agents-answer.err" -bg >/dev/null 2>&1
sleep 0.5
agent_sipp=$(pgrep -n -f "agents_answer.xml.*-p $agent_sip") ||
    { echo "sip.sh: the agents' sipp did not start" >&2; exit 1; }
pids+=("$agent_sipp")
timeout 120 sipp "127.0.0.1:$edge_sip" -sf "$TOP/tests/load/sip/agents_register.xml" \
    -inf "$tmp/agents.csv" -i 127.0.0.1 -p "$(free_port)" -r 200 -m "$agents" -nd \
    -trace_err -error_file "$tmp/register.err" >/dev/null 2>&1 ||
    { echo "sip.sh: not every agent registered (see $tmp/register.err)" >&2; exit 1; }

# available once the router knows their contacts (registered events on cc.agents)
python3 - "$router_http" "$token" "$agents" <<'PY'
import http.client, json, sys, time
rport, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", int(rport))
deadline = time.time() + 60
for i in range(n):
    while True:
        c.request("POST", f"/v1/agents/a{i:05d}/state", '{"state":"available"}', hdr)
        r = c.getresponse(); body = r.read()
        if r.status in (200, 204):
            break
        if time.time() > deadline:
            sys.exit(f"sip.sh: agent a{i:05d} not available: {r.status} {body[:200]!r}")
        time.sleep(0.2)
PY

step_up sipedge "$edge_sip" 1000 sipedge.cps
awk -v a="$sipedge_best" -v b="$uas_best" \
    'BEGIN { printf "bench: sipedge.ratio_to_uas %.3f ratio sipedge_cps=%d uas_cps=%d goal=0.5\n", (b > 0 ? a / b : 0), a, b }'
