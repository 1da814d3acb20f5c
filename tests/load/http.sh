#!/usr/bin/env bash
# HTTP benchmark: requests/s of a cc_http server (tests/load/http_bench.c) and of a bare
# libmicrohttpd server (tests/load/http_bare.c, same pool/epoll settings), measured one after
# the other in the same run with `wrk -t2 -c50` over keep-alive connections, and their ratio.
#
# Usage: tests/load/http.sh BUILDROOT      (e.g. build/release; binaries in BUILDROOT/bench/)
# Env:   CC_BENCH_HTTP_DURATION (wrk -d, default 5s)
# Prints (values parsed from wrk's output):
#   bench: http.bare_requests_per_s <v> 1/s
#   bench: http.requests_per_s <v> 1/s server=cc_http
#   bench: http.ratio <v> ratio
#   bench: http.auth_requests_per_s <v> 1/s server=cc_http auth=bearer
set -euo pipefail

buildroot=${1:?usage: $0 BUILDROOT}
duration=${CC_BENCH_HTTP_DURATION:-5s}
bare=$buildroot/bench/http_bare
cc=$buildroot/bench/http_bench
token=bench-token

command -v wrk >/dev/null || { echo "http.sh: wrk is not installed" >&2; exit 1; }
for bin in "$bare" "$cc"; do
    [ -x "$bin" ] || { echo "http.sh: missing '$bin' (build with make bench-build)" >&2; exit 1; }
done

tmp=$(mktemp -d)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT

# start_server BIN NAME: starts BIN on a free port, sets server_pid and port.
start_server() {
    CC_BENCH_TOKEN=$token "$1" 0 >"$tmp/$2.out" 2>"$tmp/$2.err" &
    server_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(awk '$1 == "port" { print $2 }' "$tmp/$2.out")
        [ -n "$port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "http.sh: $2 did not start:" >&2
    cat "$tmp/$2.err" >&2
    exit 1
}

# measure NAME PATH [wrk args...]: runs wrk and prints its requests/s; fails on any error.
measure() {
    local name=$1 path=$2 out rps
    shift 2
    out="$tmp/$name.wrk"
    wrk -t2 -c50 -d"$duration" "$@" "http://127.0.0.1:$port$path" >"$out"
    if grep -Eq 'Non-2xx|Socket errors' "$out"; then
        echo "http.sh: $name had failed requests:" >&2
        cat "$out" >&2
        exit 1
    fi
    rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$out")
    [ -n "$rps" ] || { echo "http.sh: no Requests/sec in wrk output for $name" >&2; cat "$out" >&2; exit 1; }
    printf '%s\n' "$rps"
}

start_server "$bare" bare
bare_rps=$(measure bare /)
stop_server

start_server "$cc" cc_http
cc_rps=$(measure cc_http /v1/bench/ping)
auth_rps=$(measure cc_http_auth /v1/bench/tenant -H "Authorization: Bearer $token")
stop_server

printf 'bench: http.bare_requests_per_s %.0f 1/s\n' "$bare_rps"
printf 'bench: http.requests_per_s %.0f 1/s server=cc_http\n' "$cc_rps"
awk -v a="$cc_rps" -v b="$bare_rps" 'BEGIN { printf "bench: http.ratio %.3f ratio\n", a / b }'
printf 'bench: http.auth_requests_per_s %.0f 1/s server=cc_http auth=bearer\n' "$auth_rps"
