#!/usr/bin/env bash
# test_broker.sh - run test_broker.py (broker + fake worker + Python client)
# against a private PostgreSQL. Skips (77) without PostgreSQL or without a
# Python that has pyzmq and msgpack.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: test_broker.sh BUILD_DIR}
source "$here/pg_test_env.sh"
py=
for cand in /usr/bin/python3 python3; do
    if "$cand" -c "import zmq, msgpack" 2>/dev/null; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with pyzmq and msgpack"; exit 77; }
tmp=$(mktemp -d /tmp/ns-test-broker-XXXXXX)
chmod 755 "$tmp" # the server may run as nobody (when we are root)
trap 'ns_pg_stop "$tmp/pg"; if [ "${rc:-1}" = 0 ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi' EXIT
ns_pg_start "$tmp/pg"; st=$?
[ $st = 0 ] || exit $st
NS_BUILD_DIR=$build NS_SOURCE_DIR=${NS_SOURCE_DIR:-$here/../..} NS_TEST_TMP=$tmp "$py" "$here/test_broker.py"
rc=$?
if [ $rc != 0 ]; then tail -30 "$tmp"/broker.log; fi
exit $rc
