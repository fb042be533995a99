#!/usr/bin/env bash
# Build both images with podman and run them as containers, each in a network namespace of its
# own joined by a veth pair: the explainer calls the classifier at 10.231.0.1, not loopback, as
# it would across pods. Then scripts/smoke.sh runs inside the explainer's namespace.
# Needs root, podman, iproute2, curl; removes every container, namespace and link it made.
# Without a Docker engine (our CI): `source scripts/podman-sandbox.sh` first (make does).
# IMAGE_BUILDER=s2i: the images scripts/s2i-images.sh builds instead of the Dockerfiles' (dockerfile).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require podman ip curl
base=${BASE_IMAGE:-localhost/python-base:bookworm}
if [ "$base" = localhost/python-base:bookworm ]; then
  BASE_IMAGE=$base "$root/scripts/base-image.sh"
fi
case ${IMAGE_BUILDER:-dockerfile} in
  dockerfile) built=$(BASE_IMAGE=$base "$root/scripts/build-images.sh") ;;
  s2i) built=$(BASE_IMAGE=$base "$root/scripts/s2i-images.sh") ;;
  *) echo "error: IMAGE_BUILDER=$IMAGE_BUILDER: dockerfile or s2i" >&2; exit 2 ;;
esac
classifier_image=$(awk '$1 == "loanclassifier" {print $2}' <<< "$built")
explainer_image=$(awk '$1 == "explainer" {print $2}' <<< "$built")
for image in "$classifier_image" "$explainer_image"; do
  echo "image labels of $image: $(podman image inspect --format '{{json .Labels}}' "$image")"
done

id=$$
ns_c=loanxai-c-$id ns_e=loanxai-e-$id
secrets=$(mktemp -d)
cleanup() {
  podman rm -f -t 5 "loanxai-classifier-$id" "loanxai-explainer-$id" >/dev/null 2>&1 || true
  ip netns del "$ns_c" 2>/dev/null || true
  ip netns del "$ns_e" 2>/dev/null || true
  rm -rf "$secrets"
}
trap cleanup EXIT

echo "network namespaces: $ns_c $ns_e"
ip netns add "$ns_c"
ip netns add "$ns_e"
ip link add "lxc$id" type veth peer name "lxe$id"
ip link set "lxc$id" netns "$ns_c"
ip link set "lxe$id" netns "$ns_e"
ip -n "$ns_c" addr add 10.231.0.1/30 dev "lxc$id"
ip -n "$ns_e" addr add 10.231.0.2/30 dev "lxe$id"
for ns in "$ns_c" "$ns_e"; do ip -n "$ns" link set lo up; done
ip -n "$ns_c" link set "lxc$id" up
ip -n "$ns_e" link set "lxe$id" up

# a container may open 1,024 files here (podman-sandbox.sh), fewer than 1,000 connections per worker
# need: the services would refuse to start with the default LOAN_MAX_CONNECTIONS
limits=(-e LOAN_MAX_CONNECTIONS=200)
# the sampling key both services share, as the Secret loan-sampling-key gives it (readable by the containers' uid)
"${LOANXAI_PYTHON:-$root/.venv/bin/python}" -m loanxai.tokens sampling-key --out "$secrets/key" >/dev/null
chmod 0644 "$secrets/key"
limits+=(-v "$secrets/key:/etc/loanxai/sampling/key:ro" -e LOAN_SAMPLING_KEY_FILE=/etc/loanxai/sampling/key)
podman run -d --name "loanxai-classifier-$id" --network "ns:/run/netns/$ns_c" "${limits[@]}" "$classifier_image" >/dev/null
podman run -d --name "loanxai-explainer-$id" --network "ns:/run/netns/$ns_e" "${limits[@]}" \
  -e LOAN_CLASSIFIER_URL=http://10.231.0.1:9000/api/v1.0/predictions "$explainer_image" >/dev/null
echo "classifier container runs as uid $(podman exec "loanxai-classifier-$id" id -u)"

for url in http://10.231.0.1:9000 http://127.0.0.1:9000; do
  for attempt in $(seq 120); do
    ip netns exec "$ns_e" curl -sf -o /dev/null "$url/health/status" && break
    [ "$attempt" -eq 120 ] && { podman logs "loanxai-classifier-$id" | tail -20; podman logs "loanxai-explainer-$id" | tail -20; echo "FAIL: $url not ready" >&2; exit 1; }
    sleep 1
  done
done
ip netns exec "$ns_e" "$root/scripts/smoke.sh" http://10.231.0.1:9000 http://127.0.0.1:9000
echo "records in the classifier container:"
podman exec "loanxai-classifier-$id" python -m loanxai.records list --limit 5
# a graceful stop: SIGTERM reaches the server (PID 1), which drains and exits 0, well within the grace period
for container in "loanxai-explainer-$id" "loanxai-classifier-$id"; do
  podman stop -t 30 "$container" >/dev/null 2>&1
  status=$(podman inspect --format '{{.State.ExitCode}}' "$container")
  [ "$status" = 0 ] || { podman logs "$container" 2>&1 | tail -20; echo "FAIL: $container exited with $status on SIGTERM" >&2; exit 1; }
done
echo "both containers stopped gracefully"
