#!/usr/bin/env bash
# Build localhost/python-base:bookworm (Debian bookworm, Python 3.11, pip, venv) with debootstrap,
# for machines that cannot pull python:3.11-slim from a registry. Idempotent: skips if present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
require podman debootstrap

image=${BASE_IMAGE:-localhost/python-base:bookworm}
if podman image exists "$image"; then
  echo "base image $image already present"
  exit 0
fi
mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm from $mirror into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# mktemp made the folder 0700; it becomes the image's "/", which every user must traverse
chmod 0755 "$rootfs"
tar -C "$rootfs" -c . | podman import --change 'CMD ["/usr/bin/python3"]' - "$image"
echo "built $image"
