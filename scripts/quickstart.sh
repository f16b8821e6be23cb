#!/bin/sh
# Quick start on a fresh Debian 12 machine: install the dependencies, build
# Herald, load the sample customers and events, run the welcome campaign,
# import what its customers "did" with it, show its report, and run the
# win-back campaign, which routes on that engagement.  Every channel of the
# demo gateway writes into var/outbox/.
#
# Only Herald's own lines are printed.  What the tools say (apt-get,
# autoreconf, configure, make) goes to var/quickstart.log; when a step
# fails, its name and the log's last lines are printed.
set -eu
cd "$(dirname "$0")/.."
mkdir -p var
log=var/quickstart.log
: > "$log"

# step NAME COMMAND...: run a tool with its output in the log.
step () {
  name=$1
  shift
  echo "==> $name"
  echo "==> $name: $*" >> "$log"
  if ! "$@" >> "$log" 2>&1; then
    echo "quickstart: step '$name' failed; the last lines of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

# herald ARGS...: one of Herald's own steps, its output shown.
herald () {
  echo
  echo "\$ ./herald $*"
  ./herald "$@" || { echo "quickstart: './herald $*' failed" >&2; exit 1; }
}

if [ "$(id -u)" = 0 ]; then
  step "installing the Debian packages" sh scripts/install-deps.sh
elif command -v sudo >/dev/null; then
  step "installing the Debian packages (sudo)" sudo sh scripts/install-deps.sh
else
  echo "quickstart: run as root or install sudo to install the dependencies" >&2
  exit 1
fi
[ -x configure ] || step "generating configure" autoreconf -fi
[ -f Makefile ] || step "configuring" ./configure
step "building" make -j"$(nproc)"

herald customers import etc/customers.jsonl
herald events import etc/events.jsonl
herald lint etc/campaigns/welcome.ini etc/campaigns/winback.ini etc/campaigns/cart.ini
herald run etc/campaigns/welcome.ini
echo
echo "\$ scripts/demo-engagement.py   # what the welcome campaign's customers did"
/usr/bin/python3 scripts/demo-engagement.py welcome var/outbox \
  etc/customers.jsonl var/events-welcome.jsonl
herald events import var/events-welcome.jsonl
herald report welcome
herald run etc/campaigns/winback.ini
echo
echo "Messages written to var/outbox/*/messages.jsonl (e-mail also as Maildir files in var/outbox/email/new/)."
echo "The tools' output is in $log."
