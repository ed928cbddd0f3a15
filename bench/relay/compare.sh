#!/usr/bin/env bash
# compare.sh STREAMS SECONDS [RELAYS] [VARIANTS]
#
# Strait's data plane and rtpengine (userspace, Debian rtpengine-daemon) relaying the same traffic on this
# machine, in the same run: N one-way 50 packets/s streams of 172-byte RTP (PT 0) from leg A to leg B,
# either plain RTP -> RTP or SDES-SRTP (AES_CM_128_HMAC_SHA1_80) -> RTP. The relay runs pinned to core 1,
# the generator to core 0. The generator is the rtpengine anchor's rtpload (../shared/anchors/rtpengine,
# compiled here into target/relay-bench), which measures loss, one-way latency and the relay's own CPU.
#
#   RELAYS    default "strait-uring strait-mmsg rtpengine"
#   VARIANTS  default "plain srtp"
#   STRAIT_ARGS  extra strait-dataplane options (e.g. "--coalesce-us 400")
#   RPS=1     steer loopback receive processing to the generator's core (see below)
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
(cd "$ROOT" && cargo build --release --locked -q -p strait-dataplane)
gcc -O2 -Wall -Wno-deprecated-declarations -o "$OUT/rtpload" "$ANCHOR/rtpload.c" -lsrtp2 -lssl -lcrypto -lm
BIN=$ROOT/target/release
WARMUP=4
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
trap cleanup EXIT

wait_for() { # file pattern seconds
    for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "compare.sh: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

run_strait() { # io variant
    local io=$1 variant=$2 shm=/dev/shm/strait-bench-$$
    taskset -c 1 "$BIN/strait-dataplane" --shm "$shm" --cores 1 --io "$io" ${STRAIT_ARGS:-} \
        --port-min 30000 --port-max 39999 >"$OUT/dataplane.log" 2>&1 &
    local dp=$!; PIDS+=("$dp")
    wait_for "$OUT/dataplane.log" ready 10
    taskset -c 0 "$BIN/strait-dpctl" relay --shm "$shm" --streams "$STREAMS" --variant "$variant" \
        --a-base 10000 --b-base 20000 --pairs-out "$OUT/pairs.txt" >/dev/null
    taskset -c 0 "$OUT/rtpload" --pairs "$OUT/pairs.txt" --duration "$SECS" --warmup 1 --lat ts --fill tone \
        --watch-pid "$dp" --watch-cpu 1 --label "relay=strait-$io variant=$variant " | tail -1
    kill "$dp"; wait "$dp" 2>/dev/null || true; PIDS=()
    ports_free
}

ports_free() { # the kernel closes io_uring-registered sockets asynchronously after exit
    for _ in $(seq 1 100); do
        ss -Hunl 'sport >= :30000 and sport <= :50000' | grep -q . || return 0
        sleep 0.1
    done
    echo "compare.sh: relay ports still bound 10 s after the relay exited" >&2; return 1
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
    taskset -c 0 "$OUT/rtpload" --pairs "$OUT/pairs.txt" --duration "$((SECS + WARMUP))" --warmup "$WARMUP" \
        --lat ts --fill tone --watch-pid "$rp" --watch-cpu 1 --label "relay=rtpengine variant=$variant " | tail -1
    kill "$rp"; wait "$rp" 2>/dev/null || true; PIDS=()
    ports_free
}

LINES=()
for variant in $VARIANTS; do
    for relay in $RELAYS; do
        case $relay in
            strait-uring) line=$(run_strait uring "$variant") ;;
            strait-mmsg) line=$(run_strait mmsg "$variant") ;;
            rtpengine) line=$(run_rtpengine "$variant") ;;
            *) echo "unknown relay $relay" >&2; exit 2 ;;
        esac
        echo "$line"
        LINES+=("$line")
    done
done

python3 - "$STREAMS" "${RPS:-0}" "${LINES[@]}" <<'PY'
import sys
streams, rps = sys.argv[1], sys.argv[2]
rows = []
for line in sys.argv[3:]:
    d = dict(t.split("=", 1) for t in line.split() if "=" in t)
    cpu = float(d["relay_cpu"].rstrip("%")) / 100
    pps = float(d["relayed_pps"])
    rows.append((d["variant"], d["relay"], pps, cpu, pps / cpu if cpu > 0 else float("nan"),
                 d["loss"], d["p50_us"], d["p99_us"], d["gen_cpu"], d["gen_ok"]))
print()
print(f"streams={streams}  (50 packets/s each, 172 bytes; relay on core 1, generator on core 0; "
      f"loopback receive steering to core 0: {'on' if rps == '1' else 'off'})")
print("| variant | relay | relayed pkt/s | relay core busy | relayed pkt per CPU-second | loss | p50 | p99 | generator CPU (schedule kept) |")
print("|---|---|---|---|---|---|---|---|---|")
base = {}
for r in rows:
    if r[1] == "rtpengine":
        base[r[0]] = r[4]
for v, relay, pps, cpu, per, loss, p50, p99, gcpu, gok in rows:
    ratio = f" ({per / base[v]:.1f}x rtpengine)" if v in base and relay != "rtpengine" else ""
    print(f"| {v} | {relay} | {pps:,.0f} | {cpu*100:.0f} % | {per:,.0f}{ratio} | {loss} | {p50} µs | {p99} µs | {gcpu} ({'yes' if gok == '1' else 'NO'}) |")
PY
