#!/usr/bin/env bash
# Builds Strait in release mode and starts it on its embedded default configuration.
# Usage (fresh Debian 12, as root):  ./scripts/run.sh [extra strait arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
strait_apt_install "${STRAIT_APT_BUILD[@]}"
strait_rust
cargo build --release --locked -p strait -p strait-dataplane
exec target/release/strait "$@"
