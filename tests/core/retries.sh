#!/bin/sh
# herald run's summary counts messages, not attempts.  Five messages whose
# channel keeps answering "retry" (testplug mode = retry, as a server that
# is down) are attempted twice in one run, the second time when their
# retry falls due within retry_horizon: the summary says "retry 5", as the
# store does, not 10.  With max_attempts = 2 the second attempt makes them
# dead: "retry 0, dead 5".  The first retry is due 24 to 36 s after the
# first attempt (backoff), so each run takes about half a minute; both run
# at once, on stores of their own.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3

write_templates "$T/tpl"
for i in 1 2 3 4 5; do
  printf '{"id":"c%d","email":"c%d@example.com","consent":{"email":true}}\n' "$i" "$i"
done > "$T/cust.jsonl"
for n in 1 2; do
  cat > "$T/g$n.ini" <<INI
[store]
path = $T/h$n.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = retry
log = $T/email$n.log
INI
  "$HERALD" -c "$T/g$n.ini" customers import "$T/cust.jsonl" >/dev/null
done
printf '[campaign]\nid = down\ntemplates = tpl\nchannels = email\nretry_horizon = 40s\nmax_attempts = 8\n' > "$T/c1.ini"
printf '[campaign]\nid = down\ntemplates = tpl\nchannels = email\nretry_horizon = 40s\nmax_attempts = 2\n' > "$T/c2.ini"

timeout 120 "$HERALD" -c "$T/g1.ini" run "$T/c1.ini" > "$T/out1" 2>&1 &
p1=$!
timeout 120 "$HERALD" -c "$T/g2.ini" run "$T/c2.ini" > "$T/out2" 2>&1 &
p2=$!
wait "$p1"; rc1=$?
wait "$p2"; rc2=$?

states () {   # states N: the outbox states of store N, via report --json
  "$HERALD" -c "$T/g$1.ini" report down --json 2>/dev/null |
    $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%s=%d" % (k, v) for k, v in sorted(d["states"].items())))'
}

is "$rc1" 0 "server down: run exits 0"
# Twice, or three times when the jitter of the backoffs brings a third
# attempt within the horizon too: the summary must say 5 either way.
n1=$(count_lines "$T/email1.log")
is "$([ "$n1" = 10 ] || [ "$n1" = 15 ]; echo $?)" 0 "server down: each message attempted two or three times in the run ($n1 attempts)"
is "$(states 1)" "retry=5" "server down: five messages wait for a retry"
like "$(cat "$T/out1")" "^  email +0 +5 +0 +0 +0 +0$" \
  "server down: the summary says retry 5 (messages), not 10 (attempts)"

is "$rc2" 0 "dead on the second attempt: run exits 0"
is "$(count_lines "$T/email2.log")" 10 "dead on the second attempt: two attempts each"
is "$(states 2)" "dead=5" "dead on the second attempt: five dead"
like "$(cat "$T/out2")" "^  email +0 +0 +0 +5 +0 +0$" \
  "dead on the second attempt: the summary says dead 5 and retry 0"

done_testing
