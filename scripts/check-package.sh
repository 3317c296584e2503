#!/usr/bin/env bash
# Build the wheel, install it into a clean virtualenv with the pinned runtime set, then, from an
# empty folder (no source tree beside it), migrate a new database and serve pages and static
# files. Then the same with an editable install. CI runs this; so can you: make package-check.
set -euo pipefail
cd "$(dirname "$0")/.."
source_tree=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip=("$work/venv/bin/pip" --quiet --disable-pip-version-check)
"${pip[@]}" install --upgrade pip
"${pip[@]}" wheel --no-deps --wheel-dir "$work/dist" .
"${pip[@]}" install -r requirements.txt "$work"/dist/terminus_hub-*.whl

serve_from_empty_folder() {
  local label=$1 folder
  folder=$(mktemp -d "$work/empty.XXXX")
  (
    cd "$folder"
    export FLASK_SQLALCHEMY_DATABASE_URI="\"sqlite:///$folder/hub.sqlite\""
    export FLASK_TERMINUS_BASE_URL=http://localhost
    "$work/venv/bin/flask" --app terminus_hub db upgrade >/dev/null 2>&1 ||
      { echo "$label: db upgrade failed" >&2; "$work/venv/bin/flask" --app terminus_hub db upgrade; exit 1; }
    "$work/venv/bin/python" - "$label" "$source_tree" <<'PY'
import sys

import terminus_hub
from terminus_hub import create_app

label, source_tree = sys.argv[1], sys.argv[2]
if label == "wheel" and terminus_hub.__file__.startswith(source_tree):
    sys.exit(f"{label}: imported the source tree, not the installed package")
app = create_app({"SESSION_COOKIE_SECURE": False})
client = app.test_client()
for path, text in [("/sign_in", 'name="csrf-token"'), ("/static/app.css", "{"), ("/healthz", "ok")]:
    response = client.get(path)
    body = response.get_data(as_text=True)
    if response.status_code != 200 or text not in body:
        sys.exit(f"{label}: GET {path} answered {response.status_code}: {body[:200]}")
print(f"{label}: migrated and served /sign_in, /static/app.css and /healthz from an empty folder")
PY
  )
}

serve_from_empty_folder wheel
"${pip[@]}" install --no-deps --editable .
serve_from_empty_folder editable
