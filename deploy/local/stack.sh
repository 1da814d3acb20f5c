#!/usr/bin/env bash
# stack.sh: the local stack -- redis-server, a throwaway PostgreSQL cluster and
# the Kafka-protocol dev broker (cc-devbroker) -- all under one directory.
#
#   deploy/local/stack.sh start  DIR [BUILDROOT]   start everything, write DIR/env
#   deploy/local/stack.sh stop   DIR               stop everything (idempotent)
#   deploy/local/stack.sh status DIR               exit 0 when every part is up
#
# DIR/env holds shell `export` lines: CC_KAFKA_BROKERS, CC_REDIS_URL, CC_PG_DSN, the dev
# broker's consumer-group settings (CC_KAFKA_SESSION_TIMEOUT_MS=6000 ...)
# and CC_DEVBROKER_CONTROL (the dev broker's topic-creation socket).
#
# The dev broker binary is $CC_DEVBROKER_BIN, else BUILDROOT/bin/cc-devbroker
# (BUILDROOT from the argument or $CC_BUILDROOT), else the first of
# build/release and build/asan in the checkout that has one.
# PostgreSQL binaries: $CC_PG_BIN, else the newest /usr/lib/postgresql/*/bin,
# else the directory of initdb on PATH.
#
# Nothing listens on TCP but the dev broker (random loopback ports): redis and
# PostgreSQL use unix sockets only, so any number of stacks can run at once in
# different DIRs. Servers run in their own sessions, so a Ctrl-C meant for the
# caller does not kill them behind its back: `stop` does, in reverse order.
set -euo pipefail
set +m # background jobs must not become group leaders (setsid must not fork)

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GRACE_S=${CC_STACK_GRACE_S:-10}

die() {
    echo "stack: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# show_log FILE: the last lines of a server's log, to explain a failure.
show_log() {
    if [[ -s $1 ]]; then
        echo "---- last lines of $1 ----" >&2
        tail -n 25 "$1" >&2
        echo "----" >&2
    fi
}

# alive PID NAME: true when PID runs and its command line mentions NAME (no recycled pids).
alive() {
    local pid=$1 name=$2
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

pidof_file() {
    if [[ -f $1 ]]; then
        head -n 1 "$1" | tr -d '[:space:]'
    fi
}

# wait_gone PID NAME SECONDS: true once PID has exited.
wait_gone() {
    local pid=$1 name=$2 i
    for ((i = 0; i < $3 * 20; i++)); do
        alive "$pid" "$name" || return 0
        sleep 0.05
    done
    ! alive "$pid" "$name"
}

# stop_pid PIDFILE NAME: SIGTERM, wait GRACE_S, then SIGKILL.
stop_pid() {
    local pid
    pid=$(pidof_file "$1")
    if alive "$pid" "$2"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" "$2" "$GRACE_S"; then
            echo "stack: warning: $2 (pid $pid) ignored SIGTERM for ${GRACE_S}s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" "$2" 5 || true
        fi
    fi
    rm -f "$1"
}

find_pg_bin() {
    local d
    if [[ -n ${CC_PG_BIN:-} ]]; then
        echo "$CC_PG_BIN"
        return
    fi
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n 1)
    if [[ -z $d ]] && command -v initdb >/dev/null 2>&1; then
        d=$(dirname "$(readlink -f "$(command -v initdb)")")
    fi
    [[ -n $d && -x $d/initdb ]] ||
        die "PostgreSQL server binaries not found (apt-get install postgresql, or set CC_PG_BIN)"
    echo "$d"
}

find_devbroker() {
    local root=${1:-${CC_BUILDROOT:-}} cand
    if [[ -n ${CC_DEVBROKER_BIN:-} ]]; then
        [[ -x $CC_DEVBROKER_BIN ]] || die "CC_DEVBROKER_BIN '$CC_DEVBROKER_BIN' is not an executable"
        echo "$CC_DEVBROKER_BIN"
        return
    fi
    if [[ -n $root ]]; then
        [[ -x $root/bin/cc-devbroker ]] || die "no '$root/bin/cc-devbroker': build it (make build)"
        echo "$root/bin/cc-devbroker"
        return
    fi
    for cand in "$TOP/build/release/bin/cc-devbroker" "$TOP/build/asan/bin/cc-devbroker"; do
        [[ -x $cand ]] && echo "$cand" && return
    done
    die "cc-devbroker not found: run 'make build', or set CC_DEVBROKER_BIN or pass BUILDROOT"
}

# as_pg CMD...: run as the postgres user when we are root (PostgreSQL refuses root).
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@" 9>&-
    else
        "$@" 9>&-
    fi
}

# ---- PostgreSQL --------------------------------------------------------------

# Chooses where the cluster lives and records it in DIR/pg.paths:
# DIR/pg + DIR/pgsock when the postgres user can enter DIR and the socket path
# is short; otherwise a private mktemp dir under /tmp, removed by `stop`.
pg_layout() {
    local dir=$1 base sock tmp=""
    base=$dir/pg
    sock=$dir/pgsock
    if ! as_pg test -x "$dir" || ((${#sock} > 80)); then
        tmp=$(mktemp -d /tmp/cc-pg.XXXXXX)
        base=$tmp
        sock=$tmp/sock
    fi
    mkdir -p "$base" "$sock"
    if ((EUID == 0)); then
        chown postgres:postgres "$base" "$sock"
    fi
    chmod 700 "$base"
    cat >"$dir/pg.paths" <<EOF
PGBASE='$base'
PGSOCK='$sock'
PGTMP='$tmp'
EOF
}

pg_start() {
    local dir=$1 pgbin
    pgbin=$(find_pg_bin)
    pg_layout "$dir"
    # shellcheck source=/dev/null
    . "$dir/pg.paths"
    local data=$PGBASE/data log=$PGBASE/postgres.log

    if ! as_pg "$pgbin/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        --no-instructions >"$dir/initdb.log" 2>&1; then
        show_log "$dir/initdb.log"
        return 1
    fi
    cat >>"$data/postgresql.conf" <<EOF
# throwaway cluster of deploy/local/stack.sh: unix socket only, no durability
listen_addresses = ''
unix_socket_directories = '$PGSOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
EOF
    if ! as_pg "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 30 -s start >>"$dir/initdb.log" 2>&1; then
        show_log "$dir/initdb.log"
        show_log "$log"
        return 1
    fi
    "$pgbin/pg_isready" -q -h "$PGSOCK" -t 10 || {
        show_log "$log"
        return 1
    }
    if ! "$pgbin/createdb" -h "$PGSOCK" -U postgres cc >>"$dir/initdb.log" 2>&1; then
        show_log "$dir/initdb.log"
        return 1
    fi
}

pg_postmaster_pid() {
    local dir=$1
    [[ -f $dir/pg.paths ]] || return 0
    # shellcheck source=/dev/null
    . "$dir/pg.paths"
    pidof_file "$PGBASE/data/postmaster.pid"
}

pg_stop() {
    local dir=$1 pid pgbin
    [[ -f $dir/pg.paths ]] || return 0
    # shellcheck source=/dev/null
    . "$dir/pg.paths"
    pid=$(pidof_file "$PGBASE/data/postmaster.pid")
    if alive "$pid" postgres; then
        pgbin=$(find_pg_bin)
        as_pg "$pgbin/pg_ctl" -D "$PGBASE/data" -m fast -w -t "$GRACE_S" -s stop >/dev/null 2>&1 || true
        if alive "$pid" postgres; then
            echo "stack: warning: postgres (pid $pid) did not stop, killing its process group" >&2
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" postgres 5 || true
        fi
    fi
    if [[ -s $PGBASE/postgres.log ]]; then
        cp "$PGBASE/postgres.log" "$dir/pg.log" 2>/dev/null || true
    fi
    if [[ -n $PGTMP ]]; then
        rm -rf "$PGTMP"
    else
        rm -rf "$PGBASE" "$PGSOCK"
    fi
    rm -f "$dir/pg.paths"
}

# ---- redis and the dev broker --------------------------------------------------

redis_start() {
    local dir=$1 i
    # redis logs to --logfile; stderr only catches what it prints before opening it
    # shellcheck disable=SC2094
    setsid redis-server --port 0 --bind 127.0.0.1 --protected-mode yes \
        --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
        --save '' --appendonly no --daemonize no --dir "$dir" \
        --logfile "$dir/redis.log" </dev/null >/dev/null 2>>"$dir/redis.log" 9>&- &
    echo $! >"$dir/redis.pid"
    for ((i = 0; i < 200; i++)); do
        [[ $(redis-cli -s "$dir/redis.sock" ping 2>/dev/null) == PONG ]] && return 0
        alive "$!" redis-server || break
        sleep 0.025
    done
    show_log "$dir/redis.log"
    return 1
}

devbroker_launch() {
    local dir=$1 bin=$2
    setsid "$bin" --topics "$TOP/proto/topics.json" --bootstrap-file "$dir/kafka.bootstrap" \
        --control-socket "$dir/devbroker.sock" </dev/null >/dev/null 2>>"$dir/devbroker.log" 9>&- &
    echo $! >"$dir/devbroker.pid"
}

devbroker_wait() {
    local dir=$1 i pid
    pid=$(pidof_file "$dir/devbroker.pid")
    for ((i = 0; i < 600; i++)); do
        [[ -s $dir/kafka.bootstrap ]] && return 0
        alive "$pid" cc-devbroker || break
        sleep 0.025
    done
    show_log "$dir/devbroker.log"
    return 1
}

# ---- commands ------------------------------------------------------------------

any_running() {
    local dir=$1
    alive "$(pidof_file "$dir/redis.pid")" redis-server ||
        alive "$(pidof_file "$dir/devbroker.pid")" cc-devbroker ||
        alive "$(pg_postmaster_pid "$dir")" postgres
}

do_stop() {
    local dir=$1
    # reverse start order; the broker and redis get SIGTERM at once, then PostgreSQL
    stop_pid "$dir/devbroker.pid" cc-devbroker &
    local broker_stop=$!
    stop_pid "$dir/redis.pid" redis-server
    pg_stop "$dir"
    wait "$broker_stop" || true
    rm -f "$dir/env" "$dir/kafka.bootstrap" "$dir/devbroker.sock" "$dir/redis.sock"
}

do_start() {
    local dir=$1 broker t0 bootstrap
    t0=$(date +%s%N)
    broker=$(find_devbroker "${2:-}")
    command -v redis-server >/dev/null || die "redis-server not installed (deploy/local/install-deps.sh)"
    if any_running "$dir"; then
        die "a stack is already running in '$dir' (deploy/local/stack.sh stop '$dir')"
    fi
    do_stop "$dir" # leftovers of a crashed run
    rm -f "$dir"/*.log
    ((${#dir} <= 90)) || die "'$dir' is too long for unix socket paths (max 90 characters)"

    redis_start "$dir" || {
        do_stop "$dir"
        die "redis-server did not answer PING on '$dir/redis.sock'"
    }
    devbroker_launch "$dir" "$broker" # starts while PostgreSQL initialises
    pg_start "$dir" || {
        do_stop "$dir"
        die "PostgreSQL did not start (cluster under '$dir')"
    }
    devbroker_wait "$dir" || {
        do_stop "$dir"
        die "the dev broker '$broker' did not write '$dir/kafka.bootstrap'"
    }

    bootstrap=$(head -n 1 "$dir/kafka.bootstrap")
    # shellcheck source=/dev/null
    . "$dir/pg.paths"
    cat >"$dir/env.tmp" <<EOF
export CC_KAFKA_BROKERS='$bootstrap'
export CC_REDIS_URL='unix://$dir/redis.sock'
export CC_PG_DSN='host=$PGSOCK dbname=cc user=postgres'
export CC_DEVBROKER_CONTROL='$dir/devbroker.sock'
# the dev broker needs these (ARCHITECTURE.md: a group waits a whole session timeout before a new
# member gets its partitions; a fetch is answered only when fetch.wait.max.ms expires; a fetch
# gets one produce batch per partition, found by walking the partition's retained batches from
# the oldest: fewer, fuller batches cost it quadratically less -- 5 ms of linger made it the
# busiest process at 400-600 calls/s under bench-sip, 61-66 % of a core, 20 ms 34-48 %)
export CC_KAFKA_SESSION_TIMEOUT_MS=6000
export CC_KAFKA_HEARTBEAT_INTERVAL_MS=1000
export CC_KAFKA_FETCH_WAIT_MAX_MS=10
export CC_KAFKA_LINGER_MS=20
EOF
    mv "$dir/env.tmp" "$dir/env"
    echo "stack: up in $((($(date +%s%N) - t0) / 1000000)) ms under '$dir'" >&2
}

do_status() {
    local dir=$1 rc=0 pid name
    for name in redis-server cc-devbroker postgres; do
        case $name in
        redis-server) pid=$(pidof_file "$dir/redis.pid") ;;
        cc-devbroker) pid=$(pidof_file "$dir/devbroker.pid") ;;
        postgres) pid=$(pg_postmaster_pid "$dir") ;;
        esac
        if alive "$pid" "$name"; then
            echo "$name: running (pid $pid)"
        else
            echo "$name: stopped"
            rc=3
        fi
    done
    [[ -f $dir/env ]] || rc=3
    return $rc
}

main() {
    (($# >= 2)) || usage
    local cmd=$1 dir=$2
    case $cmd in
    start | stop | status) ;;
    *) usage ;;
    esac
    if [[ $cmd == start ]]; then
        mkdir -p "$dir"
    elif [[ ! -d $dir ]]; then
        [[ $cmd == stop ]] && return 0
        echo "stack: no stack in '$dir'" >&2
        return 3
    fi
    dir=$(cd "$dir" && pwd)

    # one stack.sh at a time per DIR; servers get fd 9 closed so they never hold it
    exec 9>"$dir/.lock"
    flock -w 60 9 || die "another stack.sh is still working on '$dir'"
    case $cmd in
    start) do_start "$dir" "${3:-}" ;;
    stop) do_stop "$dir" ;;
    status) do_status "$dir" ;;
    esac
}

main "$@"
