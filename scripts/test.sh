#!/usr/bin/env bash
# Installs what the tests need and runs Strait's whole test suite.
# Usage (fresh Debian 12, as root):  ./scripts/test.sh
# Environment: STRAIT_FUZZ_SECONDS (per fuzz target, default 6; 0 builds the targets but does not run them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
strait_apt_install "${STRAIT_APT_BUILD[@]}" "${STRAIT_APT_TEST[@]}"
strait_rust
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "unit, property, cross-check and integration tests; benches once each in test mode"
mkdir -p target
# The loadtest integration tests run the strait binaries (and rtpengine) for real.
cargo build -p strait -p strait-dataplane --locked
cargo test --workspace --all-targets --locked 2>&1 | tee target/test.log
cargo test --workspace --doc --locked 2>&1 | tee -a target/test.log

step "end to end: headless Chromium (JsSIP) and SIPp register and call through strait (private network namespace)"
./scripts/e2e.sh
e2e_passed=1

step "fuzz targets (cargo-fuzz, libFuzzer)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
fuzz_seconds="${STRAIT_FUZZ_SECONDS:-6}"
# cargo-fuzz drives rustc's sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir fuzz
if [ "$fuzz_seconds" -gt 0 ]; then
    for target in $(cargo fuzz list --fuzz-dir fuzz); do
        echo "--- fuzz $target for ${fuzz_seconds}s"
        mkdir -p "fuzz/corpus/$target"
        log="target/fuzz-$target.log"
        mkdir -p target
        if ! cargo fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
            -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
            tail -n 60 "$log"
            echo "fuzz target $target failed"
            exit 1
        fi
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | tr '\n' ' '; echo
    done
fi
unset RUSTC_BOOTSTRAP

step "summary"
passed=$(grep -oE 'test result: ok\. [0-9]+ passed' target/test.log | awk '{s+=$4} END {print s+0}')
echo "fuzz targets: $(cargo fuzz list --fuzz-dir fuzz | wc -l) built, each run ${fuzz_seconds}s without a crash"
echo "browser end-to-end: $e2e_passed passed"
echo "tests: $((passed + e2e_passed)) passed, 0 failed"
