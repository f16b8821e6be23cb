#!/bin/sh
# Install what Herald needs to build, test and benchmark on Debian 12.
# Run as root (or through sudo).  Safe to run again.
set -eu
export DEBIAN_FRONTEND=noninteractive
# Postfix is only needed for its smtp-sink/smtp-source test tools: keep its
# installer from asking questions or configuring a mail system.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
apt-get update -qq
# prometheus is there for promtool, which checks herald serve's /metrics in
# the tests; Debian ships it only with the server itself.  postgresql-15:
# initdb and pg_ctl for tests/pgserver.py (each test runs a server of its
# own; the cluster Debian creates is not used), psql for the tests' checks.
# python3-cryptography: the provider webhooks' test signs as SES, SNS and
# SendGrid do; wrk: herald serve under load (tests/core/load.py).
# groff-base: tests/core/manpages.sh renders every manual page with
# groff -ww (a minimal Debian has no man-db to bring it).
apt-get install -y -qq --no-install-recommends \
  build-essential autoconf automake libtool pkg-config \
  libcurl4-openssl-dev libesmtp-dev libinih-dev libsqlite3-dev \
  libjansson-dev libssl-dev libmicrohttpd-dev libicu-dev libutf8proc-dev \
  libopendkim-dev libpq-dev libgmime-3.0-dev \
  openssl ca-certificates python3 python3-aiosmtpd python3-dkim python3-cryptography postfix sqlite3 postgresql-15 postgresql-client-15 nginx-light strace wrk \
  clang libclang-rt-14-dev prometheus groff-base >/dev/null
