#!/usr/bin/env bash
# Source this on a machine without a Docker engine (like our CI) to use podman/buildah rootful
# with settings that work there: vfs storage, runc, cgroupfs, host network, storage kept in
# ${LOANXAI_PODMAN_ROOT:-<repo>/.podman}. A normal Docker or podman host does not need it.
# shellcheck disable=SC2034  # the variables are for whoever sources this file
_root=${LOANXAI_PODMAN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.podman}
mkdir -p "$_root/run" "$_root/storage"
cat > "$_root/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat > "$_root/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$_root/run"
graphroot = "$_root/storage"
CONF
export CONTAINERS_CONF="$_root/containers.conf" CONTAINERS_STORAGE_CONF="$_root/storage.conf"
# builds here run without namespaces of their own and reach the package registry through the host;
# one layer per stage, not per instruction: vfs stores each layer as a whole copy of the image
export LOANXAI_BUILD_ARGS="--isolation chroot --network host --layers=false"
unset _root
