#!/usr/bin/env bash
# Side-by-side benchmark of sluice and its peers (haproxy, nginx, sslh, caddy) on loopback.
# `make bench` builds the static sluice binary and runs this. It installs the tools it needs
# from Debian, runs every scenario against every contender one after another, prints a
# markdown report and writes it to bench/RESULTS.md (bench/RESULTS.quick.md in quick mode).
#
# Settings (environment):
#   BENCH_QUICK=1        short runs (~2 minutes) for checking the harness; figures indicative only
#   BENCH_RUNS=3         runs per figure (the report shows the median)
#   BENCH_SECONDS=8      seconds per load-generator run
#   BENCH_CONNS=50       concurrent connections of wrk / h2load
#   BENCH_IDLE_L4=10000  idle L4 connections in the memory test (capped by the fd limit)
#   BENCH_IDLE_HTTP=1000 idle HTTP keep-alive connections in the memory test
#   BENCH_COLD_RUNS=5    cold starts per proxy
#   BENCH_SCENARIOS="l4_tput connrate http https h2 memory size coldstart"  (subset to run)
#   BENCH_OUT=path       where the report goes
#   SLUICE=path          the sluice binary (default: the static musl build)
#   BENCH_SLUICE_HTTP=1  run sluice as an HTTP reverse proxy (conf/sluice-http.toml; the default) in the
#                        HTTP/TLS/h2/keep-alive-memory scenarios, once its HTTP engine exists
#
# Placement: load generators on CPU 0, the proxy under test on CPU 1, backends on CPU 0
# (taskset), identical for every contender. Only 127.0.0.1 ports picked at run time are used.
# Every process started here is stopped on exit (trap), and each step is bounded in time.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TOOL="python3 $BENCH_DIR/benchtool.py"
SLUICE=${SLUICE:-$ROOT/target/x86_64-unknown-linux-musl/release/sluice}
# The size-first build (`make small`), reported beside the measured one in the size table.
SLUICE_SMALL=${SLUICE_SMALL:-$ROOT/target/x86_64-unknown-linux-musl/small/sluice}

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    RUNS=${BENCH_RUNS:-1} SECS=${BENCH_SECONDS:-2} IDLE_L4=${BENCH_IDLE_L4:-2000}
    IDLE_HTTP=${BENCH_IDLE_HTTP:-300} COLD_RUNS=${BENCH_COLD_RUNS:-3}
    OUT=${BENCH_OUT:-$BENCH_DIR/RESULTS.quick.md}
else
    RUNS=${BENCH_RUNS:-3} SECS=${BENCH_SECONDS:-8} IDLE_L4=${BENCH_IDLE_L4:-10000}
    IDLE_HTTP=${BENCH_IDLE_HTTP:-1000} COLD_RUNS=${BENCH_COLD_RUNS:-5}
    OUT=${BENCH_OUT:-$BENCH_DIR/RESULTS.md}
fi
CONNS=${BENCH_CONNS:-50}
SCENARIOS=${BENCH_SCENARIOS:-l4_tput connrate http workers https h2 memory size coldstart}

# Display names; report.py derives roles from them ("direct", "sluice", "sluice (…)", peers).
declare -A NAME=(
    [direct]="direct"
    [sluice]="sluice"
    [sluice-http]="sluice"
    [sluice-http-cold]="sluice (HTTP config)"
    [sluice-relay]="sluice (L4 relay, not L7)"
    [sluice-relay-tls]="sluice (L4 relay of TLS, not terminating)"
    [haproxy-l4]="haproxy (mode tcp)"
    [nginx-l4]="nginx stream"
    [sslh]="sslh-select"
    [nginx-http]="nginx"
    [haproxy-http]="haproxy (mode http)"
    [caddy]="caddy"
    # The two-worker scenario (its own metric, so the same display names as above).
    [sluice-http-w1]="sluice (1 worker)"
    [sluice-http-w2]="sluice"
    [nginx-http-w2]="nginx"
    [haproxy-http-w2]="haproxy (mode http)"
    [caddy-w2]="caddy"
)
NO_HTTP_ENGINE="no HTTP engine yet"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

## Tools ---------------------------------------------------------------------

SUDO=$([[ $(id -u) == 0 ]] && echo "" || echo sudo)
MISSING=()   # contenders whose tool could not be installed

apt_install() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y --no-install-recommends "$@" >"$WORK/apt.log" 2>&1
}

install_tools() {
    local want=() t pkg
    for t in nginx:nginx haproxy:haproxy sslh-select:sslh caddy:caddy iperf3:iperf3 \
             wrk:wrk h2load:nghttp2-client openssl:openssl taskset:util-linux; do
        command -v "${t%%:*}" >/dev/null 2>&1 || [[ -x /usr/sbin/${t%%:*} ]] || want+=("${t#*:}")
    done
    if ((${#want[@]})); then
        log "installing from Debian: ${want[*]}"
        $SUDO apt-get update >"$WORK/apt-update.log" 2>&1 || log "apt-get update failed"
        for pkg in "${want[@]}"; do
            apt_install "$pkg" || log "could not install $pkg (see its contender marked n/a)"
        done
    fi
    export PATH=$PATH:/usr/sbin:/sbin
    # nginx's stream module is a separate package on Debian when nginx is built with
    # --with-stream=dynamic.
    NGINX_STREAM_LOAD=""
    if command -v nginx >/dev/null && nginx -V 2>&1 | grep -q -- '--with-stream=dynamic'; then
        local so=/usr/share/nginx/modules/ngx_stream_module.so
        [[ -f $so ]] || apt_install libnginx-mod-stream || log "could not install libnginx-mod-stream"
        if [[ -f $so ]]; then
            NGINX_STREAM_LOAD="load_module $so;"
        else
            MISSING+=(nginx-l4)
        fi
    fi
    command -v nginx >/dev/null || MISSING+=(nginx-l4 nginx-http)
    command -v haproxy >/dev/null || MISSING+=(haproxy-l4 haproxy-http)
    command -v sslh-select >/dev/null || MISSING+=(sslh)
    command -v caddy >/dev/null || MISSING+=(caddy)
    for t in nginx iperf3 wrk h2load openssl taskset; do
        command -v "$t" >/dev/null || die "$t is required and could not be installed"
    done
    [[ -x $SLUICE ]] || die "no sluice binary at $SLUICE (run make static)"
}

missing() { [[ " ${MISSING[*]} " == *" $1 "* ]]; }

## Processes -----------------------------------------------------------------

PIDS=()

# start_bg NAME CPU CMD...: run CMD pinned to CPU in its own process group, output in
# $WORK/NAME.log; its pid (= process group id) is left in LAST_PID.
start_bg() {
    local name=$1 cpu=$2
    shift 2
    setsid taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# stop_bg PID: SIGTERM its process group, SIGKILL after 5 s, reap it.
stop_bg() {
    local pid=$1 i keep=()
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
    PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_bg "$pid"; done
    if [[ -n ${WORK:-} && -d $WORK ]]; then
        if ((rc == 0)); then
            rm -rf "$WORK"
        else
            log "failed (status $rc); logs and configs kept in $WORK"
        fi
    fi
}

freeport() { $TOOL freeport "$WORK/ports"; }
waitport() { $TOOL waitport "$1" "${2:-10}"; }

## Configs and contenders ------------------------------------------------------

# render TEMPLATE OUTFILE PORT TARGET [TLS_PORT]
render() {
    sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$3|g" -e "s|@TARGET@|$4|g" \
        -e "s|@TLS_PORT@|${5:-0}|g" -e "s|@NGINX_STREAM_MODULE@|$NGINX_STREAM_LOAD|g" \
        -e "s|@MAXCONN@|$HAPROXY_MAXCONN|g" \
        "$BENCH_DIR/conf/$1" >"$WORK/$2"
}

# prepare KIND TARGET_PORT: write KIND's config for a backend on TARGET_PORT; sets
# PROXY_CMD (the command line), PROXY_PORT and PROXY_TLS_PORT (L7 contenders only).
prepare() {
    local kind=$1 target=$2
    PROXY_PORT=$(freeport)
    PROXY_TLS_PORT=$(freeport)
    case $kind in
    sluice | sluice-relay | sluice-relay-tls)
        render sluice-l4.toml sluice.toml "$PROXY_PORT" "$target"
        PROXY_CMD=(env SLUICE_LOG=warn "$SLUICE" -c "$WORK/sluice.toml") ;;
    sluice-http | sluice-http-w1)
        render sluice-http.toml sluice-http.toml "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        PROXY_CMD=(env SLUICE_LOG=warn "$SLUICE" -c "$WORK/sluice-http.toml") ;;
    sluice-http-w2)
        render sluice-http.toml sluice-http.toml "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        sed -i '1i workers = 2' "$WORK/sluice-http.toml"
        PROXY_CMD=(env SLUICE_LOG=warn "$SLUICE" -c "$WORK/sluice-http.toml") ;;
    nginx-http-w2)
        render nginx-http.conf nginx-http.conf "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        sed -i 's/^worker_processes 1;/worker_processes 2;/' "$WORK/nginx-http.conf"
        PROXY_CMD=(nginx -p "$WORK" -e "$WORK/nginx-http.error.log" -c "$WORK/nginx-http.conf") ;;
    haproxy-http-w2)
        render haproxy-http.cfg haproxy-http.cfg "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        sed -i 's/^\( *\)nbthread 1$/\1nbthread 2/' "$WORK/haproxy-http.cfg"
        PROXY_CMD=(haproxy -db -f "$WORK/haproxy-http.cfg") ;;
    haproxy-l4)
        render haproxy-l4.cfg haproxy-l4.cfg "$PROXY_PORT" "$target"
        PROXY_CMD=(haproxy -db -f "$WORK/haproxy-l4.cfg") ;;
    nginx-l4)
        render nginx-l4.conf nginx-l4.conf "$PROXY_PORT" "$target"
        PROXY_CMD=(nginx -p "$WORK" -e "$WORK/nginx-l4.error.log" -c "$WORK/nginx-l4.conf") ;;
    sslh)
        render sslh.cfg sslh.cfg "$PROXY_PORT" "$target"
        PROXY_CMD=(sslh-select "-F$WORK/sslh.cfg") ;;
    nginx-http)
        render nginx-http.conf nginx-http.conf "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        PROXY_CMD=(nginx -p "$WORK" -e "$WORK/nginx-http.error.log" -c "$WORK/nginx-http.conf") ;;
    haproxy-http)
        render haproxy-http.cfg haproxy-http.cfg "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        PROXY_CMD=(haproxy -db -f "$WORK/haproxy-http.cfg") ;;
    caddy | caddy-w2)
        render Caddyfile Caddyfile "$PROXY_PORT" "$target" "$PROXY_TLS_PORT"
        PROXY_CMD=(env HOME="$WORK/caddy" XDG_DATA_HOME="$WORK/caddy/data"
            XDG_CONFIG_HOME="$WORK/caddy/config"
            caddy run --config "$WORK/Caddyfile" --adapter caddyfile) ;;
    *) die "unknown contender $kind" ;;
    esac
}

# start_proxy KIND TARGET_PORT: prepare and start KIND on the proxy CPU; PROXY_PID is set.
# Fails (status 1) if the proxy does not accept within 10 s.
start_proxy() {
    prepare "$1" "$2"
    start_bg "proxy-$1" "$CPU_PROXY" "${PROXY_CMD[@]}"
    PROXY_PID=$LAST_PID
    if ! waitport "$PROXY_PORT" 10; then
        log "$1 did not start; its log:"
        tail -n 20 "$WORK/proxy-$1.log" >&2 || true
        stop_bg "$PROXY_PID"
        return 1
    fi
}

## Results -------------------------------------------------------------------

RESULTS= META=
record() { printf '%s\t%s\tsample\t%s\n' "$1" "${NAME[$2]}" "$3" >>"$RESULTS"; }
record_na() { printf '%s\t%s\tna\t%s\n' "$1" "${NAME[$2]}" "$3" >>"$RESULTS"; }
note() { printf '%s\t%s\tnote\t%s\n' "$1" "${NAME[$2]}" "$3" >>"$RESULTS"; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

## Backends ------------------------------------------------------------------

# The nginx backend: a 100-byte file over HTTP/1.1 (BACKEND_HTTP) and HTTPS h1/h2
# (BACKEND_HTTPS), on the backend CPU.
start_http_backend() {
    BACKEND_HTTP=$(freeport)
    BACKEND_HTTPS=$(freeport)
    render backend-nginx.conf backend-nginx.conf "$BACKEND_HTTP" 0 "$BACKEND_HTTPS"
    start_bg backend-nginx "$CPU_BACKEND" nginx -p "$WORK" -e "$WORK/backend-nginx.error.log" \
        -c "$WORK/backend-nginx.conf"
    BACKEND_PID=$LAST_PID
    waitport "$BACKEND_HTTP" || die "nginx backend did not start: $(tail -n 5 "$WORK/backend-nginx.log")"
    waitport "$BACKEND_HTTPS" || die "nginx TLS backend did not start"
}

## Load generators -------------------------------------------------------------

on_load() { taskset -c "$CPU_LOAD" "$@"; }

# The proxy whose CPU time a run measures (empty for direct).
LOAD_PID=
CPU_START= SNAP_START=
QUIET_BUDGET=${BENCH_QUIET_WAIT:-$([[ ${BENCH_QUICK:-0} == 1 ]] && echo 10 || echo 60)}

# Other processes' CPU use between two snapshots (benchtool.py snap), in % of one core.
foreign_pct() {
    echo "$1 $2" | awk '{ p = (($5 - $1) - ($7 - $3)) / ($8 - $4) * 100; printf "%.0f", p < 0 ? 0 : p }'
}

# This is a shared machine: before a run, wait (within a total budget of BENCH_QUIET_WAIT
# seconds for the whole bench) until other processes use less than 15% of a core.
wait_quiet() {
    local a b pct t0=$SECONDS waited=0
    while ((QUIET_BUDGET > 0)); do
        a=$($TOOL snap $$)
        sleep 0.5
        b=$($TOOL snap $$)
        pct=$(foreign_pct "$a" "$b")
        ((pct >= 15)) && ((waited == 0)) &&
            log "  other processes use ${pct}% of a core; waiting (budget left ${QUIET_BUDGET}s)"
        QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - t0)))
        t0=$SECONDS
        ((pct >= 15)) || return 0
        waited=1
        sleep 0.5
    done
}

run_start() {
    wait_quiet
    CPU_START=$([[ -n $LOAD_PID ]] && $TOOL cpu "$LOAD_PID" || true)
    SNAP_START=$($TOOL snap $$)
}

# run_end METRIC KIND: record the proxy's CPU use since run_start (% of one core) and how
# much CPU other processes on the machine took meanwhile (interference).
run_end() {
    local pct
    local end
    end=$($TOOL snap $$)
    FOREIGN=$(foreign_pct "$SNAP_START" "$end")
    record "${1}_foreign" "$2" "$FOREIGN"
    record "${1}_steal" "$2" "$(echo "$SNAP_START $end" | awk '{ printf "%.0f", ($6 - $2) / ($8 - $4) * 100 }')"
    [[ -n $LOAD_PID && -n $CPU_START ]] || return 0
    pct=$(echo "$CPU_START $($TOOL cpu "$LOAD_PID")" |
        awk '{ printf "%.1f", ($3 - $1) / ($4 - $2) * 100 }')
    record "${1}_cpu" "$2" "$pct"
}

# wrk_run METRIC KIND URL [wrk options...]: one wrk run, recorded as a sample.
wrk_run() {
    local metric=$1 kind=$2 url=$3 out="$WORK/wrk.out" v errors
    shift 3
    run_start
    if ! on_load timeout $((SECS + 30)) wrk -t1 -c"$CONNS" -d"${SECS}s" "$@" "$url" >"$out" 2>&1 ||
        ! read -r v errors < <($TOOL parse-wrk "$out"); then
        log "wrk failed for $kind: $(tail -n 3 "$out" | tr '\n' ' ')"
        note "$metric" "$kind" "a run failed"
        return 0
    fi
    run_end "$metric" "$kind"
    record "$metric" "$kind" "$v"
    [[ $errors == 0 ]] || note "$metric" "$kind" "wrk errors in a run: $errors"
    log "  $metric ${NAME[$kind]}: $v req/s, errors: $errors, others' CPU ${FOREIGN}%"
}

# h2load_run METRIC KIND URL: one h2load run, recorded as a sample.
h2load_run() {
    local metric=$1 kind=$2 url=$3 out="$WORK/h2load.out" v errors
    run_start
    if ! on_load timeout $((SECS + 30)) h2load -t1 -c"$CONNS" -m10 -D"$SECS" "$url" >"$out" 2>&1 ||
        ! read -r v errors < <($TOOL parse-h2load "$out"); then
        log "h2load failed for $kind: $(tail -n 3 "$out" | tr '\n' ' ')"
        note "$metric" "$kind" "a run failed"
        return 0
    fi
    run_end "$metric" "$kind"
    record "$metric" "$kind" "$v"
    [[ $errors == 0 ]] || note "$metric" "$kind" "$errors failed requests in a run"
    log "  $metric ${NAME[$kind]}: $v req/s, failed: $errors, others' CPU ${FOREIGN}%"
}

## Scenarios -----------------------------------------------------------------

L4_CONTENDERS=(direct sluice haproxy-l4 nginx-l4 sslh)
# sluice's HTTP engine serves HTTP/1.1 and HTTPS; BENCH_SLUICE_HTTP=0 leaves it out (n/a rows).
SLUICE_HTTP=${BENCH_SLUICE_HTTP:-1}
NO_H2="no HTTP/2 in this version"
L7_CONTENDERS=(direct sluice nginx-http haproxy-http caddy)

# interleave METRIC BACKEND BACKEND_TLS RUNNER KIND...: BENCH_RUNS rounds; in each round every
# contender in turn runs RUNNER KIND PORT TLS_PORT once: direct against the backend, the others
# through a proxy started for that run alone. Interleaving spreads slow drifts of the machine
# (it is a VM) over all contenders alike instead of favouring whoever ran first.
interleave() {
    local metric=$1 backend=$2 backend_tls=$3 runner=$4 round kind port tls_port target
    shift 4
    local kinds=() failed=" "
    for kind in "$@"; do
        if missing "$kind"; then
            record_na "$metric" "$kind" "not installable here"
        else
            kinds+=("$kind")
        fi
    done
    for ((round = 1; round <= RUNS; round++)); do
        for kind in "${kinds[@]}"; do
            [[ $failed == *" $kind "* ]] && continue
            LOAD_PID=
            case $kind in
            direct) port=$backend tls_port=$backend_tls ;;
            *)
                # A TLS pass-through relay forwards to the backend's TLS port.
                [[ $kind == sluice-relay-tls ]] && target=$backend_tls || target=$backend
                if ! start_proxy "$kind" "$target"; then
                    record_na "$metric" "$kind" "did not start"
                    failed+="$kind "
                    continue
                fi
                port=$PROXY_PORT tls_port=$PROXY_TLS_PORT
                [[ $kind == sluice-relay-tls ]] && tls_port=$PROXY_PORT
                LOAD_PID=$PROXY_PID ;;
            esac
            "$runner" "$kind" "$port" "$tls_port"
            [[ $kind == direct ]] || stop_bg "$PROXY_PID"
            LOAD_PID=
        done
    done
}

iperf_once() {
    local kind=$1 port=$2 v out="$WORK/iperf3.json"
    run_start
    if on_load timeout $((SECS + 30)) iperf3 -c 127.0.0.1 -p "$port" -t "$SECS" -J >"$out" 2>&1 &&
        v=$($TOOL parse-iperf3 "$out"); then
        run_end l4_tput "$kind"
        record l4_tput "$kind" "$v"
        log "  l4_tput ${NAME[$kind]}: $v Gbit/s, others' CPU ${FOREIGN}%"
    else
        log "iperf3 failed for $kind: $(head -c 300 "$out")"
        note l4_tput "$kind" "a run failed"
    fi
}

scenario_l4_tput() {
    log "L4 TCP throughput (iperf3, ${RUNS}x ${SECS}s)"
    local port server
    port=$(freeport)
    start_bg iperf3-server "$CPU_BACKEND" iperf3 -s -p "$port"
    server=$LAST_PID
    waitport "$port" || die "iperf3 server did not start"
    interleave l4_tput "$port" "" iperf_once "${L4_CONTENDERS[@]}"
    stop_bg "$server"
}

connrate_once() { wrk_run l4_connrate "$1" "http://127.0.0.1:$2/" -H "Connection: close"; }

scenario_connrate() {
    log "L4 connection rate (wrk, Connection: close, ${RUNS}x ${SECS}s)"
    start_http_backend
    interleave l4_connrate "$BACKEND_HTTP" "" connrate_once "${L4_CONTENDERS[@]}"
    stop_bg "$BACKEND_PID"
}

http1_once() { wrk_run http1 "$1" "http://127.0.0.1:$2/"; }
# By name, so every contender sees SNI "localhost" (sluice refuses TLS without a server name
# it serves, with unrecognized_name, instead of picking a default certificate).
https1_once() { wrk_run https1 "$1" "https://localhost:$3/"; }
h2_once() { h2load_run h2 "$1" "https://127.0.0.1:$3/"; }

# l7_scenario METRIC [EXTRA_KIND]: METRIC's runner against every L7 contender (sluice has no
# HTTP engine yet: n/a), plus EXTRA_KIND (an informative sluice L4-relay figure).
l7_scenario() {
    local metric=$1 kinds=() kind use_sluice=$SLUICE_HTTP
    start_http_backend
    ((SLUICE_HTTP)) || record_na "$metric" sluice "$NO_HTTP_ENGINE"
    if [[ $metric == h2 ]] && ((SLUICE_HTTP)); then
        record_na "$metric" sluice "$NO_H2"
        use_sluice=0
    fi
    for kind in "${L7_CONTENDERS[@]}" "${@:2}"; do
        if [[ $kind == sluice ]]; then
            ((use_sluice)) && kinds+=(sluice-http)
        else
            kinds+=("$kind")
        fi
    done
    interleave "$metric" "$BACKEND_HTTP" "$BACKEND_HTTPS" "${metric}_once" "${kinds[@]}"
    stop_bg "$BACKEND_PID"
}

scenario_http() {
    log "HTTP/1.1 keep-alive (wrk -c$CONNS, ${RUNS}x ${SECS}s)"
    l7_scenario http1 sluice-relay
}

http1_w2_once() { wrk_run http1_w2 "$1" "http://127.0.0.1:$2/"; }

# Two workers each (sluice `workers = 2`, nginx worker_processes 2, haproxy nbthread 2, caddy
# with two CPUs), the proxy allowed on both CPUs while load generator and backend stay on
# CPU 0 as elsewhere; sluice with one worker under the same placement for comparison.
scenario_workers() {
    log "HTTP/1.1 keep-alive, two workers (wrk -c$CONNS, ${RUNS}x ${SECS}s)"
    if (($(nproc) < 2)); then
        log "  one CPU: skipped"
        return 0
    fi
    local one_cpu=$CPU_PROXY
    CPU_PROXY=0,1
    start_http_backend
    interleave http1_w2 "$BACKEND_HTTP" "" http1_w2_once \
        sluice-http-w2 sluice-http-w1 nginx-http-w2 haproxy-http-w2 caddy-w2
    stop_bg "$BACKEND_PID"
    CPU_PROXY=$one_cpu
}

scenario_https() {
    log "HTTPS h1 (wrk -c$CONNS, ${RUNS}x ${SECS}s)"
    l7_scenario https1 sluice-relay-tls
}

scenario_h2() {
    log "HTTP/2 over TLS (h2load -c$CONNS -m10, ${RUNS}x ${SECS}s)"
    l7_scenario h2
}

# measure_idle SUFFIX KIND TARGET N MODE: idle RSS, then RSS with N idle connections.
measure_idle() {
    local sfx=$1 kind=$2 target=$3 n=$4 mode=$5 idle loaded reached pss nprocs fds client
    start_proxy "$kind" "$target" || { record_na "idle_rss_$sfx" "$kind" "did not start"; return 0; }
    sleep 1
    read -r idle pss nprocs fds < <($TOOL rss "$PROXY_PID")
    record "idle_rss_$sfx" "$kind" "$idle"
    record "idle_pss_$sfx" "$kind" "$pss"
    ((nprocs == 1)) || note "idle_rss_$sfx" "$kind" "$nprocs processes"
    if [[ $kind == sslh ]] && ((n * 2 > 1000)); then
        # sslh-select multiplexes with select(2): no descriptor may be >= FD_SETSIZE (1024).
        local m
        for m in loaded_rss reached perconn; do
            record_na "${m}_$sfx" "$kind" "select(2) caps sslh-select at 1024 descriptors"
        done
        stop_bg "$PROXY_PID"
        return 0
    fi
    rm -f "$WORK/idle-ready"
    start_bg "idle-client-$kind" "$CPU_LOAD" $TOOL idle-client "$PROXY_PORT" "$n" "$mode" "$WORK/idle-ready"
    client=$LAST_PID
    reached=$($TOOL waitcount "$WORK/idle-ready" "$n" 120)
    if [[ $mode == l4 ]]; then
        # Count what reached the backend: the relay has really connected upstream.
        reached=$($TOOL waitcount "$WORK/hold-count" "$reached" 30)
    fi
    sleep 1
    read -r loaded pss nprocs fds < <($TOOL rss "$PROXY_PID")
    record "loaded_rss_$sfx" "$kind" "$loaded"
    note "loaded_rss_$sfx" "$kind" "$fds descriptors open when loaded"
    record "reached_$sfx" "$kind" "$reached"
    if ((reached > 0)); then
        record "perconn_$sfx" "$kind" "$(((loaded - idle) * 1024 / reached))"
    fi
    if ((reached < n)); then
        local why=""
        grep -qiE 'too many open files|EMFILE|os error 24' "$WORK/proxy-$kind.log" &&
            why=": the proxy ran out of file descriptors (limit $FD_LIMIT)"
        note "reached_$sfx" "$kind" "only $reached of $n connections came up$why"
    fi
    log "  ${NAME[$kind]}: idle ${idle} KiB, ${loaded} KiB with $reached idle $mode conns"
    stop_bg "$client"
    stop_bg "$PROXY_PID"
}

scenario_memory() {
    # Each relayed L4 connection costs the proxy two descriptors; stay under the fd limit.
    local n_l4=$IDLE_L4 max=$(((FD_LIMIT - 100) / 2)) kind port hold
    ((n_l4 <= max)) || n_l4=$max
    meta "idle L4 connections" "$n_l4 (asked $IDLE_L4; open-file limit here: $FD_LIMIT)"
    log "Memory: idle RSS, $n_l4 idle L4 connections, $IDLE_HTTP idle HTTP keep-alive connections"
    for kind in sluice haproxy-l4 nginx-l4 sslh; do
        if missing "$kind"; then
            record_na idle_rss_l4 "$kind" "not installable here"
            continue
        fi
        # A fresh holding backend per contender, so its count is this contender's.
        port=$(freeport)
        rm -f "$WORK/hold-count"
        start_bg hold-server "$CPU_BACKEND" $TOOL hold-server "$port" "$WORK/hold-count"
        hold=$LAST_PID
        waitport "$port" || die "hold server did not start"
        measure_idle l4 "$kind" "$port" "$n_l4" l4
        stop_bg "$hold"
    done
    start_http_backend
    local http_kinds=(nginx-http haproxy-http caddy)
    if ((SLUICE_HTTP)); then
        http_kinds=(sluice-http "${http_kinds[@]}")
    else
        record_na idle_rss_http sluice "$NO_HTTP_ENGINE"
    fi
    for kind in "${http_kinds[@]}"; do
        if missing "$kind"; then
            record_na idle_rss_http "$kind" "not installable here"
            continue
        fi
        measure_idle http "$kind" "$BACKEND_HTTP" "$IDLE_HTTP" http
    done
    stop_bg "$BACKEND_PID"
}

# Sum of the sizes of the shared libraries ldd says BIN loads.
libs_bytes() {
    local total=0 lib
    for lib in $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
        total=$((total + $(stat -L -c %s "$lib")))
    done
    echo "$total"
}

scenario_size() {
    log "Binary sizes"
    local kind bin size libs
    for kind in sluice nginx-l4 haproxy-l4 sslh caddy; do
        case $kind in
        sluice) bin=$SLUICE ;;
        nginx-l4) bin=$(command -v nginx || true) ;;
        haproxy-l4) bin=$(command -v haproxy || true) ;;
        sslh) bin=$(command -v sslh-select || true) ;;
        caddy) bin=$(command -v caddy || true) ;;
        esac
        if [[ -z $bin ]]; then
            record_na size_bin "$kind" "not installable here"
            continue
        fi
        bin=$(readlink -f "$bin")
        size=$(stat -c %s "$bin")
        libs=$(libs_bytes "$bin")
        if [[ $kind == nginx-l4 && -n $NGINX_STREAM_LOAD ]]; then
            libs=$((libs + $(stat -c %s /usr/share/nginx/modules/ngx_stream_module.so)))
            note size_bin "$kind" "+ ngx_stream_module.so counted with the libs"
        fi
        record size_bin "$kind" "$size"
        record size_libs "$kind" "$((size + libs))"
        if ldd "$bin" 2>&1 | grep -Eq 'not a dynamic executable|statically linked'; then
            note size_bin "$kind" "static"
        else
            note size_bin "$kind" "dynamically linked ($(ldd "$bin" | grep -c '=>') libs)"
        fi
        if [[ $kind == sluice && -x $SLUICE_SMALL ]]; then
            note size_bin sluice "size-first build (make small): $(stat -c %s "$SLUICE_SMALL") bytes"
        fi
    done
}

scenario_coldstart() {
    log "Cold start (${COLD_RUNS} starts each)"
    local kind ms
    local kinds=(sluice haproxy-l4 nginx-l4 sslh nginx-http haproxy-http caddy)
    ((SLUICE_HTTP)) && kinds+=(sluice-http)
    for kind in "${kinds[@]}"; do
        if missing "$kind"; then
            record_na coldstart_ms "$kind" "not installable here"
            continue
        fi
        # The backend need not exist: we only time how soon the port accepts.
        prepare "$kind" "$(freeport)"
        # sluice's two configs get two rows.
        local row=$kind
        [[ $kind == sluice-http ]] && row=sluice-http-cold
        note coldstart_ms "$row" "$([[ $kind == *-http || $kind == caddy ]] && echo "HTTP config (h1 + TLS listeners)" || echo "L4 config")"
        while read -r ms; do
            record coldstart_ms "$row" "$ms"
        done < <($TOOL coldstart "$PROXY_PORT" "$COLD_RUNS" -- taskset -c "$CPU_PROXY" "${PROXY_CMD[@]}" ||
            log "cold start of $kind failed")
    done
}

## Main ----------------------------------------------------------------------

main() {
    WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    RESULTS=$WORK/results.tsv META=$WORK/meta.tsv
    : >"$RESULTS"
    : >"$META"
    local started=$SECONDS

    install_tools

    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    FD_LIMIT=$(ulimit -n)
    HAPROXY_MAXCONN=$(((FD_LIMIT - 100) / 2))
    ((HAPROXY_MAXCONN <= 20000)) || HAPROXY_MAXCONN=20000

    local ncpu
    ncpu=$(nproc)
    if ((ncpu >= 2)); then
        CPU_LOAD=${BENCH_CPU_LOAD:-0} CPU_PROXY=${BENCH_CPU_PROXY:-1} CPU_BACKEND=${BENCH_CPU_BACKEND:-0}
    else
        CPU_LOAD=0 CPU_PROXY=0 CPU_BACKEND=0
    fi

    # Test material: the 100-byte file and a self-signed certificate.
    mkdir -p "$WORK/www" "$WORK/tls" "$WORK/nginx-tmp" "$WORK/caddy"
    printf '%099d\n' 0 | tr 0 x >"$WORK/www/index.html"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >"$WORK/openssl.log" 2>&1 ||
        die "openssl could not make a certificate"
    cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$WORK/tls/combined.pem"

    local commit
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml 2>/dev/null || commit="$commit + uncommitted changes"
    meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
    meta quick "${BENCH_QUICK:-0}"
    meta machine "$ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    meta "CPU placement" "taskset: load generators on CPU $CPU_LOAD, the proxy under test on CPU $CPU_PROXY, backends on CPU $CPU_BACKEND; the same for every contender. Proxies run one worker/thread (nginx worker_processes 1, haproxy nbthread 1, caddy GOMAXPROCS follows its 1-CPU affinity, sluice and sslh-select are single-threaded)."
    meta settings "BENCH_RUNS=$RUNS, BENCH_SECONDS=$SECS, BENCH_CONNS=$CONNS, BENCH_COLD_RUNS=$COLD_RUNS; open-file limit $FD_LIMIT (hard limit here), so haproxy maxconn $HAPROXY_MAXCONN (sluice tcp_max_connections 20000, nginx worker_connections 20000)"
    meta logging "off for everyone: SLUICE_LOG=warn, nginx access_log off (stream: none), haproxy no log, sslh log_level 0, caddy no log directive"
    meta "forwarding fields" "the same for every HTTP contender: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port and X-Real-IP to the backend (sluice's defaults; set in bench/conf for nginx, haproxy and caddy)"
    meta sluice "$("$SLUICE" -V 2>&1 | head -n1), commit $commit, static musl build"
    meta nginx "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    meta haproxy "$(haproxy -v 2>/dev/null | head -n1 | sed 's/ - https.*//')"
    meta sslh "$(command -v sslh-select >/dev/null && sslh-select -V 2>&1 | head -n1 || echo "not installed")"
    meta caddy "$(command -v caddy >/dev/null && caddy version 2>&1 | head -n1 || echo "not installed")"
    meta "load generators" "$(iperf3 --version | head -n1 | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $(h2load --version | head -n1), $(python3 --version)"
    meta openssl "$(openssl version | cut -d' ' -f1-2)"

    local s
    for s in $SCENARIOS; do
        declare -F "scenario_$s" >/dev/null || die "unknown scenario $s"
        "scenario_$s"
    done
    meta "bench duration" "$((SECONDS - started)) s (of which up to $(( ${BENCH_QUIET_WAIT:-$([[ ${BENCH_QUICK:-0} == 1 ]] && echo 10 || echo 60)} - QUIET_BUDGET )) s waiting for other processes on the machine to go quiet)"

    python3 "$BENCH_DIR/report.py" "$RESULTS" "$META" >"$WORK/report.md"
    cp "$WORK/report.md" "$OUT"
    echo
    cat "$OUT"
    log "report written to $OUT"
}

main "$@"
