#!/usr/bin/env bash
# Build the two service images with docker or podman, tagged from the trained artifacts.
#
#   scripts/build-images.sh                 # train if needed, prepare the contexts, build both
#   scripts/build-images.sh --context-only  # only prepare models/*/ (artifacts, wheel), e.g. for s2i
#
# Environment: BASE_IMAGE (python:3.11-slim), LOANXAI_PYTHON (.venv/bin/python), LOANXAI_BUILD_ARGS
# (extra options for `build`, e.g. "--isolation chroot --network host" from podman-sandbox.sh).
# Prints one line per image: "<service> <image reference>".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
python=${LOANXAI_PYTHON:-$root/.venv/bin/python}
base_image=${BASE_IMAGE:-python:3.11-slim}
[ -x "$python" ] || { echo "error: $python not found: run 'make venv' first" >&2; exit 1; }

"$python" -m loanxai.train --if-missing >&2

# the package index's CA, if pip here uses one: copied into the build stage only
ca=${PIP_CERT:-$("$python" -m pip config get global.cert 2>/dev/null || true)}
for service in loanclassifier explainer; do
  context="$root/models/$service"
  rm -rf "$context/wheels"
  "$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$context/wheels" "$root" >&2
  if [ -n "$ca" ] && [ -f "$ca" ]; then cp "$ca" "$context/build-ca.crt"; else : > "$context/build-ca.crt"; fi
done
[ "${1:-}" = "--context-only" ] && exit 0

tool=$(container_tool)
# shellcheck disable=SC2206  # LOANXAI_BUILD_ARGS is a list of options, split on purpose
extra=(${LOANXAI_BUILD_ARGS:-})
while read -r service reference; do
  # fully qualified, so that docker, podman and a kind node all resolve the same name
  echo "building docker.io/$reference with $tool (base $base_image)" >&2
  "$tool" build "${extra[@]}" --build-arg "BASE_IMAGE=$base_image" -t "docker.io/$reference" "$root/models/$service" >&2
  echo "$service docker.io/$reference"
done < <("$python" -m loanxai.images)
