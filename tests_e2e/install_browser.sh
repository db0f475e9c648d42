#!/usr/bin/env bash
# Install the browser the end-to-end test drives: Debian's chromium at /usr/bin/chromium
# (plus a CJK font for the screenshots).
# Idempotent (does nothing when it is already there) and never fails the caller: where apt is
# missing or not usable (no root, no network) it says why and exits 0, and
# tests_e2e/test_browser.py then skips with that reason.
# Usage: tests_e2e/install_browser.sh        (CI: .ci/run calls it before ./course.sh test)
set -u
BROWSER=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$BROWSER" ]; then
  echo "install_browser.sh: $BROWSER is already installed ($("$BROWSER" --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: no apt-get on this machine; not installing chromium (the browser test will skip)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install_browser.sh: not root and no password-less sudo; not installing chromium (the browser test will skip)"
    exit 0
  fi
fi
echo "install_browser.sh: installing Debian's chromium with apt-get (about a minute)"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q; then
  echo "install_browser.sh: apt-get update failed; not installing chromium (the browser test will skip)"
  exit 0
fi
# fonts-wqy-zenhei (7 MB): the course's Chinese text shows as boxes in screenshots without a CJK font.
if ! $SUDO apt-get install -y -q --no-install-recommends chromium fonts-wqy-zenhei; then
  echo "install_browser.sh: apt-get install chromium failed; the browser test will skip"
  exit 0
fi
if [ -x "$BROWSER" ]; then
  echo "install_browser.sh: installed $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
else
  echo "install_browser.sh: apt-get finished but $BROWSER is missing; the browser test will skip"
fi
exit 0
