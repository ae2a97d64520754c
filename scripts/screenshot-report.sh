#!/usr/bin/env bash
# Renders an HTML report in headless Chromium (Debian's `chromium` package) and saves a PNG,
# to check that the page shows its tables and chart with no network.
#   scripts/screenshot-report.sh REPORT.html OUT.png [WIDTHxHEIGHT]
set -euo pipefail
html=$(realpath "$1"); png=$(realpath -m "$2"); size=${3:-1200x1400}
command -v chromium >/dev/null || { echo "chromium not found: apt-get install -y chromium" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size="${size/x/,}" --screenshot="$png" "file://$html" 2>/dev/null
test -s "$png" && echo "wrote $png"
