#!/bin/sh
# A plugin stuck in send: past [channel.NAME] send_timeout the run gives
# the batch up as in flight (as at a crash), says which plugin, and exits
# 1 without waiting for it; the next run sends those messages again, one
# at a time, and everybody else.  And a plugin that declares
# HERALD_THREAD_SERIALIZE is never in two calls at once, whatever the
# lanes.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
N=12
cp "$HERALD_BUILDDIR/tests/plugins/.libs/serialplug.so" "$PLUGINS/"
gateway () {   # gateway EXTRA-LINES: an e-mail channel on testplug
  cat > "$T/g.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = sent
log = $T/email.log
calls = $T/calls.log
$1
INI
}
write_templates "$T/tpl"
printf '[campaign]\nid = st\ntemplates = tpl\nchannels = email\n' > "$T/c.ini"
write_email_customers "$T/cust.jsonl" "$N"
gateway ""
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null

# The values it takes.
for bad in 0 abc 2d; do
  gateway "send_timeout = $bad"
  out=$("$HERALD" -c "$T/g.ini" lint "$T/c.ini" 2>&1); rc=$?
  is "$rc" 1 "send_timeout = $bad: refused"
  like "$out" "g.ini:10: \[channel.email\] send_timeout: '$bad' is not a duration from 1s to 1d" \
    "send_timeout = $bad: file, line and key"
done

# The plugin holds its batch for ten minutes; send_timeout is 2 s.
gateway "ready = $T/ready
hold_ms = 600000
send_timeout = 2s"
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run1.out" 2>&1
rc=$?
is "$rc" 1 "stuck plugin: the run exits 1 (not killed by the test's limit)"
like "$(cat "$T/run1.out")" "channel email: plugin testplug did not return from send within 2s \(send_timeout\)" \
  "... naming the channel, the plugin and the timeout"
like "$(cat "$T/run1.out")" "stopped: channel email: plugin testplug did not return from send within send_timeout \(2s\); its batch stays in flight" \
  "... and what becomes of the batch"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'sending'")" "$N" \
  "... the batch is in flight (sending), nothing marked sent"
is "$(count_lines "$T/email.log") $(cat "$T/ready")" "$N send 1" \
  "... the plugin had been handed all $N, and had not returned"

# Fixed: the next run sends them again, one at a time, as after a crash.
rm -f "$T/calls.log" "$T/email.log"
gateway ""
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run2.out" 2>&1
is "$?" 0 "the next run exits 0"
like "$(cat "$T/run2.out")" "$N message\(s\) were in flight when an earlier run stopped: sending them again, one at a time" \
  "... and says the $N were in flight"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'sent' AND attempts = 2")" "$N" \
  "... every message sent, on its second attempt"
is "$(awk '$2 != 1' "$T/calls.log" | wc -l | tr -d ' ')" 0 "... one message a send call"

# Serialised: serialplug on 4 lanes, 2,000 messages in batches of 500,
# each call 100 ms: no two calls of any of its states overlap.  testplug, the same code declaring nothing,
# overlaps on the same lanes (what the test would see without the lock).
write_email_customers "$T/cust2.jsonl" 2000 s
out=$("$HERALD" -c "$T/g.ini" plugins 2>&1)
like "$out" "serialplug .*\(calls serialised\)" "herald plugins says which plugin's calls are serialised"
for plug in serialplug testplug; do
  rm -f "$T/herald.db"* "$T/calls.log" "$T/email.log"
  gateway "lanes = 4
sleep_ms = 100"
  sed -i "s/^plugin = testplug\$/plugin = $plug/" "$T/g.ini"
  "$HERALD" -c "$T/g.ini" customers import "$T/cust2.jsonl" >/dev/null
  printf '[campaign]\nid = se\ntemplates = tpl\nchannels = email\n' > "$T/c2.ini"
  "$HERALD" -c "$T/g.ini" run "$T/c2.ini" > "$T/run-$plug.out" 2>&1
  is "$?" 0 "$plug, lanes = 4: exit 0"
  overlaps=$($PY - "$T/calls.log" <<'PYEOF'
import sys
calls = sorted(tuple(int(x) for x in l.split()[2:4]) for l in open(sys.argv[1]))
print(sum(1 for a, b in zip(calls, calls[1:]) if b[0] < a[1]))
PYEOF
)
  states=$(awk '{print $1}' "$T/calls.log" | sort -u | wc -l | tr -d ' ')
  is "$states" 4 "$plug: four states (lanes) were used"
  if [ "$plug" = serialplug ]; then
    is "$overlaps" 0 "serialplug (HERALD_THREAD_SERIALIZE): no two calls at once"
  else
    ok "$([ "$overlaps" -gt 0 ]; echo $?)" "testplug (parallel): calls overlap ($overlaps)"
  fi
done
done_testing
