#!/usr/bin/env bash
# The README's and the docs' picture of the report: the first screen of reports/report.html
# (make report) rendered by headless Chromium (Debian's chromium) into docs/images/report.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require chromium
report=$root/reports/report.html
[ -f "$report" ] || { echo "error: $report not found: run 'make report' first" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# no network at all: the report is self-contained, and Chromium's own background calls are off
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1200,1500 --screenshot="$root/docs/images/report.png" "file://$report" >/dev/null 2>&1
echo "wrote $root/docs/images/report.png"
