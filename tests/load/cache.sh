#!/usr/bin/env bash
# Cache benchmark (issue 4 item 10): BridgeCore's response cache against nginx's proxy_cache,
# hits with and without compression, cached vs uncached behind a slow upstream, and the herd
# at expiry. Same conventions as run.sh (taskset pinning, release binaries, medians over
# interleaved rounds). See tests/load/README.md.
#
#   tests/load/cache.sh                           # DURATION=10s ROUNDS=3
#   SKIP_BUILD=1 ROUNDS=5 tests/load/cache.sh
#   PERF=1 tests/load/cache.sh                    # + perf profile of BridgeCore during bc-cache
#   VARIANTS="nginx-cache bc-cache" HERD=0 tests/load/cache.sh
#
# Knobs (environment): DURATION, WARMUP, ROUNDS, CONNS, LOAD_CPU, PROXY_CPU, BASE_PORT,
# VARIANTS (subset of "nginx-cache bc-cache bc-cache-gzip hit-ceiling bc-uncached-20ms
# bc-cached-20ms bc-uncached-20ms-c1 bc-cached-20ms-c1"), DELAY_MS (20), HERD (1), HERD_VARIANTS (subset of
# "bc-herd nginx-herd nginx-herd-lock nginx-herd-stale"), HERD_DURATION (10s), HERD_TTL_S (1),
# HERD_GAP_MS (300), ABORT_TRIALS (3), ABORT_FOLLOWERS (16), PERF (0), PERF_DURATION (10s),
# PERF_CALLGRAPH (fp|dwarf), RETRY_BUSY (2), QUIET_WAIT (180), QUIET_SECS (15), SKIP_BUILD=1,
# KEEP=1 (keep the work dir).
#
# A report, not a gate: exits 0 whatever the numbers (PASS/FAIL lines say how the targets
# fared), non-zero only when something could not be set up or a proxy answered wrongly.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
LOAD_CPU=${LOAD_CPU:-0}    # wrk and the upstreams
PROXY_CPU=${PROXY_CPU:-1}  # the proxy under test, alone
BASE_PORT=${BASE_PORT:-18100}
VARIANTS=${VARIANTS-nginx-cache bc-cache bc-cache-gzip hit-ceiling bc-uncached-20ms bc-cached-20ms bc-uncached-20ms-c1 bc-cached-20ms-c1}
DELAY_MS=${DELAY_MS:-20}
HERD=${HERD:-1}
HERD_VARIANTS=${HERD_VARIANTS-bc-herd nginx-herd nginx-herd-lock nginx-herd-stale}
HERD_DURATION=${HERD_DURATION:-10s}
HERD_TTL_S=${HERD_TTL_S:-1}
HERD_GAP_MS=${HERD_GAP_MS:-300}  # upstream arrivals further apart than this start a new burst
PERF=${PERF:-0}
PERF_DURATION=${PERF_DURATION:-10s}
PERF_CALLGRAPH=${PERF_CALLGRAPH:-fp}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
LUA="$HERE/call_kw.lua"
[ "$HERD" = 1 ] || HERD_VARIANTS=""

UP_PORT=$BASE_PORT                   # nginx, the fixed 12 KB answer at once
SLOW_PORT=$((BASE_PORT + 1))         # slow-upstream: the same answer after DELAY_MS, counted
NGINX_CACHE_PORT=$((BASE_PORT + 2))  # nginx proxy_cache -> UP
BC_PORT=$((BASE_PORT + 3))           # BridgeCore, cache on -> UP
BC_ADMIN_PORT=$((BASE_PORT + 4))
SLOWBC_PORT=$((BASE_PORT + 5))       # BridgeCore, cache on -> SLOW
SLOWBC_ADMIN_PORT=$((BASE_PORT + 6))
HERDBC_PORT=$((BASE_PORT + 7))       # BridgeCore, cache on, TTL HERD_TTL_S -> SLOW
HERDBC_ADMIN_PORT=$((BASE_PORT + 8))
HERD_NGINX_PORT=$((BASE_PORT + 9))   # nginx proxy_cache_valid HERD_TTL_S, no lock -> SLOW
HERD_LOCK_PORT=$((BASE_PORT + 10))   # the same with proxy_cache_lock on
HERD_STALE_PORT=$((BASE_PORT + 11))  # the same with use_stale updating + background_update
CEILING_PORT=$((BASE_PORT + 12))     # hit-ceiling: a fast path's plumbing alone -> UP

# Targets from the issue.
TARGET_RPS_VS_NGINX=1.2     # bc-cache req/s >= this x nginx-cache's; p99 <= nginx-cache's
TARGET_GZIP_VS_IDENTITY=0.9 # bc-cache-gzip req/s >= this x bc-cache's
TARGET_CACHED_VS_UNCACHED=100 # bc-cached-20ms req/s >= this x bc-uncached-20ms's
TARGET_HERD_PER_EXPIRY=1.5  # bc-herd: upstream requests per expiry (mean) <= this ("about one")

log() { printf '%s\n' "$*" >&2; }
die() { log "cache.sh: $*"; exit 1; }
want() { case " $VARIANTS $HERD_VARIANTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
want_any() { local v; for v in "$@"; do want "$v" && return 0; done; return 1; }

# ---------------------------------------------------------------------------------------
# Tools, as run.sh: wrk and nginx from Debian's packages; taskset comes with util-linux.
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x "$NGINX" ] || missing+=(nginx)
command -v taskset >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
command -v gzip >/dev/null || missing+=(gzip)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
        || { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
command -v python3 >/dev/null || die "needs python3 (to check the answers are valid JSON)"
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then
    log "cache.sh: PERF=1 but perf is not installed (Debian: linux-perf); no profile"
    PERF=0
fi
[ "$(nproc)" -ge 2 ] || die "needs 2 cores (one for the proxy, one for wrk and the upstreams)"

# ---------------------------------------------------------------------------------------
# Binaries (release profile, as run.sh builds them).
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BC_BIN="$TARGET_DIR/release/bridgecore"
SLOW_BIN="$TARGET_DIR/release/slow-upstream"
CEILING_BIN="$TARGET_DIR/release/hit-ceiling"
if [ "$SKIP_BUILD" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p passthrough --bin slow-upstream --bin hit-ceiling) || die "building slow-upstream and hit-ceiling failed"
    (cd "$ROOT" && cargo build --release -p bridgecore --bin bridgecore) || die "building bridgecore failed"
fi
[ -x "$BC_BIN" ] || die "$BC_BIN missing (run without SKIP_BUILD=1)"
[ -x "$SLOW_BIN" ] || die "$SLOW_BIN missing (run without SKIP_BUILD=1)"
[ -x "$CEILING_BIN" ] || die "$CEILING_BIN missing (run without SKIP_BUILD=1)"

# ---------------------------------------------------------------------------------------
# Work dir, processes, clean-up.
WORK=$(mktemp -d /tmp/bc-cache.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as nobody when started as root
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for ((port = BASE_PORT; port <= BASE_PORT + 11; port++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "127.0.0.1:$port is in use (set BASE_PORT)"
    fi
done

# ---------------------------------------------------------------------------------------
# The answer: run.sh's `search_read` result of ~12 KB, 38 res.partner records.
mkdir -p "$WORK/www"
{
    printf '{"jsonrpc":"2.0","id":7,"result":{"length":38,"records":['
    sep=""
    for ((i = 1; i <= 38; i++)); do
        printf '%s{"id":%d,"display_name":"Partner %04d, Azure Interior","email":"contact%04d@example.com","phone":"+32 2 555 %04d","company_id":{"id":1,"display_name":"YourCompany"},"city":"Brussels","country_id":{"id":20,"display_name":"Belgium"},"user_id":{"id":2,"display_name":"Mitchell Admin"},"activity_ids":[],"is_company":true}' \
            "$sep" "$i" "$i" "$i" "$i"
        sep=,
    done
    printf ']}}'
} >"$WORK/www/result.json"
chmod -R a+rX "$WORK/www"
BODY_BYTES=$(wc -c <"$WORK/www/result.json")

# The fast upstream: run.sh's nginx (every request turned into the file, keep-alive), with an
# access log so that the requests reaching it can be counted (hits must not).
cat >"$WORK/upstream.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream-error.log warn;
events { worker_connections 4096; }
http {
    access_log $WORK/upstream-access.log;
    client_body_temp_path $WORK/tmp-body-up;
    proxy_temp_path $WORK/tmp-proxy-up;
    types { }
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    etag off;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        root $WORK/www;
        location = /result.json { }
        location / {
            error_page 405 =200 /result.json;
            return 405;
        }
    }
}
EOF

# nginx's proxy_cache on POST, as the issue states it: the key is the URI and the request body
# (held in memory: client_body_buffer_size is far above the 560-byte call), 200s kept 5 minutes.
# Otherwise run.sh's nginx: upstream keep-alive, the four forwarded headers, the access log on
# (combined + the cache status, written per request as by default). sendfile on: nginx serves
# a hit from its cache file (page cache) with sendfile, its best case. X-Cache-Status tells the
# client, as BridgeCore's X-Cache does. Note the key leaves the session out, as stated: every
# user would get the first user's records (BridgeCore keys per session); adding
# $cookie_session_id to the key would not change the cost.
cache_location() {  # UPSTREAM ZONE VALID [extra directives]
    cat <<EOF
            proxy_pass http://$1;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_redirect off;
            proxy_cache $2;
            proxy_cache_methods POST;
            proxy_cache_key "\$request_uri|\$request_body";
            proxy_cache_valid 200 $3;
            add_header X-Cache-Status \$upstream_cache_status;
${4:-}
EOF
}
nginx_http_common() {  # NAME
    cat <<EOF
    log_format cache '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$upstream_cache_status';
    access_log $WORK/$1-access.log cache;
    client_body_temp_path $WORK/tmp-body-$1;
    proxy_temp_path $WORK/tmp-proxy-$1;
    client_body_buffer_size 64k;
    client_max_body_size 1m;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
EOF
}
cat >"$WORK/nginx-cache.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx-cache.pid;
error_log $WORK/nginx-cache-error.log warn;
events { worker_connections 4096; }
http {
$(nginx_http_common nginx-cache)
    proxy_cache_path $WORK/cache-nginx levels=1:2 keys_zone=bench:10m max_size=256m inactive=10m use_temp_path=off;
    upstream odoo {
        server 127.0.0.1:$UP_PORT;
        keepalive 128;
        keepalive_requests 1000000000;
        keepalive_timeout 600s;
    }
    server {
        listen 127.0.0.1:$NGINX_CACHE_PORT backlog=4096;
        location / {
$(cache_location odoo bench 5m)
        }
    }
}
EOF

# The herd: the same nginx in front of the slow upstream, entries valid HERD_TTL_S: without
# proxy_cache_lock (nginx's default), with it, and with stale-while-updating (nginx's real
# answer to the herd), one server each, one worker for all three.
cat >"$WORK/nginx-herd.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx-herd.pid;
error_log $WORK/nginx-herd-error.log warn;
events { worker_connections 4096; }
http {
$(nginx_http_common nginx-herd)
    proxy_cache_path $WORK/cache-herd levels=1:2 keys_zone=herd:10m max_size=64m inactive=10m use_temp_path=off;
    proxy_cache_path $WORK/cache-herd-lock levels=1:2 keys_zone=herdlock:10m max_size=64m inactive=10m use_temp_path=off;
    proxy_cache_path $WORK/cache-herd-stale levels=1:2 keys_zone=herdstale:10m max_size=64m inactive=10m use_temp_path=off;
    upstream slow {
        server 127.0.0.1:$SLOW_PORT;
        keepalive 128;
        keepalive_requests 1000000000;
        keepalive_timeout 600s;
    }
    server {
        listen 127.0.0.1:$HERD_NGINX_PORT backlog=4096;
        location / {
$(cache_location slow herd "${HERD_TTL_S}s")
        }
    }
    server {
        listen 127.0.0.1:$HERD_LOCK_PORT backlog=4096;
        location / {
$(cache_location slow herdlock "${HERD_TTL_S}s" "            proxy_cache_lock on;")
        }
    }
    server {
        listen 127.0.0.1:$HERD_STALE_PORT backlog=4096;
        location / {
$(cache_location slow herdstale "${HERD_TTL_S}s" "            proxy_cache_use_stale updating;
            proxy_cache_background_update on;")
        }
    }
}
EOF

# BridgeCore: run.sh's one-tenant, one-thread config (access log on, no filters, limits off)
# with the cache on: memory backend, a fixed key_secret. bc-slow is the same in front of the
# slow upstream; bc-herd also, with web_search_read entries living HERD_TTL_S.
bc_yaml() {  # NAME PORT ADMIN_PORT UPSTREAM_PORT [extra cache lines]
    cat <<EOF
server:
  listen: ["127.0.0.1:$2"]
  admin_listen: "127.0.0.1:$3"
  threads: 1
  pid_file: $WORK/$1.pid
  upgrade_sock: $WORK/$1.sock
  grace_period: 0s
  graceful_shutdown_timeout: 0s
rate_limits:
  exempt: ["0.0.0.0/0", "::/0"]
cache:
  enabled: true
  backend: memory
  max_memory: 64MiB
  key_secret: "cache-bench-key-secret-0123456789abcdef"
${5:-}
tenants:
  odoo:
    hosts: ["127.0.0.1"]
    upstream: ["127.0.0.1:$4"]
    websocket_upstream: ["127.0.0.1:$4"]
    max_connections: 1024
EOF
}
bc_yaml bc "$BC_PORT" "$BC_ADMIN_PORT" "$UP_PORT" >"$WORK/bc.yaml"
bc_yaml bc-slow "$SLOWBC_PORT" "$SLOWBC_ADMIN_PORT" "$SLOW_PORT" >"$WORK/bc-slow.yaml"
bc_yaml bc-herd "$HERDBC_PORT" "$HERDBC_ADMIN_PORT" "$SLOW_PORT" "  ttl: {web_search_read: ${HERD_TTL_S}s}" >"$WORK/bc-herd.yaml"

# ---------------------------------------------------------------------------------------
# The request: call_kw.lua's, for curl.
LUA_BODY=$(grep -o "'[^']*'" "$LUA" | tr -d "'\n")
LUA_COOKIE=$(sed -n 's/^wrk.headers\["Cookie"\] = "\(.*\)"$/\1/p' "$LUA")
LUA_PATH=$(sed -n 's/^wrk.path = "\(.*\)"$/\1/p' "$LUA")
[ -n "$LUA_BODY" ] && [ -n "$LUA_COOKIE" ] && [ -n "$LUA_PATH" ] || die "cannot read the request from $LUA"

# call PORT OUTFILE [curl args]: POSTs wrk's request (id changed to 4242, to see the re-stamp);
# prints the response headers.
call() {
    local port=$1 out=$2
    shift 2
    curl -s -D - -o "$out" --max-time 5 -X POST -H 'Content-Type: application/json' \
        -H "Cookie: $LUA_COOKIE" "$@" --data "${LUA_BODY/\"id\":7,/\"id\":4242,}" \
        "http://127.0.0.1:$port$LUA_PATH" 2>/dev/null | tr -d '\r' || true
}
status_of() { sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p'; }
header_of() { sed -n "s/^$1: *//Ip" | head -n 1; }

# wait_up NAME PID PORT: until the port answers wrk's request with 200.
wait_up() {
    local name=$1 pid=$2 port=$3 st=""
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        st=$(call "$port" /dev/null -H 'Cache-Control: no-cache' | status_of)
        [ "$st" = 200 ] && return 0
        sleep 0.1
    done
    log "cache.sh: $name did not answer on 127.0.0.1:$port (status '${st:-none}'). Its output:"
    for f in "$WORK/$name".* "$WORK/$name"-error.log; do [ -f "$f" ] && { log "--- $f"; tail -n 40 "$f" >&2; }; done
    return 1
}

declare -A MAINPID=()
start() {  # NAME PORT CPU command...
    local name=$1 port=$2 cpu=$3
    shift 3
    taskset -c "$cpu" "$@" >>"$WORK/$name.out" 2>"$WORK/$name.err" &
    MAINPID[$name]=$!
    PIDS+=("$!")
    wait_up "$name" "${MAINPID[$name]}" "$port" || die "$name did not start"
}

start upstream "$UP_PORT" "$LOAD_CPU" "$NGINX" -c "$WORK/upstream.conf" -p "$WORK/" -e "$WORK/upstream-error.log"
start slow "$SLOW_PORT" "$LOAD_CPU" "$SLOW_BIN" "127.0.0.1:$SLOW_PORT" "$WORK/www/result.json" "$DELAY_MS"
want nginx-cache && start nginx-cache "$NGINX_CACHE_PORT" "$PROXY_CPU" "$NGINX" -c "$WORK/nginx-cache.conf" -p "$WORK/" -e "$WORK/nginx-cache-error.log"
want_any nginx-herd nginx-herd-lock nginx-herd-stale \
    && start nginx-herd "$HERD_NGINX_PORT" "$PROXY_CPU" "$NGINX" -c "$WORK/nginx-herd.conf" -p "$WORK/" -e "$WORK/nginx-herd-error.log"
want_any bc-cache bc-cache-gzip && start bc "$BC_PORT" "$PROXY_CPU" "$BC_BIN" -c "$WORK/bc.yaml"
want hit-ceiling && start hit-ceiling "$CEILING_PORT" "$PROXY_CPU" "$CEILING_BIN" "127.0.0.1:$CEILING_PORT" "127.0.0.1:$UP_PORT" "$WORK/www/result.json"
want_any bc-uncached-20ms bc-cached-20ms bc-uncached-20ms-c1 bc-cached-20ms-c1 \
    && start bc-slow "$SLOWBC_PORT" "$PROXY_CPU" "$BC_BIN" -c "$WORK/bc-slow.yaml"
want bc-herd && start bc-herd "$HERDBC_PORT" "$PROXY_CPU" "$BC_BIN" -c "$WORK/bc-herd.yaml"
# BridgeCore's access log is its stdout: $WORK/bc*.out. nginx's: $WORK/nginx-*-access.log.

# Each variant: the process, its port, extra wrk environment, connections, where its cache
# status is counted (BridgeCore's metrics on its admin port, or nginx's access log), and the
# upstream its misses reach.
declare -A V_PROC=([nginx-cache]=nginx-cache [bc-cache]=bc [bc-cache-gzip]=bc [hit-ceiling]=hit-ceiling
    [bc-uncached-20ms]=bc-slow [bc-cached-20ms]=bc-slow [bc-uncached-20ms-c1]=bc-slow [bc-cached-20ms-c1]=bc-slow
    [bc-herd]=bc-herd [nginx-herd]=nginx-herd [nginx-herd-lock]=nginx-herd [nginx-herd-stale]=nginx-herd)
declare -A V_PORT=([nginx-cache]=$NGINX_CACHE_PORT [bc-cache]=$BC_PORT [bc-cache-gzip]=$BC_PORT [hit-ceiling]=$CEILING_PORT
    [bc-uncached-20ms]=$SLOWBC_PORT [bc-cached-20ms]=$SLOWBC_PORT [bc-uncached-20ms-c1]=$SLOWBC_PORT [bc-cached-20ms-c1]=$SLOWBC_PORT
    [bc-herd]=$HERDBC_PORT [nginx-herd]=$HERD_NGINX_PORT [nginx-herd-lock]=$HERD_LOCK_PORT [nginx-herd-stale]=$HERD_STALE_PORT)
declare -A V_ENV=([bc-cache-gzip]="BENCH_ACCEPT_ENCODING=gzip" [bc-uncached-20ms]="BENCH_CACHE_CONTROL=no-cache"
    [bc-uncached-20ms-c1]="BENCH_CACHE_CONTROL=no-cache")
declare -A V_CONNS=([bc-uncached-20ms-c1]=1 [bc-cached-20ms-c1]=1)
declare -A V_ADMIN=([bc]=$BC_ADMIN_PORT [bc-slow]=$SLOWBC_ADMIN_PORT [bc-herd]=$HERDBC_ADMIN_PORT)
declare -A V_UP=([nginx-cache]=fast [bc-cache]=fast [bc-cache-gzip]=fast [hit-ceiling]=fast)  # others: slow

# ---------------------------------------------------------------------------------------
# Correctness, once, before measuring: a second identical call is a hit with a valid JSON-RPC
# answer (the upstream's result, the request's id); gzip is a stored gzip variant that
# decodes to the same; no-cache is a BYPASS that still answers.
bad_answers=0
check_json() {  # FILE -> "ok" when it is the upstream's result with id 4242
    python3 - "$1" "$WORK/www/result.json" <<'EOF' 2>&1 || true
import json, sys
got = json.load(open(sys.argv[1], "rb"))
want = json.load(open(sys.argv[2], "rb"))
if got.get("jsonrpc") != "2.0":
    print("no jsonrpc 2.0")
elif got.get("result") != want["result"]:
    print("result differs from the upstream's")
elif got.get("id") != 4242:
    print("id %r, not the request's 4242" % (got.get("id"),))
else:
    print("ok")
EOF
}
# WANT_ID: 1 when the answer must carry the request's id (a BridgeCore hit, re-stamped), 0 when
# it is the upstream's body as is (nginx's cache; a BridgeCore BYPASS, forwarded).
verify() {  # LABEL PORT EXPECT_HEADER EXPECT_VALUE WANT_ID(1|0) [curl args]
    local label=$1 port=$2 hname=$3 hwant=$4 want_id=$5 hdrs st hv enc json
    shift 5
    call "$port" /dev/null "$@" >/dev/null  # fill
    hdrs=$(call "$port" "$WORK/verify.body" "$@")
    st=$(status_of <<<"$hdrs")
    hv=$(header_of "$hname" <<<"$hdrs")
    enc=$(header_of content-encoding <<<"$hdrs")
    if [ "$enc" = gzip ]; then
        gzip -dc <"$WORK/verify.body" >"$WORK/verify.json" 2>/dev/null || : >"$WORK/verify.json"
    else
        cp "$WORK/verify.body" "$WORK/verify.json"
    fi
    json=$(check_json "$WORK/verify.json")
    [ "$want_id" = 1 ] || { [ "$json" = "id 7, not the request's 4242" ] && json="ok (the upstream's id 7, as is)"; }
    if [ "$st" = 200 ] && [ "$hv" = "$hwant" ] && [[ "$json" == ok* ]]; then
        log "check $label: 200, $hname: $hv, Content-Encoding: ${enc:-none}, $(wc -c <"$WORK/verify.body") B, JSON $json"
    else
        log "check $label: FAILED: status '${st:-none}', $hname '${hv:-none}' (want $hwant), Content-Encoding '${enc:-none}', JSON: $json"
        bad_answers=1
    fi
}
want nginx-cache && verify nginx-cache "$NGINX_CACHE_PORT" x-cache-status HIT 0
want bc-cache && verify bc-cache "$BC_PORT" x-cache HIT 1
want hit-ceiling && verify hit-ceiling "$CEILING_PORT" x-cache HIT 1
want bc-cache-gzip && verify bc-cache-gzip "$BC_PORT" x-cache HIT 1 -H 'Accept-Encoding: gzip'
if want bc-cache-gzip; then
    hdrs=$(call "$BC_PORT" /dev/null -H 'Accept-Encoding: gzip')
    [ "$(header_of content-encoding <<<"$hdrs")" = gzip ] || { log "check bc-cache-gzip: FAILED: the hit is not gzip-encoded"; bad_answers=1; }
fi
want_any bc-uncached-20ms bc-uncached-20ms-c1 && verify bc-uncached-20ms "$SLOWBC_PORT" x-cache BYPASS 0 -H 'Cache-Control: no-cache'
want_any bc-cached-20ms bc-cached-20ms-c1 && verify bc-cached-20ms "$SLOWBC_PORT" x-cache HIT 1
want bc-herd && verify bc-herd "$HERDBC_PORT" x-cache HIT 1
want nginx-herd && verify nginx-herd "$HERD_NGINX_PORT" x-cache-status HIT 0
want nginx-herd-lock && verify nginx-herd-lock "$HERD_LOCK_PORT" x-cache-status HIT 0
want nginx-herd-stale && verify nginx-herd-stale "$HERD_STALE_PORT" x-cache-status HIT 0

read -r -a ORDER <<<"$VARIANTS"
read -r -a HORDER <<<"$HERD_VARIANTS"
[ $((${#ORDER[@]} + ${#HORDER[@]})) -gt 0 ] || die "nothing to measure"

# Everything is up and idle: anything busy now is someone else, and skews the numbers.
idle0=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
sleep 1
idle1=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
BACKGROUND=$(printf '%s\n%s\n' "$idle0" "$idle1" | awk 'NR == 1 { b = $1; t = $2 } NR == 2 { printf "%.0f", 100 * ($1 - b) / ($2 - t) }')
if [ "$BACKGROUND" -gt 5 ]; then
    log "cache.sh: WARNING: the machine is ${BACKGROUND}% busy before the test starts (other builds?): expect noisy numbers"
fi

# ---------------------------------------------------------------------------------------
# Measuring (as run.sh).
CLK_TCK=$(getconf CLK_TCK)
pids_of() { echo "$1"; pgrep -P "$1" || true; }
cpu_ticks() {  # PIDS -> "user system" clock ticks, all threads
    local files=() p
    for p in "$@"; do files+=("/proc/$p/stat"); done
    awk '{ sub(/.*\) /, ""); u += $12; s += $13 } END { printf "%d %d\n", u, s }' "${files[@]}"
}
core_stat() {
    awk -v a="cpu$LOAD_CPU" -v b="cpu$PROXY_CPU" '$1 == a || $1 == b {
        total = 0; for (i = 2; i <= 9; i++) total += $i
        print $1, total - $5 - $6, total }' /proc/stat
}
core_busy() {
    printf '%s\n%s\n' "$2" "$3" | awk -v c="cpu$1" '$1 == c { n++; b[n] = $2; t[n] = $3 }
        END { if (t[2] > t[1]) printf "%.0f", 100 * (b[2] - b[1]) / (t[2] - t[1]); else print "?" }'
}
# CPU ticks of every other process (a build started meanwhile...), per pid, so that the
# deltas over a run show what else competed for the two cores. Left out: the benchmark's own
# processes, shells (their cutime is our wrk), kernel threads (softirq work is part of the load).
others_snapshot() {
    awk '{ pid = $1; comm = $2; sub(/.*\) /, "")
           if ($2 == 2 || pid == 2) next
           if (comm ~ /^\((wrk|nginx|bridgecore|slow-upstream|hit-ceiling|bash|sh|curl|perf|python3|sleep|taskset|timeout|awk|sed|grep)\)$/) next
           print pid, $12 + $13 + $14 + $15 }' /proc/[0-9]*/stat 2>/dev/null || true
}
others_pct() {  # SNAPSHOT0 SNAPSHOT1 SECONDS -> % of one core used by other processes
    awk -v h="$CLK_TCK" -v secs="$3" 'NR == FNR { a[$1] = $2; next } ($1 in a) { d += $2 - a[$1] }
        END { printf "%.0f", 100 * d / h / secs }' <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}
wrk_run() {  # VARIANT DURATION [--latency]
    local v=$1 env=()
    [ -n "${V_ENV[$v]:-}" ] && env=("${V_ENV[$v]}")
    env "${env[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c"${V_CONNS[$v]:-$CONNS}" -d"$2" ${3:+"$3"} -s "$LUA" "http://127.0.0.1:${V_PORT[$v]}/"
}
# Cache status counts since the last call: "hits others" (others = miss + bypass + stale).
declare -A BC_LAST=()
bc_counts() {  # PROC
    local now
    now=$(curl -s --max-time 2 "http://127.0.0.1:${V_ADMIN[$1]}/metrics" \
        | awk '/^bridgecore_cache_requests_total\{/ { if ($0 ~ /result="hit"/) h += $NF; else o += $NF }
               END { printf "%d %d\n", h, o }')
    local prev=${BC_LAST[$1]:-0 0}
    BC_LAST[$1]=$now
    awk -v a="$now" -v b="$prev" 'BEGIN { split(a, x, " "); split(b, y, " "); print x[1] - y[1], x[2] - y[2] }'
}
nginx_counts() {  # PROC: HIT lines and the others in its access log, then empties it
    local f="$WORK/$1-access.log"
    awk '$NF == "HIT" { h++; next } { o++ } END { printf "%d %d\n", h, o }' "$f"
    : >"$f"
}
cache_counts() {  # VARIANT
    local p=${V_PROC[$1]}
    case "$p" in
        nginx-*) nginx_counts "$p" ;;
        hit-ceiling) echo "0 0" ;;  # answers every call_kw from memory and counts nothing
        *) bc_counts "$p" ;;
    esac
}
# Requests that reached the upstream since the last call.
upstream_count() {  # fast|slow
    if [ "$1" = fast ]; then  # POSTs only: BridgeCore's health checks (GET /web/health) are not traffic
        grep -c '"POST ' "$WORK/upstream-access.log" || true
        : >"$WORK/upstream-access.log"
    else
        curl -s --max-time 5 "http://127.0.0.1:$SLOW_PORT/__arrivals" | wc -l
    fi
}
arrivals() { curl -s --max-time 5 "http://127.0.0.1:$SLOW_PORT/__arrivals"; }

declare -A RPS P50 P99 PMAX CPU SYS BG BUSY0 BUSY1 HITPCT UPREQ ERRS BPR
measure() {  # VARIANT ROUND
    local v=$1 r=$2 proc=${V_PROC[$1]} pids u0 u1 k0 k1 s0 s1 o0 o1 out line hits others up
    read -r -a pids <<<"$(pids_of "${MAINPID[$proc]}" | tr '\n' ' ')"
    wrk_run "$v" "$WARMUP" >/dev/null
    cache_counts "$v" >/dev/null
    upstream_count "${V_UP[$v]:-slow}" >/dev/null
    o0=$(others_snapshot)
    read -r u0 k0 <<<"$(cpu_ticks "${pids[@]}")"
    s0=$(core_stat)
    out=$(wrk_run "$v" "$DURATION" --latency)
    s1=$(core_stat)
    read -r u1 k1 <<<"$(cpu_ticks "${pids[@]}")"
    o1=$(others_snapshot)
    line=$(grep '^RESULT ' <<<"$out") || { log "$out"; die "wrk printed no RESULT line for $v"; }
    eval "$(sed -e 's/^RESULT //' -e 's/\([a-z0-9_]*\)=/local w_\1=/g' <<<"$line")"
    [ "$w_requests" -gt 0 ] || die "$v completed no request"
    sleep 0.3  # BridgeCore writes its log from a separate thread; nginx's log is synchronous
    read -r hits others <<<"$(cache_counts "$v")"
    up=$(upstream_count "${V_UP[$v]:-slow}")
    RPS[$v,$r]=$(awk -v n="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
    P50[$v,$r]=$(awk -v x="$w_p50_us" 'BEGIN { printf "%.3f", x / 1000 }')
    P99[$v,$r]=$(awk -v x="$w_p99_us" 'BEGIN { printf "%.3f", x / 1000 }')
    PMAX[$v,$r]=$(awk -v x="$w_max_us" 'BEGIN { printf "%.1f", x / 1000 }')
    CPU[$v,$r]=$(awk -v t="$((u1 - u0 + k1 - k0))" -v h="$CLK_TCK" -v n="$w_requests" 'BEGIN { printf "%.1f", t * 1e6 / h / n }')
    SYS[$v,$r]=$(awk -v t="$((k1 - k0))" -v h="$CLK_TCK" -v n="$w_requests" 'BEGIN { printf "%.1f", t * 1e6 / h / n }')
    BUSY0[$v,$r]=$(core_busy "$LOAD_CPU" "$s0" "$s1")
    BUSY1[$v,$r]=$(core_busy "$PROXY_CPU" "$s0" "$s1")
    # Hits as a share of the answers counted by the proxy over the run (wrk's requests plus
    # the ones still in flight when it stopped; wrk does not count those).
    HITPCT[$v,$r]=$(awk -v h="$hits" -v o="$others" 'BEGIN { if (h + o > 0) printf "%.1f", 100 * h / (h + o); else print "?" }')
    UPREQ[$v,$r]=$up
    ERRS[$v,$r]=$((w_status_errors + w_socket_errors))
    BPR[$v,$r]=$(awk -v b="$w_bytes" -v n="$w_requests" 'BEGIN { printf "%.0f", b / n }')
    BG[$v,$r]=$(others_pct "$o0" "$o1" "$(awk -v d="$w_duration_us" 'BEGIN { print d / 1e6 }')")
    [ "${BG[$v,$r]}" -le 5 ] || log "cache.sh: WARNING: other processes used ${BG[$v,$r]}% of a core during $v round $r: that measurement is suspect"
    [ "${ERRS[$v,$r]}" -eq 0 ] || bad_answers=1
}

# A measurement during which other processes used more than 5 % of a core (someone's build)
# is repeated, up to RETRY_BUSY times, each after waiting (up to QUIET_WAIT s) for the machine
# to be quiet again; the last attempt is kept either way (its bg% column says so).
RETRY_BUSY=${RETRY_BUSY:-2}
QUIET_WAIT=${QUIET_WAIT:-180}
QUIET_SECS=${QUIET_SECS:-15}
wait_quiet() {  # until other processes used <= 5 % of a core for QUIET_SECS in a row
    local waited=0 quiet=0 a b
    a=$(others_snapshot)
    while [ "$waited" -lt "$QUIET_WAIT" ]; do
        sleep 3
        b=$(others_snapshot)
        if [ "$(others_pct "$a" "$b" 3)" -le 5 ]; then quiet=$((quiet + 3)); else quiet=0; fi
        [ "$quiet" -ge "$QUIET_SECS" ] && return 0
        a=$b
        waited=$((waited + 3))
    done
    return 1
}
measure_quiet() {  # VARIANT ROUND
    local attempt
    for ((attempt = 0; ; attempt++)); do
        measure "$1" "$2"
        [ "${BG[$1,$2]}" -gt 5 ] && [ "$attempt" -lt "$RETRY_BUSY" ] || return 0
        log "cache.sh: measuring $1 again once the machine is quiet"
        wait_quiet || log "cache.sh: the machine stayed busy for ${QUIET_WAIT}s"
    done
}

# The herd: the upstream's arrival times over the run, grouped into bursts (one per expiry).
declare -A H_RPS H_P99 H_MAX H_UP H_BURSTS H_MEAN H_MED H_PEAK H_LIST H_ERRS
herd() {  # VARIANT ROUND
    local v=$1 r=$2 out line bursts
    call "${V_PORT[$v]}" /dev/null >/dev/null  # the entry exists
    wrk_run "$v" "$WARMUP" >/dev/null
    arrivals >/dev/null
    out=$(wrk_run "$v" "$HERD_DURATION" --latency)
    line=$(grep '^RESULT ' <<<"$out") || { log "$out"; die "wrk printed no RESULT line for $v"; }
    eval "$(sed -e 's/^RESULT //' -e 's/\([a-z0-9_]*\)=/local w_\1=/g' <<<"$line")"
    # One line per burst: how many requests reached the upstream in it.
    bursts=$(arrivals | sort -n | awk -v gap="$((HERD_GAP_MS * 1000))" '
        NR == 1 || $1 - last > gap { n++ } { c[n]++; last = $1 }
        END { for (i = 1; i <= n; i++) print c[i] }')
    if [ -z "$bursts" ]; then
        H_UP[$v,$r]=0 H_BURSTS[$v,$r]=0 H_MEAN[$v,$r]=0 H_MED[$v,$r]=0 H_PEAK[$v,$r]=0 H_LIST[$v,$r]=-
    else
        H_UP[$v,$r]=$(awk '{ t += $1 } END { print t }' <<<"$bursts")
        H_BURSTS[$v,$r]=$(wc -l <<<"$bursts")
        H_MEAN[$v,$r]=$(ratio "${H_UP[$v,$r]}" "${H_BURSTS[$v,$r]}")
        H_MED[$v,$r]=$(tr '\n' ' ' <<<"$bursts" | median)
        H_PEAK[$v,$r]=$(sort -n <<<"$bursts" | tail -n 1)
        H_LIST[$v,$r]=$(paste -sd, <<<"$bursts")
    fi
    H_RPS[$v,$r]=$(awk -v n="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
    H_P99[$v,$r]=$(awk -v x="$w_p99_us" 'BEGIN { printf "%.2f", x / 1000 }')
    H_MAX[$v,$r]=$(awk -v x="$w_max_us" 'BEGIN { printf "%.1f", x / 1000 }')
    H_ERRS[$v,$r]=$((w_status_errors + w_socket_errors))
    [ "${H_ERRS[$v,$r]}" -eq 0 ] || bad_answers=1
}

ROW='%-20s %8s %8s %8s %8s %8s %8s %6s %6s %5s %7s %7s %6s %6s\n'
header() {
    # shellcheck disable=SC2059
    printf "$ROW" variant "req/s" "p50 ms" "p99 ms" "max ms" "CPU us/r" "sys us/r" "core$LOAD_CPU" "core$PROXY_CPU" "bg%" "hit%" "up req" "B/resp" errors
}
row() {  # VARIANT values...
    # shellcheck disable=SC2059
    printf "$ROW" "$@"
}
HROW='%-18s %8s %8s %8s %8s %8s %9s %7s %7s %6s  %s\n'
hheader() {
    # shellcheck disable=SC2059
    printf "$HROW" variant "req/s" "p99 ms" "max ms" "up req" expiries "per-exp" median max errors "per expiry (bursts)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# For the PASS/FAIL verdicts: three decimals, so that a ratio is never rounded across a target.
ratio3() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "?"
    else if (v[1] !~ /^[0-9.]+$/) print v[1]
    else if (NR % 2) print v[(NR + 1) / 2]
    else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
have() { case " ${ORDER[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
hhave() { case " ${HORDER[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

round_ratios() {  # ROUND
    local r=$1 parts=()
    have bc-cache && have nginx-cache && parts+=("bc-cache/nginx-cache req/s $(ratio "${RPS[bc-cache,$r]}" "${RPS[nginx-cache,$r]}") p99 $(ratio "${P99[bc-cache,$r]}" "${P99[nginx-cache,$r]}") CPU $(ratio "${CPU[bc-cache,$r]}" "${CPU[nginx-cache,$r]}")")
    have hit-ceiling && have nginx-cache && parts+=("hit-ceiling/nginx-cache req/s $(ratio "${RPS[hit-ceiling,$r]}" "${RPS[nginx-cache,$r]}") CPU $(ratio "${CPU[hit-ceiling,$r]}" "${CPU[nginx-cache,$r]}")")
    have bc-cache-gzip && have bc-cache && parts+=("gzip/identity req/s $(ratio "${RPS[bc-cache-gzip,$r]}" "${RPS[bc-cache,$r]}")")
    have bc-cached-20ms && have bc-uncached-20ms && parts+=("cached/uncached 20ms req/s $(ratio "${RPS[bc-cached-20ms,$r]}" "${RPS[bc-uncached-20ms,$r]}")")
    have bc-cached-20ms-c1 && have bc-uncached-20ms-c1 && parts+=("(1 conn) $(ratio "${RPS[bc-cached-20ms-c1,$r]}" "${RPS[bc-uncached-20ms-c1,$r]}")")
    [ ${#parts[@]} -eq 0 ] || printf 'ratios: %s\n' "$(IFS=';'; echo "${parts[*]}" | sed 's/;/, /g')"
}

REQ_BYTES=${#LUA_BODY}
echo "BridgeCore cache benchmark: POST call_kw web_search_read, ${REQ_BYTES} B JSON body, ${BODY_BYTES} B answer; slow upstream ${DELAY_MS} ms"
echo "wrk -t1 -c$CONNS -d$DURATION (warm-up $WARMUP) on core $LOAD_CPU with the upstreams; proxy alone on core $PROXY_CPU; $ROUNDS rounds; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for ((r = 1; r <= ROUNDS; r++)); do
    if [ ${#ORDER[@]} -gt 0 ]; then
        echo
        echo "round $r/$ROUNDS"
        header
        for v in "${ORDER[@]}"; do
            measure_quiet "$v" "$r"
            row "$v" "${RPS[$v,$r]}" "${P50[$v,$r]}" "${P99[$v,$r]}" "${PMAX[$v,$r]}" "${CPU[$v,$r]}" "${SYS[$v,$r]}" \
                "${BUSY0[$v,$r]}%" "${BUSY1[$v,$r]}%" "${BG[$v,$r]}" "${HITPCT[$v,$r]}" "${UPREQ[$v,$r]}" "${BPR[$v,$r]}" "${ERRS[$v,$r]}"
        done
        round_ratios "$r"
    fi
    if [ ${#HORDER[@]} -gt 0 ]; then
        echo
        echo "herd round $r/$ROUNDS: TTL ${HERD_TTL_S}s, upstream ${DELAY_MS} ms, $CONNS connections, $HERD_DURATION"
        hheader
        for v in "${HORDER[@]}"; do
            herd "$v" "$r"
            # shellcheck disable=SC2059
            printf "$HROW" "$v" "${H_RPS[$v,$r]}" "${H_P99[$v,$r]}" "${H_MAX[$v,$r]}" "${H_UP[$v,$r]}" "${H_BURSTS[$v,$r]}" \
                "${H_MEAN[$v,$r]}" "${H_MED[$v,$r]}" "${H_PEAK[$v,$r]}" "${H_ERRS[$v,$r]}" "${H_LIST[$v,$r]}"
        done
    fi
done

col() {  # ARRAY VARIANT
    local -n arr=$1
    local r out=""
    for ((r = 1; r <= ROUNDS; r++)); do out+="${arr[$2,$r]} "; done
    median <<<"$out"
}
declare -A M_RPS M_P99 M_CPU
echo
echo "summary: medians of $ROUNDS rounds"
if [ ${#ORDER[@]} -gt 0 ]; then
    header
    for v in "${ORDER[@]}"; do
        M_RPS[$v]=$(col RPS "$v") M_P99[$v]=$(col P99 "$v") M_CPU[$v]=$(col CPU "$v")
        row "$v" "$(printf '%.0f' "${M_RPS[$v]}")" "$(col P50 "$v")" "${M_P99[$v]}" "$(col PMAX "$v")" \
            "$(printf '%.1f' "${M_CPU[$v]}")" "$(printf '%.1f' "$(col SYS "$v")")" "$(col BUSY0 "$v")%" "$(col BUSY1 "$v")%" "$(col BG "$v")" "$(col HITPCT "$v")" \
            "$(col UPREQ "$v")" "$(col BPR "$v")" "$(col ERRS "$v")"
    done
fi
if [ ${#HORDER[@]} -gt 0 ]; then
    echo
    hheader
    for v in "${HORDER[@]}"; do
        lists=""
        for ((r = 1; r <= ROUNDS; r++)); do lists+="${lists:+ | }${H_LIST[$v,$r]}"; done
        # shellcheck disable=SC2059
        printf "$HROW" "$v" "$(printf '%.0f' "$(col H_RPS "$v")")" "$(col H_P99 "$v")" "$(col H_MAX "$v")" "$(col H_UP "$v")" \
            "$(col H_BURSTS "$v")" "$(col H_MEAN "$v")" "$(col H_MED "$v")" "$(col H_PEAK "$v")" "$(col H_ERRS "$v")" "$lists"
    done
fi

# Targets: the medians of the per-round ratios (each measured side by side in one round).
ratio_median() {  # ARRAY A B
    local -n arr=$1
    local r out=""
    for ((r = 1; r <= ROUNDS; r++)); do out+="$(ratio3 "${arr[$2,$r]}" "${arr[$3,$r]}") "; done
    median <<<"$out"
}
ratio_rounds() {  # ARRAY A B
    local -n arr=$1
    local r out=""
    for ((r = 1; r <= ROUNDS; r++)); do out+="${out:+, }$(ratio "${arr[$2,$r]}" "${arr[$3,$r]}")"; done
    echo "$out"
}
verdict() { awk -v q="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? (q >= t) : (q <= t); print ok ? "PASS" : "FAIL" }'; }
echo
if have bc-cache && have nginx-cache; then
    q=$(ratio_median RPS bc-cache nginx-cache)
    echo "$(verdict "$q" '>=' "$TARGET_RPS_VS_NGINX")  bc-cache req/s = ${q}x nginx-cache's (target >= ${TARGET_RPS_VS_NGINX}x; per round $(ratio_rounds RPS bc-cache nginx-cache))"
    q=$(ratio_median P99 bc-cache nginx-cache)
    echo "$(verdict "$q" '<=' 1)  bc-cache p99 = ${q}x nginx-cache's (target <= 1x; per round $(ratio_rounds P99 bc-cache nginx-cache))"
    echo "info  bc-cache CPU per request = $(ratio_median CPU bc-cache nginx-cache)x nginx-cache's (per round $(ratio_rounds CPU bc-cache nginx-cache))"
fi
if have hit-ceiling && have nginx-cache; then
    # Not a target: what a fast path below ProxyHttp starts from before any of BridgeCore's work.
    echo "info  hit-ceiling req/s = $(ratio_median RPS hit-ceiling nginx-cache)x nginx-cache's, p99 $(ratio_median P99 hit-ceiling nginx-cache)x, CPU per request $(ratio_median CPU hit-ceiling nginx-cache)x (per round $(ratio_rounds RPS hit-ceiling nginx-cache))"
fi
if have bc-cache-gzip && have bc-cache; then
    q=$(ratio_median RPS bc-cache-gzip bc-cache)
    echo "$(verdict "$q" '>=' "$TARGET_GZIP_VS_IDENTITY")  bc-cache-gzip req/s = ${q}x bc-cache's (target >= ${TARGET_GZIP_VS_IDENTITY}x; per round $(ratio_rounds RPS bc-cache-gzip bc-cache))"
fi
if have bc-cached-20ms && have bc-uncached-20ms; then
    q=$(ratio_median RPS bc-cached-20ms bc-uncached-20ms)
    echo "$(verdict "$q" '>=' "$TARGET_CACHED_VS_UNCACHED")  bc-cached-20ms req/s = ${q}x bc-uncached-20ms's at $CONNS connections (target >= ${TARGET_CACHED_VS_UNCACHED}x; per round $(ratio_rounds RPS bc-cached-20ms bc-uncached-20ms); the uncached ceiling is $CONNS/${DELAY_MS}ms = $((CONNS * 1000 / DELAY_MS)) req/s)"
fi
if have bc-cached-20ms-c1 && have bc-uncached-20ms-c1; then
    q=$(ratio_median RPS bc-cached-20ms-c1 bc-uncached-20ms-c1)
    echo "$(verdict "$q" '>=' "$TARGET_CACHED_VS_UNCACHED")  bc-cached-20ms-c1 req/s = ${q}x bc-uncached-20ms-c1's at 1 connection (per round $(ratio_rounds RPS bc-cached-20ms-c1 bc-uncached-20ms-c1))"
fi
if hhave bc-herd; then
    q=$(col H_MEAN bc-herd)
    echo "$(verdict "$q" '<=' "$TARGET_HERD_PER_EXPIRY")  bc-herd: $q upstream requests per expiry (median over rounds of the mean; target about 1, <= $TARGET_HERD_PER_EXPIRY; worst expiry $(col H_PEAK bc-herd))"
    for v in nginx-herd nginx-herd-lock nginx-herd-stale; do
        hhave "$v" && echo "info  $v: $(col H_MEAN "$v") upstream requests per expiry (worst $(col H_PEAK "$v"))"
    done
fi
for v in "${ORDER[@]}"; do
    case "$v" in bc-uncached-* | hit-ceiling) continue ;; esac
    for ((r = 1; r <= ROUNDS; r++)); do
        [ "${HITPCT[$v,$r]}" = "100.0" ] || log "cache.sh: NOTE: $v round $r: only ${HITPCT[$v,$r]}% hits (${UPREQ[$v,$r]} upstream requests)"
    done
done

# ---------------------------------------------------------------------------------------
# The herd when the first miss's client hangs up: an expired entry, one request (the one that
# goes to the upstream, the "leader") whose client closes its connection after ABORT_MS, while
# ABORT_FOLLOWERS identical requests arrive behind it. How many reach the upstream? A leader
# that abandons its fetch must not release its followers all at once. (A browser does this
# whenever a user leaves a list view before it loaded.)
ABORT_TRIALS=${ABORT_TRIALS:-3}
ABORT_FOLLOWERS=${ABORT_FOLLOWERS:-16}
ABORT_MS=${ABORT_MS:-8}
cat >"$WORK/abort.py" <<'EOF'
import socket, sys, time
port, n, abort_ms, path, cookie, body = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6].encode()
req = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
       f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
def send():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    return s
t0 = time.monotonic()
leader = send()
time.sleep(0.002)
followers = [send() for _ in range(n)]
if abort_ms > 0:
    time.sleep(max(0.0, abort_ms / 1000 - (time.monotonic() - t0)))
    leader.close()
else:  # the control: nobody hangs up, the leader's answer is read too
    followers.insert(0, leader)
outcomes = {}
for s in followers:
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = head[0].split(" ")[1] if head and " " in head[0] else "none"
    cache = next((h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith(("x-cache:", "x-cache-status:"))), "-")
    outcomes[f"{status} {cache}"] = outcomes.get(f"{status} {cache}", 0) + 1
print(", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())))
EOF
declare -A A_UP A_OUT
leader_abort() {  # VARIANT ABORT_MS (0: nobody hangs up, the control)
    local v=$1 ms=$2 t ups=() outs=() up out
    for ((t = 1; t <= ABORT_TRIALS; t++)); do
        call "${V_PORT[$v]}" /dev/null >/dev/null   # an entry...
        sleep "$((HERD_TTL_S + 1)).2"               # ...expired (nginx counts whole seconds)
        arrivals >/dev/null
        out=$(python3 "$WORK/abort.py" "${V_PORT[$v]}" "$ABORT_FOLLOWERS" "$ms" "$LUA_PATH" "$LUA_COOKIE" \
            "${LUA_BODY/\"id\":7,/\"id\":4242,}" 2>&1) || true
        sleep 0.1
        up=$(arrivals | wc -l)
        ups+=("$up") outs+=("$out")
    done
    A_UP[$v,$ms]=$(IFS=,; echo "${ups[*]}")
    A_OUT[$v,$ms]=$(printf '%s | ' "${outs[@]}" | sed 's/ | $//')
}
if [ ${#HORDER[@]} -gt 0 ] && [ "$ABORT_TRIALS" -gt 0 ]; then
    echo
    echo "leader abort: expired entry, the first request's client closes after ${ABORT_MS} ms (upstream ${DELAY_MS} ms), $ABORT_FOLLOWERS identical requests behind it; $ABORT_TRIALS trials"
    echo "(control: the same with nobody hanging up; its answers include the leader's)"
    printf '%-18s %-9s %-14s %s\n' variant leader "upstream req" "answers (status X-Cache x count), per trial"
    for v in "${HORDER[@]}"; do
        leader_abort "$v" 0
        leader_abort "$v" "$ABORT_MS"
        printf '%-18s %-9s %-14s %s\n' "$v" "stays" "${A_UP[$v,0]}" "${A_OUT[$v,0]}"
        printf '%-18s %-9s %-14s %s\n' "" "hangs up" "${A_UP[$v,$ABORT_MS]}" "${A_OUT[$v,$ABORT_MS]}"
    done
fi

# ---------------------------------------------------------------------------------------
# Where BridgeCore's time goes on a hit: perf, cpu-clock sampling of the bc process during a
# bc-cache run (after the rounds, so it does not disturb them). PERF_CALLGRAPH=fp (the
# default, `perf record -g`: frame pointers, which the release build mostly lacks, so only
# the flat profile is reliable) or dwarf (unwinds through .eh_frame: also prints the inclusive
# time of BridgeCore's and Pingora's frames, which says which phase the time belongs to).
if [ "$PERF" = 1 ] && have bc-cache; then
    set +o pipefail  # `perf report | head` ends perf report with SIGPIPE
    echo
    echo "perf ($PERF_CALLGRAPH call graphs): bc-cache, $PERF_DURATION"
    case "$PERF_CALLGRAPH" in
        dwarf) perf_args=(--call-graph dwarf,16384 -F 499) ;;
        *) perf_args=(-g -F 4999) ;;
    esac
    wrk_run bc-cache "$WARMUP" >/dev/null
    taskset -c "$LOAD_CPU" perf record -q "${perf_args[@]}" -e cpu-clock -p "${MAINPID[bc]}" -o "$WORK/perf.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
    out=$(wrk_run bc-cache "$PERF_DURATION" --latency)
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    grep '^RESULT ' <<<"$out" || true
    echo "top symbols (self time):"
    perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
        | grep '%' | grep -v '^#' | sed 's/ *- *- *$//' | head -n 40
    echo "by object:"
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
        | grep '%' | grep -v '^#' | head -n 6
    if [ "$PERF_CALLGRAPH" = dwarf ]; then
        echo "inclusive time of user-space frames:"
        perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
            | grep '%' | grep -v '^#' | grep -v '\[k\]' | sed 's/ *- *- *$//' | head -n 60
    fi
    [ "$KEEP" = 1 ] || log "cache.sh: KEEP=1 keeps $WORK/perf.data for perf report"
fi

[ "$bad_answers" -eq 0 ] || log "cache.sh: some answers were wrong (see the checks and the errors column): the numbers are suspect"
[ "$bad_answers" -eq 0 ] || exit 1
exit 0
