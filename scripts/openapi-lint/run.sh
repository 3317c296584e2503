#!/usr/bin/env bash
# The API's OpenAPI document through openapi-spec-validator, Spectral (spectral:oas) and Redocly
# (recommended), with zero errors and zero warnings allowed. `make lint` runs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python="$root/.venv/bin/python"

# The pinned linters (package-lock.json), installed again only when the lock file changes.
bash "$root/scripts/npm-ci.sh" "$here"

document="$root/build/openapi.json"
mkdir -p "$root/build"
"$python" - "$document" <<'PY'
import json
import sys

from terminus_hub.api.openapi import document

with open(sys.argv[1], "w") as out:
    json.dump(document(), out, indent=2)
PY

echo "openapi-spec-validator:"
"$root/.venv/bin/openapi-spec-validator" "$document"
echo "Spectral (spectral:oas):"
"$here/node_modules/.bin/spectral" lint --ruleset "$here/.spectral.yaml" --fail-severity=hint \
  "$document"
echo "Redocly (recommended):"
report=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" "$document" 2>&1) || {
  echo "$report"
  exit 1
}
echo "$report"
# Redocly fails only on errors; warnings fail here too.
if grep -qiE "[0-9]+ warnings?" <<<"$report"; then
  echo "openapi-lint: Redocly reported warnings" >&2
  exit 1
fi
