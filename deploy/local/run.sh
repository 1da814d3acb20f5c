#!/usr/bin/env bash
# run.sh: what `make run` does after building -- start the local stack in
# .stack/run, then every service binary BUILDROOT/bin/cc-* (but the dev broker),
# print where everything listens, and on Ctrl-C or SIGTERM stop the services,
# then the stack, leaving nothing running.
#
#   deploy/local/run.sh BUILDROOT          e.g. deploy/local/run.sh build/release
#
# Services get the stack's env plus CC_HTTP_PORT, a fixed slot per service
# from $CC_RUN_PORT_BASE (8081): router +0, sip-edge +1, metrics-aggregator +2,
# dialer +3, recorder +4, qa-service +5, omnichannel-ingest +6 (the same ports as
# docker-compose.yml, whichever services are built); sip-edge listens for
# SIP on 127.0.0.1:$CC_RUN_SIP_PORT (5060; CC_SIPEDGE_SIP_URL overrides it).
# Their logs go to .stack/run/<service>.log. Variables exported by the caller
# pass through. CC_RUN_DEMO=1 (make run DEMO=1) then starts deploy/local/demo.sh
# (agent phones and callers over sipp, logs in .stack/run/demo/), stopped first.
set -euo pipefail
set +m

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=$TOP/deploy/local/stack.sh
DIR=$TOP/.stack/run
PORT_BASE=${CC_RUN_PORT_BASE:-8081}
SIP_PORT=${CC_RUN_SIP_PORT:-5060}
GRACE_S=10

# HTTP port slot of each service (offset from PORT_BASE); an unknown one gets the next free slot.
PORT_SLOTS=(router sip-edge metrics-aggregator dialer recorder qa-service omnichannel-ingest)
declare -a SVC_NAMES=() SVC_PIDS=() SVC_PORTS=()
DEV_TOKEN=
DEMO_PID=
STARTED_STACK=0

say() {
    echo "run: $*" >&2
}

stop_services() {
    local i pid n
    for i in "${!SVC_PIDS[@]}"; do
        kill -TERM "${SVC_PIDS[$i]}" 2>/dev/null || true
    done
    for i in "${!SVC_PIDS[@]}"; do
        pid=${SVC_PIDS[$i]}
        for ((n = 0; n < GRACE_S * 20; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "warning: ${SVC_NAMES[$i]} ignored SIGTERM for ${GRACE_S}s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    SVC_PIDS=()
}

stop_demo() {
    [[ -n $DEMO_PID ]] || return 0
    say "stopping the demo"
    kill -TERM "$DEMO_PID" 2>/dev/null || true
    wait "$DEMO_PID" 2>/dev/null || true
    DEMO_PID=
}

cleanup() {
    trap '' INT TERM HUP # a second Ctrl-C must not cut the clean-up short
    stop_demo
    if ((${#SVC_PIDS[@]})); then
        say "stopping services"
        stop_services
    fi
    if ((STARTED_STACK)); then
        say "stopping the local stack"
        "$STACK" stop "$DIR" || true
        STARTED_STACK=0
    fi
}

on_signal() {
    echo >&2
    cleanup
    say "stopped; nothing left running"
    exit 0
}

# wait_http PORT PID: true once GET /healthz answers, false if the process died or 10 s passed.
wait_http() {
    local port=$1 pid=$2 n
    for ((n = 0; n < 200; n++)); do
        curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

start_services() {
    local root=$1 bin name port i slot extra=${#PORT_SLOTS[@]}
    for bin in "$root"/bin/cc-*; do
        [[ -x $bin ]] || continue
        name=${bin##*/cc-}
        [[ $name == devbroker ]] && continue
        slot=$extra
        for i in "${!PORT_SLOTS[@]}"; do
            [[ ${PORT_SLOTS[$i]} == "$name" ]] && slot=$i
        done
        ((slot < ${#PORT_SLOTS[@]})) || extra=$((extra + 1))
        port=$((PORT_BASE + slot))
        if [[ $name == sip-edge ]]; then
            CC_SIPEDGE_SIP_URL=${CC_SIPEDGE_SIP_URL:-sip:127.0.0.1:$SIP_PORT} CC_HTTP_PORT=$port \
                "$bin" </dev/null >"$DIR/$name.log" 2>&1 &
        else
            CC_HTTP_PORT=$port "$bin" </dev/null >"$DIR/$name.log" 2>&1 &
        fi
        SVC_NAMES+=("$name")
        SVC_PIDS+=($!)
        SVC_PORTS+=("$port")
    done
    for i in "${!SVC_PIDS[@]}"; do
        if ! wait_http "${SVC_PORTS[$i]}" "${SVC_PIDS[$i]}"; then
            say "error: service '${SVC_NAMES[$i]}' is not answering GET /healthz on port ${SVC_PORTS[$i]}"
            echo "---- last lines of $DIR/${SVC_NAMES[$i]}.log ----" >&2
            tail -n 25 "$DIR/${SVC_NAMES[$i]}.log" >&2 || true
            return 1
        fi
    done
}

print_summary() {
    local i
    cat <<EOF

  contact center: local stack up
  kafka (dev broker)  $CC_KAFKA_BROKERS
                      topics: proto/topics.json; logs: .stack/run/devbroker.log
  redis               ${CC_REDIS_URL#unix://}
                      redis-cli -s ${CC_REDIS_URL#unix://}
  postgresql          psql '$CC_PG_DSN'
EOF
    if ((${#SVC_NAMES[@]} == 0)); then
        echo "  services            none built yet (each service issue adds its own)"
    fi
    for i in "${!SVC_NAMES[@]}"; do
        printf '  %-19s http://127.0.0.1:%s  (log: .stack/run/%s.log)\n' \
            "${SVC_NAMES[$i]}" "${SVC_PORTS[$i]}" "${SVC_NAMES[$i]}"
        if [[ ${SVC_NAMES[$i]} == sip-edge ]]; then
            printf '  %-19s sip udp/tcp %s  (CC_RUN_SIP_PORT)\n' "" \
                "$(sip_hostport "${CC_SIPEDGE_SIP_URL:-sip:127.0.0.1:$SIP_PORT}")"
        fi
        if [[ ${SVC_NAMES[$i]} == metrics-aggregator ]]; then
            printf '  %-19s http://127.0.0.1:%s/wallboard/?token=%s\n' "wallboard" \
                "${SVC_PORTS[$i]}" "${DEV_TOKEN:-<a supervisor token>}"
        fi
    done
    if [[ -n ${DEV_TOKEN:-} ]]; then
        echo "  admin token         $DEV_TOKEN  (tenant demo; this run only)"
        if ((${#SVC_NAMES[@]})); then
            echo "                      curl -H 'Authorization: Bearer $DEV_TOKEN' http://127.0.0.1:$(service_port router || true)/v1/queues"
        fi
    fi
    cat <<EOF
  environment         . .stack/run/env

  press Ctrl-C to stop

EOF
}

# "sip:127.0.0.1:5060;transport=udp" -> "127.0.0.1:5060"
sip_hostport() {
    local u=${1#sip:}
    echo "${u%%;*}"
}

# service_port NAME: the HTTP port of a started service, or nothing.
service_port() {
    local i
    for i in "${!SVC_NAMES[@]}"; do
        [[ ${SVC_NAMES[$i]} == "$1" ]] && echo "${SVC_PORTS[$i]}"
    done
    return 0
}

# With CC_RUN_DEMO=1: deploy/local/demo.sh in the background (it prints its own summary).
start_demo() {
    local rport eport sip
    [[ ${CC_RUN_DEMO:-} == 1 ]] || return 0
    rport=$(service_port router)
    eport=$(service_port sip-edge)
    if [[ -z $rport || -z $eport ]]; then
        say "warning: the demo needs cc-router and cc-sip-edge; not started"
        return 0
    fi
    if [[ -z $DEV_TOKEN ]]; then
        say "warning: the demo needs this run's own admin token: unset CC_AUTH_TOKENS; not started"
        return 0
    fi
    sip=$(sip_hostport "${CC_SIPEDGE_SIP_URL:-sip:127.0.0.1:$SIP_PORT}")
    "$TOP/deploy/local/demo.sh" "$rport" "$eport" "${sip##*:}" "$DEV_TOKEN" "$DIR/demo" \
        </dev/null &
    DEMO_PID=$!
}

# Without CC_AUTH_TOKENS from the caller, makes one admin token of tenant "demo" for this run
# (only its SHA-256 is given to the services) so the REST APIs can be tried at once.
make_dev_token() {
    [[ -z ${CC_AUTH_TOKENS:-} ]] || return 0
    DEV_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    CC_AUTH_TOKENS="$(printf %s "$DEV_TOKEN" | sha256sum | cut -d' ' -f1):demo:admin"
    export CC_AUTH_TOKENS
}

# Reports a service that died on its own, once; the rest keeps running.
watch_services() {
    local i
    declare -A reported=()
    while :; do
        for i in "${!SVC_PIDS[@]}"; do
            if [[ -z ${reported[$i]:-} ]] && ! kill -0 "${SVC_PIDS[$i]}" 2>/dev/null; then
                say "warning: service '${SVC_NAMES[$i]}' exited; see .stack/run/${SVC_NAMES[$i]}.log"
                reported[$i]=1
            fi
        done
        if [[ -n $DEMO_PID ]] && ! kill -0 "$DEMO_PID" 2>/dev/null; then
            wait "$DEMO_PID" 2>/dev/null || true
            DEMO_PID=
            say "warning: the demo stopped; see .stack/run/demo/"
        fi
        sleep 1 &
        wait $! || true
    done
}

main() {
    local root=${1:-}
    [[ -n $root && -d $root ]] || {
        echo "usage: deploy/local/run.sh BUILDROOT   (e.g. build/release, after make build)" >&2
        exit 2
    }
    root=$(cd "$root" && pwd)
    [[ -x $root/bin/cc-devbroker ]] || {
        say "error: '$root/bin/cc-devbroker' not built (make build)"
        exit 1
    }
    mkdir -p "$DIR"
    trap on_signal INT TERM HUP
    trap cleanup EXIT

    local t0=$SECONDS
    STARTED_STACK=1
    CC_DEVBROKER_BIN=$root/bin/cc-devbroker "$STACK" start "$DIR" || {
        STARTED_STACK=0 # stack.sh cleaned up after itself (or another run owns DIR)
        exit 1
    }
    # shellcheck source=/dev/null
    . "$DIR/env"
    make_dev_token
    start_services "$root" || exit 1
    print_summary
    say "up in $((SECONDS - t0)) s"
    start_demo
    watch_services
}

main "$@"
