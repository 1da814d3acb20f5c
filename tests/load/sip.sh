#!/usr/bin/env bash
# SIP benchmark: the highest calls per second with zero failed calls and zero retransmissions,
# stepped up in one run, through a bare Sofia-SIP UAS (the reference, tests/load/sofia_uas.c)
# and through sip-edge (caller -> sip-edge -> router -> agent phone), with their ratio.
#
# Usage: tests/load/sip.sh BUILDROOT       (e.g. build/release; make bench-sip)
# Each step runs sipp (tests/load/sip/uac_1s.xml: INVITE, 200, ACK, 1 s of call, BYE) at a rate
# for CC_BENCH_SIP_STEP_S seconds (10) and passes when every call succeeded, sipp counted no
# retransmission and it started every call within the step (start_s <= step_s + 1: an overloaded
# target otherwise makes sipp fall behind the rate, held back by its limit of calls in
# progress, without a failure); stepping stops at the first step that does not pass.
# Env:   CC_BENCH_SIP_PHASES ("uas sipedge memory": any of them, in that order),
#        CC_BENCH_SIP_RATES ("100 200 300 400 500 600 800 1000 1200 1400 1600 2000 2500 3000 4000
#        5000 6000 7000 8000 9000 10000 12000": the bare UAS passed 8,000 in a run of session 14),
#        CC_BENCH_SIP_STEP_S (10), CC_BENCH_SIP_AGENTS (4000: a step needs 1.25 agents per call/s,
#        so up to 3,200 1-s calls/s -- above half the bare UAS's 5,000-6,000 -- ; stepping stops, said
#        on stderr, where the agents run out),
#        CC_BENCH_SIP_MEMORY_WARMUP (40 s of calls at the rate, at least 1000),
#        CC_BENCH_SIP_MEMORY_CALLS (10000),
#        CC_BENCH_SIP_MEMORY_RATE (200), CC_BENCH_SIP_SETTLE_S (40: Sofia keeps a finished
#        transaction 32 s (timer J/K), so memory is read that long after the last call),
#        CC_BENCH_SIP_PERF (set: perf record cc-sip-edge in each sip-edge step, print the top),
#        CC_BENCH_SIP_KEEP (set: keep the logs directory, named on stderr, even on success),
#        CC_BENCH_SIP_RING_MS (0: agent phones answer at once; N: they send 180 and ring N ms
#        before answering (tests/load/sip/agents_ring.xml), so rate x N/1000 callers wait at
#        any time -- the queueing case; a step then needs rate x (1.25 + N/1000) agents).
# Prints:
#   bench: sofia.step / sipedge.step <rate> 1/s target=uas|sipedge ok=<0|1> calls=<n> failed=<n> retrans=<n>
#          start_s=<s> (seconds sipp took to start the step's calls; -1: it never did)
#   bench: sipedge.cpu <rate> 1/s edge=<%> router=<%> pg=<%> redis=<%> broker=<%> agents=<%> caller=<%>
#          all=<%> ms_per_call=<ms>   (CPU of each process during that step, 100 = one core;
#          agents and caller: the two sipp; all: their sum, and that sum per call at the rate)
#   bench: sofia.cpu <rate> 1/s uas=<%> caller=<%> all=<%> ms_per_call=<ms>   (the reference's two
#          processes in each step)
#   bench: sofia.uas_cps <v> 1/s ...
#   bench: sipedge.cps <v> 1/s ...   (CC_BENCH_SIP_AGENTS agent phones answer at once)
#   bench: sipedge.ratio_to_uas <v> ratio
#   bench: sipedge.rss_growth_kb <v> kB calls=<n> ...   (memory phase: cc-sip-edge's RSS after
#          the calls ended minus its RSS after a warm-up, both read once every call has ended;
#          also after each half of the calls: growth in both halves would be a leak)
#   bench: sipedge.heap_growth_kb <v> kB calls=<n> allocator=<jemalloc|glibc> ... bytes_per_call=<b>
#          (same points, the bytes cc-sip-edge's allocator has handed out and not had back --
#          process_heap_allocated_bytes of its /metrics --: unlike the RSS, not moved by pages the
#          allocator keeps or returns, so this is the figure that says "no growth"; not printed
#          for a sanitizer build, which has no trustworthy figure: common/cc_heap.h)
# At the end cc-sip-edge gets SIGTERM and must exit 0 with no sanitizer report in its log, so
# `tests/load/run.sh build/asan sip` with CC_BENCH_SIP_PHASES=memory is the leak check (ASan's
# LeakSanitizer runs at exit).
# The sip-edge half needs the stack of tests/load/run.sh (CC_KAFKA_BROKERS, CC_REDIS_URL,
# CC_PG_DSN); it starts cc-router and cc-sip-edge (release build), seeds a voice queue, agents,
# their SIP credentials and a DID over the REST APIs, registers every agent phone through
# sip-edge with digest authentication (a python client), makes them available, and steps the
# callers.
set -euo pipefail
TIMEFORMAT='%3U %3S'

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
buildroot=${1:?usage: $0 BUILDROOT}
uas=$buildroot/bench/sofia_uas
scenario=$TOP/tests/load/sip/uac_1s.xml
router=$buildroot/bin/cc-router
sipedge=$buildroot/bin/cc-sip-edge
agents=${CC_BENCH_SIP_AGENTS:-4000}
rates=${CC_BENCH_SIP_RATES:-100 200 300 400 500 600 800 1000 1200 1400 1600 2000 2500 3000 4000 5000 6000 7000 8000 9000 10000 12000}
step_s=${CC_BENCH_SIP_STEP_S:-10}
phases=" ${CC_BENCH_SIP_PHASES:-uas sipedge memory} "
settle_s=${CC_BENCH_SIP_SETTLE_S:-40}
ring_ms=${CC_BENCH_SIP_RING_MS:-0}
# sipp's sockets get 4 MB buffers (its default, 64 kB, drops bursts: a load-generator limit)
sock_buf=4194304
edge_pid=

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
    ((rc == 0)) && [ -z "${CC_BENCH_SIP_KEEP:-}" ] && rm -rf "$tmp" || echo "sip.sh: logs kept in $tmp" >&2
    exit "$rc"
}
trap finish EXIT
trap 'echo "sip.sh: error: a command failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM HUP

# A port on 127.0.0.1 free right now for both TCP and UDP (SIP listens on both; HTTP on TCP).
free_port() {
    python3 -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()'
}

has_phase() {
    [[ $phases == *" $1 "* ]]
}

# run_calls TAG PORT SERVICE RATE CALLS -> prints "succeeded failed retransmissions" of one sipp
# run of CALLS calls at RATE per second
run_calls() {
    local tag=$1 port=$2 service=$3 rate=$4 calls=$5 stat last
    stat=$tmp/$tag.csv
    # -default_behaviors bye: a call aborted on a timeout is a failure and is hung up (BYE or
    # CANCEL), so that an overloaded step leaves no caller queued forever behind the next
    # steps; no other default behaviour (an unexpected message is not answered); the stat file's
    # last line holds the cumulative counters
    # bash's time: the caller's CPU (user sys, seconds) into $tmp/$tag.time
    {
        time timeout $((calls / rate + 50)) sipp "127.0.0.1:$port" -sf "$scenario" -s "$service" \
            -i 127.0.0.1 -p "$(free_port)" -r "$rate" -m "$calls" -l $((rate * 4)) -default_behaviors bye -nostdin \
            -buff_size "$sock_buf" \
            -recv_timeout 10000 -trace_stat -stf "$stat" -fd 1 -trace_err \
            -error_file "$tmp/$tag.err" >/dev/null 2>&1 || true
    } 2>"$tmp/$tag.time"
    last=$(tail -n 1 "$stat" 2>/dev/null || true)
    if [ -z "$last" ]; then
        echo "0 $calls 0 -1"
        return
    fi
    # columns (1-based): 16 SuccessfulCall(C), 18 FailedCall(C), 58 Retransmissions(C)
    awk -F';' '{ print $16, $18, $58 }' <<<"$last" | tr '\n' ' '
    # and the seconds sipp took to start all CALLS calls: sipp starts no call beyond its limit of
    # calls in progress (-l, 4 s worth), so a target slower than the rate makes it fall behind
    # the rate without a failure. Columns 1 and 3 (StartTime, CurrentTime) end with the epoch
    # after a tab; 13 TotalCallCreated; one line per second (-fd 1): -1 when never reached.
    awk -F';' -v n="$calls" 'NR > 1 && $13 >= n {
            split($1, a, "\t"); split($3, b, "\t"); printf "%.0f\n", b[3] - a[3]; found = 1; exit }
        END { if (!found) print -1 }' "$stat"
}

# run_step TARGET PORT SERVICE RATE -> as run_calls, for step_s seconds
run_step() {
    run_calls "$1-$4" "$2" "$3" "$4" $(($4 * step_s))
}

# ---- CPU per process (sip-edge steps) ----------------------------------------------------
# cpu_ticks PID...: utime + stime of those processes, in clock ticks
cpu_ticks() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# cpu_groups: one line "name pid pid ..." per process group of the sip-edge half
cpu_groups() {
    local pgsock pm rsock
    echo "edge $edge_pid"
    echo "router $router_pid"
    pgsock=$(sed -n "s/.*host=\([^ ']*\).*/\1/p" <<<"$CC_PG_DSN")
    pm=$(head -n 1 "$pgsock"/.s.PGSQL.*.lock 2>/dev/null || true)
    [ -n "$pm" ] && echo "pg $pm $(pgrep -P "$pm" | tr '\n' ' ')"
    rsock=${CC_REDIS_URL#unix://}
    echo "redis $(redis-cli -s "$rsock" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p')"
    echo "broker $(pgrep -f "cc-devbroker.*${CC_DEVBROKER_CONTROL:-none}" | tr '\n' ' ')"
    echo "agents $agent_sipp"
}

cpu_begin() {
    if [ -n "${CC_BENCH_SIP_PERF:-}" ]; then # profile sip-edge during the step's middle
        (sleep $((step_s / 4)) && perf record -q -F 499 -g -p "$edge_pid" -o "$tmp/perf.data" \
            -- sleep $((step_s / 2)) >/dev/null 2>&1) &
        perf_pid=$!
    fi
    cpu_t0=$(date +%s%N)
    cpu_before=$(cpu_groups | while read -r name rest; do
        # shellcheck disable=SC2086 # a list of pids
        echo "$name $(cpu_ticks $rest)"
    done)
}

cpu_end() {
    local rate=$1 hz dt line=""
    hz=$(getconf CLK_TCK)
    dt=$(($(date +%s%N) - cpu_t0))
    while read -r name rest; do
        # shellcheck disable=SC2086
        now=$(cpu_ticks $rest)
        was=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$cpu_before")
        line+=" $name=$(awk -v a="$now" -v b="${was:-0}" -v hz="$hz" -v dt="$dt" \
            'BEGIN { printf "%.0f", (a - b) * 100 / hz / (dt / 1e9) }')%"
    done < <(cpu_groups)
    # the caller (sipp) ran inside the step: its CPU over the same wall time
    line+=" caller=$(awk -v dt="$dt" '{ printf "%.0f", ($1 + $2) * 100 / (dt / 1e9) }' \
        "$tmp/sipedge-$rate.time" 2>/dev/null || echo "?")%"
    # all of them together, and per call at the step's rate: what the call path costs the cores
    line+=$(awk -v r="$rate" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); t += kv[2] + 0 } }
        END { printf " all=%.0f%% ms_per_call=%.3f", t, t * 10 / r }' <<<"$line")
    echo "bench: sipedge.cpu $rate 1/s$line"
    if [ -n "${CC_BENCH_SIP_PERF:-}" ]; then
        wait "$perf_pid" || true
        echo "sip.sh: cc-sip-edge's profile at $rate/s (perf report --no-children, top 25):" >&2
        perf report -q -i "$tmp/perf.data" --no-children --sort dso,symbol -g none 2>/dev/null |
            grep -v '^$' | head -n 25 >&2 || true
        echo "sip.sh: postgresql tables so far (writes, reads):" >&2
        psql -X -q -A -F ' ' -t "$CC_PG_DSN" -c "SELECT schemaname || '.' || relname, \
            n_tup_ins + n_tup_upd + n_tup_del, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) \
            FROM pg_stat_user_tables ORDER BY 2 DESC, 3 DESC LIMIT 8" >&2 || true
    fi
}

# uas_cpu RATE: the bare UAS's and the caller's CPU over the step just run
uas_cpu() {
    local rate=$1 dt
    dt=$(($(date +%s%N) - uas_t0))
    awk -v a="$(cpu_ticks "$uas_pid")" -v b="$uas_ticks0" -v hz="$(getconf CLK_TCK)" -v dt="$dt" \
        -v r="$rate" -v caller="$(cat "$tmp/uas-$rate.time" 2>/dev/null)" 'BEGIN {
            split(caller, c, " ")
            u = (a - b) * 100 / hz / (dt / 1e9); k = (c[1] + c[2]) * 100 / (dt / 1e9)
            printf "bench: sofia.cpu %d 1/s uas=%.0f%% caller=%.0f%% all=%.0f%% ms_per_call=%.3f\n",
                r, u, k, u + k, (u + k) * 10 / r }'
}

# step_up TARGET PORT SERVICE METRIC: steps the rates, prints each step and the best rate
step_up() {
    local target=$1 port=$2 service=$3 metric=$4 best=0 rate ok out ok_calls failed retrans
    for rate in $rates; do
        if [ "$target" = sipedge ] && ((rate * (5000 + 4 * ring_ms) > agents * 4000)); then
            # 1-s calls plus set-up and release: fewer agents than that and calls queue until
            # sipp's receive timeout -- the load generator's limit, not sip-edge's
            echo "sip.sh: stepping stops before $rate/s: $agents agent phones (CC_BENCH_SIP_AGENTS) cannot take 1-s calls at that rate" >&2
            break
        fi
        [ "$target" = sipedge ] && cpu_begin
        uas_t0=$(date +%s%N) uas_ticks0=$(cpu_ticks "${uas_pid:-0}")
        out=$(run_step "$target" "$port" "$service" "$rate")
        read -r ok_calls failed retrans start_s <<<"$out"
        ok=0
        # the rate held: every call started within the step's seconds (+1: the stat file's
        # one-second lines), every call succeeded, nothing was retransmitted
        if [ "$ok_calls" -eq $((rate * step_s)) ] && [ "$failed" -eq 0 ] && [ "$retrans" -eq 0 ] &&
            [ "$start_s" -ge 0 ] && [ "$start_s" -le $((step_s + 1)) ]; then
            ok=1
            best=$rate
        fi
        echo "bench: ${metric%%.*}.step $rate 1/s target=$target ok=$ok calls=$ok_calls failed=$failed retrans=$retrans start_s=$start_s step_s=$step_s"
        [ "$target" = sipedge ] && cpu_end "$rate"
        [ "$target" = uas ] && uas_cpu "$rate"
        ((ok)) || break
    done
    echo "bench: $metric $best 1/s step_s=$step_s call_s=1 transport=udp$([ "$target" = sipedge ] && ((ring_ms > 0)) && echo " ring_ms=$ring_ms")"
    eval "${target}_best=$best"
}

uas_best=0
if has_phase uas; then
    uas_port=$(free_port)
    "$uas" "$uas_port" >"$tmp/uas.log" 2>&1 &
    uas_pid=$!
    pids+=("$uas_pid")
    for _ in $(seq 50); do grep -q ready "$tmp/uas.log" && break; sleep 0.1; done
    grep -q ready "$tmp/uas.log" || { echo "sip.sh: sofia_uas did not start" >&2; cat "$tmp/uas.log" >&2; exit 1; }
    step_up uas "$uas_port" 1000 sofia.uas_cps
    kill -TERM "$uas_pid" 2>/dev/null || true
    wait "$uas_pid" 2>/dev/null || true
    unset 'pids[-1]'
fi
has_phase sipedge || has_phase memory || exit 0

# ---- sip-edge: caller -> sip-edge -> router -> agent phone --------------------------------
for v in CC_KAFKA_BROKERS CC_REDIS_URL CC_PG_DSN; do
    [ -n "${!v:-}" ] || { echo "sip.sh: $v is not set (run through tests/load/run.sh)" >&2; exit 1; }
done
for bin in "$router" "$sipedge"; do
    [ -x "$bin" ] || { echo "sip.sh: missing '$bin' (build with make bench-build)" >&2; exit 1; }
done
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
CC_AUTH_TOKENS="$(printf %s "$token" | sha256sum | cut -d' ' -f1):bench:admin"
export CC_AUTH_TOKENS
export CC_LOG_LEVEL=${CC_BENCH_SIP_LOG_LEVEL:-warn} CC_HTTP_ADDR=127.0.0.1
router_http=$(free_port) edge_http=$(free_port) edge_sip=$(free_port) agent_sip=$(free_port)

CC_HTTP_PORT=$router_http CC_INSTANCE_ID=bench-router CC_ROUTER_CONSUMERS=2 \
    CC_ROUTER_MIGRATIONS_DIR=$TOP/services/router/migrations \
    "$router" >"$tmp/router.log" 2>&1 &
router_pid=$!
pids+=($!)
CC_HTTP_PORT=$edge_http CC_INSTANCE_ID=bench-edge CC_SIPEDGE_SIP_URL="sip:127.0.0.1:$edge_sip" \
    CC_SIPEDGE_MAX_CALLS=20000 CC_SIPEDGE_MIGRATIONS_DIR=$TOP/services/sip-edge/migrations \
    CC_SIPEDGE_NONCE_SECRET=$token "$sipedge" >"$tmp/sip-edge.log" 2>&1 &
edge_pid=$!
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

# the agents' phones: one UAS answering for every contact (after ringing ring_ms when set)
agent_scn=agents_answer.xml
((ring_ms > 0)) && agent_scn=agents_ring.xml
sipp -sf "$TOP/tests/load/sip/$agent_scn" -d "$ring_ms" -i 127.0.0.1 -p "$agent_sip" -nd -nostdin \
    -buff_size "$sock_buf" \
    -trace_err -error_file "$tmp/agents-answer.err" >/dev/null 2>&1 &
agent_sipp=$!
pids+=($!)
# every agent registers with digest authentication (sipp's [authentication] takes no per-line
# credentials, so a small client does it: REGISTER, 401, REGISTER with the MD5 digest, 200)
python3 - "$edge_sip" "$tmp/agents.csv" "$agent_sip" <<'PY'
import hashlib, re, socket, sys
port, csv, contact_port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(2)
lport = s.getsockname()[1]
md5 = lambda x: hashlib.md5(x.encode()).hexdigest()
def request(user, domain, cid, cseq, auth=""):
    msg = (f"REGISTER sip:{domain} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-{cid}-{cseq}\r\n"
           f"From: <sip:{user}@{domain}>;tag={cid}\r\nTo: <sip:{user}@{domain}>\r\n"
           f"Call-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\n"
           f"Contact: <sip:{user}@127.0.0.1:{contact_port}>\r\n{auth}"
           "Expires: 3600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    for _ in range(5):
        s.sendto(msg.encode(), ("127.0.0.1", port))
        try:
            while True:
                data = s.recv(65535).decode(errors="replace")
                if f"Call-ID: {cid}" in data and f"CSeq: {cseq} REGISTER" in data:
                    return data
        except socket.timeout:
            continue
    sys.exit(f"sip.sh: no answer to the REGISTER of {user}")
for line in open(csv).read().split("\n")[1:]:
    if not line:
        continue
    user, pw, domain, _ = line.split(";")
    cid = f"bench-reg-{user}"
    r = request(user, domain, cid, 1)
    nonce = re.search(r'nonce="([^"]+)"', r)
    if not r.startswith("SIP/2.0 401") or not nonce:
        sys.exit(f"sip.sh: expected a 401 challenge for {user}, got {r.splitlines()[0]!r}")
    uri, nc, cnonce = f"sip:{domain}", "00000001", "0a4f113b"
    ha1 = md5(f"{user}:{domain}:{pw}")
    resp = md5(f"{ha1}:{nonce.group(1)}:{nc}:{cnonce}:auth:" + md5(f"REGISTER:{uri}"))
    auth = (f'Authorization: Digest username="{user}", realm="{domain}", nonce="{nonce.group(1)}", '
            f'uri="{uri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"\r\n')
    r = request(user, domain, cid, 2, auth)
    if not r.startswith("SIP/2.0 200"):
        sys.exit(f"sip.sh: the REGISTER of {user} got {r.splitlines()[0]!r}")
PY

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

sipedge_best=0
if has_phase sipedge; then
    step_up sipedge "$edge_sip" 1000 sipedge.cps
    if has_phase uas; then
        awk -v a="$sipedge_best" -v b="$uas_best" \
            'BEGIN { printf "bench: sipedge.ratio_to_uas %.3f ratio sipedge_cps=%d uas_cps=%d goal=0.5\n", (b > 0 ? a / b : 0), a, b }'
    fi
fi

# ---- memory: cc-sip-edge's RSS before and after many calls --------------------------------
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$edge_pid/status"
}
# what the allocator has handed out and not had back (common/cc_heap.h), from cc-sip-edge's
# /metrics: "<bytes> <allocator>", or "-1 none" when its build exposes no allocator figure
heap_bytes() {
    curl -fsS "http://127.0.0.1:$edge_http/metrics" |
        awk '/^process_heap_allocated_bytes\{/ { match($0, /allocator="[^"]*"/);
                 a = substr($0, RSTART + 11, RLENGTH - 12); printf "%.0f %s\n", $NF, a; f = 1 }
             END { if (!f) print "-1 none" }'
}

if has_phase memory; then
    calls=${CC_BENCH_SIP_MEMORY_CALLS:-10000}
    mrate=${CC_BENCH_SIP_MEMORY_RATE:-200}
    # the warm-up outlasts Sofia's 32 s transaction lifetime, so the allocator's high-water mark
    # of the steady state is reached before the baseline is read
    warm=${CC_BENCH_SIP_MEMORY_WARMUP:-$((mrate * 40 > 1000 ? mrate * 40 : 1000))}
    read -r w_ok w_failed _ <<<"$(run_calls memory-warmup "$edge_sip" 1000 "$mrate" "$warm")"
    sleep "$settle_s"
    rss0=$(rss_kb)
    read -r heap0 allocator <<<"$(heap_bytes)"
    # two halves, RSS read after each: growth in both is a leak or a retention, growth in the
    # first only is the allocator's high-water mark
    read -r a_ok a_failed a_retrans _ <<<"$(run_calls memory-1 "$edge_sip" 1000 "$mrate" $((calls / 2)))"
    sleep "$settle_s"
    rss_half=$(rss_kb)
    read -r heap_half _ <<<"$(heap_bytes)"
    read -r b_ok b_failed b_retrans _ <<<"$(run_calls memory-2 "$edge_sip" 1000 "$mrate" $((calls - calls / 2)))"
    sleep "$settle_s"
    rss1=$(rss_kb)
    read -r heap1 _ <<<"$(heap_bytes)"
    m_ok=$((a_ok + b_ok)) m_failed=$((a_failed + b_failed)) m_retrans=$((a_retrans + b_retrans))
    echo "bench: sipedge.rss_growth_kb $((rss1 - rss0)) kB calls=$calls ok=$m_ok failed=$m_failed retrans=$m_retrans rate=$mrate warmup=$warm warmup_failed=$w_failed rss_after_warmup_kb=$rss0 rss_after_half_kb=$rss_half rss_after_kb=$rss1 first_half_kb=$((rss_half - rss0)) second_half_kb=$((rss1 - rss_half)) settle_s=$settle_s"
    if [ "$heap0" -ge 0 ]; then
        # the leak check proper: bytes still allocated after the calls ended, per call
        awk -v h0="$heap0" -v hh="$heap_half" -v h1="$heap1" -v n="$calls" -v a="$allocator" \
            'BEGIN { printf "bench: sipedge.heap_growth_kb %d kB calls=%d allocator=%s heap_after_warmup_kb=%d heap_after_half_kb=%d heap_after_kb=%d first_half_kb=%d second_half_kb=%d bytes_per_call=%.1f\n",
                     (h1 - h0) / 1024, n, a, h0 / 1024, hh / 1024, h1 / 1024, (hh - h0) / 1024, (h1 - hh) / 1024, (h1 - h0) / n }'
    fi
    if [ "$w_ok" -eq 0 ] || [ "$m_ok" -ne "$calls" ]; then
        echo "sip.sh: the memory phase lost calls (see $tmp/memory-*.err)" >&2
        exit 1
    fi
fi

# ---- sip-edge stops cleanly: exit 0, no sanitizer report (LeakSanitizer runs at exit) ------
kill -TERM "$edge_pid"
rc=0
wait "$edge_pid" || rc=$?
pids=("${pids[@]/$edge_pid/}")
if ((rc != 0)) || grep -q "Sanitizer\|runtime error" "$tmp/sip-edge.log"; then
    echo "sip.sh: cc-sip-edge exited $rc or reported a sanitizer error (see $tmp/sip-edge.log)" >&2
    exit 1
fi
echo "bench: sipedge.clean_exit 1 bool exit=0 sanitizer_reports=0"
