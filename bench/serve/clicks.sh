#!/bin/sh
# bench/serve/clicks.sh: tracked-link clicks per second through herald serve
# (GET /c/TOKEN: check the token, record a clicked event in the store with
# a durable commit, answer 302), against nginx answering a bare 302 on
# loopback with the same wrk load in the same run.  Run on demand only
# (never by make check):
#
#   bench/serve/clicks.sh [BUILDDIR]        (default: $HERALD_BUILDDIR or .)
#
# Environment: ROUNDS (default 5), CONNECTIONS (wrk connections, default
# 32), THREADS (wrk threads, default 1), WRK_SECONDS (per measurement,
# default 5), MESSAGES (customers e-mailed by the campaign, default 200),
# TOKENS (how many messages' links wrk clicks, in turn; default 1: every
# click on the same link, as a shared link or a scanner's flood would be,
# the worst case for the burst rule, which reads the message's clicks of
# the last second on every click; with more, wrk takes the paths from a
# file through a Lua script, for nginx too), TMPDIR (where the store lives: its file system's fsync is
# part of every click).
#
# It prepares a store with sent messages by running a campaign through the
# outbox plugin, reads the tracked links from the outbox's messages.jsonl,
# starts herald serve and nginx (one worker: herald serve answers on one
# thread) on free ports, then each round runs wrk against both, in
# alternating order.  A round fails (exit 1) when wrk saw a non-3xx answer
# or a socket error against herald, or when the store did not record a
# clicked event for every click wrk counted (at most CONNECTIONS more: the
# requests in flight when wrk stops).  Prints each round, the medians and
# the ratio herald/nginx.  The machine is shared: compare ratios, not
# absolute figures.
set -eu

BUILDDIR=$(cd "${1:-${HERALD_BUILDDIR:-.}}" && pwd)
ROUNDS=${ROUNDS:-5}
CONN=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
WRK_SECONDS=${WRK_SECONDS:-5}
MESSAGES=${MESSAGES:-200}
TOKENS=${TOKENS:-1}
PY=${PYTHON3:-/usr/bin/python3}
HERALD=$BUILDDIR/herald
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for f in "$HERALD" "$BUILDDIR/plugins/.libs/outbox.so"; do
  [ -e "$f" ] || { echo "missing $f (make -C $BUILDDIR first)" >&2; exit 1; }
done
[ -x "$NGINX" ] || { echo "nginx not found (apt-get install nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
if [ "$TOKENS" -lt 1 ] || [ "$TOKENS" -gt "$MESSAGES" ]; then
  echo "TOKENS must be from 1 to MESSAGES ($MESSAGES)" >&2; exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/herald-bench-clicks.XXXXXX")
SERVE_PID=
cleanup () {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  if [ -s "$TMP/nginx.pid" ]; then
    kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
    sleep 0.3
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port () {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
HPORT=$(free_port)
NPORT=$(free_port)
HBASE="http://127.0.0.1:$HPORT"
NBASE="http://127.0.0.1:$NPORT"

# ---- the store: a campaign e-mailed through the outbox ------------------
mkdir -p "$TMP/tpl"
cat > "$TMP/g.ini" <<EOF
[store]
path = $TMP/herald.db
[plugins]
dir = $BUILDDIR/plugins/.libs
[tracking]
base_url = $HBASE
secret = bench-secret-0123456789abcdef
listen = 127.0.0.1:$HPORT
; wrk's connections all come from 127.0.0.1
connections_per_client = 0
[channel.email]
plugin = outbox
dir = $TMP/out
from = Shop <news@shop.example>
EOF
printf 'Spring sale\n' > "$TMP/tpl/email.subject.liquid"
cat > "$TMP/tpl/email.html.liquid" <<'EOF'
<!DOCTYPE html>
<html><body><p>Hello {{ customer.id }},</p>
<p>Our <a href="https://shop.example.com/spring?utm_source=email&amp;c={{ customer.id }}">spring sale</a> is on.</p>
</body></html>
EOF
printf '[campaign]\nid = spring\ntemplates = tpl\nchannels = email\nretry_horizon = 0s\n' > "$TMP/c.ini"
$PY - "$MESSAGES" > "$TMP/customers.jsonl" <<'EOF'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": "c%06d" % i, "email": "c%06d@example.com" % i,
                      "consent": {"email": True}}))
EOF
"$HERALD" -c "$TMP/g.ini" customers import "$TMP/customers.jsonl" > /dev/null
"$HERALD" -c "$TMP/g.ini" run "$TMP/c.ini" > "$TMP/run.out"
# The tracked links, as the recipients got them.
$PY - "$TMP/out/messages.jsonl" "$HBASE" "$TOKENS" > "$TMP/paths" <<'EOF'
import json, re, sys
path, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
links = []
with open(path) as f:
    for line in f:
        html = json.loads(line)["parts"]["email.html"]
        links += re.findall(r'href="(%s/c/[^"]+)"' % re.escape(base), html)
if len(links) < n:
    sys.exit("only %d tracked links in %s" % (len(links), path))
for l in links[:n]:
    print(l[len(base):])
EOF
SENT=$(grep -c '' "$TMP/out/messages.jsonl")
[ "$SENT" -eq "$MESSAGES" ] || { echo "only $SENT of $MESSAGES messages sent:" >&2; cat "$TMP/run.out" >&2; exit 1; }
FIRST=$(head -1 "$TMP/paths")

# The clicked events in the store once herald serve has answered the
# requests wrk left in flight: the same count twice, 0.2 s apart.
clicks_in_store () {
  $PY -c 'import sqlite3, sys, time
def n():
    db = sqlite3.connect(sys.argv[1])
    try:
        return db.execute("SELECT count(*) FROM events WHERE type = ?", ("clicked",)).fetchone()[0]
    finally:
        db.close()
a = n()
while True:
    time.sleep(0.2)
    b = n()
    if a == b:
        break
    a = b
print(b)' "$TMP/herald.db"
}

# ---- the servers ----------------------------------------------------------
"$HERALD" -c "$TMP/g.ini" serve > "$TMP/serve.log" 2>&1 &
SERVE_PID=$!
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
  proxy_temp_path $TMP/proxy;
  fastcgi_temp_path $TMP/fastcgi;
  uwsgi_temp_path $TMP/uwsgi;
  scgi_temp_path $TMP/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$NPORT;
    location /c/ { add_header Cache-Control no-store; return 302 https://example.com/; }
  }
}
EOF
"$NGINX" -p "$TMP" -e "$TMP/logs/error.log" -c "$TMP/nginx.conf"
up () {   # up URL EXPECTED-STATUS: within 10 s
  i=0
  while [ $i -lt 100 ]; do
    s=$($PY -c 'import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
try:
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
    c.request("GET", u.path); print(c.getresponse().status)
except OSError:
    print(0)' "$1")
    [ "$s" = "$2" ] && return 0
    i=$((i + 1))
    sleep 0.1
  done
  return 1
}
up "$HBASE/healthz" 200 || { echo "herald serve did not start:" >&2; cat "$TMP/serve.log" >&2; exit 1; }
up "$NBASE$FIRST" 302 || { echo "nginx did not start:" >&2; cat "$TMP/logs/error.log" >&2; exit 1; }
up "$HBASE$FIRST" 302 || { echo "the tracked link does not redirect" >&2; exit 1; }

# A browser's User-Agent: wrk sends none, which herald would take for a
# machine's click (recorded all the same).
UA='Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0'
SCRIPT=
if [ "$TOKENS" -gt 1 ]; then
  cat > "$TMP/paths.lua" <<EOF
local paths, i = {}, 0
for line in io.lines("$TMP/paths") do paths[#paths + 1] = line end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
EOF
  SCRIPT="-s $TMP/paths.lua"
fi

# wrk BASE OUT: one measurement (the first path; the script turns the
# paths in TOKENS > 1).
measure () {
  # shellcheck disable=SC2086
  timeout $((WRK_SECONDS + 60)) wrk -t"$THREADS" -c"$CONN" -d"${WRK_SECONDS}s" \
    -H "User-Agent: $UA" $SCRIPT "$1$FIRST" > "$2"
}
rate () { awk '/^Requests\/sec/ {print $2}' "$1"; }
count () { awk '/requests in/ {print $1}' "$1"; }
errors () {   # non-2xx/3xx answers plus socket errors
  awk '/Non-2xx or 3xx/ {n += $NF}
       /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
       END {print n + 0}' "$1"
}
median () { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "clicks bench: herald serve GET /c/TOKEN ($TOKENS link(s) of $MESSAGES sent messages, store in $(df -T "$TMP" | awk 'NR == 2 {print $2}') $TMP)"
echo "  against nginx 1 worker 'return 302'; wrk -t$THREADS -c$CONN -d${WRK_SECONDS}s, $ROUNDS rounds"
: > "$TMP/h.rates"; : > "$TMP/n.rates"; : > "$TMP/ratios"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  before=$(clicks_in_store)
  if [ $((r % 2)) -eq 1 ]; then
    measure "$HBASE" "$TMP/h.out"; measure "$NBASE" "$TMP/n.out"
  else
    measure "$NBASE" "$TMP/n.out"; measure "$HBASE" "$TMP/h.out"
  fi
  after=$(clicks_in_store)
  h=$(rate "$TMP/h.out"); n=$(rate "$TMP/n.out"); hn=$(count "$TMP/h.out")
  he=$(errors "$TMP/h.out"); ne=$(errors "$TMP/n.out")
  rec=$((after - before))
  ratio=$(awk -v h="$h" -v n="$n" 'BEGIN {printf "%.1f", (n > 0) ? 100 * h / n : 0}')
  echo "$h" >> "$TMP/h.rates"; echo "$n" >> "$TMP/n.rates"; echo "$ratio" >> "$TMP/ratios"
  printf '  round %d: herald %8.0f clicks/s (%s clicks, %s recorded, %s errors)   nginx %8.0f req/s (%s errors) = %5s%%\n' \
    "$r" "$h" "$hn" "$rec" "$he" "$n" "$ne" "$ratio"
  if [ "$he" -ne 0 ] || [ "$rec" -lt "$hn" ] || [ "$rec" -gt $((hn + CONN)) ]; then
    echo "  herald: errors, or clicks not recorded one for one:" >&2
    cat "$TMP/h.out" >&2
    tail -5 "$TMP/serve.log" >&2
    exit 1
  fi
  r=$((r + 1))
done

H=$(median < "$TMP/h.rates")
N=$(median < "$TMP/n.rates")
R=$(median < "$TMP/ratios")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (wrk, nginx and herald share them)"
awk -v h="$H" -v n="$N" -v r="$R" 'BEGIN {
  printf "median: herald %.0f clicks/s, nginx %.0f req/s: herald/nginx = %.1f%% (median of per-round ratios %.1f%%)\n", h, n, 100 * h / n, r }'
