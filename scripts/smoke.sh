#!/usr/bin/env bash
# Smoke test: one prediction and one explanation with curl, then with requests and SeldonClient
# (python -m loanxai client), through the same URLs the README documents.
#
#   scripts/smoke.sh                      # the kind cluster, through the Istio ingress
#   scripts/smoke.sh CLASSIFIER EXPLAINER # any base URLs, e.g. http://127.0.0.1:9000
#
# Against the cluster it port-forwards the ingress gateway to localhost:${INGRESS_PORT:-8080} and
# carries tokens signed with the cluster's key (deploy.sh made it): role decide to the classifier,
# explain to the explainer (deploy/base/auth.yaml). The explanation names the decision it explains.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require curl
python=${LOANXAI_PYTHON:-$root/.venv/bin/python}
decide=() explain=() client_tokens=()

if [ $# -eq 2 ]; then
  classifier=$1 explainer=$2
else
  tokens=$(mktemp -d)
  for role in decide explain; do
    "$python" -m loanxai tokens token --key "$KIND_AUTH_DIR/signing-key.pem" --subject "smoke-$role" --role "$role" \
      --issuer "$KIND_ISSUER" --minutes 10 > "$tokens/$role"
  done
  decide=(-H "Authorization: Bearer $(cat "$tokens/decide")")
  explain=(-H "Authorization: Bearer $(cat "$tokens/explain")")
  client_tokens=(--classifier-token-file "$tokens/decide" --explainer-token-file "$tokens/explain")
  require kubectl
  port=${INGRESS_PORT:-8080}
  kubectl -n istio-system port-forward svc/istio-ingressgateway "$port:80" >/dev/null 2>&1 &
  forward=$!
  trap 'kill "$forward" 2>/dev/null || true; rm -rf "$tokens"' EXIT
  classifier=http://localhost:$port/seldon/loan/loan-classifier
  explainer=http://localhost:$port/seldon/loan/loan-explainer
  for _ in $(seq 60); do
    curl -s -o /dev/null "${decide[@]}" "$classifier/api/v1.0/metadata" && break
    sleep 1
  done
fi

# the deployed dataset's example application, from the classifier's metadata
metadata=$(curl -sS --fail-with-body "${decide[@]}" "$classifier/api/v1.0/metadata")
application=$("$python" -c 'import json, sys; print(json.load(sys.stdin)["custom"]["example_application"])' <<< "$metadata")
echo "dataset $("$python" -c 'import json, sys; print(json.load(sys.stdin)["custom"]["dataset"])' <<< "$metadata"), application: $application"

echo "prediction: POST $classifier/api/v1.0/predictions"
answer=$(curl -sS --fail-with-body "${decide[@]}" -H 'Content-Type: application/json' "$classifier/api/v1.0/predictions" \
  -d "{\"jsonData\": [$application]}")
echo "$answer"
grep -q '"names":\["rejected","approved"\]' <<< "$answer" || { echo "FAIL: no probabilities" >&2; exit 1; }
# the id the decision is recorded under: the explanation names it
ids=$("$python" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["meta"]["tags"]["application_ids"]))' <<< "$answer")

echo "explanation: POST $explainer/api/v1.0/predictions"
answer=$(curl -sS --fail-with-body --max-time 120 "${explain[@]}" -H 'Content-Type: application/json' \
  "$explainer/api/v1.0/predictions" \
  -d "{\"jsonData\": $application, \"meta\": {\"tags\": {\"threshold\": 0.95, \"application_ids\": $ids}}}")
echo "$answer"
grep -q '"anchor":\["' <<< "$answer" || { echo "FAIL: no anchor" >&2; exit 1; }

echo "requests and SeldonClient:"
"$python" -m loanxai client --classifier-url "$classifier" --explainer-url "$explainer" "${client_tokens[@]}"
echo "smoke test passed"
