#!/usr/bin/env bash
# Build the images with podman and run them as containers, each service in a network namespace of
# its own joined by a veth pair: the explainer calls the classifier at 10.231.0.1, not loopback, as
# it would across pods. Then scripts/smoke.sh runs inside the explainer's namespace. The reviewer
# console (Dockerfile builds only: s2i builds the services alone) runs on the classifier's record,
# a folder both mount, with a read-only root as deployed: its pages, and a rejection's notice as PDF.
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
console_image=$(awk '$1 == "console" {print $2}' <<< "$built")
for image in "$classifier_image" "$explainer_image" $console_image; do
  echo "image labels of $image: $(podman image inspect --format '{{json .Labels}}' "$image")"
  echo "image size of $image: $(podman image inspect --format '{{.Size}}' "$image") bytes"
done

id=$$
ns_c=loanxai-c-$id ns_e=loanxai-e-$id
secrets=$(mktemp -d)
# the classifier's record (the images' SQLite file in /var/lib/loanxai), kept here for the console to read
records=$(mktemp -d)
chown 8888 "$records"
cleanup() {
  podman rm -f -t 5 "loanxai-console-$id" "loanxai-classifier-$id" "loanxai-explainer-$id" >/dev/null 2>&1 || true
  ip netns del "$ns_c" 2>/dev/null || true
  ip netns del "$ns_e" 2>/dev/null || true
  rm -rf "$secrets" "$records"
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
"${LOANXAI_PYTHON:-$root/.venv/bin/python}" -m loanxai tokens sampling-key --out "$secrets/key" >/dev/null
chmod 0644 "$secrets/key"
limits+=(-v "$secrets/key:/etc/loanxai/sampling/key:ro" -e LOAN_SAMPLING_KEY_FILE=/etc/loanxai/sampling/key)
# the record brought to the image's migrations first, as the deployments' init container does
# (the classifier only checks it at start)
podman run --rm --network none -v "$records:/var/lib/loanxai" "$classifier_image" python -m loanxai records upgrade
podman run -d --name "loanxai-classifier-$id" --network "ns:/run/netns/$ns_c" "${limits[@]}" \
  -v "$records:/var/lib/loanxai" "$classifier_image" >/dev/null
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
podman exec "loanxai-classifier-$id" python -m loanxai records list --limit 5
containers=("loanxai-explainer-$id" "loanxai-classifier-$id")
if [ -n "$console_image" ]; then
  started=$SECONDS
  # beside the classifier in its namespace, on its record; LOAN_AUTH=off as the services here
  podman run -d --name "loanxai-console-$id" --network "ns:/run/netns/$ns_c" --read-only --tmpfs /tmp \
    -v "$records:/var/lib/loanxai" -e LOAN_AUTH=off -e LOAN_MAX_CONNECTIONS=200 \
    -e "LOAN_CREDITOR=Container Smoke Bank|1 Main Street|Springfield" -e LOAN_CREDITOR_PHONE=555-0199 \
    -e "LOAN_AGENCY=Consumer Financial Protection Bureau|1700 G Street NW|Washington, DC 20552" \
    "$console_image" >/dev/null
  containers=("loanxai-console-$id" "${containers[@]}")
  echo "console container runs as uid $(podman exec "loanxai-console-$id" id -u)"
  # a rejection to give notice of (the example with each category of each categorical input, decided
  # in one batch), and the model's version
  decided=$(ip netns exec "$ns_e" "${LOANXAI_PYTHON:-$root/.venv/bin/python}" - "$id" <<'PY'
import json, sys
import requests
url = "http://10.231.0.1:9000"
version = requests.get(url + "/health/status", timeout=30).json()["jsonData"]["model_version"]
metadata = requests.get(url + "/api/v1.0/metadata", timeout=30).json()
example = json.loads(metadata["custom"]["example_application"])
[schema] = [i["schema"] for i in metadata["inputs"] if i["messagetype"] == "jsonData"]
rows = [example | {name: category} for name, categories in schema["category_map"].items() for category in categories]
ids = [f"console-smoke-{sys.argv[1]}-{row}" for row in range(len(rows))]
answer = requests.post(url + "/api/v1.0/predictions", timeout=60,
                       json={"jsonData": rows, "meta": {"tags": {"application_ids": ids}}})
answer.raise_for_status()
rejected = [i for i, decision in zip(ids, answer.json()["meta"]["tags"]["decisions"]) if decision == "rejected"]
if not rejected:
    sys.exit(f"FAIL: the model approved all {len(rows)} variations of the example: no notice to render")
print(rejected[0], version)
PY
)
  read -r rejected version <<< "$decided"
  console=http://10.231.0.1:8000
  for attempt in $(seq 120); do
    ip netns exec "$ns_e" curl -sf -o /dev/null "$console/health/status" && break
    [ "$attempt" -eq 120 ] && { podman logs "loanxai-console-$id" 2>&1 | tail -20; echo "FAIL: the console is not ready" >&2; exit 1; }
    sleep 1
  done
  echo "console: /health/status answered"
  page=$(ip netns exec "$ns_e" curl -sS --fail-with-body "$console/models")
  grep -qF "$version" <<< "$page" || { echo "FAIL: the console's models page does not name model $version" >&2; exit 1; }
  echo "console: /models names model $version"
  ip netns exec "$ns_e" curl -sS --fail-with-body -o /dev/null "$console/monitoring"
  echo "console: /monitoring answered"
  notice=$(mktemp)
  ip netns exec "$ns_e" curl -sS --fail-with-body -o "$notice" "$console/notice?application_id=$rejected&format=pdf"
  magic=$(head -c 5 "$notice")
  size=$(wc -c < "$notice")
  rm -f "$notice"
  [ "$magic" = %PDF- ] || { echo "FAIL: the notice of $rejected is no PDF" >&2; exit 1; }
  echo "console: notice of $rejected, a PDF of $size bytes"
  echo "console checked in $((SECONDS - started)) s"
fi
# a graceful stop: SIGTERM reaches the server (PID 1), which drains and exits 0, well within the grace period
for container in "${containers[@]}"; do
  podman stop -t 30 "$container" >/dev/null 2>&1
  status=$(podman inspect --format '{{.State.ExitCode}}' "$container")
  [ "$status" = 0 ] || { podman logs "$container" 2>&1 | tail -20; echo "FAIL: $container exited with $status on SIGTERM" >&2; exit 1; }
done
echo "all ${#containers[@]} containers stopped gracefully"
