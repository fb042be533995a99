#!/usr/bin/env bash
# Smoke test: one prediction and one explanation with curl, then with requests and SeldonClient
# (python -m loanxai.client), through the same URLs the README documents.
#
#   scripts/smoke.sh                      # the kind cluster, through the Istio ingress
#   scripts/smoke.sh CLASSIFIER EXPLAINER # any base URLs, e.g. http://127.0.0.1:9000
#
# Against the cluster it port-forwards the ingress gateway to localhost:${INGRESS_PORT:-8080}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require curl
python=${LOANXAI_PYTHON:-$root/.venv/bin/python}

if [ $# -eq 2 ]; then
  classifier=$1 explainer=$2
else
  require kubectl
  port=${INGRESS_PORT:-8080}
  kubectl -n istio-system port-forward svc/istio-ingressgateway "$port:80" >/dev/null 2>&1 &
  forward=$!
  trap 'kill "$forward" 2>/dev/null || true' EXIT
  classifier=http://localhost:$port/seldon/loan/loan-classifier
  explainer=http://localhost:$port/seldon/loan/loan-explainer
  for _ in $(seq 60); do
    curl -s -o /dev/null "$classifier/api/v1.0/metadata" && break
    sleep 1
  done
fi

# the deployed dataset's example application, from the classifier's metadata
metadata=$(curl -sS --fail-with-body "$classifier/api/v1.0/metadata")
application=$("$python" -c 'import json, sys; print(json.load(sys.stdin)["custom"]["example_application"])' <<< "$metadata")
echo "dataset $("$python" -c 'import json, sys; print(json.load(sys.stdin)["custom"]["dataset"])' <<< "$metadata"), application: $application"

echo "prediction: POST $classifier/api/v1.0/predictions"
answer=$(curl -sS --fail-with-body -H 'Content-Type: application/json' "$classifier/api/v1.0/predictions" \
  -d "{\"jsonData\": [$application]}")
echo "$answer"
grep -q '"names":\["rejected","approved"\]' <<< "$answer" || { echo "FAIL: no probabilities" >&2; exit 1; }

echo "explanation: POST $explainer/api/v1.0/predictions"
answer=$(curl -sS --fail-with-body --max-time 120 -H 'Content-Type: application/json' \
  "$explainer/api/v1.0/predictions" -d "{\"jsonData\": $application, \"meta\": {\"tags\": {\"threshold\": 0.95}}}")
echo "$answer"
grep -q '"anchor":\["' <<< "$answer" || { echo "FAIL: no anchor" >&2; exit 1; }

echo "requests and SeldonClient:"
"$python" -m loanxai.client --classifier-url "$classifier" --explainer-url "$explainer"
echo "smoke test passed"
