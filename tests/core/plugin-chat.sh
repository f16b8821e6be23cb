#!/bin/sh
# A third-party plugin built outside Herald's tree: install this build
# into a scratch root (make install DESTDIR=...), build
# examples/plugin-chat with its own Makefile and that root's
# `pkg-config herald-plugin`, and run a campaign with a chat channel
# against a recording HTTP receiver (tests/http/fakeprovider.py).
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
EX="$HERALD_SRCDIR/examples/plugin-chat"

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libcurl; then
  echo "1..0 # SKIP pkg-config or libcurl's development files missing"
  exit 0
fi

R="$T/root"
make -C "$HERALD_BUILDDIR" install DESTDIR="$R" > "$T/install.log" 2>&1
is "$?" 0 "make install DESTDIR=$R"
pc=$(find "$R" -name herald-plugin.pc | head -1)
[ -n "$pc" ]
is "$?" 0 "the install holds herald-plugin.pc"
# The .pc names the configured prefix; the sysroot puts it under $R.
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$R"
like "$(pkg-config --cflags herald-plugin)" "^-I$R/" "pkg-config herald-plugin points into the scratch root"
[ -f "$(pkg-config --cflags-only-I herald-plugin | sed 's/^-I//; s/ *$//')/herald/plugin.h" ]
is "$?" 0 "... where herald/plugin.h was installed"

# The example's own Makefile, in a folder of ours: the source folder may
# be read-only (make distcheck).
mkdir -p "$T/chat"
make -C "$T/chat" -f "$EX/Makefile" srcdir="$EX" \
  CFLAGS="-O2 -g -Wall -Wextra -Werror" > "$T/chat/build.log" 2>&1
rc=$?
is "$rc" 0 "examples/plugin-chat builds with its Makefile and pkg-config alone"
[ "$rc" = 0 ] || sed 's/^/# /' "$T/chat/build.log"
like "$(cat "$T/chat/build.log")" "-I$R/" "... against the installed header"
cp "$T/chat/chat.so" "$PLUGINS/chat.so"
chmod 755 "$PLUGINS/chat.so"
syms=$(nm -D --defined-only "$PLUGINS/chat.so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^_' | tr '\n' ' ')
is "$syms" "herald_plugin_entry " "chat.so exports only the entry point"

# The receiver: records every request; chat 5005 is gone (410).
printf '[{"match": "5005", "status": 410, "body": "chat not found"}]\n' > "$T/rules.json"
$PY "$HERALD_SRCDIR/tests/http/fakeprovider.py" --rules "$T/rules.json" \
  --port-file "$T/port" --log "$T/requests.jsonl" --timeout 120 &
FP=$!
trap 'kill $FP 2>/dev/null; [ -n "${KEEP_T:-}" ] || rm -rf "$T"' EXIT
wait_until 20 test -s "$T/port"
is "$?" 0 "the recording receiver listens"
PORT=$(cat "$T/port")

G="$T/g.ini"
write_gateway "$G" "[channel.chat]
plugin = chat
kind = chat
url = http://127.0.0.1:$PORT/send
timeout_ms = 5000"
write_templates "$T/tpl"
printf 'Hi {{ customer.first_name }}, "{{ customer.points }}" points' > "$T/tpl/chat.text.liquid"
printf '[campaign]\nid = chatty\ntemplates = tpl\nchannels = chat, email\n' > "$T/c.ini"
out=$("$HERALD" -c "$G" lint "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "lint accepts kind = chat, declared by chat.so"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'

$PY - > "$T/cust.jsonl" <<'PYEOF'
import json
print(json.dumps({"id": "c1", "email": "c1@example.com", "addresses": {"chat_id": "1001"},
                  "consent": {"email": True, "chat": True},
                  "attributes": {"first_name": "Ann", "points": 3}}))
print(json.dumps({"id": "c2", "email": "c2@example.com",
                  "consent": {"email": True, "chat": True},
                  "attributes": {"first_name": "Bob", "points": 4, "chat_id": 2002}}))
print(json.dumps({"id": "c3", "email": "c3@example.com",
                  "consent": {"email": True, "chat": True},
                  "attributes": {"first_name": "Cy", "points": 5}}))
print(json.dumps({"id": "c4", "email": "c4@example.com", "addresses": {"chat_id": "5005"},
                  "consent": {"email": True, "chat": True},
                  "attributes": {"first_name": "Di", "points": 6}}))
PYEOF
out=$("$HERALD" -c "$G" customers import "$T/cust.jsonl" 2>&1)
like "$out" "imported 4 customers" "customers with chat_id and consent.chat import"
out=$("$HERALD" -c "$G" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "the campaign runs"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'

got=$($PY -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    b = json.loads(r["body"])
    print(r["method"], r["path"], r["headers"].get("content-type"),
          r["headers"].get("idempotency-key"), json.dumps(b, sort_keys=True))' "$T/requests.jsonl" | sort)
is "$got" 'POST /send application/json chatty:1:c1 {"chat_id": "1001", "text": "Hi Ann, \"3\" points"}
POST /send application/json chatty:1:c2 {"chat_id": "2002", "text": "Hi Bob, \"4\" points"}
POST /send application/json chatty:1:c4 {"chat_id": "5005", "text": "Hi Di, \"6\" points"}' \
  "the receiver got the chat messages as JSON {chat_id, text}, keyed"
got=$($PY -c '
import json, sys
print(" ".join(sorted(json.loads(l)["customer"] for l in open(sys.argv[1]))))' "$T/out/email/messages.jsonl")
is "$got" "c3 c4" "no chat_id, or a chat gone (410): the e-mail channel"
out=$("$HERALD" -c "$G" report chatty 2>&1)
like "$out" "chat +- +2 " "herald report shows the chat kind: 2 sent"
like "$out" "email +- +2 " "... and 2 e-mails"

# lint refuses an unknown kind, and a bad value through config_check.
sed 's/^kind = chat$/kind = chit/' "$G" > "$T/bad1.ini"
line=$(grep -n '^kind = chit' "$T/bad1.ini" | cut -d: -f1)
out=$("$HERALD" -c "$T/bad1.ini" lint "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "lint refuses kind = chit"
like "$out" "bad1.ini:$line: \[channel.chat\] kind: 'chit' is not one of email, sms, push, webhook, chat" \
  "... naming file, line, the kind and the known kinds"
sed 's|^url = http.*$|url = ftp://127.0.0.1/send|' "$G" > "$T/bad2.ini"
line=$(grep -n '^url = ftp' "$T/bad2.ini" | cut -d: -f1)
out=$("$HERALD" -c "$T/bad2.ini" lint "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "lint refuses a bad url through the plugin's config_check"
like "$out" "bad2.ini:$line: \[channel.chat\] url: 'ftp://127.0.0.1/send' is not an http or https URL" \
  "... naming file and line"
sed 's|^timeout_ms = 5000$|timeout_ms = soon|' "$G" > "$T/bad3.ini"
line=$(grep -n '^timeout_ms = soon' "$T/bad3.ini" | cut -d: -f1)
out=$("$HERALD" -c "$T/bad3.ini" lint "$T/c.ini" 2>&1)
like "$out" "bad3.ini:$line: \[channel.chat\] timeout_ms: 'soon' is not a number" "config_check: a bad timeout_ms"
cp "$G" "$T/bad4.ini"; printf 'token = x\n' >> "$T/bad4.ini"
line=$(grep -n '^token = x' "$T/bad4.ini" | cut -d: -f1)
out=$("$HERALD" -c "$T/bad4.ini" lint "$T/c.ini" 2>&1)
like "$out" "bad4.ini:$line: \[channel.chat\] token: unknown key for plugin chat" \
  "an unknown key of the chat channel is refused"
done_testing
