#!/bin/sh
# Install Debian's chromium and its WebDriver for the console's browser test
# (tests/groundstation/console/test_browser.py and test_browser_demo.py), if they are not there yet.
# The test skips, naming what is missing, when they are absent.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
chromium --version
chromedriver --version
