#!/usr/bin/env bash
# Makes sure Postgres, Redis, NATS (with JetStream) and mailpit (SMTP) answer
# on 127.0.0.1 for the tests: uses the ones already running, else installs
# Postgres and Redis with apt-get (Debian) and starts them, and starts NATS
# and mailpit from the binaries built from their Go modules (bin/nats-server
# and bin/mailpit, made by `make services`). Fails — never skips — when it
# cannot.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
REDIS_PORT=6379

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
	log "installing $*"
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
	if port_open "$PGPORT"; then
		log "postgres answers on $PGHOST:$PGPORT"
	else
		if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
			apt_install postgresql
		fi
		local ver
		ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
		if [ -z "$ver" ]; then
			ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
			sudo_ pg_createcluster "$ver" main >/dev/null
		fi
		# tests connect as postgres over TCP without a password
		local hba="/etc/postgresql/$ver/main/pg_hba.conf"
		if ! grep -q "erpgate-test" "$hba"; then
			sudo_ sed -i '1i host all all 127.0.0.1/32 trust # erpgate-test\nhost all all ::1/128 trust # erpgate-test' "$hba"
		fi
		log "starting postgres $ver"
		sudo_ pg_ctlcluster --skip-systemctl-redirect "$ver" main start || sudo_ pg_ctlcluster "$ver" main start
		for _ in $(seq 1 60); do port_open "$PGPORT" && break; sleep 0.5; done
		port_open "$PGPORT" || { log "postgres did not start"; exit 1; }
	fi
	# the maintenance database the tests create theirs from
	if command -v psql >/dev/null; then
		if ! psql -h "$PGHOST" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1; then
			psql -h "$PGHOST" -U postgres -d postgres -qc "CREATE DATABASE test" >/dev/null
		fi
	fi
}

ensure_redis() {
	# the tests also run redis-server processes of their own (internal/redisproc,
	# the six-node cluster of internal/redisclustertest, made with redis-cli)
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		apt_install redis-server redis-tools
	fi
	if port_open "$REDIS_PORT"; then
		log "redis answers on 127.0.0.1:$REDIS_PORT"
		return
	fi
	log "starting redis"
	sudo_ mkdir -p /var/lib/redis /var/log/redis
	sudo_ redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/erpgate-test.log
	for _ in $(seq 1 40); do port_open "$REDIS_PORT" && break; sleep 0.25; done
	port_open "$REDIS_PORT" || { log "redis did not start"; exit 1; }
}

NATS_PORT=4222

ensure_nats() {
	if port_open "$NATS_PORT"; then
		log "nats answers on 127.0.0.1:$NATS_PORT"
		return
	fi
	local bin="${NATS_SERVER_BIN:-bin/nats-server}"
	[ -x "$bin" ] || { log "no $bin: run make services"; exit 1; }
	log "starting nats-server with JetStream"
	mkdir -p /tmp/erpgate-nats
	nohup "$bin" -a 127.0.0.1 -p "$NATS_PORT" -js -sd /tmp/erpgate-nats >/tmp/erpgate-nats/server.log 2>&1 &
	for _ in $(seq 1 40); do port_open "$NATS_PORT" && break; sleep 0.25; done
	port_open "$NATS_PORT" || { log "nats did not start"; exit 1; }
}

# mailpit: the SMTP server of the mail tests (magic links, email codes),
# SMTP on 1025 (any or no credentials accepted, PLAIN allowed without TLS),
# its HTTP API on 8025, where the tests read what was sent.
MAILPIT_SMTP_PORT=1025
MAILPIT_HTTP_PORT=8025

ensure_mailpit() {
	if port_open "$MAILPIT_SMTP_PORT"; then
		log "mailpit (smtp) answers on 127.0.0.1:$MAILPIT_SMTP_PORT"
		return
	fi
	local bin="${MAILPIT_BIN:-bin/mailpit}"
	[ -x "$bin" ] || { log "no $bin: run make services"; exit 1; }
	log "starting mailpit"
	mkdir -p /tmp/erpgate-mailpit
	nohup "$bin" --smtp "127.0.0.1:$MAILPIT_SMTP_PORT" --listen "127.0.0.1:$MAILPIT_HTTP_PORT" \
		--smtp-auth-accept-any --smtp-auth-allow-insecure --smtp-disable-rdns --max 20000 \
		--database /tmp/erpgate-mailpit/mailpit.db >/tmp/erpgate-mailpit/server.log 2>&1 &
	for _ in $(seq 1 40); do port_open "$MAILPIT_SMTP_PORT" && port_open "$MAILPIT_HTTP_PORT" && break; sleep 0.25; done
	port_open "$MAILPIT_SMTP_PORT" && port_open "$MAILPIT_HTTP_PORT" || { log "mailpit did not start"; exit 1; }
}

ensure_postgres
ensure_redis
ensure_nats
ensure_mailpit
