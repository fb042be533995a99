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
