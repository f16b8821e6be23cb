#!/bin/sh
# A new sending domain's warm-up: [channel.email] warmup = 5/d doubling
# caps the e-mails handed to the channel per UTC day (5 on the first day,
# 10 on the second); the rest go to the campaign's next usable channel
# (SMS for those with a phone), or wait for the next day when there is
# none, and are sent then, within that day's volume.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
D0=1796637600    # 2026-12-07T10:00:00Z: day one of the warm-up
gateway () {   # gateway WARMUP-LINES
  cat > "$T/g.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = sent
log = $T/email.log
$1
[channel.sms]
plugin = outbox
dir = $T/out/sms
INI
}
write_templates "$T/tpl"
printf '[campaign]\nid = w\ntemplates = tpl\nchannels = email, sms\n' > "$T/c.ini"
# 30 customers with an e-mail address; the 10 of them also with a phone
# (c00020..c00029) consent to SMS too.
$PY -c '
import json
for i in range(30):
    c = {"id": "c%05d" % i, "email": "c%d@example.com" % i,
         "consent": {"email": True}}
    if i >= 20:
        c["phone"] = "+336100000%02d" % i
        c["consent"]["sms"] = True
    print(json.dumps(c))' > "$T/cust.jsonl"

# The values it takes: file, line and key.
check_bad () {   # check_bad WARMUP-LINES LINE MESSAGE-REGEX DESCRIPTION
  gateway "$1"
  out=$("$HERALD" -c "$T/g.ini" lint "$T/c.ini" 2>&1); rc=$?
  is "$rc" 1 "$4: refused"
  like "$out" "g.ini:$2: \[channel.email\] $3" "$4: file, line, key and why"
}
check_bad "warmup = 200" 9 "warmup: '200' is not N/d, N/d doubling" "warmup = 200"
check_bad "warmup = 200/d tripling
warmup_start = 2026-12-07" 9 "warmup: '200/d tripling' is not N/d" "warmup = 200/d tripling"
check_bad "warmup = 200/d doubling" 9 "warmup: needs warmup_start = YYYY-MM-DD" "warmup without warmup_start"
check_bad "warmup = 200/d
warmup_start = 7/12/2026" 10 "warmup_start: '7/12/2026' is not a date like 2026-12-07" "warmup_start = 7/12/2026"
check_bad "warmup_start = 2026-12-07" 9 "warmup_start: without warmup" "warmup_start alone"

gateway "warmup = 5/d doubling
warmup_start = 2026-12-07"
out=$("$HERALD" -c "$T/g.ini" lint "$T/c.ini" 2>&1)
is "$?" 0 "warmup = 5/d doubling, warmup_start = 2026-12-07: lint passes"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null

# A dry run says what the warm-up would hold back.
out=$(HERALD_NOW=$D0 "$HERALD" -c "$T/g.ini" run --dry-run "$T/c.ini" 2>&1)
like "$out" "warm-up: channel email takes 5 more today \(warmup = 5/d doubling: 5, 0 used\): 25 of the 30 would go to another channel or wait for the next day" \
  "dry run: says what the warm-up would hold back"

# Day one: 5 e-mails; 10 of the 25 others have a phone: SMS; 15 wait.
out=$(HERALD_NOW=$D0 "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1)
is "$?" 0 "day one: run exits 0"
is "$(count_lines "$T/email.log")" 5 "day one: 5 e-mails handed to the channel, its volume"
is "$(count_lines "$T/out/sms/messages.jsonl")" 10 "... the 10 with a phone went by SMS"
like "$out" "warm-up: channel email reached its volume of the day \(warmup = 5/d doubling\): 25 message" \
  "... the summary says the volume was reached"
like "$out" "warm-up: 15 message\(s\) deferred to the next day" "... and that 15 wait for the next day"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'pending' AND reason = 'warmup' AND channel = 'email' AND attempts = 0 AND next_at = $((D0 - D0 % 86400 + 86400))")" 15 \
  "... 15 pending on e-mail until the next UTC midnight, no attempt counted"
like "$(sqlite3 "$T/herald.db" "SELECT DISTINCT error FROM outbox WHERE state = 'pending'")" \
  "^warm-up: channel email reached its volume of the day, and no other channel" "... saying why"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE channel = 'sms' AND customer < 'c00020'")" 0 \
  "... nobody without SMS consent went by SMS"

# Later that day: nothing more goes by e-mail.
out=$(HERALD_NOW=$((D0 + 3600)) "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1)
is "$?" 0 "day one, an hour later: run exits 0"
is "$(count_lines "$T/email.log")" 5 "... still 5 e-mails that day"

# Day two: the volume doubles to 10; 10 of the 15 waiting are sent.
out=$(HERALD_NOW=$((D0 + 86400)) "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1)
is "$?" 0 "day two: run exits 0"
is "$(count_lines "$T/email.log")" 15 "day two: 10 more e-mails (5/d doubling)"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'pending' AND channel = 'email' AND next_at = $((D0 - D0 % 86400 + 2 * 86400))")" 5 \
  "... the last 5 wait for day three"
# Day three: 20 allowed, the last 5 go; nobody was messaged twice.
HERALD_NOW=$((D0 + 2 * 86400)) "$HERALD" -c "$T/g.ini" run "$T/c.ini" >/dev/null 2>&1
is "$(count_lines "$T/email.log")" 20 "day three: the last 5 e-mails"
is "$(cut -d' ' -f1 "$T/email.log" | sort -u | wc -l | tr -d ' ')" 20 "... 20 customers, each once"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")" 30 "everybody sent, once: 20 e-mails and 10 SMS"
done_testing
