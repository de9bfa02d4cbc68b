# Sourced by scripts/run and scripts/test: installs what a fresh machine lacks to build
# BridgeCore (Pingora builds zlib-ng with cmake) and, for tests, makes sure Redis answers.
set -euo pipefail

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_build_tools() {
    command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
    command -v cmake >/dev/null || { echo "installing cmake (needed by Pingora's zlib-ng build)"; apt_install cmake; }
}

ensure_redis() {
    local url="${BRIDGECORE_TEST_REDIS:-redis://127.0.0.1:6379}"
    if command -v redis-cli >/dev/null && redis-cli -u "$url" ping 2>/dev/null | grep -q PONG; then
        return 0
    fi
    command -v redis-server >/dev/null || { echo "installing redis-server"; apt_install redis-server; }
    echo "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/bridgecore-redis.log
    for _ in $(seq 50); do
        redis-cli -u "$url" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    echo "redis did not start (see /tmp/bridgecore-redis.log)" >&2
    exit 1
}
