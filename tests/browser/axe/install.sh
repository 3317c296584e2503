#!/usr/bin/env bash
# axe-core for the browser suite, pinned by package-lock.json; installed again only when the
# lock file changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stamp="$here/node_modules/.installed-$(sha1sum "$here/package-lock.json" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  if ! command -v npm >/dev/null; then
    echo "axe-core: npm is needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
