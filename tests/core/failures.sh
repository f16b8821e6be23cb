#!/bin/sh
# What herald run does with each kind of plugin result: retry with backoff
# then dead, permanent failure falling back to the next channel (one
# message, never two), invalid address suppressed, channel configuration
# error stopping the run with the messages kept.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3

gateway_with_email_mode () {   # FILE MODE: email through testplug
  cat > "$1" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = $2
log = $T/email.log
[channel.sms]
plugin = outbox
dir = $T/out/sms
INI
}
write_templates "$T/tpl"
cat > "$T/c.ini" <<'INI'
[campaign]
id = f1
templates = tpl
channels = email, sms
retry_horizon = 0s
max_attempts = 2
INI
cat > "$T/cust.jsonl" <<'EOF2'
{"id":"a","email":"a@example.com","phone":"+33600000001","consent":{"email":true,"sms":true},"attributes":{"first_name":"A"}}
{"id":"b","email":"b@example.com","consent":{"email":true},"attributes":{"first_name":"B"}}
EOF2
state () {   # state KEY: the outbox state of a message, via report --json
  "$HERALD" -c "$T/g.ini" report "$2" --json 2>/dev/null |
    $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%s=%d" % (k, v) for k, v in sorted(d["states"].items())))'
}

# 1. Retry, then dead after max_attempts.
gateway_with_email_mode "$T/g.ini" retry
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
T0=2000000000
out=$(HERALD_NOW=$T0 "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "retry: run exits 0"
like "$out" "email +0 +2 " "retry: two messages to retry"
like "$out" "next due" "retry: says when the retries are due"
is "$(state x f1)" "retry=2" "retry: both rows in retry"
out=$(HERALD_NOW=$((T0 + 10)) "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1)
is "$(count_lines "$T/email.log")" 2 "retry: not resent before it is due"
out=$(HERALD_NOW=$((T0 + 7200)) "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1)
is "$(count_lines "$T/email.log")" 4 "retry: resent when due"
like "$(sed -n 3p "$T/email.log")" " 2$" "retry: second attempt numbered 2"
is "$(state x f1)" "dead=1 sent=1" "retry: after max_attempts, a (who has a phone) falls back to SMS, b is dead"
like "$(cat "$T/out/sms/messages.jsonl")" '"id":"f1:1:a"' "retry: the fallback keeps the message key"
is "$(sqlite3 "$T/herald.db" "SELECT state || '/' || reason FROM outbox WHERE key = 'f1:1:b'")" \
  "dead/retries_exhausted" "retry: b, no channel left, dead with its reason"
keys=$(cut -d' ' -f1 "$T/email.log" | sort -u | tr '\n' ' ')
is "$keys" "f1:1:a f1:1:b " "retry: the same key on every attempt"

# 2. Permanent rejection: falls back to SMS where the customer has it.
rm -f "$T/herald.db"* "$T/email.log"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" reject
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "reject: run exits 0"
is "$(count_lines "$T/out/sms/messages.jsonl")" 1 "reject: a falls back to SMS"
like "$(cat "$T/out/sms/messages.jsonl")" '"id":"f1:1:a"' "reject: same message key on the fallback channel"
is "$(state x f1)" "failed=1 sent=1" "reject: b (no other channel) failed, a sent once"
like "$out" "1 message\(s\) fell back" "reject: summary counts the fallback"
reason=$(sqlite3 "$T/herald.db" "SELECT state || '/' || reason FROM outbox WHERE key = 'f1:1:b'")
is "$reason" "failed/rejected" "reject: b, with no channel left, failed with the rejection as its reason"
# A failure recorded for re-routing when the run stopped (a crash between
# recording it and the planning pass) is re-routed by the next run.
sqlite3 "$T/herald.db" "UPDATE outbox SET state = 'reroute', channel = 'email', instance = 'email',
  parts = '{\"email.subject\":\"s\",\"email.text\":\"t\"}' WHERE key = 'f1:1:a'"
rm -rf "$T/out/sms"
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "reject: a run after a stop between recording and re-routing exits 0"
like "$(cat "$T/out/sms/messages.jsonl")" '"id":"f1:1:a"' "reject: ... and re-routes the message left in reroute to SMS"
is "$(state x f1)" "failed=1 sent=1" "reject: ... nothing left in reroute"

# 2a. fallback = no: the rejection stays a failure on its channel.
rm -f "$T/herald.db"* "$T/email.log"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" reject
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
sed 's/^id = f1$/id = f1\nfallback = no/' "$T/c.ini" > "$T/c-nofb.ini"
out=$("$HERALD" -c "$T/g.ini" run "$T/c-nofb.ini" 2>&1); rc=$?
is "$rc" 0 "fallback = no: run exits 0"
is "$(count_lines "$T/out/sms/messages.jsonl")" 0 "fallback = no: nothing goes to SMS"
is "$(state x f1)" "failed=2" "fallback = no: both failed on e-mail"
out=$("$HERALD" -c "$T/g.ini" lint "$(sed 's/^fallback = no$/fallback = maybe/' "$T/c-nofb.ini" > "$T/c-bad.ini"; echo "$T/c-bad.ini")" 2>&1)
like "$out" "c-bad.ini:3: \[campaign\] fallback: 'maybe' is not yes or no" "fallback = maybe: file, line and key"

# 2b. A plugin that answers the first message of its batch only: the
# others are not taken as sent (a zero result would read as HERALD_SENT),
# they are tried again, under the same key.
rm -f "$T/herald.db"* "$T/email.log"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" first
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
out=$(HERALD_NOW=2000000000 "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "no result: run exits 0"
is "$(state x f1)" "retry=1 sent=1" "no result: the first message sent, the other to retry, not sent"
err=$(sqlite3 "$T/herald.db" "SELECT error FROM outbox WHERE state = 'retry'")
is "$err" "the plugin gave no result for this message" "no result: the reason is recorded"

# 3. Invalid address: suppressed, then fallback; a later campaign skips it.
rm -f "$T/herald.db"* "$T/email.log"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" invalid
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
"$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
is "$(count_lines "$T/out/sms/messages.jsonl")" 1 "invalid: a falls back to SMS"
sed 's/^id = f1$/id = f2/' "$T/c.ini" > "$T/c2.ini"
out=$("$HERALD" -c "$T/g.ini" preview "$T/c2.ini" --customer b 2>&1)
like "$out" "email: suppressed" "invalid: the address is suppressed for later campaigns"

# 3b. The provider says the recipient opted out: consent is withdrawn.
rm -f "$T/herald.db"* "$T/email.log"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" optout
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
"$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
out=$("$HERALD" -c "$T/g.ini" preview "$T/c2.ini" --customer b 2>&1)
like "$out" "email: no consent" "opt-out: consent withdrawn for later campaigns"

# 4. Channel configuration error: the run stops, nothing is lost.
rm -f "$T/herald.db"* "$T/email.log"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" channel_error
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "channel error: exit 1"
like "$out" "stopped: channel email: testplug says 4" "channel error: named"
is "$(state x f1)" "pending=2" "channel error: messages kept as pending"
gateway_with_email_mode "$T/g.ini" sent
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "channel fixed: exit 0"
is "$(state x f1)" "sent=2" "channel fixed: both sent"
like "$(sed -n 3p "$T/email.log")" " 1$" "channel error did not count as an attempt"

# 5. One run per campaign at a time: a second one is refused, not raced.
rm -f "$T/herald.db"* "$T/email.log" "$T/ready"; rm -rf "$T/out"
gateway_with_email_mode "$T/g.ini" sent
# The first run's e-mail batch stays in the plugin (it says so in
# $T/ready) until the test removes $T/ready.
sed -i "s|^\[channel.sms\]\$|ready = $T/ready\nhold_ms = 120000\n[channel.sms]|" "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
"$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/first.out" 2>&1 &
pid=$!
held_or_gone () { grep -q '^send ' "$T/ready" 2>/dev/null || ! alive "$pid"; }
wait_until 60 held_or_gone
grep -q '^send ' "$T/ready"
is "$?" 0 "the first run has a batch in the plugin"
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "a second run of a running campaign: exit 1"
like "$out" "campaign f1 is already running" "a second run says why"
rm -f "$T/ready"
wait "$pid"
is "$?" 0 "the first run finishes"
is "$(state x f1)" "sent=2" "each message sent once"
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "the lock is released when a run ends"

done_testing
