#!/usr/bin/env bash
# Builds Strait in release mode and starts it on its embedded default configuration.
# Usage (fresh Debian 12, as root):  ./scripts/run.sh [extra strait arguments]
# The web phone page (served on the WS/WSS listeners) is embedded in the binary, so its JsSIP bundle is built with
# npm first (Node.js and npm come from Debian when node is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
strait_apt_install "${STRAIT_APT_BUILD[@]}"
strait_rust
strait_web_bundle
cargo build --release --locked -p strait -p strait-dataplane
exec target/release/strait "$@"
