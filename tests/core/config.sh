#!/bin/sh
# Configuration errors: every one names file and line, exits 1, and
# nothing is ignored or truncated.
. "$HERALD_SRCDIR/tests/core/lib.sh"

G="$T/herald.ini"
write_gateway "$G"
write_templates "$T/tpl"
cat > "$T/c.ini" <<'INI'
[campaign]
id = c1
templates = tpl
channels = email, sms
INI

out=$("$HERALD" -c "$G" lint "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "a good campaign lints clean"
like "$out" "ok \(campaign c1, 2 channels" "lint says what it found"

# Gateway errors: (file content, expected message) pairs.
check_gateway () {   # DESCRIPTION EXPECTED-REGEX, gateway text in $T/bad.ini
  out=$("$HERALD" -c "$T/bad.ini" lint "$T/c.ini" 2>&1); rc=$?
  is "$rc" 1 "$1: exit 1"
  like "$out" "$2" "$1: message names file and line"
}

printf '[store]\npath = x.db\n[bogus]\nkey = 1\n' > "$T/bad.ini"
check_gateway "unknown section" "bad.ini:3: \[bogus\]: unknown section"
printf '[store]\npath = x.db\ncolour = blue\n' > "$T/bad.ini"
check_gateway "unknown key" "bad.ini:3: \[store\] colour: unknown key"
printf '[store]\npath = a.db\npath = b.db\n' > "$T/bad.ini"
check_gateway "duplicate key" "bad.ini:3: \[store\] path: duplicate key \(first set on line 2\)"
printf 'path = x.db\n' > "$T/bad.ini"
check_gateway "key outside a section" "bad.ini:1: path: key outside of any \[section\]"
printf '[store]\nthis line has no equals sign\n' > "$T/bad.ini"
check_gateway "syntax error" "bad.ini:2: syntax error"
{ printf '[tracking]\nbase_url = https://t.example.com/'; head -c 9000 /dev/zero | tr '\0' 'a'; printf '\n'; } > "$T/bad.ini"
check_gateway "too-long line" "bad.ini:2: line longer than"
printf '[tracking]\nbase_url = ftp://x\n' > "$T/bad.ini"
check_gateway "bad URL" "bad.ini:2: \[tracking\] base_url: 'ftp://x' is not an http\(s\) URL"
printf '[tracking]\nbase_url = https://t.example.com\n' > "$T/bad.ini"
check_gateway "base_url without a secret" "bad.ini:2: \[tracking\] base_url: needs \[tracking\] secret"
printf '[tracking]\nbase_url = https://t.example.com\nsecret = s-0123456789abcdef\ntext_links = maybe\n' > "$T/bad.ini"
check_gateway "bad text_links" "bad.ini:4: \[tracking\] text_links: 'maybe' is not yes or no"
printf '[store]\npath = x.db\nurl = postgresql:///h\n' > "$T/bad.ini"
check_gateway "store path and url" "bad.ini:3: \[store\] url: give url or path, not both"
printf '[store]\nurl = mysql://h/db\n' > "$T/bad.ini"
check_gateway "store url not PostgreSQL" "bad.ini:2: \[store\] url: 'mysql://h/db' is neither a postgresql:// URL nor a libpq connection string"
printf '[store]\nurl = postgresql:///h\nlease = 1s\n' > "$T/bad.ini"
check_gateway "store lease too short" "bad.ini:3: \[store\] lease: '1s' is not a duration from 2s to 1h"
printf '[store]\nurl = postgresql:///h\npassword_file = nowhere\n' > "$T/bad.ini"
check_gateway "store password_file missing" "bad.ini:3: \[store\] password_file: cannot read '.*nowhere': No such file"
printf '[tracking]\nmachine_window = 2 s\n' > "$T/bad.ini"
check_gateway "bad machine_window" "bad.ini:2: \[tracking\] machine_window: '2 s' is not a duration"
printf '[bounces]\nsoft_limit = -1\n' > "$T/bad.ini"
check_gateway "bad soft_limit" "bad.ini:2: \[bounces\] soft_limit: '-1' is not a number from 0 to 1000"
printf '[bounces]\nsoft_limit = 3\nsoft_window = 0\n' > "$T/bad.ini"
check_gateway "bad soft_window" "bad.ini:3: \[bounces\] soft_window: '0' is not a duration from 1s to 366d"
printf '[bounces]\nsoft_days = 3\n' > "$T/bad.ini"
check_gateway "unknown [bounces] key" "bad.ini:2: \[bounces\] soft_days: unknown key"
# herald serve's keys, checked by lint too.
printf '[tracking]\nlisten = nonsense\n' > "$T/bad.ini"
check_gateway "bad listen" "bad.ini:2: \[tracking\] listen: 'nonsense' is not HOST:PORT with a numeric address"
printf '[tracking]\nconnections_per_client = many\n' > "$T/bad.ini"
check_gateway "bad connections_per_client" "bad.ini:2: \[tracking\] connections_per_client: 'many' is not a number from 0 \(no limit\) to 100000"
printf '[tracking]\nevents_token = short\n' > "$T/bad.ini"
check_gateway "short events_token" "bad.ini:2: \[tracking\] events_token: too short \(at least 16 characters\)"
# Found by tests/fuzz/fuzz_gateway: inih cuts a section name at 49 bytes,
# and the List-Unsubscribe values must fit between angle brackets.
printf '[store]\npath = x.db\n[channel.%s]\nplugin = outbox\nkind = email\n' \
  "$(printf '%050d' 0)" > "$T/bad.ini"
check_gateway "section name too long" "bad.ini:3: section name longer than 49 bytes"
printf '[tracking]\nbase_url = https://t.example.com\nsecret = s-0123456789abcdef\nunsubscribe_mailto = u@example.com>, <https://evil.example\n' > "$T/bad.ini"
check_gateway "unsubscribe_mailto with '>'" "bad.ini:4: \[tracking\] unsubscribe_mailto: 'u@example.com>, <https://evil.example' is not an e-mail address \(visible ASCII"
printf '[tracking]\nbase_url = https://t.example.com/a\rb\nsecret = s-0123456789abcdef\n' > "$T/bad.ini"
check_gateway "base_url with a CR" "bad.ini:2: \[tracking\] base_url: 'https://t.example.com/a.*b' is not an http\(s\) URL \(visible ASCII"
printf '[channel.email]\ndir = x\n' > "$T/bad.ini"
check_gateway "channel without plugin" "bad.ini:1: \[channel.email\]: missing key 'plugin'"
printf '[channel.mail]\nplugin = outbox\ndir = x\n' > "$T/bad.ini"
check_gateway "channel name that is not a kind" "bad.ini:1: \[channel.mail\]: channel name is not a kind"
printf '[channel.email]\nplugin = outbox\nkind = fax\n' > "$T/bad.ini"
check_gateway "bad kind" "bad.ini:3: \[channel.email\] kind: 'fax' is not one of"
printf '[tracking]\nbase_url = https://t.example.com\nsecret = s-0123456789abcdef\n[channel.email]\nplugin = outbox\ntrack_links = yes\n' > "$T/bad.ini"
check_gateway "track_links on an e-mail channel" "bad.ini:6: \[channel.email\] track_links: only a channel of kind sms takes it \(this one is email"
printf '[channel.texts]\nplugin = outbox\nkind = push\ntrack_links = yes\n' > "$T/bad.ini"
check_gateway "track_links on a push channel" "bad.ini:4: \[channel.texts\] track_links: only a channel of kind sms takes it \(this one is push"
printf '[channel.sms]\nplugin = outbox\ntrack_links = yes\n[tracking]\nlisten = 127.0.0.1:9\n' > "$T/bad.ini"
check_gateway "track_links without base_url" "bad.ini:3: \[channel.sms\] track_links: needs \[tracking\] base_url"
printf '[channel.sms]\nplugin = outbox\ntrack_links = perhaps\n' > "$T/bad.ini"
check_gateway "bad track_links" "bad.ini:3: \[channel.sms\] track_links: 'perhaps' is not yes or no"

# INI files are UTF-8 text: a value that is not is refused, the message
# naming file, line and key and showing the value escaped.  A value may
# hold control characters; a message that quotes one escapes it.  A
# section name or key may not hold any.
printf '[tracking]\nbase_url = https://t.example.com/\377\376x\n' > "$T/bad.ini"
check_gateway "gateway value not UTF-8" "bad.ini:2: \[tracking\] base_url: 'https://t.example.com/\\\\xff\\\\xfex' is not UTF-8 text$"
printf '[tracking]\ntext_links = ma\033[2Jybe\n' > "$T/bad.ini"
check_gateway "gateway value with ESC, quoted" "bad.ini:2: \[tracking\] text_links: 'ma\\\\x1b\[2Jybe' is not yes or no$"
printf '[channel.email]\nplugin = outbox\nkind = fa\rherald: ok\n' > "$T/bad.ini"
check_gateway "gateway value with CR, quoted" "bad.ini:3: \[channel.email\] kind: 'fa\\\\rherald: ok' is not one of"
printf '[channel.email]\nplugin = outbox\nlanes = 1\302\233\n' > "$T/bad.ini"
check_gateway "gateway value with a C1 control, quoted" "bad.ini:3: \[channel.email\] lanes: '1\\\\u009b' is not a number"
printf '[store]\np\377th = a.db\n' > "$T/bad.ini"
check_gateway "gateway key not UTF-8" "bad.ini:2: \[store\] key 'p\\\\xffth' is not UTF-8 text$"
printf '[channel.e\033[8mmail]\nplugin = outbox\nkind = email\n' > "$T/bad.ini"
check_gateway "section name with ESC" "bad.ini:1: section name 'channel.e\\\\x1b\[8mmail' holds a control character$"
printf '[campaign]\nid = c1\nname = ab\377\376cd\ntemplates = tpl\nchannels = email\n' > "$T/u.ini"
out=$("$HERALD" -c "$G" lint "$T/u.ini" 2>&1); rc=$?
is "$rc" 1 "campaign value not UTF-8: exit 1"
is "$out" "$T/u.ini:3: [campaign] name: 'ab\\xff\\xfecd' is not UTF-8 text" \
   "campaign value not UTF-8: file, line, key, the value escaped"
printf '[campaign]\nid = c1\ntemplates = tpl\nchannels = email\ntrack_opens = so\033[1Ametimes\n' > "$T/u.ini"
out=$("$HERALD" -c "$G" lint "$T/u.ini" 2>&1); rc=$?
is "$out" "$T/u.ini:5: [campaign] track_opens: 'so\\x1b[1Ametimes' is not yes or no" \
   "campaign value with ESC: quoted escaped"
printf '[campaign]\nid = c1\nname = Caf\303\251 \342\202\254\ntemplates = tpl\nchannels = email,\tsms\n' > "$T/u.ini"
out=$("$HERALD" -c "$G" lint "$T/u.ini" 2>&1); rc=$?
is "$rc" 0 "UTF-8 values and a tab between list items lint clean"

# Campaign errors, all reported at once.
cat > "$T/bad-c.ini" <<'INI'
[campaign]
id = has space
templates = tpl
channels = email, carrier-pigeon
colour = red
track_opens = sometimes
[caps]
email = 2/7x
[quiet_hours]
sms = 25:00-08:00
[nonsense]
INI
out=$("$HERALD" -c "$G" lint "$T/bad-c.ini" 2>&1); rc=$?
is "$rc" 1 "bad campaign: exit 1"
like "$out" "bad-c.ini:2: \[campaign\] id: 'has space'" "bad campaign: id"
like "$out" "bad-c.ini:4: \[campaign\] channels: 'carrier-pigeon' is not a channel" "bad campaign: unknown channel"
like "$out" "bad-c.ini:5: \[campaign\] colour: unknown key" "bad campaign: unknown key"
like "$out" "bad-c.ini:6: \[campaign\] track_opens: 'sometimes' is not yes or no" "bad campaign: track_opens"
like "$out" "bad-c.ini:8: \[caps\] email: .*2/7x" "bad campaign: bad cap"
like "$out" "bad-c.ini:10: \[quiet_hours\] sms: " "bad campaign: bad quiet hours"
like "$out" "bad-c.ini:11: \[nonsense\]: unknown section" "bad campaign: unknown empty section"

# Template errors carry file:line:col.
mkdir -p "$T/tpl2"
cp "$T"/tpl/*.liquid "$T/tpl2/"
printf 'line one\nHello {{ customer.name | no_such_filter }}\n' > "$T/tpl2/email.text.liquid"
printf 'x' > "$T/tpl2/email.footer.liquid"
sed 's/^templates = tpl$/templates = tpl2/' "$T/c.ini" > "$T/c2.ini"
out=$("$HERALD" -c "$G" lint "$T/c2.ini" 2>&1); rc=$?
is "$rc" 1 "template errors: exit 1"
like "$out" "tpl2/email.text.liquid:2:[0-9]+: .*no_such_filter" "unknown filter: file:line:col"
like "$out" "tpl2/email.footer.liquid:1: unknown template part 'email.footer'" "unknown part named"

# What a message quotes is escaped: a file name with a terminal escape and
# a line break stays one line of text.
mkdir -p "$T/tpl4"
cp "$T"/tpl/*.liquid "$T/tpl4/"
printf 'x' > "$T/tpl4/$(printf 'email.sub\033[2J\nject').liquid"
sed 's/^templates = tpl$/templates = tpl4/' "$T/c.ini" > "$T/c5.ini"
out=$("$HERALD" -c "$G" lint "$T/c5.ini" 2>&1); rc=$?
is "$rc" 1 "odd template file name: exit 1"
is "$(printf '%s\n' "$out" | grep -F 'unknown template part')" \
   "$T/tpl4/email.sub\\x1b[2J\\nject.liquid:1: unknown template part 'email.sub\\x1b[2J\\nject' (expected one of email.subject, email.html, email.text, sms.body, push.title, push.body, push.data, webhook.body)" \
   "odd template file name: escaped, on one line"
is "$(printf '%s\n' "$out" | grep -c "$(printf '\033')")" 0 "odd template file name: no escape character printed"
# A plugin's own message quoting a value (testplug: "mode: '...' is not a
# mode") is escaped by the core: here a right-to-left override, U+202E.
cat > "$T/g6.ini" <<INI
[store]
path = $T/herald6.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = $(printf 'se\342\200\256nt')
INI
sed 's/^channels = email, sms$/channels = email/' "$T/c.ini" > "$T/c6.ini"
out=$("$HERALD" -c "$T/g6.ini" run "$T/c6.ini" 2>&1); rc=$?
is "$rc" 1 "a plugin's error: exit 1"
is "$out" "herald: $T/g6.ini:7: [channel.email] mode: 'se\\u202ent' is not a mode" \
   "a plugin's error: the value escaped"

# A channel without its parts.
mkdir -p "$T/tpl3"
printf 'Hi' > "$T/tpl3/sms.body.liquid"
sed 's/^templates = tpl$/templates = tpl3/' "$T/c.ini" > "$T/c3.ini"
out=$("$HERALD" -c "$G" lint "$T/c3.ini" 2>&1); rc=$?
like "$out" "c3.ini:4: \[campaign\] channels: email: the templates .* lack the parts" "missing parts named"

# A plugin key the plugin does not know.
cat > "$T/g2.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = outbox
dir = $T/out/email
colour = blue
INI
sed 's/^channels = email, sms$/channels = email/' "$T/c.ini" > "$T/c4.ini"
out=$("$HERALD" -c "$T/g2.ini" run "$T/c4.ini" 2>&1); rc=$?
is "$rc" 1 "unknown plugin key: exit 1"
like "$out" "g2.ini:8: \[channel.email\] colour: unknown key for plugin outbox" "unknown plugin key: file and line"
# lint finds it too, before run does: it loads each channel's plugin and
# checks the keys against the plugin's own list, opening nothing (the
# outbox would create its folder).
out=$("$HERALD" -c "$T/g2.ini" lint "$T/c4.ini" 2>&1); rc=$?
is "$rc" 1 "lint, unknown plugin key: exit 1"
is "$(printf '%s\n' "$out" | grep -v ': ok (campaign')" \
   "$T/g2.ini:8: [channel.email] colour: unknown key for plugin outbox" \
   "lint, unknown plugin key: file, line and key, as run says it"
ok "$([ ! -e "$T/out/email" ]; echo $?)" "lint opened no channel (no outbox folder)"
# Every channel of the gateway, every problem: a channel the campaign does
# not use (herald serve loads them all), a plugin that does not carry the
# kind, a plugin that is not there.
cat > "$T/g3.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $HERALD_BUILDDIR/plugins/.libs
[channel.email]
plugin = outbox
dir = $T/out/email
colour = blue
size = 3
[channel.sms]
plugin = email
server = 127.0.0.1:25
[channel.push]
plugin = no_such_plugin
INI
out=$("$HERALD" -c "$T/g3.ini" lint "$T/c4.ini" 2>&1); rc=$?
is "$rc" 1 "lint, gateway problems: exit 1"
is "$(printf '%s\n' "$out" | grep "^$T/g3.ini:" | cut -d: -f2-3)" "8: [channel.email] colour
9: [channel.email] size
10: [channel.sms]
14: [channel.push] plugin" "lint, gateway problems: each named with its line"
like "$out" "g3.ini:10: \[channel.sms\]: plugin email does not carry sms messages" \
  "lint: a plugin that does not carry the channel's kind"
like "$out" "g3.ini:14: \[channel.push\] plugin: plugin 'no_such_plugin' not found" \
  "lint: a plugin that cannot be loaded"
like "$out" "c4.ini: ok \(campaign c1" "lint: the campaign itself is still checked"

# The configured store's folder is created on first use.
printf '[store]\npath = %s/deep/er/h.db\n' "$T" > "$T/g5.ini"
printf '{"id":"a"}\n' > "$T/one.jsonl"
"$HERALD" -c "$T/g5.ini" customers import "$T/one.jsonl" >/dev/null 2>&1
is "$?" 0 "import into a store whose folder does not exist yet"
ok "$([ -f "$T/deep/er/h.db" ]; echo $?)" "the store's folder was created"

# Usage errors exit 2; --help exits 0.
"$HERALD" run >/dev/null 2>&1; is "$?" 2 "run without a campaign: exit 2"
"$HERALD" frobnicate >/dev/null 2>&1; is "$?" 2 "unknown command: exit 2"
for cmd in run preview lint plugins render customers events report; do
  "$HERALD" $cmd --help >/dev/null 2>&1; is "$?" 0 "$cmd --help: exit 0"
done
out=$("$HERALD" --version); like "$out" "^herald [0-9]" "--version"

done_testing
