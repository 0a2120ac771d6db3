#!/usr/bin/env bash
# Build the stand-in engine image and load it into a local cluster.
#
#   engine-image/build-and-load.sh kind [CLUSTER]   # kind load docker-image (default: kind)
#   engine-image/build-and-load.sh k0s              # k0s ctr images import (run on the node)
#   engine-image/build-and-load.sh build            # only build
#
# IMAGE (default pipedreamer-engine:standin) names the image; give the same name to
# pdwatch with --image or in .pipedreamer/base-image.txt.
set -euo pipefail
IMAGE="${IMAGE:-pipedreamer-engine:standin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
target="${1:-build}"

docker build -t "$IMAGE" "$HERE"

case "$target" in
  build) ;;
  kind)
    kind load docker-image "$IMAGE" --name "${2:-kind}"
    ;;
  k0s)
    archive="$(mktemp -d)/engine.tar"
    docker save "$IMAGE" -o "$archive"
    sudo k0s ctr images import "$archive"
    rm -f "$archive"
    ;;
  *)
    echo "usage: $0 build | kind [CLUSTER] | k0s" >&2
    exit 2
    ;;
esac
echo "$IMAGE is ready; deploy with: pdwatch DIR --image $IMAGE"
