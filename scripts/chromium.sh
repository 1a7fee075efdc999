#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed and prints its path on
# stdout. The docs page test renders /api/v1/docs in /usr/bin/chromium; the
# sign-in page tests (e2e/browser) take ERP_TEST_CHROMIUM, else the first
# chromium on PATH. Without ERP_TEST_CHROMIUM and /usr/bin/chromium, installs
# Debian's `chromium` package
# with apt-get (through sudo when not root). Idempotent; fails — never
# skips — when it cannot install.
set -euo pipefail

log() { echo "chromium: $*" >&2; }

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

found() {
	log "$("$1" --version 2>/dev/null || echo present) at $1"
	echo "$1"
	exit 0
}

if [ -n "${ERP_TEST_CHROMIUM:-}" ]; then
	if [ -x "$ERP_TEST_CHROMIUM" ]; then
		found "$ERP_TEST_CHROMIUM"
	fi
	log "ERP_TEST_CHROMIUM=$ERP_TEST_CHROMIUM is not an executable"
	exit 1
fi
# Debian's path: the docs page test needs it there, so another chromium on
# PATH does not do.
if [ -x /usr/bin/chromium ]; then
	found /usr/bin/chromium
fi

log "installing chromium (Debian package)"
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ ! -x /usr/bin/chromium ]; then
	log "apt-get finished but /usr/bin/chromium is missing"
	exit 1
fi
log "$(/usr/bin/chromium --version 2>/dev/null) installed"
echo /usr/bin/chromium
