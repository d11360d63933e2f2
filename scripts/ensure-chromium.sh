#!/bin/sh
# The report's browser test drives Debian's chromium (through playwright, which then
# downloads no browser of its own). Install it when missing and apt is usable; else the
# test skips and says why.
command -v chromium >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || { echo "chromium: no apt-get here; the browser test will skip"; exit 0; }
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "chromium: not root; the browser test will skip (apt-get install chromium)"; exit 0; fi
echo "chromium: installing Debian's chromium for the browser test"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; } \
    || echo "chromium: could not be installed; the browser test will skip"
exit 0
