#!/bin/sh
# The stand-in engine's entrypoint. The root filesystem is read-only and node modules may
# import remote code, which Deno caches: start from the image's cache, copied into /tmp
# (an emptyDir in pdwatch's Deployment), so each new pod starts as the real engine does.
set -eu
export DENO_DIR=/tmp/deno-dir
if [ ! -d "$DENO_DIR" ]; then
  cp -R /engine/deno-dir "$DENO_DIR"
fi
exec deno run --allow-read --allow-net --allow-env /engine/main.ts "$@"
