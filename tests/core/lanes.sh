#!/bin/sh
# [channel.NAME] lanes = N: N plugin instances of one channel send batches
# at the same time, each on its own thread, while the core plans and
# records.  Every message is still sent once and recorded once; a channel
# error or SIGTERM stops cleanly with nothing left in "sending"; bad
# values are refused with the file and line.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
N=1800

gateway () {   # gateway FILE EMAIL-MODE SLEEP-MS [READY-FILE]
  cat > "$1" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
lanes = 3
mode = $2
sleep_ms = $3
log = $T/email.log
calls = $T/calls.log
${4:+ready = $4
hold_ms = 120000}
[channel.sms]
plugin = outbox
lanes = 2
dir = $T/out/sms
INI
}
write_templates "$T/tpl"
printf '[campaign]\nid = ln\ntemplates = tpl\nchannels = email, sms\nretry_horizon = 0s\n' > "$T/c.ini"
write_customers "$T/cust.jsonl" "$N"
states () {
  "$HERALD" -c "$T/g.ini" report ln --json 2>/dev/null |
    $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%s=%d" % (k, v) for k, v in sorted(d["states"].items())))'
}
fresh () {
  rm -rf "$T"/herald.db* "$T/out" "$T/email.log" "$T/calls.log"
  "$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
}

# 1. Everyone once, through three e-mail instances and two SMS instances.
gateway "$T/g.ini" sent 100
fresh
out=$(timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "lanes: run exits 0"
is "$(states)" "sent=$N" "lanes: every message recorded sent"
is "$(cut -d' ' -f1 "$T/email.log" | sort | uniq | wc -l | tr -d ' ')" 1200 "lanes: 1200 e-mails, each customer once"
is "$(wc -l < "$T/email.log" | tr -d ' ')" 1200 "lanes: no e-mail sent twice"
is "$($PY -c '
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1])]
print(len(ids), len(set(ids)))' "$T/out/sms/messages.jsonl")" "600 600" "lanes: 600 SMS from two outbox instances, each once, no line torn"
is "$(cut -d' ' -f1 "$T/calls.log" | sort -u | wc -l | tr -d ' ')" 3 "lanes: three e-mail plugin instances were used"
# Two send calls of different instances overlapping in time: the lanes
# really send at the same time (each call sleeps 100 ms).
is "$($PY - "$T/calls.log" <<'PYEOF'
import sys
calls = [l.split() for l in open(sys.argv[1])]
calls = [(s, int(a), int(b)) for s, n, a, b in calls]
print(int(any(s1 != s2 and a1 < b2 and a2 < b1
              for s1, a1, b1 in calls for s2, a2, b2 in calls)))
PYEOF
)" 1 "lanes: batches of different instances were in flight together"
is "$($PY -c '
import sys
print(sum(int(l.split()[1]) for l in open(sys.argv[1])))' "$T/calls.log")" 1200 "lanes: the calls carried 1200 messages"

# 2. A channel error on one lane stops the run; nothing is lost or left
# in "sending"; fixed, the next run sends everything once.
gateway "$T/g.ini" channel_error 50
fresh
out=$(timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "lanes, channel error: exit 1"
like "$out" "stopped: channel email: testplug says 4" "lanes, channel error: named"
like "$(states)" "^pending=[0-9]+( sent=[0-9]+)?$" "lanes, channel error: messages pending or sent, none in sending"
gateway "$T/g.ini" sent 0
rm -f "$T/email.log"
out=$(timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "lanes, channel fixed: exit 0"
is "$(states)" "sent=$N" "lanes, channel fixed: everything sent"
is "$(grep -c ' 1$' "$T/email.log")/$(wc -l < "$T/email.log" | tr -d ' ')" 1200/1200 "lanes, channel fixed: each e-mail once, on its first counted attempt"

# 3. SIGTERM: the batches in flight finish and are recorded; a second run
# sends the rest, nobody twice.  Each e-mail lane's first batch stays in
# the plugin (and says so in $T/ready) until the test removes $T/ready.
gateway "$T/g.ini" sent 0 "$T/ready"
fresh
rm -f "$T/ready"
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/term.out" 2>&1 &
pid=$!
held_or_gone () { grep -q '^send ' "$T/ready" 2>/dev/null || ! alive "$pid"; }
wait_until 60 held_or_gone
grep -q '^send ' "$T/ready"
is "$?" 0 "lanes, SIGTERM: a batch is in the plugin"
kill -TERM "$pid"
# Release the held batches, and any other lane's first one, until the run
# has finished.
released () { rm -f "$T/ready"; ! alive "$pid"; }
wait_until 60 released
wait "$pid"; rc=$?
is "$rc" 1 "lanes, SIGTERM: exit 1"
like "$(cat "$T/term.out")" "interrupted" "lanes, SIGTERM: says it was interrupted"
like "$(states)" "^(pending=[0-9]+ )?sent=[0-9]+$" "lanes, SIGTERM: nothing left in sending"
gateway "$T/g.ini" sent 0
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
is "$?" 0 "lanes, SIGTERM then resume: exit 0"
is "$(states)" "sent=$N" "lanes, SIGTERM then resume: everything sent"
is "$(wc -l < "$T/email.log" | tr -d ' ')" 1200 "lanes, SIGTERM then resume: no e-mail twice"

# 4. Bad values name the file and line; lanes is the core's key, not the
# plugin's.
for v in 0 17 two; do
  gateway "$T/g.ini" sent 0
  sed -i "s/^lanes = 3$/lanes = $v/" "$T/g.ini"
  out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
  is "$rc" 1 "lanes = $v: refused"
  like "$out" "g.ini:7: \[channel.email\] lanes: '$v' is not a number from 1 to 16" "lanes = $v: file, line and key"
done

# 5. At most once, and retries: these go through the due rows (marked
# "sending" first), and take the lanes too, overlapping in time.
overlap () {
  $PY - "$T/calls.log" <<'PYEOF'
import sys
calls = [l.split() for l in open(sys.argv[1])]
calls = [(s, int(a), int(b)) for s, n, a, b in calls]
print(len(set(s for s, a, b in calls)),
      int(any(s1 != s2 and a1 < b2 and a2 < b1
              for s1, a1, b1 in calls for s2, a2, b2 in calls)))
PYEOF
}
printf '[campaign]\nid = ln\ntemplates = tpl\nchannels = email, sms\nretry_horizon = 0s\ndelivery = at_most_once\n' > "$T/c1.ini"
gateway "$T/g.ini" sent 100
fresh
out=$(timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c1.ini" 2>&1); rc=$?
is "$rc" 0 "lanes, at most once: exit 0"
is "$(states)" "sent=$N" "lanes, at most once: every message sent"
is "$(overlap)" "3 1" "lanes, at most once: three instances, batches in flight together"
gateway "$T/g.ini" retry 100
fresh
HERALD_NOW=2000000000 timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
rm -f "$T/calls.log"
HERALD_NOW=2000007200 timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
is "$(overlap)" "3 1" "lanes, retries: due on three instances, in flight together"
is "$($PY -c '
import sys
print(sum(int(l.split()[1]) for l in open(sys.argv[1])))' "$T/calls.log")" 1200 "lanes, retries: the 1200 e-mails retried once each"

done_testing
