#!/usr/bin/env bash
# Build the images with docker or podman, tagged from the trained artifacts: the two services' and
# the reviewer console's (which holds the classifier's artifacts, to decide contested decisions again).
#
#   scripts/build-images.sh                 # train if needed, check the gate, prepare the contexts, build all three
#   scripts/build-images.sh --context-only  # only prepare the build contexts (artifacts, wheel), e.g. for s2i
#   scripts/build-images.sh --dry-run       # everything but the build: print the build commands
#
# The fairness gate comes first: artifacts it does not let ship are refused, naming the failed
# step (a screen that flagged with no recorded justification: make train ACCEPT_UNFAIR="reason";
# a less discriminatory alternative passed over); the gate's status and any justification
# become image labels.
# Environment: BASE_IMAGE (python:3.11-slim), LOANXAI_PYTHON (.venv/bin/python), LOANXAI_MODELS_DIR
# (the folder of the build contexts, default models/), LOANXAI_BUILD_ARGS (extra options for
# `build`, e.g. "--isolation chroot --network host" from podman-sandbox.sh).
# Prints one line per image: "<service> <image reference>".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
python=${LOANXAI_PYTHON:-$root/.venv/bin/python}
base_image=${BASE_IMAGE:-python:3.11-slim}
models=${LOANXAI_MODELS_DIR:-$root/models}
mode=${1:-build}
[ -x "$python" ] || { echo "error: $python not found: run 'make venv' first" >&2; exit 1; }
dirs=(--artifacts "$models/loanclassifier/artifacts" --explainer-artifacts "$models/explainer/artifacts")

"$python" -m loanxai train --if-missing "${dirs[@]}" >&2
"$python" -m loanxai gate --artifacts "$models/loanclassifier/artifacts" >&2

# the package index's CA, if pip here uses one: copied into the build stage only
ca=${PIP_CERT:-$("$python" -m pip config get global.cert 2>/dev/null || true)}
for service in loanclassifier explainer console; do
  context="$models/$service"
  rm -rf "$context/wheels"
  "$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$context/wheels" "$root" >&2
  if [ -n "$ca" ] && [ -f "$ca" ]; then cp "$ca" "$context/build-ca.crt"; else : > "$context/build-ca.crt"; fi
done
# the console decides contested decisions again with the model this tag names: its artifacts, copied
rm -rf "$models/console/artifacts"
cp -R "$models/loanclassifier/artifacts" "$models/console/artifacts"
[ "$mode" = --context-only ] && exit 0

# read first, then loop: a failing command stops the script (set -e), as a process substitution would not
label_lines=$("$python" -m loanxai images --labels "${dirs[@]}")
references=$("$python" -m loanxai images "${dirs[@]}")
labels=()
while IFS= read -r label; do labels+=(--label "$label"); done <<< "$label_lines"
if [ "$mode" = --dry-run ]; then tool=docker; else tool=$(container_tool); fi
# shellcheck disable=SC2206  # LOANXAI_BUILD_ARGS is a list of options, split on purpose
extra=(${LOANXAI_BUILD_ARGS:-})
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
while read -r service reference; do
  # fully qualified, so that docker, podman and a kind node all resolve the same name
  command=("$tool" build "${extra[@]}" --build-arg "BASE_IMAGE=$base_image" "${labels[@]}" -t "docker.io/$reference" "$models/$service")
  if [ "$mode" = --dry-run ]; then
    printf '%q ' "${command[@]}" >&2
    echo >&2
  else
    build_started "docker.io/$reference (base $base_image)" "$logs/$service.log" "${command[@]}"
  fi
  echo "$service docker.io/$reference"
done <<< "$references"
builds_finished
