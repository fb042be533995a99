#!/usr/bin/env bash
# The docs' pictures: the first screen of reports/report.html (make report), rendered by headless
# Chromium (Debian's chromium), into docs/images/report.png; and the newest PDF notice make demo
# wrote (reports/notices/*.pdf), as the applicant receives it, its pages one under the other
# (pypdfium2), into docs/images/notice.png.
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
notice=$(find "$root/reports/notices" -name '*.pdf' -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -n 1 | cut -d' ' -f2-)
[ -n "$notice" ] || { echo "error: no PDF notice in $root/reports/notices: run 'make demo' first" >&2; exit 1; }
"$root/.venv/bin/python" - "$notice" "$root/docs/images/notice.png" <<'PY'
import sys

import pypdfium2
from PIL import Image, ImageOps

pdf = pypdfium2.PdfDocument(sys.argv[1])
# 1.4 x 72 dpi: an A4 or Letter page about 830 pixels wide, readable in the docs; a grey edge marks each sheet
pages = [ImageOps.expand(page.render(scale=1.4).to_pil(), border=1, fill="#999999") for page in pdf]
picture = Image.new("RGB", (max(p.width for p in pages), sum(p.height for p in pages) + 12 * (len(pages) - 1)), "white")
top = 0
for page in pages:
    picture.paste(page, (0, top))
    top += page.height + 12
picture.save(sys.argv[2], optimize=True)
print(f"wrote {sys.argv[2]} ({len(pages)} pages of {sys.argv[1]})")
PY
