#!/usr/bin/env bash
# Load test of BridgeCore's live-updates WebSocket (issue 6 item 8); see tests/load/README.md.
#
#   tests/load/ws.sh                                  # debug build, 10 000 sockets, 1 000 fan-out
#   PROFILE=release tests/load/ws.sh                  # the figures that matter in production
#   CONNS=2000 FANOUT=500 WRITES=10 tests/load/ws.sh  # smaller
#
# Knobs (environment): CONNS (10000), FANOUT (1000), USERS (10), WRITES (20), THREADS (2), PROFILE (debug |
# release), SKIP_BUILD=1. A report, not a gate: it prints PASS/FAIL against the targets and
# exits non-zero only when something could not be set up.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROFILE=${PROFILE:-debug}
SKIP_BUILD=${SKIP_BUILD:-0}
cd "$ROOT"

flag=()
[ "$PROFILE" = release ] && flag=(--release)
if [ "$SKIP_BUILD" != 1 ]; then
    cargo build "${flag[@]}" --bin bridgecore --example ws-load
fi

# Two file descriptors per socket on the loopback: 10 000 sockets need more than the usual 1024
# in both processes (the driver holds the client ends, bridgecore the server ends).
need=$(( ${CONNS:-10000} + 2048 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    echo "ws.sh: the file limit is $(ulimit -n); $need are needed (raise the hard limit)" >&2
    exit 1
fi

BRIDGECORE_BIN="$ROOT/target/$PROFILE/bridgecore" exec "$ROOT/target/$PROFILE/examples/ws-load"
