#!/bin/sh
# Crash safety: SIGKILL herald run while a batch is known to be in flight
# (the test plugin has logged it as sent and not returned: it holds the
# batch and says so in a "ready" file), run it again, and check that every
# customer is messaged, none twice except messages in flight at a kill
# (at-least-once): per kill, at most two batches per lane, the one with the
# plugin and the one that just came back unrecorded (README, "Delivery
# semantics").  At most once: the same kills, no message ever twice.
# SIGTERM while a batch is held finishes that batch, records it, leaves
# nothing in "sending" and exits 1 saying it was interrupted.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
N=10000
BATCH=500          # messages per plugin call (core/run/internal.h, README)
LANES=1            # lanes of each channel in the gateway below

# gateway FILE [CHANNEL CALL HOLD-MS]: e-mail and SMS through testplug,
# each logging what it sends to $T/CHANNEL.log; CHANNEL's send call number
# CALL writes "send CALL" to $T/ready, stays HOLD-MS in the plugin, then
# writes "return CALL".
gateway () {
  {
    printf '[store]\npath = %s\n[plugins]\ndir = %s\n' "$T/herald.db" "$PLUGINS"
    for ch in email sms; do
      printf '[channel.%s]\nplugin = testplug\nlanes = %s\nlog = %s\n' \
        "$ch" "$LANES" "$T/$ch.log"
      [ "${2:-}" = "$ch" ] &&
        printf 'ready = %s\nready_after = %s\nhold_ms = %s\n' "$T/ready" "$3" "$4"
    done
  } > "$1"
}
held () { grep -q '^send ' "$T/ready" 2>/dev/null; }
held_or_gone () { held || ! alive "$1"; }

# lost_at_kill HELD-CHANNEL: after a kill, per channel, the messages the run handed to
# the plugin (logged since $T/offsets) that the store still has in
# "sending": sent, not recorded, so sent again by the next run.  Appends
# "CHANNEL COUNT" lines to $T/lost, and "held COUNT" for HELD-CHANNEL.
lost_at_kill () {
  $PY - "$T" "$1" <<'PYEOF' >> "$T/lost"
import os, sqlite3, sys
t = sys.argv[1]
offsets = dict(l.split() for l in open(os.path.join(t, "offsets")))
db = sqlite3.connect(os.path.join(t, "herald.db"))
sending = set(k for (k,) in db.execute("SELECT key FROM outbox WHERE state = 'sending'"))
db.close()
for ch in ("email", "sms"):
    path = os.path.join(t, ch + ".log")
    lines = open(path).read().splitlines() if os.path.exists(path) else []
    run = set(l.split()[0] for l in lines[int(offsets[ch]):])
    print(ch, len(run & sending))
    if ch == sys.argv[2]:
        print("held", len(run & sending))
PYEOF
}

# kill_rounds CAMPAIGN-INI ROUND...: one run per ROUND ("CHANNEL CALL"),
# each SIGKILLed once CHANNEL's CALL-th batch is held in the plugin.  Sets
# rounds, kills (kills sent while a batch was held) and midbatch (runs that
# died of the kill with the held batch never returned); lost_at_kill
# after each.
kill_rounds () {
  _ini=$1
  shift
  rounds=0 kills=0 midbatch=0
  rm -f "$T/lost"
  for _r in "$@"; do
    gateway "$T/g.ini" ${_r% *} ${_r#* } 60000
    rm -f "$T/ready"
    for ch in email sms; do echo "$ch $(count_lines "$T/$ch.log")"; done > "$T/offsets"
    "$HERALD" -c "$T/g.ini" run "$_ini" > "$T/round.out" 2>&1 &
    pid=$!
    rounds=$((rounds + 1))
    wait_until 60 held_or_gone "$pid"
    _held=1
    held && _held=0
    # Killed in any case: a run that never held a batch must not outlive
    # the test.
    kill -KILL "$pid" 2>/dev/null && [ "$_held" -eq 0 ] && kills=$((kills + 1))
    wait "$pid"
    _st=$?
    lost_at_kill ${_r% *}
    if [ "$_held" -eq 0 ] && [ "$_st" -eq 137 ] &&
       ! grep -q '^return ' "$T/ready"; then
      midbatch=$((midbatch + 1))
    else
      echo "# round $rounds ($_r): held=$_held, exit status $_st"
      sed 's/^/#   ready: /' "$T/ready" 2>/dev/null
      sed 's/^/#   /' "$T/round.out" | head -5
    fi
  done
}

write_templates "$T/tpl"
printf '[campaign]\nid = k\ntemplates = tpl\nchannels = email, sms\n' > "$T/c.ini"
write_customers "$T/cust.jsonl" "$N"
gateway "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
is "$?" 0 "imported $N customers"

# Six kills, each with a different batch held: early and later in a run,
# on either channel.  No more than 3 batches a run, so the campaign (20
# pages) is never finished before the last kill.
kill_rounds "$T/c.ini" "email 1" "sms 2" "email 3" "sms 1" "email 2" "sms 3"
is "$kills" "$rounds" "SIGKILL: each of the $rounds kills came while a batch was held in the plugin"
is "$midbatch" "$rounds" "SIGKILL: each kill ended the run mid-batch (killed, the held batch never returned)"
gateway "$T/g.ini"
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/final.out" 2>&1
is "$?" 0 "final run completes"

$PY - "$T" "$N" "$BATCH" "$LANES" <<'PYEOF' > "$T/check.out"
import collections, os, sys
t, n, batch, lanes = sys.argv[1], *map(int, sys.argv[2:])
lost = collections.defaultdict(list)
for l in open(os.path.join(t, "lost")):
    ch, k = l.split()
    lost[ch].append(int(k))
keys = collections.Counter()
for ch in ("email", "sms"):
    c = collections.Counter(l.split()[0] for l in open(os.path.join(t, ch + ".log")))
    keys.update(c)
    # README: at most two batches per lane sent and not recorded at a kill.
    print(ch, "lost", " ".join(map(str, lost[ch])))
    print(ch, "bound_ok", int(all(k <= 2 * batch * lanes for k in lost[ch])))
    # Those, and nothing else, are sent twice.
    print(ch, "dups", sum(v - 1 for v in c.values()), "lost", sum(lost[ch]))
print("missing", n - len(keys))
print("held_lost", sum(1 for k in lost["held"] if k > 0))
PYEOF
sed 's/^/# /' "$T/check.out"
is "$(sed -n 's/^missing //p' "$T/check.out")" 0 "every customer messaged after $kills kills"
for ch in email sms; do
  is "$(sed -n "s/^$ch bound_ok //p" "$T/check.out")" 1 \
    "$ch: at each kill, at most 2 batches of $BATCH per lane ($LANES) sent and not recorded ($(sed -n "s/^$ch lost //p" "$T/check.out"))"
  like "$(sed -n "s/^$ch dups //p" "$T/check.out")" '^([0-9]+) lost \1$' \
    "$ch: exactly those were sent twice, no other message"
done
# The held batch of every kill was sent and not recorded.
is "$(sed -n 's/^held_lost //p' "$T/check.out")" "$kills" "at least once: every kill left its held batch to send again"
state=$("$HERALD" -c "$T/g.ini" report k --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["states"])')
is "$state" "{'sent': $N}" "store: every message sent, none left in sending"

# At most once: after the same kills, no message is ever sent twice; the
# ones in flight at a kill are failed ("in flight at crash"), never resent.
rm -f "$T"/herald.db* "$T"/*.log
printf '[campaign]\nid = k\ntemplates = tpl\nchannels = email, sms\ndelivery = at_most_once\n' > "$T/c1.ini"
gateway "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
kill_rounds "$T/c1.ini" "email 2" "sms 1" "email 1"
is "$kills/$midbatch" "$rounds/$rounds" "at most once: each of the $rounds kills ended a run mid-batch"
gateway "$T/g.ini"
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c1.ini" >/dev/null 2>&1
is "$?" 0 "at most once: final run completes"
cat "$T/email.log" "$T/sms.log" | $PY -c '
import sys, collections
c = collections.Counter(l.split()[0] for l in sys.stdin)
print(sum(v - 1 for v in c.values()))' > "$T/amo.out"
is "$(cat "$T/amo.out")" 0 "at most once: no message sent twice"
"$HERALD" -c "$T/g.ini" report k --json | $PY -c '
import json, sys
st = json.load(sys.stdin)["states"]
print(st.get("sent", 0) + st.get("failed", 0), sorted(k for k in st if k not in ("sent", "failed")), st.get("failed", 0))' > "$T/amo2.out"
is "$(cut -d' ' -f1-2 "$T/amo2.out")" "$N []" "at most once: every message sent or failed, nothing pending or sending"
failed=$(cut -d' ' -f3 "$T/amo2.out")
ok "$([ "${failed:-0}" -ge "$kills" ]; echo $?)" "at most once: the batches in flight at the kills were failed, not resent ($failed failed)"

# At most once, killed while the lane holds a batch and the rows of the
# next page are claimed for it (waiting for the lane, never handed to a
# plugin): only what the plugins had is failed; the next run sends the
# others.
rm -f "$T"/herald.db* "$T"/*.log "$T/ready"
gateway "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
gateway "$T/g.ini" email 1 60000
"$HERALD" -c "$T/g.ini" run "$T/c1.ini" > "$T/claim.out" 2>&1 &
pid=$!
# Page 1 handed (email held, SMS back), page 2 claimed: 1000 rows sending.
claimed () {
  [ "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'sending'" 2>/dev/null)" = 1000 ] &&
  [ "$(cat "$T/email.log" "$T/sms.log" 2>/dev/null | wc -l | tr -d ' ')" = 500 ]
}
wait_until 60 claimed
is "$?" 0 "at most once: page 1 with the plugins (the e-mail batch held), page 2 claimed"
kill -KILL "$pid"
wait "$pid"
gateway "$T/g.ini"
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c1.ini" >/dev/null 2>&1
is "$?" 0 "at most once: the run after the kill completes"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'failed'")" 500 \
  "at most once: only the 500 messages the plugins had are failed, not the 500 claimed for the next batch"
is "$(cat "$T/email.log" "$T/sms.log" | cut -d' ' -f1 | sort | uniq -c | awk '{print $1}' | sort | uniq -c | tr -s ' ')" " $N 1" \
  "at most once: every customer's message reached a plugin, once"

# SIGTERM while a batch is held: that batch comes back and is recorded,
# nothing is left in "sending", the run exits 1 saying it was interrupted.
rm -f "$T"/herald.db* "$T"/*.log "$T/ready"
gateway "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
gateway "$T/g.ini" email 2 2000
"$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/term.out" 2>&1 &
pid=$!
wait_until 60 held_or_gone "$pid"
held
is "$?" 0 "SIGTERM: a batch is held in the plugin"
kill -TERM "$pid"
# kill(2) has queued the signal: no "return" yet means it came mid-batch.
grep -q '^return ' "$T/ready"
is "$?" 1 "SIGTERM: sent while the batch was still in the plugin"
wait "$pid"
is "$?" 1 "SIGTERM: exit 1"
like "$(cat "$T/term.out")" "interrupted" "SIGTERM: says it was interrupted"
is "$(grep -c '^return ' "$T/ready")" 1 "SIGTERM: the held batch came back"
states=$("$HERALD" -c "$T/g.ini" report k --json | $PY -c '
import json, sys
print(" ".join("%s=%d" % kv for kv in sorted(json.load(sys.stdin)["states"].items())))')
like "$states" "^(pending=[0-9]+ )?sent=[0-9]+$" "SIGTERM: nothing left in sending ($states)"
sent=$(printf '%s\n' "$states" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')
logged=$(cat "$T/email.log" "$T/sms.log" | wc -l | tr -d ' ')
is "$sent" "$logged" "SIGTERM: every message handed to the plugin, the held batch included, is recorded sent"
gateway "$T/g.ini"
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
is "$?" 0 "SIGTERM then resume: exit 0"
cat "$T/email.log" "$T/sms.log" | $PY -c '
import sys, collections
c = collections.Counter(l.split()[0] for l in sys.stdin)
print(len(c), sum(v - 1 for v in c.values()))' > "$T/t.out"
is "$(cat "$T/t.out")" "$N 0" "SIGTERM then resume: everyone once, no duplicate"

done_testing
