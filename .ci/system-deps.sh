#!/usr/bin/env bash
# Make sure the system programs the test suite needs are installed (Debian/Ubuntu, apt).
#
# Idempotent and quick when everything is present: no apt-get call, one line of output.
# As root it installs what is missing; otherwise it prints the command to run and exits 0,
# so that the tests needing the program skip (or fail, under CI=true) with the same hint.
set -euo pipefail

# One entry per dependency: "program to look for on PATH|Debian packages that provide it".
DEPENDENCIES=(
    "soffice|libreoffice-calc-nogui"
    "pg_ctlcluster|postgresql"
    "node|nodejs"
    "npm|npm"  # npm ci of the pinned test packages: the add-in tooling, the OpenID provider of the sign-on tests
    "chromium|chromium"
    "redis-server|redis-server"
)

# Services that must be running once installed; called on every run, so keep it cheap.
# PostgreSQL: the tests connect to 127.0.0.1:5432 as postgres and create their own databases.
# Redis: the tests start private servers with the redis-server program; the machine's own on
# 127.0.0.1:6379 is started too, for the demo and a developer's PLANSHEET_REDIS_URL.
ensure_running() {
    ensure_redis
    ensure_postgres
}

ensure_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "system-deps: Redis is not running on 127.0.0.1:6379; start it (as root: bash .ci/system-deps.sh)" >&2
        return 0
    fi
    echo "system-deps: starting Redis on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 30); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "system-deps: Redis did not start" >&2
    return 1
}

ensure_postgres() {
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || [ ! -d /etc/postgresql ]; then
        echo "system-deps: PostgreSQL is not running on 127.0.0.1:5432; start it (as root: bash .ci/system-deps.sh)" >&2
        return 0
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -n "${PLANSHEET_FRESH_POSTGRES:-}" ]; then
        # A server this script just installed: let local test connections in without a password.
        sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
            "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    echo "system-deps: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main restart
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && return 0
        sleep 1
    done
    echo "system-deps: PostgreSQL did not start" >&2
    return 1
}

missing_programs=()
missing_packages=()
for entry in "${DEPENDENCIES[@]}"; do
    program="${entry%%|*}"
    packages="${entry#*|}"
    if ! command -v "$program" >/dev/null 2>&1; then
        missing_programs+=("$program")
        read -r -a words <<<"$packages"
        missing_packages+=("${words[@]}")
    fi
done

programs=()
for entry in "${DEPENDENCIES[@]}"; do programs+=("${entry%%|*}"); done

if [ "${#missing_packages[@]}" -eq 0 ]; then
    ensure_running
    echo "system-deps: all present (${programs[*]})"
    exit 0
fi

install_command="apt-get install -y --no-install-recommends ${missing_packages[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${missing_programs[*]}; install with: sudo $install_command" >&2
    echo "system-deps: tests that need them will be skipped (or fail when CI=true)" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing_packages[@]}"
}
# Refresh the package lists only when there are none yet, or when installing from the old ones fails.
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    echo "system-deps: no package lists yet; running apt-get update"
    apt-get update -qq
fi
echo "system-deps: installing ${missing_packages[*]} (for ${missing_programs[*]})"
case " ${missing_programs[*]} " in *" pg_ctlcluster "*) export PLANSHEET_FRESH_POSTGRES=1 ;; esac
if ! apt_install; then
    echo "system-deps: install failed; refreshing package lists and trying again"
    apt-get update -qq
    apt_install
fi

for program in "${missing_programs[@]}"; do
    if ! command -v "$program" >/dev/null 2>&1; then
        echo "system-deps: $program is still missing after installing ${missing_packages[*]}" >&2
        exit 1
    fi
done
ensure_running
echo "system-deps: installed ${missing_packages[*]}"
