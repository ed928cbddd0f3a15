#!/usr/bin/env bash
# End-to-end test in a real browser: JsSIP on the web phone page, in Debian's headless Chromium driven by
# playwright-core, REGISTERs to Strait over WS (right password: registered; wrong one: 403).
# Usage (fresh Debian 12, as root):  ./scripts/e2e.sh
# Runs inside a private network namespace whose only interface is loopback (DESIGN §5), so Chromium sees no
# other interface and the test never touches the host's ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

apt_e2e=(chromium iproute2)
command -v node >/dev/null 2>&1 || apt_e2e+=(nodejs npm)
strait_apt_install "${STRAIT_APT_BUILD[@]}" "${STRAIT_APT_TEST[@]}" "${apt_e2e[@]}"
strait_rust

(
    cd controlplane/web
    [ -d node_modules/jssip ] && [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
    [ -s build/jssip.js ] || npm run build
)

cargo build -p strait -p strait-dataplane
# strait starts the data plane found beside it.
export STRAIT_BIN="$PWD/target/debug/strait"

exec unshare --net -- bash -c 'ip link set lo up && exec node controlplane/web/e2e/register.mjs'
