#!/usr/bin/env bash
# Makes sure promtool is installed and prints its path on stdout. The rules
# test (deploy/prometheus) runs `promtool check rules` on alerts.yml. Takes
# ERP_TEST_PROMTOOL, else promtool on PATH; otherwise installs Debian's
# `prometheus` package (which carries promtool) with apt-get, through sudo
# when not root, without starting its service. Idempotent; fails — never
# skips — when it cannot install.
set -euo pipefail

log() { echo "promtool: $*" >&2; }

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

found() {
	log "$("$1" --version 2>&1 | head -1) at $1"
	echo "$1"
	exit 0
}

if [ -n "${ERP_TEST_PROMTOOL:-}" ]; then
	if [ -x "$ERP_TEST_PROMTOOL" ]; then
		found "$ERP_TEST_PROMTOOL"
	fi
	log "ERP_TEST_PROMTOOL=$ERP_TEST_PROMTOOL is not an executable"
	exit 1
fi
if p=$(command -v promtool); then
	found "$p"
fi

log "installing prometheus (Debian package, for promtool)"
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# policy-rc.d 101: the package's server is not started, only installed
sudo_ sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d.promtool && chmod +x /usr/sbin/policy-rc.d.promtool'
if [ ! -e /usr/sbin/policy-rc.d ]; then
	sudo_ mv /usr/sbin/policy-rc.d.promtool /usr/sbin/policy-rc.d
	trap 'sudo_ rm -f /usr/sbin/policy-rc.d' EXIT
else
	sudo_ rm -f /usr/sbin/policy-rc.d.promtool
fi
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if ! p=$(command -v promtool); then
	log "apt-get finished but promtool is missing"
	exit 1
fi
found "$p"
