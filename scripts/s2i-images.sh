#!/usr/bin/env bash
# Build the two service images with s2i (source-to-image) instead of their Dockerfiles: first the
# project's builder image from s2i/ (Python 3.11 on BASE_IMAGE, the scripts in /usr/libexec/s2i),
# then each service from its folder under models/ with `s2i build --as-dockerfile` and a build of
# the generated Dockerfile by docker or podman: no Docker engine needed. The same image references
# and labels as scripts/build-images.sh, so deploy/ takes either.
#
#   scripts/s2i-images.sh            # prepare the contexts (train if needed, the fairness gate, the wheel), build
#   scripts/s2i-images.sh --dry-run  # prepare the contexts, print the s2i and build commands
#
# The builder is built only when missing: its tag is a digest of s2i/ and of the base image.
# Environment: as build-images.sh (BASE_IMAGE, LOANXAI_PYTHON, LOANXAI_MODELS_DIR,
# LOANXAI_BUILD_ARGS from podman-sandbox.sh), and S2I (the s2i binary; default: s2i on PATH, else
# the one scripts/cluster-tools.sh built), S2I_BUILDER (the builder's repository,
# localhost/loanxai/s2i-python311).
# Prints one line per image: "<service> <image reference>".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
python=${LOANXAI_PYTHON:-$root/.venv/bin/python}
base_image=${BASE_IMAGE:-python:3.11-slim}
models=${LOANXAI_MODELS_DIR:-$root/models}
mode=${1:-build}
tools_bin=${LOANXAI_CLUSTER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/loanxai/cluster-tools}/bin
s2i=${S2I:-s2i}
if [ -z "${S2I:-}" ] && ! command -v s2i >/dev/null 2>&1; then s2i=$tools_bin/s2i; fi
command -v "$s2i" >/dev/null 2>&1 || { echo "error: no s2i binary ($s2i): scripts/cluster-tools.sh builds it" >&2; exit 1; }
dirs=(--artifacts "$models/loanclassifier/artifacts" --explainer-artifacts "$models/explainer/artifacts")

# train if needed, the fairness gate, the wheel and the CA in each folder: as for the Dockerfiles
"$root/scripts/build-images.sh" --context-only >&2
label_lines=$("$python" -m loanxai images --labels "${dirs[@]}")
# the services only: the reviewer console is no Seldon microservice, its Dockerfile builds it (build-images.sh)
references=$("$python" -m loanxai images "${dirs[@]}" | grep -v '^console ')
labels=()
while IFS= read -r label; do labels+=(--label "$label"); done <<< "$label_lines"
if [ "$mode" = --dry-run ]; then tool=docker; else tool=$(container_tool); fi
# shellcheck disable=SC2206  # LOANXAI_BUILD_ARGS is a list of options, split on purpose
extra=(${LOANXAI_BUILD_ARGS:-})
run() {
  if [ "$mode" = --dry-run ]; then printf '%q ' "$@" >&2; echo >&2; else "$@" >&2; fi
}

# the builder, tagged with a digest of s2i/ and the base image: built only when that tag is missing
probe=$(container_tool 2>/dev/null || true)  # what looks at the local images, even for --dry-run
base_id=$( { [ -n "$probe" ] && "$probe" image inspect --format '{{.Id}}' "$base_image" 2>/dev/null; } || echo "$base_image")
digest=$( (cd "$root/s2i" && find . -type f | LC_ALL=C sort | xargs sha256sum; echo "$base_id") | sha256sum | cut -c1-12)
builder=${S2I_BUILDER:-localhost/loanxai/s2i-python311}:$digest
if [ -n "$probe" ] && "$probe" image inspect "$builder" >/dev/null 2>&1; then
  echo "s2i builder $builder already present" >&2
else
  echo "building the s2i builder $builder with $tool (base $base_image)" >&2
  run "$tool" build "${extra[@]}" --build-arg "BASE_IMAGE=$base_image" -t "$builder" "$root/s2i"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
while read -r service reference; do
  # --copy: the folder as it is (artifacts and wheels are not committed), never a git clone;
  # --assemble-user: s2i cannot read the builder's labels without a Docker engine
  run "$s2i" build --copy --assemble-user 8888 --exclude '(^|/)(\.git|__pycache__)(/|$)' \
    --as-dockerfile "$work/$service/Dockerfile" "$models/$service" "$builder" "docker.io/$reference"
  # s2i writes `CMD /usr/libexec/s2i/run`, a shell form: /bin/sh would stay PID 1 and never pass
  # SIGTERM on (no drain; killed after the grace period). The exec form, as the Dockerfiles' CMD
  # and a Docker-engine s2i build give, makes the server PID 1
  run sed -i -E 's|^CMD (/[^ "]+)$|CMD ["\1"]|' "$work/$service/Dockerfile"
  if [ "$mode" != --dry-run ] && ! grep -q '^CMD \["' "$work/$service/Dockerfile"; then
    echo "error: no CMD of the exec form in s2i's Dockerfile ($work/$service/Dockerfile)" >&2
    exit 1
  fi
done <<< "$references"
# every Dockerfile written before any build starts: nothing can stop the script with a build running
while read -r service reference; do
  if [ "$mode" = --dry-run ]; then
    run "$tool" build "${extra[@]}" "${labels[@]}" -t "docker.io/$reference" "$work/$service"
  else
    build_started "docker.io/$reference from s2i's Dockerfile" "$work/$service.log" \
      "$tool" build "${extra[@]}" "${labels[@]}" -t "docker.io/$reference" "$work/$service"
  fi
  echo "$service docker.io/$reference"
done <<< "$references"
builds_finished
