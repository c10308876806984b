#!/bin/sh
# Runs the peers harness (../shared/bench/peers, read-only) with pushhub as one more target:
# copies the harness to a temp dir, installs test/bench/peers/pushhub.mjs as targets/pushhub.mjs,
# npm installs, runs. Arguments go to run.mjs, e.g. --quick or --only=mosquitto,nats-js,grpc,pushhub.
# Needs: apt-get install -y mosquitto nats-server
set -eu
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
SRC=${PEERS_SRC:-$REPO/../shared/bench/peers}
DIR=$(mktemp -d /tmp/pushhub-peers-XXXXXX)
cp -r "$SRC" "$DIR/"
cp "$REPO/test/bench/peers/pushhub.mjs" "$DIR/peers/targets/pushhub.mjs"
sed -i "s/'grpc'\];/'grpc', 'pushhub'];/" "$DIR/peers/targets/index.mjs"
grep -q "'pushhub'" "$DIR/peers/targets/index.mjs" || { echo "could not add pushhub to targets/index.mjs" >&2; exit 1; }
cd "$DIR/peers"
npm install --no-audit --no-fund >/dev/null
echo "peers harness in $DIR/peers" >&2
PUSHHUB_REPO=$REPO node run.mjs "$@"
echo "results: $DIR/peers/results" >&2
