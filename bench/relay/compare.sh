#!/usr/bin/env bash
# compare.sh STREAMS SECONDS [RELAYS] [VARIANTS]
#
# Strait's data plane and rtpengine (userspace, Debian rtpengine-daemon) relaying the same traffic on this
# machine, in the same run: N one-way 50 packets/s streams of 172-byte RTP (PT 0) from leg A to leg B,
# either plain RTP -> RTP or SDES-SRTP (AES_CM_128_HMAC_SHA1_80) -> RTP. The relay runs pinned to core 1,
# the generator to core 0. The generator is the rtpengine anchor's rtpload (../shared/anchors/rtpengine,
# compiled here into target/relay-bench), which measures loss, one-way latency and the relay's own CPU.
#
#   RELAYS    default "strait-uring strait-mmsg rtpengine"; "null" adds the anchor's trivial epoll forwarder
#             (plain variant only: a floor for "any relay" on this box)
#   VARIANTS  default "plain srtp"
#   STRAIT_ARGS  extra strait-dataplane options (e.g. "--coalesce-us 400")
#   PERF=1    also record a call-graph CPU profile of each Strait run (perf record -e cpu-clock -g, after the
#             warm-up) into target/relay-bench/perf-<relay>-<variant>.data (read with perf report -i FILE)
#   RPS=1     steer loopback receive processing to the generator's core (see below)
#   REPS=N    repeat the whole set N times, interleaved (relay by relay, so noise from other tenants falls on all
#             relays alike), and report per relay the median busy fraction and the worst loss and p99
#   STRAIT_BIN  directory holding strait-dataplane and strait-dpctl (default target/release; for A/B runs, list
#             the same relay twice as strait-uring and strait-uring@/other/dir)
#
# Prints one line per run and a table; "per_cpu_s" = relayed packets/s / relay CPU fraction (the
# anchor's FINDINGS.md explains why relays are compared this way on a 2-core box).
# Needs root (private network namespace), gcc, libsrtp2-dev, libssl-dev, rtpengine-daemon, python3.
set -euo pipefail
STREAMS=${1:?streams}; SECS=${2:?seconds}
RELAYS=${3:-strait-uring strait-mmsg rtpengine}
VARIANTS=${4:-plain srtp}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ANCHOR=${STRAIT_SHARED_DIR:-$ROOT/../shared}/anchors/rtpengine
[ -f "$ANCHOR/rtpload.c" ] || { echo "compare.sh: rtpengine anchor not found at $ANCHOR (set STRAIT_SHARED_DIR)" >&2; exit 2; }

if [ -z "${_STRAIT_NETNS:-}" ]; then
    if [ "${RPS:-0}" = 1 ]; then
        # Receive packet steering on the namespace's loopback: the kernel's receive-side work for every
        # packet (including delivery into the generator's sockets, which a relay's send would otherwise pay
        # on its own core, as a remote host would on a real network) runs on the generator's core 0.
        exec unshare --net --mount -- env _STRAIT_NETNS=1 bash -c \
            'ip link set lo up && mount -t sysfs none /sys && echo 1 > /sys/class/net/lo/queues/rx-0/rps_cpus && exec "$0" "$@"' "$0" "$@"
    fi
    exec unshare --net -- env _STRAIT_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

OUT=$ROOT/target/relay-bench
mkdir -p "$OUT"
[ -n "${STRAIT_BIN:-}" ] || (cd "$ROOT" && cargo build --release --locked -q -p strait-dataplane)
gcc -O2 -Wall -Wno-deprecated-declarations -o "$OUT/rtpload" "$ANCHOR/rtpload.c" -lsrtp2 -lssl -lcrypto -lm
gcc -O2 -Wall -o "$OUT/nullrelay" "$ANCHOR/nullrelay.c"
BIN=${STRAIT_BIN:-$ROOT/target/release}
WARMUP=4
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
trap cleanup EXIT

wait_for() { # file pattern seconds
    for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "compare.sh: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

stop_relay() { # pid
    kill "$1"; wait "$1" 2>/dev/null || true; PIDS=()
    ports_free
}

measure() { # relay-pid label variant duration warmup: the generator's summary line
    taskset -c 0 "$OUT/rtpload" --pairs "$OUT/pairs.txt" --duration "$4" --warmup "$5" --lat ts \
        --fill tone --watch-pid "$1" --watch-cpu 1 --label "relay=$2 variant=$3 " | tail -1
}

run_strait() { # io variant [bin-dir label]
    local io=$1 variant=$2 bin=${3:-$BIN} label=${4:-strait-$1} shm=/dev/shm/strait-bench-$$
    bin=${bin:-$BIN}
    rm -f "$OUT/dataplane.log"   # else wait_for can see the previous run's "ready" before the shell truncates it
    taskset -c 1 "$bin/strait-dataplane" --shm "$shm" --cores 1 --io "$io" ${STRAIT_ARGS:-} \
        --port-min 30000 --port-max 39999 >"$OUT/dataplane.log" 2>&1 &
    local dp=$!; PIDS+=("$dp")
    wait_for "$OUT/dataplane.log" ready 10
    local perf_pid=
    if [ "${PERF:-0}" = 1 ]; then
        (sleep 2; exec perf record -q -e cpu-clock -F 2000 -g -p "$dp" -o "$OUT/perf-${label//[\/@]/_}-$variant.data" \
            -- sleep "$((SECS - 2))") >/dev/null 2>&1 &
        perf_pid=$!
    fi
    taskset -c 0 "$bin/strait-dpctl" relay --shm "$shm" --streams "$STREAMS" --variant "$variant" \
        --a-base 10000 --b-base 20000 --pairs-out "$OUT/pairs.txt" >/dev/null 2>"$OUT/dpctl.log" ||
        { cat "$OUT/dpctl.log" >&2; stop_relay "$dp"; return 1; }
    measure "$dp" "$label" "$variant" "$SECS" 1
    [ -z "$perf_pid" ] || wait "$perf_pid" || true
    stop_relay "$dp"
}

ports_free() { # the kernel closes io_uring-registered sockets asynchronously after exit
    for _ in $(seq 1 100); do
        # (no `| grep -q`: under pipefail its early exit fails ss with SIGPIPE, which read as "free")
        [ -z "$(ss -Hunl 'sport >= :30000 and sport <= :50000')" ] && return 0
        sleep 0.1
    done
    echo "compare.sh: relay ports still bound 10 s after the relay exited" >&2; return 1
}

run_null() { # variant: the anchor's trivial epoll forwarder (recv + send per packet, no parsing, plain only)
    rm -f "$OUT/null.log"
    python3 "$ANCHOR/ng.py" null --streams "$STREAMS" --a-base 10000 --b-base 20000 --relay-base 30000 \
        --out "$OUT/pairs.txt" --map-out "$OUT/null-map.txt" >/dev/null
    taskset -c 1 "$OUT/nullrelay" --map "$OUT/null-map.txt" --max-seconds $((SECS + 120)) >"$OUT/null.log" 2>&1 &
    local np=$!; PIDS+=("$np")
    wait_for "$OUT/null.log" ready 10
    measure "$np" null "$1" "$SECS" 1
    stop_relay "$np"
}

run_rtpengine() { # variant
    local variant=$1
    taskset -c 1 rtpengine --config-file=none --foreground --log-stderr --table=-1 --interface=127.0.0.1 \
        --listen-ng=127.0.0.1:2223 --port-min=30000 --port-max=50000 --num-threads=1 --log-level=4 \
        --timeout=300 --delete-delay=0 >"$OUT/rtpengine.log" 2>&1 &
    local rp=$!; PIDS+=("$rp")
    for _ in $(seq 1 50); do
        timeout 2 python3 "$ANCHOR/ng.py" ping --ng 127.0.0.1:2223 >/dev/null 2>&1 && break; sleep 0.2
    done
    timeout 600 taskset -c 0 python3 "$ANCHOR/ng.py" setup --ng 127.0.0.1:2223 --variant "$variant" \
        --streams "$STREAMS" --a-base 10000 --b-base 20000 --out "$OUT/pairs.txt" 2>"$OUT/ng.log"
    # rtpengine learns endpoints in its first ~3 s: those are not counted.
    measure "$rp" rtpengine "$variant" "$((SECS + WARMUP))" "$WARMUP"
    stop_relay "$rp"
}

RELAY_RE='^(strait-(uring|mmsg)(@.+)?|rtpengine|null)$'
run_one() { # relay variant
    [[ $1 =~ $RELAY_RE ]]
    case $1 in
        strait-*) run_strait "${BASH_REMATCH[2]}" "$2" "${BASH_REMATCH[3]#@}" "$1" ;;
        *) "run_$1" "$2" ;;
    esac
}
for relay in $RELAYS; do
    [[ $relay =~ $RELAY_RE ]] || { echo "unknown relay $relay" >&2; exit 2; }
done

LINES=()
for rep in $(seq 1 "${REPS:-1}"); do
    for variant in $VARIANTS; do
        for relay in $RELAYS; do
            [ "$relay" != null ] || [ "$variant" = plain ] || continue
            line=$(run_one "$relay" "$variant") || line=""
            if [ -z "$line" ]; then echo "compare.sh: rep $rep $relay $variant failed; left out" >&2; continue; fi
            echo "rep=$rep $line"
            LINES+=("$line")
        done
    done
done

python3 - "$STREAMS" "${RPS:-0}" "${LINES[@]}" <<'PY'
import statistics, sys
streams, rps = sys.argv[1], sys.argv[2]
groups = {}
for line in sys.argv[3:]:
    d = dict(t.split("=", 1) for t in line.split() if "=" in t)
    cpu = float(d["relay_cpu"].rstrip("%")) / 100
    pps = float(d["relayed_pps"])
    groups.setdefault((d["variant"], d["relay"]), []).append(dict(
        pps=pps, cpu=cpu, per=pps / cpu if cpu > 0 else float("nan"), loss=float(d["loss"].rstrip("%")),
        core=float(d["cpu1_busy"].rstrip("%")) / 100,
        p50=int(d["p50_us"]), p99=int(d["p99_us"]), gen=float(d["gen_cpu"].rstrip("%")), ok=d["gen_ok"] == "1"))
med = lambda rs, k: statistics.median(r[k] for r in rs)
print()
print(f"streams={streams}  (50 packets/s each, 172 bytes; relay on core 1, generator on core 0; "
      f"loopback receive steering to core 0: {'on' if rps == '1' else 'off'})")
reps = max(len(rs) for rs in groups.values())
if reps > 1:
    print(f"{reps} interleaved repetitions: medians of busy, per CPU-second, p50 and p99; worst loss, p99 and generator CPU")
print("| variant | relay | relayed pkt/s | relay process CPU | relayed pkt per CPU-second | core 1 busy (per busy second) | loss | p50 | p99 | generator CPU (schedule kept) |")
print("|---|---|---|---|---|---|---|---|---|---|")
base = {v: med(rs, "per") for (v, relay), rs in groups.items() if relay == "rtpengine"}
for (v, relay), rs in groups.items():
    per = med(rs, "per")
    ratio = f" ({per / base[v]:.1f}x rtpengine)" if v in base and relay != "rtpengine" else ""
    busy = f"{med(rs, 'cpu') * 100:.0f} %"
    p99 = f"{med(rs, 'p99'):.0f} µs"
    if len(rs) > 1:
        busy += " (" + " ".join(f"{r['cpu'] * 100:.0f}" for r in rs) + ")"
        p99 += f" (max {max(r['p99'] for r in rs)})"
    ok = "yes" if all(r["ok"] for r in rs) else "NO"
    core = med(rs, "core")
    core_s = f"{core * 100:.0f} % ({med(rs, 'pps') / core:,.0f})" if core > 0 else "-"
    print(f"| {v} | {relay} | {med(rs, 'pps'):,.0f} | {busy} | {per:,.0f}{ratio} | {core_s} | {max(r['loss'] for r in rs):.4f} % "
          f"| {med(rs, 'p50'):.0f} µs | {p99} | {max(r['gen'] for r in rs):.1f} % ({ok}) |")
PY
