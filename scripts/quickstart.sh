#!/bin/sh
# Quick start on a fresh Debian 12 machine: install the dependencies, build
# Herald, load the sample customers and events, and run the demo campaigns
# on the embedded defaults (every channel writes into var/outbox/).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  sh scripts/install-deps.sh
elif command -v sudo >/dev/null; then
  sudo sh scripts/install-deps.sh
else
  echo "quickstart: run as root or install sudo to install the dependencies" >&2
  exit 1
fi
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --quiet
make -j"$(nproc)" --quiet
./herald customers import etc/customers.jsonl
./herald events import etc/events.jsonl
./herald lint etc/campaigns/welcome.ini etc/campaigns/winback.ini
./herald run etc/campaigns/welcome.ini
./herald run etc/campaigns/winback.ini
./herald report welcome
echo
echo "Messages written to var/outbox/*/messages.jsonl (e-mail also as Maildir files in var/outbox/email/new/)."
