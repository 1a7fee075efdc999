#!/usr/bin/env bash
# Makes sure wrk (the load generator `make bench` prefers) is installed;
# installs Debian's package when missing. Without it the benchmark falls
# back to its own Go load generator, which competes harder for the CPU.
set -euo pipefail

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v wrk >/dev/null; then
	exit 0
fi
echo "wrk: installing (Debian package)" >&2
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null || echo "wrk: not installed; the benchmark uses its Go load generator" >&2
