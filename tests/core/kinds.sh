#!/bin/sh
# Channel kinds a plugin declares (ABI 2): a gateway may use `kind = chat`
# only when a plugin of the plugin folder declares it; the core then hands
# the plugin the address from the customer's chat_id, asks consent.chat,
# suppresses a dead chat_id, renders chat.* parts and reports the kind.
# An ABI 1 plugin still loads; a plugin declaring a built-in kind does not.
. "$HERALD_SRCDIR/tests/core/lib.sh"

B="$HERALD_BUILDDIR/tests/plugins/.libs"
cp "$B/kindplug.so" "$PLUGINS/"
G="$T/g.ini"
write_gateway "$G" "[channel.chat]
plugin = kindplug
kind = chat
file = $T/chat.jsonl
invalid = 3003"
write_templates "$T/tpl"
printf 'Hi {{ customer.first_name }}' > "$T/tpl/chat.text.liquid"
printf 'News' > "$T/tpl/chat.title.liquid"
printf '[campaign]\nid = k\ntemplates = tpl\nchannels = chat, email\n' > "$T/k.ini"

out=$("$HERALD" -c "$G" lint "$T/k.ini" 2>&1)
is "$?" 0 "lint: kind = chat is known once kindplug declares it"
[ "$?" = 0 ] || echo "$out" | sed 's/^/# /'

# An unknown kind: file, line, the kind and the known kinds.
sed 's/^kind = chat$/kind = chit/' "$G" > "$T/bad.ini"
out=$("$HERALD" -c "$T/bad.ini" lint "$T/k.ini" 2>&1); rc=$?
is "$rc" 1 "lint refuses an unknown kind"
like "$out" "bad.ini:[0-9]+: \[channel.chat\] kind: 'chit' is not one of email, sms, push, webhook, chat \(nor a kind" \
  "... naming file, line, kind and the known kinds (with the plugins')"
line=$(grep -n '^kind = chit' "$T/bad.ini" | cut -d: -f1)
like "$out" "bad.ini:$line:" "... on the line of kind"
# config_check: a bad value of the plugin's own key, with its line.
sed "s|^file = $T/chat.jsonl\$|file = chat.jsonl|" "$G" > "$T/bad2.ini"
out=$("$HERALD" -c "$T/bad2.ini" lint "$T/k.ini" 2>&1); rc=$?
is "$rc" 1 "lint runs the plugin's config_check"
line=$(grep -n '^file = chat.jsonl' "$T/bad2.ini" | cut -d: -f1)
like "$out" "bad2.ini:$line: \[channel.chat\] file: must be an absolute path" "... whose message names file and line"
out=$("$HERALD" -c "$T/bad2.ini" run --dry-run "$T/k.ini" 2>&1); rc=$?
is "$rc" 1 "run --dry-run runs config_check too"
like "$out" "bad2.ini:$line: \[channel.chat\] file: must be an absolute path" "... with the same message"

# A template part of no kind is still refused.
printf 'x' > "$T/tpl/chit.text.liquid"
out=$("$HERALD" -c "$G" lint "$T/k.ini" 2>&1)
like "$out" "chit.text.liquid:1: unknown template part 'chit.text' \(expected one of .*webhook.body, chat.text, chat.title, chat.card, chat.html\)" "a part of no kind is refused, naming the plugin kinds' parts"
rm "$T/tpl/chit.text.liquid"

/usr/bin/python3 - > "$T/cust.jsonl" <<'PYEOF'
import json
rows = [
  # chat_id in addresses, consent to chat: chat
  {"id": "c1", "email": "c1@example.com", "addresses": {"chat_id": "1001"},
   "consent": {"email": True, "chat": True}, "attributes": {"first_name": "Ann"}},
  # chat_id as an attribute, a number: chat
  {"id": "c2", "email": "c2@example.com", "consent": {"email": True, "chat": True},
   "attributes": {"first_name": "Bob", "chat_id": 2002}},
  # no chat_id: e-mail
  {"id": "c3", "email": "c3@example.com", "consent": {"email": True, "chat": True},
   "attributes": {"first_name": "Cy"}},
  # chat refused: e-mail
  {"id": "c4", "email": "c4@example.com", "addresses": {"chat_id": "4004"},
   "consent": {"email": True, "chat": False}, "attributes": {"first_name": "Di"}},
  # a dead chat: the plugin says so, the core suppresses it
  {"id": "c5", "email": "c5@example.com", "addresses": {"chat_id": "3003"},
   "consent": {"email": True, "chat": True}, "attributes": {"first_name": "Ed"}},
]
for r in rows:
    print(json.dumps(r))
PYEOF
out=$("$HERALD" -c "$G" customers import "$T/cust.jsonl" 2>&1)
like "$out" "imported 5 customers" "customers with addresses.chat_id and consent.chat import"
printf '{"id": "x", "consent": {"chit": true}}\n' > "$T/bad.jsonl"
out=$("$HERALD" -c "$G" customers import "$T/bad.jsonl" 2>&1)
like "$out" "consent: unknown channel 'chit' \(expected email, sms, push, webhook, chat\)" "consent of an unknown kind is refused, naming the kinds"

out=$("$HERALD" -c "$G" run "$T/k.ini" 2>&1); rc=$?
is "$rc" 0 "the campaign runs"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
got=$(/usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    print(m["customer"], m["channel"], m["type"], m["address"], m["text"], m["title"])' "$T/chat.jsonl" | sort | tr '\n' ';')
is "$got" "c1 chat chat 1001 Hi Ann News;c2 chat chat 2002 Hi Bob News;c5 chat chat 3003 Hi Ed News;" \
  "the plugin got the chat messages: kind, address from addresses or attributes, parts"
got=$(/usr/bin/python3 -c '
import json, sys
print(" ".join(sorted(json.loads(l)["customer"] for l in open(sys.argv[1]))))' "$T/out/email/messages.jsonl")
is "$got" "c3 c4 c5" "no chat_id, no consent, a dead chat: e-mail"
out=$("$HERALD" -c "$G" report k 2>&1)
like "$out" "chat +- +2 +0 " "report: the chat channel, 2 sent (the dead chat fell back to e-mail)"
like "$out" "email +- +3 " "report: 3 e-mails"

# The dead chat_id is suppressed as kind chat: a second campaign skips it.
printf '[campaign]\nid = k2\ntemplates = tpl\nchannels = chat\n' > "$T/k2.ini"
out=$("$HERALD" -c "$G" run "$T/k2.ini" 2>&1)
is "$?" 0 "a second chat-only campaign runs"
like "$(grep -c '"key": "k2:' "$T/chat.jsonl")" "^2$" "... sends to c1 and c2 only"
out=$("$HERALD" -c "$G" report k2 2>&1)
like "$out" "suppressed" "... c5's chat_id is suppressed"

# Parts the kind declares JSON are checked as webhook.body is; parts it
# declares HTML are rendered escaped as email.html is.
mkdir -p "$T/tpl5"
printf 'Hi' > "$T/tpl5/chat.text.liquid"
printf '{%% if customer.id == "c2" %%}\n{"broken"\n{%% else %%}{"id": {{ customer.id | json }}}{%% endif %%}' > "$T/tpl5/chat.card.liquid"
printf '<p>{{ "<b>&" }}{{ customer.first_name }}</p>' > "$T/tpl5/chat.html.liquid"
printf '[campaign]\nid = k5\ntemplates = tpl5\nchannels = chat\n' > "$T/k5.ini"
: > "$T/chat.jsonl"
out=$("$HERALD" -c "$G" run "$T/k5.ini" 2>&1)
is "$?" 0 "a campaign with JSON and HTML parts of a plugin kind runs"
got=$(/usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    print(m["customer"], m["card"], m["html"])' "$T/chat.jsonl" | sort | tr '\n' ';')
is "$got" 'c1 {"id": "c1"} <p>&lt;b&gt;&amp;Ann</p>;' \
  "... the JSON part as rendered, the HTML part's output escaped; c2's card never reached the plugin"
got=$(sqlite3 "$T/herald.db" "SELECT state || '|' || reason || '|' || error FROM outbox WHERE key = 'k5:1:c2'")
like "$got" '^failed\|render_error\|.*tpl5/chat.card.liquid: rendered text is not valid JSON \(line 3, column 1' \
  "... c2's card is not JSON: failed, naming the template, line and column"

# herald plugins shows the kind a plugin declares.
cp "$B/abi1.so" "$B/badkind.so" "$PLUGINS/"
out=$("$HERALD" -c "$G" plugins 2>&1)
like "$out" "kindplug +version 1.0 +ABI 2 .*kinds: chat \(address chat_id\)" "herald plugins lists the declared kind"
like "$out" "abi1 +version 0.9 +ABI 1 .*\(an ABI 1 plugin: handed version 1 arrays\)" "an ABI 1 plugin loads (what lies past its struct is not read), and is said to be one"
like "$out" "badkind.so +REFUSED: .*kind 'sms' is one of Herald's own" "a plugin declaring a built-in kind is refused"
# An ABI 1 plugin binary, built from the version 1 header, works as a
# channel: it gets version 1 arrays, its results and its version 1 way of
# saying "opted out" are read.
printf '[channel.old]\nplugin = abi1\nkind = email\nlog = %s/abi1.log\n' "$T" >> "$G"
printf '[campaign]\nid = k3\ntemplates = tpl\nchannels = old\n' > "$T/k3.ini"
printf '{"id": "c6", "email": "optout6@example.com", "consent": {"email": true}, "attributes": {"first_name": "Opt"}}\n' > "$T/cust6.jsonl"
"$HERALD" -c "$G" customers import "$T/cust6.jsonl" >/dev/null
out=$("$HERALD" -c "$G" run "$T/k3.ini" 2>&1)
is "$?" 0 "an ABI 1 plugin sends"
like "$out" "old +5 " "... all five (the sixth opted out)"
like "$(grep '^k3:[^ ]*:c1 ' "$T/abi1.log")" "^k3:[^ ]*:c1 1 email:c1@example.com .*email.subject=Hello Ann.* email.text=Hi Ann, you have" \
  "... each message as version 1 arrays: key, attempt, address, parts"
is "$(wc -l < "$T/abi1.log" | tr -d ' ')" 6 "... six messages handed over"
out=$("$HERALD" -c "$G" report k3 --json 2>&1)
like "$out" '"sent": 5' "... five recorded sent"
printf '[campaign]\nid = k4\ntemplates = tpl\nchannels = old\n' > "$T/k4.ini"
out=$("$HERALD" -c "$G" preview "$T/k4.ini" --customer c6 2>&1)
like "$out" "no consent" "... its {\"opt_out\":true} detail withdrew c6's e-mail consent"
out=$("$HERALD" -c "$G" preview "$T/k4.ini" --customer c1 2>&1)
like "$out" "email.subject" "... and nobody else's"
# Its callbacks: a version 1 request in, a version 1 event out.
printf 'delivered a1-k3:1:c1 c1@example.com' > "$T/cb.txt"
out=$("$HERALD_BUILDDIR/tests/plugin-run" "$B/abi1.so" -K email --inbound POST \
      https://t.example.com/inbound/old/x "$T/cb.txt" 2>&1)
like "$out" '^\{"event":\{"type":"delivered","provider_id":"a1-k3:1:c1","address":"c1@example.com","at":0,"detail":null\}\}' \
  "an ABI 1 plugin's callback reports its event"
like "$out" '"response":\{"rc":0,"status":200,"content_type":"text/plain","body":"abi1: delivered a1-k3:1:c1\\n"\}' \
  "... and answers through a version 1 response"
done_testing
