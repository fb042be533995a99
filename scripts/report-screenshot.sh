#!/usr/bin/env bash
# The docs' pictures, rendered by headless Chromium (Debian's chromium): the first screen of
# reports/report.html (make report) into docs/images/report.png, and the newest notice make demo
# wrote (reports/notices/*.html) into docs/images/notice.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
require chromium
report=$root/reports/report.html
[ -f "$report" ] || { echo "error: $report not found: run 'make report' first" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# no network at all: the pages are self-contained, and Chromium's own background calls are off
shot() {  # <page> <width,height> <picture>
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
    --window-size="$2" --screenshot="$3" "file://$1" >/dev/null 2>&1
  echo "wrote $3"
}
shot "$report" 1200,1500 "$root/docs/images/report.png"
notice=$(find "$root/reports/notices" -name '*.html' -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -n 1 | cut -d' ' -f2-)
[ -n "$notice" ] || { echo "error: no notice in $root/reports/notices: run 'make demo' first" >&2; exit 1; }
shot "$notice" 800,1450 "$root/docs/images/notice.png"
