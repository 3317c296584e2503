#!/usr/bin/env bash
# Install a folder's pinned npm packages (its package-lock.json) with `npm ci`, again only when
# the lock file changes. Usage: scripts/npm-ci.sh FOLDER
set -euo pipefail
folder=$(cd "$1" && pwd)
stamp="$folder/node_modules/.installed-$(sha1sum "$folder/package-lock.json" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  if ! command -v npm >/dev/null; then
    echo "$folder: npm is needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  npm ci --prefix "$folder" --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
