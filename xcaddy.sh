#!/usr/bin/env bash
# Builds the erpgate binary with xcaddy: Caddy, the erpgate modules from this
# checkout, and any extra plugins you pass, e.g.
#
#   ./xcaddy.sh --with github.com/caddy-dns/cloudflare@v0.2.1
#
# Output: ./bin/gateway-xcaddy (override with --output FILE).
# xcaddy is pinned as a Go tool in go.mod (`go tool xcaddy`).
set -euo pipefail
cd "$(dirname "$0")"

caddy_version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
output=bin/gateway-xcaddy
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--output) output=$2; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
mkdir -p "$(dirname "$output")"

# The module proxy answers our own (unpublished) module path with a refusal
# instead of "not found", which stops the build; "|off" lets that refusal
# fall through to the local replacement xcaddy sets up for --with …=.
first_proxy=$(go env GOPROXY | cut -d, -f1)
export GOPROXY="${first_proxy}|off"
export GONOSUMDB="github.com/erpgate/erpgate${GONOSUMDB:+,$GONOSUMDB}"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

exec go tool xcaddy build "$caddy_version" \
	--output "$output" \
	--with github.com/erpgate/erpgate="$PWD" \
	${args[@]+"${args[@]}"}
