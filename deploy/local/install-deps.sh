#!/usr/bin/env bash
# install-deps.sh: installs the Debian 12 packages the build, the local stack
# and the tests need, then the browser tests' npm packages (tests/browser:
# playwright-core, pinned by its package-lock.json, driving Debian's chromium).
# Silent and fast (< 1 s) when everything is installed; otherwise, as root,
# apt-get installs what is missing, non-interactively. Not root: prints the
# command to run and fails.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BROWSER_TESTS=$TOP/tests/browser

# The one list of required packages.
PACKAGES=(
    build-essential pkg-config
    librdkafka-dev libmicrohttpd-dev libjansson-dev libhiredis-dev libpq-dev
    libcriterion-dev libssl-dev uuid-dev libcurl4-openssl-dev libsofia-sip-ua-dev libjemalloc-dev
    redis-server redis-tools postgresql postgresql-client
    sip-tester wrk clang-format cppcheck
    procps iproute2 curl ca-certificates git python3
    nodejs chromium
)

missing_packages() {
    local status
    # one dpkg-query call for all packages; unknown ones print nothing on stdout
    status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
    for p in "${PACKAGES[@]}"; do
        grep -q "^$p ii" <<<"$status" || echo "$p"
    done
    # Debian's nodejs comes without npm; a Node.js build that bundles npm must not get Debian's
    command -v npm >/dev/null 2>&1 || echo npm
}

# Runs `npm ci` in tests/browser unless node_modules already matches package-lock.json (npm
# writes node_modules/.package-lock.json on every install: newer than the lock = current).
# Offline or failing: a warning, not an error -- only the browser tests need it, and they fail
# saying so.
browser_packages() {
    local stamp=$BROWSER_TESTS/node_modules/.package-lock.json
    [[ -f $BROWSER_TESTS/package-lock.json ]] || return 0
    [[ -f $stamp && $stamp -nt $BROWSER_TESTS/package-lock.json ]] && return 0
    echo "install-deps: npm ci --prefix tests/browser" >&2
    npm ci --prefix "$BROWSER_TESTS" --prefer-offline --no-audit --no-fund --loglevel=error >&2 ||
        echo "install-deps: warning: npm ci in tests/browser failed: the browser tests will fail until it succeeds" >&2
}

apt_install() {
    local missing=("$@")
    local cmd="DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if ((EUID != 0)); then
        echo "install-deps: error: missing packages: ${missing[*]}" >&2
        echo "install-deps: run as root: $cmd" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # Debian starts the packaged servers; the local stack runs its own copies
    # on unix sockets, so the system ones are left as Debian configured them.
}

main() {
    local missing
    command -v dpkg-query >/dev/null 2>&1 || {
        echo "install-deps: error: dpkg-query not found: this script supports Debian 12 only" >&2
        exit 1
    }
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} > 0)); then
        apt_install "${missing[@]}"
    fi
    browser_packages
}

main "$@"
