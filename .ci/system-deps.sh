#!/usr/bin/env bash
# Make sure the system programs the test suite needs are installed (Debian/Ubuntu, apt).
#
# Idempotent and quick when everything is present: no apt-get call, one line of output.
# As root it installs what is missing; otherwise it prints the command to run and exits 0,
# so that the tests needing the program skip (or fail, under CI=true) with the same hint.
set -euo pipefail

# One entry per dependency: "program to look for on PATH|Debian packages that provide it".
# Later: "chromium|chromium", "pg_ctlcluster|postgresql" (then start it in ensure_running),
# "redis-server|redis-server".
DEPENDENCIES=(
    "soffice|libreoffice-calc-nogui"
)

# Services that must be running once installed (none yet); called on every run, so keep it cheap.
ensure_running() {
    :
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
