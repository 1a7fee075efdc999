#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is installed at /usr/bin/chromium
# (the docs page test renders /api/v1/docs in it). Installs it with apt-get
# when missing; fails — never skips — when it cannot.
set -euo pipefail

log() { echo "chromium: $*" >&2; }

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x /usr/bin/chromium ]; then
	log "$(/usr/bin/chromium --version 2>/dev/null || echo present) at /usr/bin/chromium"
	exit 0
fi
log "installing chromium (Debian package)"
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ ! -x /usr/bin/chromium ]; then
	log "apt-get finished but /usr/bin/chromium is missing"
	exit 1
fi
log "$(/usr/bin/chromium --version 2>/dev/null) installed"
