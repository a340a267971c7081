#!/usr/bin/env bash
# `make demo`: the main job.  Until the services land (issue 9 brings the
# simulator and the operation's report), it starts the embedded stack on its
# own ports, shows what is up (brokers, topics with their partitions, the
# stores), and stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANNOT_RUN_DIR="$root/run/demo"
export ANNOT_PG_PORT=${ANNOT_DEMO_PG_PORT:-55452}
export ANNOT_REDIS_PORT=${ANNOT_DEMO_REDIS_PORT:-56399}
trap 'tools/stack/down.sh' EXIT
tools/stack/up.sh
# shellcheck disable=SC1091
. "$ANNOT_RUN_DIR/devstack.env"

echo
echo "== annotctl status"
bin/annotctl status
echo
echo "== annotctl topics list"
bin/annotctl topics list
