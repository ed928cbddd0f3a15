#!/usr/bin/env bash
# End-to-end tests in a real browser, against a real legacy SIP party:
#   1. controlplane/web/e2e/register.mjs: the web phone page, served by strait, in Debian's headless Chromium
#      (playwright-core) REGISTERs over WS and over WSS (right password: registered; wrong one: 403);
#   2. controlplane/web/e2e/call.mjs --selftest: the SIPp scenarios and the legacy media sockets against each other
#      (no strait), so a failure of step 3 is Strait's, not the harness's;
#   3. controlplane/web/e2e/call.mjs: calls browser <-> legacy (SIPp) through strait, media checked on both sides
#      (getStats() in the browser, packet counts on the legacy side), rejections, no-answer and cancel;
#   4. controlplane/web/e2e/kamailio.mjs --media rtpengine: Kamailio (websocket, registrar, nathelper, rtpengine
#      module; controlplane/web/e2e/kamailio/kamailio.cfg) carries browser <-> SIPp calls with Debian's rtpengine as
#      its media proxy, so a failure of step 5 is Strait's, not the script's or the harness's;
#   5. controlplane/web/e2e/kamailio.mjs: the same with Kamailio's rtpengine module pointed at Strait's ng port
#      (media both ways, and after each call Kamailio's delete leaves Strait holding nothing).
# Usage (fresh Debian 12, as root):  ./scripts/e2e.sh
# Runs inside a private network namespace whose only interface is loopback (DESIGN §5), so Chromium sees no
# other interface and the test never touches the host's ports. Exits non-zero if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

strait_apt_install "${STRAIT_APT_BUILD[@]}" "${STRAIT_APT_TEST[@]}" "${STRAIT_APT_E2E[@]}"
strait_rust
# The bundle before cargo: strait embeds controlplane/web/build/jssip.js.
strait_web_bundle

cargo build -p strait -p strait-dataplane
# strait starts the data plane found beside it; call.mjs uses strait-dpctl from there too.
export STRAIT_BIN="$PWD/target/debug/strait"

exec unshare --net -- bash -c '
    ip link set lo up
    status=0
    node controlplane/web/e2e/register.mjs || status=1
    node controlplane/web/e2e/call.mjs --selftest || status=1
    node controlplane/web/e2e/call.mjs || status=1
    node controlplane/web/e2e/kamailio.mjs --media rtpengine || status=1
    node controlplane/web/e2e/kamailio.mjs || status=1
    exit $status
'
