#!/bin/sh
# bench/webhook/run.sh: webhook throughput into nginx on loopback, against
# wrk driving the same nginx location in the same run.  Run on demand only
# (never by make check):
#
#   bench/webhook/run.sh [BUILDDIR]        (default: $HERALD_BUILDDIR or .)
#
# Environment: N (messages, default 100000), ROUNDS (default 5),
# CONCURRENCY (plugin and wrk connections, default 32), BATCH (default 1000),
# WRK_SECONDS (default 5), LANES (DRIVER=run only: [channel.webhook] lanes,
# default 1; the CONCURRENCY connections are shared among the lanes, so
# herald never holds more connections than wrk).
#
# DRIVER=plugin-run (default) drives the plugin through tests/plugin-run with
# N generated messages; DRIVER=run runs a real campaign of N customers with
# `herald run` (customers imported into a fresh store each round, import time
# not counted; planning, rendering and the store are).  Reports medians of
# ROUNDS alternating rounds and the sending process's peak RSS.
set -eu

BUILDDIR=$(cd "${1:-${HERALD_BUILDDIR:-.}}" && pwd)
N=${N:-100000}
ROUNDS=${ROUNDS:-5}
CONC=${CONCURRENCY:-32}
BATCH=${BATCH:-1000}
WRK_SECONDS=${WRK_SECONDS:-5}
LANES=${LANES:-1}
PY=${PYTHON3:-/usr/bin/python3}
RUNNER=$BUILDDIR/tests/plugin-run
PLUGIN=$BUILDDIR/plugins/.libs/webhook.so
HERALD=$BUILDDIR/herald
DRIVER=${DRIVER:-plugin-run}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

case "$DRIVER" in
  plugin-run|run) ;;
  *) echo "DRIVER must be plugin-run or run" >&2; exit 1 ;;
esac
for f in "$RUNNER" "$PLUGIN" "$HERALD"; do
  [ -e "$f" ] || { echo "missing $f (make -C $BUILDDIR check first)" >&2; exit 1; }
done
[ -x "$NGINX" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/herald-bench-webhook.XXXXXX)
cleanup () {
  if [ -s "$TMP/nginx.pid" ]; then
    kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
    sleep 0.3
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/logs"
cat > "$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
daemon on;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/body;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$PORT;
    location = /hook { client_body_buffer_size 16k; return 200 "ok\n"; }
  }
}
EOF
"$NGINX" -p "$TMP" -e "$TMP/logs/error.log" -c "$TMP/nginx.conf"
for i in 1 2 3 4 5 6 7 8 9 10; do
  [ -s "$TMP/nginx.pid" ] && break
  sleep 0.1
done
URL="http://127.0.0.1:$PORT/hook"

# The same payload for both: a typical rendered webhook.body.
BODY='{"type":"campaign.message","campaign":"spring-sale","customer":{"id":"c000001","name":"Customer 1","tier":"gold"},"offer":{"code":"SPRING25","discount":25,"expires":"2026-04-30T23:59:59Z"},"links":{"shop":"https://shop.example.com/?c=c000001"}}'
$PY - "$N" "$URL" "$BODY" > "$TMP/messages.jsonl" <<'EOF'
import json, sys
n, url, body = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = sys.stdout
for i in range(n):
    out.write(json.dumps({"key": "spring-sale:0:c%06d" % i, "campaign": "spring-sale",
                          "customer": "c%06d" % i, "channel": "webhook", "to": url,
                          "parts": {"webhook.body": body.replace("c000001", "c%06d" % i)},
                          "created": 1767225600, "attempt": 1}) + "\n")
EOF
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
if [ "$DRIVER" = run ]; then
  # The same body, rendered per customer by herald.
  mkdir -p "$TMP/tpl"
  printf '%s\n' "$BODY" | sed 's/c000001/{{ customer.id }}/g' > "$TMP/tpl/webhook.body.liquid"
  printf '[campaign]\nid = bench\ntemplates = tpl\nchannels = webhook\nretry_horizon = 0s\n' > "$TMP/c.ini"
  $PY - "$N" "$URL" > "$TMP/customers.jsonl" <<'EOF'
import json, sys
n, url = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    sys.stdout.write(json.dumps({"id": "c%06d" % i, "webhook": url, "consent": {"webhook": True},
                                 "attributes": {"name": "Customer %d" % i}}) + "\n")
EOF
fi
cat > "$TMP/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "spring-sale:0:c000001"
wrk.headers["webhook-timestamp"] = "1767225600"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
EOF

median () { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

if [ "$DRIVER" = run ]; then
  echo "webhook bench: a campaign of $N customers through herald run, $LANES lane(s),"
else
  echo "webhook bench: $N messages through tests/plugin-run (DRIVER=run: through herald run),"
fi
echo "  nginx 1 worker on $URL, concurrency $CONC, batch $BATCH, $ROUNDS rounds"
: > "$TMP/herald.rates"; : > "$TMP/wrk.rates"; : > "$TMP/rss"; : > "$TMP/ratios"; : > "$TMP/wrk.cpu"; : > "$TMP/herald.cpu"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  timeout 120 /usr/bin/time -f '%U %S' -o "$TMP/wtime.out" \
    wrk -t1 -c"$CONC" -d"${WRK_SECONDS}s" -s "$TMP/post.lua" "$URL" > "$TMP/wrk.out"
  w=$(awk '/^Requests\/sec/ {print $2}' "$TMP/wrk.out")
  wn=$(awk '/requests in/ {print $1}' "$TMP/wrk.out")
  awk -v n="$wn" '{printf "%.1f\n", (n > 0) ? 1e6 * ($1 + $2) / n : 0}' "$TMP/wtime.out" >> "$TMP/wrk.cpu"
  echo "$w" >> "$TMP/wrk.rates"

  if [ "$DRIVER" = run ]; then
    rm -f "$TMP"/herald.db*
    cat > "$TMP/g.ini" <<EOF
[store]
path = $TMP/herald.db
[plugins]
dir = $BUILDDIR/plugins/.libs
[tracking]
base_url = https://t.example.com
secret = bench-secret-0123456789abcdef
[channel.webhook]
plugin = webhook
secret = $SECRET
allow_private = yes
lanes = $LANES
concurrency = $((CONC / LANES))
timeout_ms = 15000
EOF
    "$HERALD" -c "$TMP/g.ini" customers import "$TMP/customers.jsonl" > /dev/null
    timeout 600 /usr/bin/time -f '%e %M %U %S' -o "$TMP/time.out" \
      "$HERALD" -c "$TMP/g.ini" run "$TMP/c.ini" > "$TMP/results.txt"
    sent=$(awk '$1 == "webhook" {print $2}' "$TMP/results.txt")
    sent=${sent:-0}
  else
    timeout 600 /usr/bin/time -f '%e %M %U %S' -o "$TMP/time.out" \
      "$RUNNER" "$PLUGIN" -n bench -k "secret=$SECRET" -k "concurrency=$CONC" \
      -k timeout_ms=15000 -k allow_private=yes -b "$BATCH" < "$TMP/messages.jsonl" > "$TMP/results.jsonl"
    sent=$(grep -c '"status":"sent"' "$TMP/results.jsonl" || true)
  fi
  secs=$(awk '{print $1}' "$TMP/time.out")
  kb=$(awk '{print $2}' "$TMP/time.out")
  awk -v n="$N" '{printf "%.1f\n", 1e6 * ($3 + $4) / n}' "$TMP/time.out" >> "$TMP/herald.cpu"
  rate=$(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%.0f", (s > 0) ? n / s : 0}')
  echo "$rate" >> "$TMP/herald.rates"
  echo "$kb" >> "$TMP/rss"
  ratio=$(awk -v h="$rate" -v w="$w" 'BEGIN {printf "%.1f", (w > 0) ? 100 * h / w : 0}')
  echo "$ratio" >> "$TMP/ratios"
  printf '  round %d: wrk %8.0f req/s   herald %8s msg/s = %5s%% (%s s, %s/%s sent, peak RSS %s KiB)\n' \
    "$r" "$w" "$rate" "$ratio" "$secs" "$sent" "$N" "$kb"
  if [ "$sent" -ne "$N" ]; then
    echo "  not every message was sent:" >&2
    if [ "$DRIVER" = run ]; then cat "$TMP/results.txt" >&2
    else grep -v '"status":"sent"' "$TMP/results.jsonl" | head -3 >&2; fi
    exit 1
  fi
  r=$((r + 1))
done

W=$(median < "$TMP/wrk.rates")
H=$(median < "$TMP/herald.rates")
M=$(sort -n "$TMP/rss" | tail -1)
R=$(median < "$TMP/ratios")
echo "client CPU per request (user+sys, median): herald $(median < "$TMP/herald.cpu") us ($DRIVER included), wrk $(median < "$TMP/wrk.cpu") us"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (the bench shares them with nginx and whatever else runs)"
awk -v h="$H" -v w="$W" -v m="$M" -v r="$R" 'BEGIN {
  printf "median: herald %.0f msg/s, wrk %.0f req/s: %.1f%% of wrk (median of per-round ratios %.1f%%; target >= 40%%)\n", h, w, 100 * h / w, r;
  printf "peak RSS of the sending process: %.1f MiB\n", m / 1024;
  exit (h >= 0.4 * w) ? 0 : 3 }'
