#!/bin/sh
# herald run's guard rails: an e-mail campaign does not start while the
# e-mail complaint rate of the last 7 days is past [bounces]
# max_complaint_rate (default 0.3%) or the hard-bounce rate past
# max_bounce_rate (default 5%), with at least 100 e-mails sent; --force
# overrides, --dry-run is never refused, an SMS-only campaign is not
# concerned.
. "$HERALD_SRCDIR/tests/core/lib.sh"

write_gateway "$T/g.ini"
write_templates "$T/tpl"
for c in first second smsonly; do
  ch=email; [ "$c" = smsonly ] && ch=sms
  printf '[campaign]\nid = %s\ntemplates = tpl\nchannels = %s\n' "$c" "$ch" > "$T/$c.ini"
done
/usr/bin/python3 - > "$T/cust.jsonl" <<'PYEOF'
import json
for i in range(300):
    print(json.dumps({"id": "u%05d" % i, "email": "u%d@example.com" % i,
                      "phone": "+3361%07d" % i,
                      "consent": {"email": True, "sms": True},
                      "attributes": {"first_name": "N%d" % i, "points": i}}))
PYEOF
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
out=$("$HERALD" -c "$T/g.ini" run "$T/first.ini" 2>&1); rc=$?
is "$rc" 0 "300 e-mails sent"

events () {   # TYPE N: N events of TYPE on e-mail, now, for u00000..
  /usr/bin/python3 - "$1" "$2" > "$T/ev.jsonl" <<'PYEOF'
import json, sys, time
at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
for i in range(int(sys.argv[2])):
    print(json.dumps({"customer": "u%05d" % i, "channel": "email",
                      "type": sys.argv[1], "at": at}))
PYEOF
  "$HERALD" -c "$T/g.ini" events import "$T/ev.jsonl" >/dev/null
}

# 1 complaint in 300: 0.33%, past 0.3%.
events complained 1
out=$("$HERALD" -c "$T/g.ini" run "$T/second.ini" 2>&1); rc=$?
is "$rc" 1 "complaint rate 0.33%: the e-mail campaign is refused, exit 1"
like "$out" "campaign second not started: the e-mail complaint rate of the last 7 days is 0.33% \(1 complaints for 300 e-mails sent\), past \[bounces\] max_complaint_rate = 0.3% in .*g.ini.*--force" "  ... saying the rate, the figures, the limit and its file, and --force"
is "$(sqlite3 "$T/herald.db" "SELECT count(*) FROM outbox WHERE campaign = 'second'")" 0 "  ... and nothing was planned"
out=$("$HERALD" -c "$T/g.ini" run --dry-run "$T/second.ini" 2>&1); rc=$?
is "$rc" 0 "a dry run is not refused"
out=$("$HERALD" -c "$T/g.ini" run "$T/smsonly.ini" 2>&1); rc=$?
is "$rc" 0 "an SMS campaign is not concerned"

# A higher limit in the gateway lets it start.
write_gateway "$T/g2.ini" "[bounces]
max_complaint_rate = 0.5%"
out=$("$HERALD" -c "$T/g2.ini" run "$T/second.ini" 2>&1); rc=$?
is "$rc" 0 "max_complaint_rate = 0.5%: the campaign runs"

# Hard bounces: 16 in 599 sent (2.7%; the complainer was not mailed
# again) pass; 31 (5.2%) do not.
events bounced 16
write_gateway "$T/g3.ini" "[bounces]
max_complaint_rate = 1%"
out=$("$HERALD" -c "$T/g3.ini" run "$T/first.ini" 2>&1); rc=$?
is "$rc" 0 "hard-bounce rate 2.7% (under 5%): runs"
/usr/bin/python3 - > "$T/ev.jsonl" <<'PYEOF'
import json, time
at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
for i in range(16, 31):
    print(json.dumps({"customer": "u%05d" % i, "channel": "email",
                      "type": "bounced", "at": at}))
PYEOF
"$HERALD" -c "$T/g.ini" events import "$T/ev.jsonl" >/dev/null
printf '[campaign]\nid = third\ntemplates = tpl\nchannels = email\n' > "$T/third.ini"
out=$("$HERALD" -c "$T/g3.ini" run "$T/third.ini" 2>&1); rc=$?
is "$rc" 1 "hard-bounce rate 5.18%: refused"
like "$out" "hard-bounce rate of the last 7 days is 5.18% \(31 bounces for 599 e-mails sent\), past \[bounces\] max_bounce_rate = 5%" "  ... saying so"
out=$("$HERALD" -c "$T/g3.ini" run --force "$T/third.ini" 2>&1); rc=$?
is "$rc" 0 "--force runs it anyway"

# Too few e-mails to say anything: no refusal.
rm -f "$T/herald.db"*
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
"$HERALD" -c "$T/g.ini" run --limit 50 "$T/first.ini" >/dev/null 2>&1
events complained 5
out=$("$HERALD" -c "$T/g.ini" run "$T/second.ini" 2>&1); rc=$?
is "$rc" 0 "5 complaints for 50 e-mails: too few sent to judge (under 100), runs"

printf '[bounces]\nmax_complaint_rate = 0.3\n' > "$T/bad.ini"
out=$("$HERALD" -c "$T/bad.ini" lint "$T/first.ini" 2>&1); rc=$?
like "$out" "bad.ini:2: \[bounces\] max_complaint_rate: '0.3' is not a percentage from 0% to 100% \(e.g. 0.3%\)" "a rate without % is refused, naming file and line"
done_testing
