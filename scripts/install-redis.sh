#!/usr/bin/env bash
# Make sure redis-server is installed, for the cluster tests (tests/test_cluster_redis*.py)
# and for running SMPP1 and SMPP2 as separate processes (docs/cluster.md).
#
# Idempotent and quiet: does nothing when redis-server is already on the PATH
# (or in /usr/bin, where Debian puts it).  Otherwise, when running as root on a
# system with apt-get, installs the Debian package `redis-server` (7.0 on
# Debian 12).  The package's own service is not needed: the tests start their
# own redis-server on a free port.  Exits 0 when redis-server is there
# afterwards, 1 (with one line on stderr) when it is not.
set -u

have_redis() {
    PATH="$PATH:/usr/bin:/usr/sbin:/usr/local/bin" command -v redis-server >/dev/null 2>&1
}

if have_redis; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-redis.sh: redis-server is missing; run as root (or: sudo apt-get install redis-server)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-redis.sh: redis-server is missing and there is no apt-get; install Redis 7 by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
# policy-rc.d 101: the package must not start (and keep running) its own
# server on 6379 inside containers and CI machines
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
if apt-get update -qq >"$log" 2>&1 && apt-get install -y -qq --no-install-recommends redis-server >>"$log" 2>&1; then
    rm -f "$log"
else
    echo "install-redis.sh: apt-get install redis-server failed:" >&2
    tail -n 20 "$log" >&2
    rm -f "$log"
    [ "$made_policy" = 1 ] && rm -f "$policy"
    exit 1
fi
[ "$made_policy" = 1 ] && rm -f "$policy"

if have_redis; then
    exit 0
fi
echo "install-redis.sh: redis-server installed but not found on the PATH" >&2
exit 1
