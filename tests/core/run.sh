#!/bin/sh
# herald run end to end on outbox channels: routing, rendering, MIME,
# idempotent re-runs, dry runs, preview, report, retries, fallbacks.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3

G="$T/herald.ini"
write_gateway "$G"
write_templates "$T/tpl"
cat > "$T/c.ini" <<'INI'
[campaign]
id = hello
name = Hello
templates = tpl
channels = email, sms, push, webhook
INI
cat > "$T/cust.jsonl" <<'EOF2'
{"id":"a","email":"a@example.com","consent":{"email":true},"attributes":{"first_name":"Zoë","name":"Zoë Łęcka","points":5}}
{"id":"b","phone":"+33612345678","consent":{"sms":true},"attributes":{"first_name":"Bob","points":7}}
{"id":"c","email":"c@example.com","phone":"+33612345679","consent":{"email":true,"sms":true},"preferred_channels":["sms","email"],"attributes":{"first_name":"Cy"}}
{"id":"d","email":"d@example.com","consent":{"email":false},"attributes":{"first_name":"Di"}}
{"id":"e","push":[{"platform":"ios","token":"tok-e-1"},{"platform":"android","token":"tok-e-2"}],"consent":{"push":true},"attributes":{"first_name":"Ed"}}
{"id":"f","webhook":"https://hooks.example.com/f","consent":{"webhook":true},"attributes":{"first_name":"Fa"}}
EOF2
"$HERALD" -c "$G" customers import "$T/cust.jsonl" >/dev/null
is "$?" 0 "customers imported"

# Dry run first: a forecast, and nothing changes.
out=$("$HERALD" -c "$G" run "$T/c.ini" --dry-run 2>&1); rc=$?
is "$rc" 0 "dry run: exit 0"
like "$out" "dry run of campaign hello: nothing was sent or recorded" "dry run says so"
like "$out" "email +1 " "dry run forecasts 1 e-mail"
like "$out" "no_usable_channel +1" "dry run counts the skip by reason"
ok "$([ ! -e "$T/out" ]; echo $?)" "dry run wrote no message"
"$HERALD" -c "$G" report hello >/dev/null 2>&1
is "$?" 1 "dry run recorded no campaign"

# The run.
out=$("$HERALD" -c "$G" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "run: exit 0"
is "$(count_lines "$T/out/email/messages.jsonl")" 1 "one e-mail (a; c prefers sms; d refused)"
is "$(count_lines "$T/out/sms/messages.jsonl")" 2 "two SMS (b, c)"
is "$(count_lines "$T/out/push/messages.jsonl")" 1 "one push message"
is "$(count_lines "$T/out/webhook/messages.jsonl")" 1 "one webhook message"
is "$(ls "$T/out/email/new" | wc -l | tr -d ' ')" 1 "one Maildir file"
line=$(grep '"customer":"e"' "$T/out/push/messages.jsonl")
like "$line" '"to":\["tok-e-1","tok-e-2"\]' "push goes to every token"
line=$(grep '"customer":"b"' "$T/out/sms/messages.jsonl")
like "$line" '"parts":\{"sms.body":"Hi Bob: 7 points"\}' "SMS rendered for the customer"
like "$line" '"id":"hello:1:b"' "message key campaign:step:customer"

# The e-mail parses cleanly with Python's email package.
cat > "$T/mime.py" <<'PYEOF'
import sys, email
from email import policy
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.default)
def check(cond, what):
    print(("ok" if cond else "not ok") + " - " + what)
defects = list(msg.defects) + [d for p in msg.walk() for d in p.defects]
check(not defects, "MIME: no defects (%r)" % defects)
check(str(msg["Subject"]) == "Hello Zoë", "MIME: subject decodes to the rendered text")
check(msg["To"].addresses[0].display_name == "Zoë Łęcka", "MIME: display name from the customer")
check(msg.get_content_type() == "multipart/alternative", "MIME: multipart/alternative")
parts = [p.get_content_type() for p in msg.iter_parts()]
check(parts == ["text/plain", "text/html"], "MIME: text then HTML")
got = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # canonical CRLF (RFC 2045)
check(got == "Hi Zoë, you have 5 points.\n", "MIME: text body exact (%r)" % got)
check(msg["List-Unsubscribe"].startswith("<https://t.example.com/u/"), "List-Unsubscribe https URL")
check("<mailto:unsub@example.com>" in msg["List-Unsubscribe"], "List-Unsubscribe mailto")
# The token verifies with an independent HMAC-SHA256 (Python's hmac):
# base64url(customer \n campaign \n channel) "." base64url(HMAC[:16]).
import base64, hashlib, hmac, re
m = re.search(r"<https://t\.example\.com/u/([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)>", msg["List-Unsubscribe"])
def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
payload = unb64(m.group(1)) if m else b""
mac = hmac.new(b"test-secret-0123456789abcdef", payload, hashlib.sha256).digest()[:16]
check(payload == b"a\nhello\nemail", "unsubscribe token payload is customer, campaign, channel (%r)" % payload)
check(m is not None and hmac.compare_digest(unb64(m.group(2)), mac), "unsubscribe token MAC verifies")
check(m is not None and "=" not in m.group(0), "unsubscribe token is unpadded base64url")
check(msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", "List-Unsubscribe-Post")
PYEOF
$PY "$T/mime.py" "$T/out/email/new"/* > "$T/py.out" 2>&1
[ -s "$T/py.out" ] || echo "not ok - the MIME check ran" > "$T/py.out"
grep -v '^ok\|^not ok' "$T/py.out" | sed 's/^/# /'
while read -r status rest; do
  case "$status" in
    ok) ok 0 "${rest#- }";;
    not) ok 1 "${rest#ok - }";;
  esac
done < "$T/py.out"

# Re-running a finished campaign sends nothing.
out=$("$HERALD" -c "$G" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "re-run: exit 0"
like "$out" "0 customers planned" "re-run plans nobody"
is "$(cat "$T"/out/*/messages.jsonl | wc -l | tr -d ' ')" 5 "re-run sent nothing more"

# Preview shows the decision and its reason, and the rendered parts.
out=$("$HERALD" -c "$G" preview "$T/c.ini" --customer c 2>&1); rc=$?
is "$rc" 0 "preview: exit 0"
like "$out" "decision: send via sms" "preview: channel"
like "$out" "reason: sms: (customer )?preference" "preview: reason"
like "$out" "^Hi Cy: +points" "preview: rendered SMS"
out=$("$HERALD" -c "$G" preview "$T/c.ini" --customer d 2>&1)
like "$out" "decision: skip \(no_usable_channel\)" "preview: skip with reason"
like "$out" "reason: .*email: no consent" "preview: why each channel was excluded"
out=$("$HERALD" -c "$G" preview "$T/c.ini" --customer nobody 2>&1); rc=$?
is "$rc" 1 "preview of an unknown customer: exit 1"

# Report.
out=$("$HERALD" -c "$G" report hello --json 2>&1); rc=$?
is "$rc" 0 "report --json: exit 0"
sent=$(printf '%s' "$out" | $PY -c 'import json,sys; print(json.load(sys.stdin)["states"].get("sent"))')
is "$sent" 5 "report: 5 sent"

# unsubscribe_url in an SMS: signed for the templates that show it, by
# name or through a partial; the same link as an e-mail would carry.
for how in direct partial; do
  mkdir -p "$T/tpl-$how/_partials"
  if [ "$how" = direct ]; then
    printf 'Hi {{ customer.first_name }}. Stop: {{ unsubscribe_url }}' > "$T/tpl-$how/sms.body.liquid"
  else
    # only the partial names it
    printf 'Hi {{ customer.first_name }}. {%% include "stop" %%}' > "$T/tpl-$how/sms.body.liquid"
    printf 'Stop: {{ unsubscribe_url }}' > "$T/tpl-$how/_partials/stop.liquid"
  fi
  printf '[campaign]\nid = u%s\ntemplates = tpl-%s\nchannels = sms\n' "$how" "$how" > "$T/u-$how.ini"
  out=$("$HERALD" -c "$G" preview "$T/u-$how.ini" --customer b 2>&1)
  link=$(printf '%s\n' "$out" | sed -n 's/^Hi Bob\. Stop: //p')
  like "$link" "^https://t\.example\.com/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$" "SMS shows a signed unsubscribe link ($how)"
  payload=$(printf '%s' "$link" | sed 's#.*/u/##; s#\..*##' | tr '_-' '/+')
  is "$(printf '%s==' "$payload" | base64 -d 2>/dev/null | tr '\n' ' ')" "b u$how sms" "the link names the customer, campaign and channel ($how)"
done

done_testing
