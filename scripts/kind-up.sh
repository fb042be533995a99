#!/usr/bin/env bash
# Create the kind cluster (deploy/cluster/kind-config.yaml), install the Istio ingress and
# Seldon Core 1.17.1 with Helm. Idempotent: re-running upgrades in place.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require kind kubectl helm
cluster=${KIND_CLUSTER:-loanxai}
node_image=${KIND_NODE_IMAGE:-kindest/node:v1.29.4}
istio_version=${ISTIO_VERSION:-1.22.8}
seldon_version=1.17.1

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "kind cluster $cluster already exists"
else
  kind create cluster --name "$cluster" --image "$node_image" --config "$root/deploy/cluster/kind-config.yaml" --wait 120s
fi
kubectl config use-context "kind-$cluster" >/dev/null

echo "installing Istio $istio_version (the ingress Seldon routes through)"
istio_charts=https://istio-release.storage.googleapis.com/charts
helm upgrade --install istio-base base --repo "$istio_charts" --version "$istio_version" \
  -n istio-system --create-namespace --wait
# native sidecars (Kubernetes 1.29's sidecar containers; Istio 1.22 asks for them here, later ones
# by default): the proxy starts before the pods' own init containers, so records-upgrade reaches the
# record's database through the mesh, as the services do, rather than around it or not at all
helm upgrade --install istiod istiod --repo "$istio_charts" --version "$istio_version" -n istio-system --wait \
  --set pilot.env.ENABLE_NATIVE_SIDECARS=true
helm upgrade --install istio-ingressgateway gateway --repo "$istio_charts" --version "$istio_version" \
  -n istio-system --set service.type=ClusterIP --wait
kubectl apply -f "$root/deploy/cluster/seldon-gateway.yaml"

echo "installing Seldon Core $seldon_version"
helm upgrade --install seldon-core seldon-core-operator --repo https://storage.googleapis.com/seldon-charts \
  --version "$seldon_version" -n seldon-system --create-namespace \
  --set istio.enabled=true --set istio.gateway=istio-system/seldon-gateway \
  --set usageMetrics.enabled=false --wait
kubectl -n seldon-system rollout status deployment/seldon-controller-manager --timeout=180s
echo "cluster $cluster ready: next, make deploy"
