# sink.sh: a plain high-volume run into Postfix's smtp-sink on loopback:
# 3000 messages, 1000 per SMTP session, every one reported sent and
# counted by the sink.  Skipped when configure found no smtp-sink.
if [ -z "${SMTP_SINK:-}" ] || [ ! -x "$SMTP_SINK" ]; then
  echo "1..0 # SKIP smtp-sink not found"
  exit 0
fi
run="$HERALD_BUILDDIR/tests/plugin-run"
so="$HERALD_PLUGIN_DIR/email.so"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herald-email-sink.XXXXXX")
chmod 755 "$tmp"
sinkpid=
dogpid=
cleanup () {
  [ -n "$sinkpid" ] && kill "$sinkpid" 2>/dev/null
  [ -n "$dogpid" ] && kill "$dogpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$($PYTHON3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=
[ "$(id -u)" = 0 ] && user="-u nobody"
# -c counts delivered messages on stdout.  No timeout(1) or sleeping
# watchdog beside smtp-sink: on the shared test machine both fired early
# and took the sink down mid-run (exit 143).  The time limit is
# plugin-run's own timeout_ms, and the trap always stops the sink.
"$SMTP_SINK" $user -c "127.0.0.1:$port" 64 >"$tmp/sink.out" 2>&1 &
sinkpid=$!
i=0
# Ready when it answers; say QUIT (a probe that just hangs up made this
# smtp-sink drop a later session).
while ! $PYTHON3 -c "import smtplib; smtplib.SMTP('127.0.0.1', $port, timeout=2).quit()" 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 50 ] && { echo "1..0 # SKIP smtp-sink did not start"; exit 0; }
  sleep 0.1
done

$PYTHON3 - >"$tmp/msgs.jsonl" <<'PY'
import json
for i in range(3000):
    print(json.dumps({
        'key': 'sink:0:c%d' % i, 'to': 'c%d@sink.example' % i,
        'to_name': 'Zoë %d' % i,
        'parts': {'email.subject': 'Volume test %d é 漢字' % i,
                  'email.text': 'Hello Zoë,\n' + 'line of text\n' * 20,
                  'email.html': '<p>Hello Zoë</p>\n' + '<p>x</p>' * 200},
        'unsubscribe_url': 'https://t.example/u/%d' % i}))
PY

echo "1..3"
"$run" "$so" -n email -b 3000 -k "server=127.0.0.1:$port" \
  -k 'from=Herald <news@herald.example>' -k starttls=no -k batch=1000 \
  -k timeout_ms=20000 <"$tmp/msgs.jsonl" >"$tmp/results.jsonl" 2>"$tmp/err"
rc=$?
sent=$(grep -c '"status":"sent"' "$tmp/results.jsonl")
if [ $rc -eq 0 ] && [ "$sent" = 3000 ]; then
  echo "ok 1 - 3000 messages sent"
else
  echo "not ok 1 - 3000 messages sent (rc $rc, $sent sent)"
  sed 's/^/#   /' "$tmp/err" | head -5
  grep -v '"sent"' "$tmp/results.jsonl" | head -3 | sed 's/^/#   /'
fi
ids=$(sed 's/.*"provider_id":"\([^"]*\)".*/\1/' "$tmp/results.jsonl" | sort -u | wc -l)
if [ "$ids" = 3000 ]; then
  echo "ok 2 - 3000 distinct Message-IDs"
else
  echo "not ok 2 - 3000 distinct Message-IDs ($ids)"
fi
# The counter line is rewritten with CRs; the last value is the total.
# Wait (30 s at most) for the sink to have counted all of them before
# stopping it: it counts after it has answered.
counted () {
  tr '\r' '\n' <"$tmp/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1
}
i=0
while [ "$(counted)" != 3000 ] && [ $i -lt 600 ]; do
  i=$((i + 1))
  sleep 0.05
done
kill "$sinkpid" 2>/dev/null
wait "$sinkpid" 2>/dev/null
sinkpid=
got=$(counted)
if [ "$got" = 3000 ]; then
  echo "ok 3 - smtp-sink counted 3000 messages in 3 sessions"
else
  echo "not ok 3 - smtp-sink counted 3000 messages (got '$got')"
  tr '\r' '\n' <"$tmp/sink.out" | tail -n 3 | sed 's/^/#   /'
fi
