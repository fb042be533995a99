#!/usr/bin/env bash
# Shared helpers for the scripts in this folder; source it, do not run it.

# require TOOL...: stop with a clear message naming each missing tool.
require() {
  local missing=()
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "error: missing tool(s): ${missing[*]}. Install them first (see README, 'Deploy to Kubernetes')." >&2
    exit 1
  fi
}

# container_tool: docker if a Docker engine answers, else podman; stops if neither works.
container_tool() {
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo docker
  elif command -v podman >/dev/null 2>&1; then
    echo podman
  else
    echo "error: neither a running Docker engine nor podman was found" >&2
    exit 1
  fi
}

# debian_mirror: the first Debian archive URL apt is configured with.
debian_mirror() {
  local url
  url=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -n 1 | awk '{print $2}')
  echo "${url:-http://deb.debian.org/debian}"
}

# On kind a key pair of the cluster's own stands in for the lender's identity provider (deploy.sh
# makes it; smoke.sh signs its tokens with it): its folder and the tokens' issuer.
# shellcheck disable=SC2034  # used by the scripts that source this file
KIND_AUTH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.run/kind-auth
# shellcheck disable=SC2034
KIND_ISSUER=loanxai-kind

# build_started IMAGE LOG COMMAND...: start IMAGE's build in the background, its output to LOG.
# The images share no layer but the base, so they build at once: a build's installs are mostly one
# process, and two cores build three images in less time than one after the other.
_builds=()
build_started() {
  local image=$1 log=$2
  shift 2
  echo "building $image with $1 (its output follows when it ends)" >&2
  # its output all in LOG: the caller's stdout (often a pipe read to its end) is not held open
  ( started=$SECONDS
    "$@" > "$log" 2>&1
    echo "built $image in $((SECONDS - started)) s" >> "$log" ) < /dev/null > /dev/null 2>&1 &
  _builds+=("$!|$log")
}

# builds_finished: wait for every build started, print each one's output to stderr in turn, and
# stop naming any that failed.
builds_finished() {
  local entry pid log failed=()
  for entry in "${_builds[@]}"; do
    pid=${entry%%|*} log=${entry#*|}
    wait "$pid" || failed+=("$log")
    cat "$log" >&2
  done
  _builds=()
  if [ ${#failed[@]} -gt 0 ]; then
    echo "error: image build(s) failed, their output above: ${failed[*]}" >&2
    exit 1
  fi
}
