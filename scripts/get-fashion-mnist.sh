#!/bin/sh
# Make Fashion-MNIST available to tinyvision, the cheapest way this machine allows:
# already there; Debian's dataset-fashion-mnist package (when apt is usable); a download.
set -e
if tinyvision data check fashion-mnist 2>/dev/null | grep -q "train.*ok"; then
    echo "fashion-mnist: already available"
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" != none ]; then
        echo "fashion-mnist: installing Debian's dataset-fashion-mnist package"
        if $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
            || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; then
            tinyvision data check fashion-mnist && exit 0
        fi
        echo "fashion-mnist: the Debian package is not available here; downloading instead"
    fi
fi
tinyvision data fetch fashion-mnist
