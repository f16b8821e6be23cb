#!/bin/sh
# A message that crashes its plugin (SIGSEGV in send) is not sent forever
# with its whole batch: after a crash the messages that were in flight go
# again one at a time, so the poison crashes alone; once it has been in
# flight at max_attempts crashes it is dead ("crashed_in_flight"), and
# everybody else is sent, each at most twice (at-least-once).
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
N=60
cat > "$T/g.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = sent
log = $T/email.log
crash_on = p:1:c00042
INI
write_templates "$T/tpl"
printf '[campaign]\nid = p\ntemplates = tpl\nchannels = email\nmax_attempts = 3\n' > "$T/c.ini"
write_email_customers "$T/cust.jsonl" "$N"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null

runs=0 crashes=0
while [ "$runs" -lt 8 ]; do
  runs=$((runs + 1))
  # Under AddressSanitizer the crash is the kernel's, as in a normal
  # build (ASan would report it and exit 1).
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0" \
    timeout 60 "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run$runs.out" 2>&1
  rc=$?
  [ "$rc" -ge 128 ] && crashes=$((crashes + 1))
  [ "$rc" -lt 128 ] && break
done
is "$rc" 0 "a run completes after $crashes crashes"
is "$crashes" 3 "the poison crashed the runs max_attempts (3) times, then no more"
state=$(sqlite3 "$T/herald.db" "SELECT state || '/' || reason || '/' || attempts FROM outbox WHERE key = 'p:1:c00042'")
is "$state" "dead/crashed_in_flight/3" "the poison is dead, crashed_in_flight, after 3 attempts"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")" $((N - 1)) "everybody else is sent"
is "$($PY - "$T/email.log" <<'PYEOF'
import collections, sys
c = collections.Counter(l.split()[0] for l in open(sys.argv[1]))
print(len(c), max(c.values()))
PYEOF
)" "$((N - 1)) 2" "each of the others reached the plugin, at most twice"
like "$(cat "$T/run2.out")" "in flight when an earlier run stopped: sending them again, one at a time" "the run after a crash says so"
done_testing
