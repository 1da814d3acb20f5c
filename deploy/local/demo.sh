#!/usr/bin/env bash
# demo.sh: the small demo of `make run DEMO=1` -- a voice queue, 4 agents with SIP phones that
# register with digest authentication and answer, and one caller every 3 s, so that routed calls
# show up in the services' logs and the router's live views. run.sh starts it once the services
# answer and stops it (SIGTERM) before them; it stops its sipp processes itself.
#
#   deploy/local/demo.sh ROUTER_HTTP_PORT SIPEDGE_HTTP_PORT SIP_PORT TOKEN LOGDIR
#
# TOKEN is an admin token of tenant "demo". Everything is created over the REST APIs:
#   router    POST /v1/queues (demo-support), POST /v1/agents (demo-agent-1..4),
#             PUT /v1/queues/demo-support/members/<agent>, POST /v1/agents/<agent>/state
#   sip-edge  POST /v1/sip/credentials (users 1001..1004, domain demo), POST /v1/sip/dids (5550100)
# The phones (deploy/local/demo/agent_phone.xml) ring 2 s and talk 5-15 s; the caller
# (deploy/local/demo/caller.xml) gives up after 40 s in the queue. sipp logs go to LOGDIR.
# Env: CC_DEMO_CALL_EVERY_MS (3000).
set -euo pipefail
set +m

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCEN=$TOP/deploy/local/demo
REGISTER=$TOP/tests/integration/sip/agent_register.xml
QUEUE=demo-support
DID=5550100
DOMAIN=demo
NAGENTS=4
EVERY_MS=${CC_DEMO_CALL_EVERY_MS:-3000}

declare -a PIDS=()

say() {
    echo "demo: $*" >&2
}

stop_all() {
    local p
    trap '' INT TERM HUP
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
}

# free_port: a UDP port on 127.0.0.1 free right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# api PORT METHOD PATH [JSON]: the HTTP status; 409 (already there from an earlier run) is fine.
api() {
    local port=$1 method=$2 path=$3 body=${4:-} code
    code=$(curl -sS -o "$LOGDIR/last-response.json" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        ${body:+--data "$body"} "http://127.0.0.1:$port$path") || code=000
    case $code in
    200 | 201 | 204 | 409) return 0 ;;
    esac
    say "error: $method $path answered $code: $(head -c 300 "$LOGDIR/last-response.json" 2>/dev/null)"
    return 1
}

seed() {
    local i
    api "$RPORT" POST /v1/queues "{\"id\":\"$QUEUE\",\"name\":\"Demo support\",\"channels\":[\"voice\"],\"strategy\":\"longest_idle\",\"wrapup_s\":0,\"ring_timeout_s\":15}" ||
        return 1
    for ((i = 1; i <= NAGENTS; i++)); do
        api "$RPORT" POST /v1/agents "{\"id\":\"demo-agent-$i\",\"name\":\"Demo agent $i\",\"capacity\":{\"voice\":1}}" &&
            api "$RPORT" PUT "/v1/queues/$QUEUE/members/demo-agent-$i" '{}' &&
            api "$EPORT" POST /v1/sip/credentials "{\"username\":\"100$i\",\"password\":\"demo-pass-$i\",\"agent_id\":\"demo-agent-$i\",\"domain\":\"$DOMAIN\"}" ||
            return 1
    done
    api "$EPORT" POST /v1/sip/dids "{\"number\":\"$DID\",\"queue_id\":\"$QUEUE\"}"
}

# phone I: the agent's phone (a sipp UAS) on a free port, then its REGISTER through sip-edge.
phone() {
    local i=$1 port
    port=$(free_port)
    sipp -sf "$SCEN/agent_phone.xml" -i 127.0.0.1 -p "$port" -nostdin >/dev/null 2>&1 &
    PIDS+=($!)
    timeout 20 sipp "127.0.0.1:$SIP" -sf "$REGISTER" -i 127.0.0.1 -p "$(free_port)" -nostdin \
        -s "100$i" -au "100$i" -ap "demo-pass-$i" -key domain "$DOMAIN" -key uas_port "$port" \
        -key expires 3600 -m 1 -nd -trace_err -error_file "$LOGDIR/register-$i.errors.log" \
        >/dev/null 2>&1 || {
        say "error: phone of demo-agent-$i did not register (see $LOGDIR/register-$i.errors.log)"
        return 1
    }
}

# login I: available as soon as the router knows the phone's contact (cc.agents registered).
login() {
    local i=$1 n
    for ((n = 0; n < 100; n++)); do
        if curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' --data '{"state":"available"}' \
            "http://127.0.0.1:$RPORT/v1/agents/demo-agent-$i/state" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    say "error: demo-agent-$i could not be made available"
    return 1
}

main() {
    [[ $# -eq 5 ]] || {
        echo "usage: deploy/local/demo.sh ROUTER_HTTP_PORT SIPEDGE_HTTP_PORT SIP_PORT TOKEN LOGDIR" >&2
        exit 2
    }
    RPORT=$1 EPORT=$2 SIP=$3 TOKEN=$4 LOGDIR=$5
    command -v sipp >/dev/null || {
        say "error: sipp is not installed (package sip-tester)"
        exit 1
    }
    mkdir -p "$LOGDIR"
    trap 'stop_all; exit 0' INT TERM HUP
    trap stop_all EXIT

    seed || exit 1
    for ((i = 1; i <= NAGENTS; i++)); do
        phone "$i" || exit 1
        login "$i" || exit 1
    done
    sipp "127.0.0.1:$SIP" -sf "$SCEN/caller.xml" -s "$DID" -i 127.0.0.1 -p "$(free_port)" \
        -nostdin -r 1 -rp "$EVERY_MS" -l 100 -trace_err -error_file "$LOGDIR/callers.errors.log" \
        -trace_stat -stf "$LOGDIR/callers.stat.csv" -fd 10 >/dev/null 2>&1 &
    PIDS+=($!)
    cat <<EOF

  demo (tenant demo)  queue $QUEUE, agents demo-agent-1..$NAGENTS (SIP 1001..100$NAGENTS@$DOMAIN,
                      phones ring 2 s, talk 5-15 s), DID $DID: one call every $((EVERY_MS / 1000)) s
                      curl -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$RPORT/v1/queues/$QUEUE/live
                      curl -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$RPORT/v1/agents/demo-agent-1/live
                      calls: .stack/run/sip-edge.log, .stack/run/router.log; sipp: $LOGDIR

EOF
    # stays up for run.sh: its sipp processes stop with it
    while :; do
        sleep 1 &
        wait $! || true
    done
}

main "$@"
