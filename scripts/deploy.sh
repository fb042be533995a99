#!/usr/bin/env bash
# Build both images, load them into the kind cluster, apply deploy/ with a key pair of its own for
# the callers' tokens (.run/kind-auth), and wait until the decision record's database is ready,
# both SeldonDeployments are Available and the reviewer console is ready. Idempotent.
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
    echo "error: deploy/base/kustomization.yaml does not use $reference (retrained? set its newTag to the tag above)" >&2
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

# who may call what (deploy/base/auth.yaml): on kind a key pair made here stands in for the lender's
# identity provider; its JWKS and issuer replace the placeholders, the explainer gets its token
# (role decide, valid a day: LOAN_AUTH_MAX_LIFETIME; make deploy again renews it), both services
# the sampling key they share, and the pods that started with the placeholders start again (the
# console reads the same ConfigMap; both RequestAuthentications get the JWKS and the issuer)
auth=$KIND_AUTH_DIR
python=${LOANXAI_PYTHON:-$root/.venv/bin/python}
[ -f "$auth/signing-key.pem" ] || "$python" -m loanxai tokens keys --out "$auth" >/dev/null
kubectl -n loan create configmap loan-auth --from-file=jwks.json="$auth/jwks.json" --from-literal=issuer="$KIND_ISSUER" \
  --from-literal=audience=loanxai --dry-run=client -o yaml | kubectl apply -f -
token=$("$python" -m loanxai tokens token --key "$auth/signing-key.pem" --subject loan-explainer --role decide \
  --issuer "$KIND_ISSUER" --minutes 1440)
kubectl -n loan create secret generic loan-explainer-token --from-literal=token="$token" --dry-run=client -o yaml \
  | kubectl apply -f -
[ -f "$auth/sampling-key" ] || "$python" -m loanxai tokens sampling-key --out "$auth/sampling-key" >/dev/null
kubectl -n loan create secret generic loan-sampling-key --from-file=key="$auth/sampling-key" --dry-run=client -o yaml \
  | kubectl apply -f -
patch=$("$python" -c 'import json, sys; print(json.dumps([
    {"op": "replace", "path": "/spec/jwtRules/0/issuer", "value": sys.argv[1]},
    {"op": "replace", "path": "/spec/jwtRules/0/jwks", "value": open(sys.argv[2]).read()}]))' "$KIND_ISSUER" "$auth/jwks.json")
for authentication in loan-callers loan-console-sessions; do
  kubectl -n loan patch requestauthentication "$authentication" --type=json -p "$patch"
done
kubectl -n loan delete pod -l 'seldon-deployment-id in (loan-classifier,loan-explainer)' --wait=false
# each pod's init container migrates the record before its service starts: the database first (postgres:15-bookworm, pulled by the node)
echo "waiting for the decision record's database"
kubectl -n loan rollout status statefulset/loan-records --timeout=300s
for deployment in loan-classifier loan-explainer; do
  echo "waiting for SeldonDeployment $deployment"
  kubectl -n loan wait "sdep/$deployment" --for=jsonpath='{.status.state}'=Available --timeout=300s
done
# the console reads the keys at start: start it again now, on the keys just applied
echo "waiting for the reviewer console"
kubectl -n loan rollout restart deployment/loan-console
kubectl -n loan rollout status deployment/loan-console --timeout=300s
echo "deployed: next, make smoke"
