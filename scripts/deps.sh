#!/usr/bin/env bash
# Installs what building and testing Strait needs on Debian 12 (run as root).
# Sourced by run.sh and test.sh; safe to run again (it only installs what is missing).
set -euo pipefail

STRAIT_APT_BUILD=(build-essential pkg-config cmake libssl-dev ca-certificates curl procps)
STRAIT_APT_TEST=(libsrtp2-dev libclang-dev clang python3 openssl rtpengine-daemon iproute2)
# Browser end-to-end (scripts/e2e.sh): Chromium and SIPp as the legacy party (`ip`, from iproute2, is in the test
# list: the loadtest integration test uses a private namespace too); Kamailio with its WebSocket modules as the SIP
# proxy in front of Strait's ng endpoint (its rtpengine, nathelper, registrar and xhttp modules are in `kamailio`).
STRAIT_APT_E2E=(chromium sip-tester kamailio kamailio-websocket-modules)

strait_apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

strait_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        # Debian 12's own rustc (1.63) is too old for the dependencies: use rustup's stable toolchain.
        echo "==> installing the Rust toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
            --component clippy,rustfmt
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
}

# Builds the web phone's JsSIP bundle (controlplane/web/build/jssip.js), which the strait binary embeds: Node.js and
# npm from Debian when node is missing; `npm ci` when node_modules is missing or older than package-lock.json; `npm
# run build` when the bundle is missing or older than package-lock.json.
strait_web_bundle() {
    command -v node >/dev/null 2>&1 || strait_apt_install nodejs npm
    (
        cd "$(dirname "${BASH_SOURCE[0]}")/../controlplane/web"
        if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
            npm ci --no-audit --no-fund
        fi
        if [ ! -s build/jssip.js ] || [ package-lock.json -nt build/jssip.js ]; then
            npm run build
        fi
    )
}
