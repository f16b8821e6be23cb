#!/bin/sh
# Crash safety: SIGKILL herald run at random moments, run it again, and
# check that every customer is messaged, none twice except messages in
# flight at a kill (at-least-once): per kill, at most the batch with the
# plugin and the one that just came back unrecorded (two of 500).  SIGTERM finishes the batch in flight
# and leaves nothing in "sending".
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
N=10000

write_gateway "$T/g.ini"
write_templates "$T/tpl"
printf '[campaign]\nid = k\ntemplates = tpl\nchannels = email, sms\n' > "$T/c.ini"
write_customers "$T/cust.jsonl" "$N"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
is "$?" 0 "imported $N customers"

kills=0
for delay in 0.05 0.15 0.3 0.2 0.4 0.1; do
  "$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
  wait "$pid" 2>/dev/null
done
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/final.out" 2>&1
is "$?" 0 "final run completes"

cat "$T"/out/*/messages.jsonl > "$T/all.jsonl"
$PY - "$T/all.jsonl" "$N" "$kills" <<'PYEOF' > "$T/check.out"
import json, sys, collections
keys = collections.Counter(json.loads(l)["id"] for l in open(sys.argv[1]))
n, kills = int(sys.argv[2]), int(sys.argv[3])
missing = n - len(keys)
dups = sum(c - 1 for c in keys.values() if c > 1)
print("missing", missing)
print("dups", dups)
# At most two batches (500 messages each) per kill: the one with the
# plugin, and the one that landed and is being recorded.
print("dups_ok", 1 if dups <= kills * 1000 else 0)
PYEOF
is "$(sed -n 's/^missing //p' "$T/check.out")" 0 "every customer messaged after $kills kills"
is "$(sed -n 's/^dups_ok //p' "$T/check.out")" 1 "duplicates only from in-flight batches ($(sed -n 's/^dups //p' "$T/check.out"))"
state=$("$HERALD" -c "$T/g.ini" report k --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["states"])')
is "$state" "{'sent': $N}" "store: every message sent, none left in sending"

# At most once: after the same kills, no message is ever sent twice; the
# ones in flight at a kill are failed ("in flight at crash"), never resent.
rm -rf "$T/out" "$T"/herald.db*
printf '[campaign]\nid = k\ntemplates = tpl\nchannels = email, sms\ndelivery = at_most_once\n' > "$T/c1.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
for delay in 0.1 0.3 0.2; do
  "$HERALD" -c "$T/g.ini" run "$T/c1.ini" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
timeout 120 "$HERALD" -c "$T/g.ini" run "$T/c1.ini" >/dev/null 2>&1
is "$?" 0 "at most once: final run completes"
cat "$T"/out/*/messages.jsonl 2>/dev/null | $PY -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["id"] for l in sys.stdin)
print(sum(v - 1 for v in c.values()))' > "$T/amo.out"
is "$(cat "$T/amo.out")" 0 "at most once: no message sent twice"
"$HERALD" -c "$T/g.ini" report k --json | $PY -c '
import json, sys
r = json.load(sys.stdin)
st = r["states"]
print(st.get("sent", 0) + st.get("failed", 0), sorted(k for k in st if k not in ("sent", "failed")))' > "$T/amo2.out"
is "$(cat "$T/amo2.out")" "$N []" "at most once: every message sent or failed, nothing pending or sending"

# SIGTERM: the batch in flight is finished and recorded.
rm -rf "$T/out" "$T"/herald.db*
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
"$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/term.out" 2>&1 &
pid=$!
sleep 0.2
kill -TERM "$pid"
wait "$pid"; rc=$?
sending=$("$HERALD" -c "$T/g.ini" report k --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["states"].get("sending", 0))')
is "$sending" 0 "SIGTERM: nothing left in sending"
if [ "$rc" -eq 1 ]; then
  like "$(cat "$T/term.out")" "interrupted" "SIGTERM: says it was interrupted"
else
  ok 0 "SIGTERM arrived after the run finished (rc $rc)"
fi
"$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
cat "$T"/out/*/messages.jsonl | $PY -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["id"] for l in sys.stdin)
print(len(c), sum(v - 1 for v in c.values()))' > "$T/t.out"
is "$(cat "$T/t.out")" "$N 0" "SIGTERM then resume: everyone once, no duplicate"

done_testing
