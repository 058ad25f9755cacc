#!/usr/bin/env bash
# The dashboard's browser test (tests/browser/): headless Chromium driven by Playwright, against
# `roomflow dashboard` serving a replay made for the test. Installs what it needs: Debian's
# chromium (with apt-get, when run as root) if there is no Chromium at $CHROMIUM
# (/usr/bin/chromium), and playwright-core from npm into tests/browser/node_modules (pinned by
# package-lock.json; Playwright's own browser download is never used). Where it cannot, it says
# so loudly and skips (exit 0), or fails when ROOMFLOW_REQUIRE_BROWSER=1.
# The screenshots it takes go to target/screenshots/ (ROOMFLOW_SCREENSHOTS to change).
set -euo pipefail
cd "$(dirname "$0")/.."

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

skip() {
  echo "== browser test SKIPPED: $*" >&2
  echo "   It needs Node.js 18+ with npm and a Chromium (Debian: apt-get install chromium;" >&2
  echo "   or set CHROMIUM to one)." >&2
  if [[ "${ROOMFLOW_REQUIRE_BROWSER:-0}" == 1 ]]; then exit 1; fi
  exit 0
}

command -v node >/dev/null || skip "no node on PATH"
command -v npm >/dev/null || skip "no npm on PATH"
if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing Debian's chromium for the browser test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
      || skip "apt-get could not install chromium"
  else
    skip "no Chromium at $CHROMIUM, and it cannot be installed here (needs root and apt-get)"
  fi
fi

echo "== browser test (Playwright, $("$CHROMIUM" --version 2>/dev/null | head -1))"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
export ROOMFLOW_BIN="${ROOMFLOW_BIN:-$PWD/target/debug/roomflow}"
if [[ ! -x "$ROOMFLOW_BIN" ]]; then
  cargo build --locked
fi
node --test tests/browser/dashboard.test.mjs
