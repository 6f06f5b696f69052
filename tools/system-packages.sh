#!/bin/sh
# The Debian packages some tests need, installed when this machine lets us (root, or sudo
# without a password, and apt-get); otherwise one line says what to install and those tests
# skip (with CI=true they fail instead: CI must not pass by skipping). `make test` and so
# `.ci/run` call this first; SYSTEM_PACKAGES=no leaves the machine alone.
#   chromium              tests that open reports in a real headless browser
#   wrk                   the load generator's reference in the api suite
#   valgrind              perflab bench FILE.py --instructions
#   postgresql-15-hypopg  notebook 08's tests (a scratch PostgreSQL 15 with HypoPG)
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
[ -e /usr/lib/postgresql/15/lib/hypopg.so ] || missing="$missing postgresql-15-hypopg"
[ -n "$missing" ] || exit 0

skip() {
    echo "system-packages: not installed:$missing ($1); the tests that need them will skip." \
        "Install with: sudo apt-get install$missing"
    exit 0
}
[ "${SYSTEM_PACKAGES:-yes}" = no ] && skip "SYSTEM_PACKAGES=no"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get on this machine"
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
else
    skip "not root and no password-less sudo"
fi
echo "system-packages: installing$missing (apt-get)"
# shellcheck disable=SC2086
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing; } >/dev/null; then
    skip "apt-get failed"
fi
