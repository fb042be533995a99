#!/usr/bin/env bash
# Build both images, load them into the kind cluster, apply deploy/ and wait until the decision
# record's database is ready and both SeldonDeployments are Available. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require kind kubectl
cluster=${KIND_CLUSTER:-loanxai}
kind get clusters 2>/dev/null | grep -qx "$cluster" || { echo "error: no kind cluster $cluster: run make kind-up" >&2; exit 1; }
kubectl config use-context "kind-$cluster" >/dev/null

built=$("$root/scripts/build-images.sh")
tool=$(container_tool)
archive=$(mktemp -d)
trap 'rm -rf "$archive"' EXIT
while read -r service reference; do
  wanted=$(kubectl kustomize "$root/deploy" | grep -E "image: (docker.io/)?${reference#docker.io/}$" || true)
  if [ -z "$wanted" ]; then
    echo "error: deploy/kustomization.yaml does not use $reference (retrained? set its newTag to the tag above)" >&2
    exit 1
  fi
  echo "loading $reference into kind cluster $cluster"
  if [ "$tool" = docker ]; then
    kind load docker-image "$reference" --name "$cluster"
  else
    podman save -o "$archive/$service.tar" "$reference"
    kind load image-archive "$archive/$service.tar" --name "$cluster"
  fi
done <<< "$built"

kubectl apply -k "$root/deploy"
# the classifier migrates the record at start-up: its database first (postgres:15-bookworm, pulled by the node)
echo "waiting for the decision record's database"
kubectl -n loan rollout status statefulset/loan-records --timeout=300s
for deployment in loan-classifier loan-explainer; do
  echo "waiting for SeldonDeployment $deployment"
  kubectl -n loan wait "sdep/$deployment" --for=jsonpath='{.status.state}'=Available --timeout=300s
done
echo "deployed: next, make smoke"
