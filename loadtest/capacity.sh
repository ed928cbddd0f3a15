#!/usr/bin/env bash
# The capacity table of BENCHMARKS.md in one run: the same ng-driven media traffic through Strait and through
# rtpengine (plain relay, SRTP<->RTP, PCMU<->Opus transcoding; each target pinned to one core, the generator on the
# other), then WSS REGISTER/s and call setups/s through Strait, then one HTML report of all of it.
# Usage (root, on a quiet machine):  ./loadtest/capacity.sh [OUT_DIR]     (default loadtest/example)
# Takes about 15 minutes; every run is bounded by --max-secs and runs in its own network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-loadtest/example}"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.log
cargo build --release --locked -p strait -p strait-dataplane -p strait-loadtest
B=target/release/strait-loadtest
for scenario in plain srtp; do
    for target in strait rtpengine; do
        $B run --target "$target" --scenario "$scenario" --start 250 --step 250 --max 3000 \
            --step-secs 5 --warmup-secs 4 --max-secs 180 --netns --out "$out"
    done
done
# rtpengine's transcoder holds each frame until the next arrives (20 ms), so the latency bound is 25 ms for both.
for target in strait rtpengine; do
    $B run --target "$target" --scenario transcode --start 20 --step 20 --max 400 --sla-p99-ms 25 \
        --step-secs 4 --warmup-secs 3 --max-secs 180 --netns --out "$out"
done
$B signalling --op register --start 2000 --step 2000 --max 30000 --step-secs 4 --netns --out "$out"
$B signalling --op call --start 250 --step 250 --max 5000 --step-secs 4 --netns --out "$out"
$B report "$out"/*.json -o "$out/report.html"
