#!/usr/bin/env bash
# Install the Debian packages the project needs and a fresh machine may lack.
# Runs apt-get only when something is missing, and only as root (otherwise it says what to install).
# With --browser it also makes sure of Debian's chromium, which the browser suite drives
# (Playwright's own browser download is never used).
set -euo pipefail

browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) browser=true ;;
    *) echo "usage: $0 [--browser]" >&2; exit 2 ;;
  esac
done

needed=()
python3 -c 'import venv, ensurepip' 2>/dev/null || needed+=(python3-venv)
# pysaml2 signs and verifies SAML messages with xmlsec1.
command -v xmlsec1 >/dev/null 2>&1 || needed+=(xmlsec1)
if [ "$browser" = true ]; then
  command -v chromium >/dev/null 2>&1 || needed+=(chromium)
fi

if [ ${#needed[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Please install these Debian packages first: sudo apt-get install -y ${needed[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${needed[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
