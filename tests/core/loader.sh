#!/bin/sh
# The plugin loader refuses what it must, naming the file and the reason,
# and lists what it accepts.
. "$HERALD_SRCDIR/tests/core/lib.sh"

P="$T/pl"
mkdir -p "$P"
B="$HERALD_BUILDDIR/tests/plugins/.libs"
cp "$HERALD_BUILDDIR/plugins/.libs/outbox.so" "$P/"
cp "$B/badabi.so" "$B/noentry.so" "$B/nosend.so" "$P/"
cp "$B/testplug.so" "$P/groupw.so"
chmod 664 "$P/groupw.so"
cp "$B/testplug.so" "$P/worldw.so"
chmod 646 "$P/worldw.so"
printf 'not a shared object\n' > "$P/junk.so"
chmod 644 "$P"/*.so 2>/dev/null; chmod 664 "$P/groupw.so"; chmod 646 "$P/worldw.so"
if [ "$(id -u)" = 0 ]; then
  cp "$B/testplug.so" "$P/other.so"
  chown 65534 "$P/other.so"
fi

cat > "$T/g.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $P
INI
out=$("$HERALD" -c "$T/g.ini" plugins 2>&1); rc=$?
is "$rc" 0 "herald plugins: exit 0"
like "$out" "outbox +version 1.0 +ABI 1 +channels: any" "accepted plugin listed with version, ABI, channels"
like "$out" "badabi.so +REFUSED: .*badabi.so: refused: plugin ABI version 99, this herald speaks version 1" "other ABI refused, both versions named"
like "$out" "noentry.so +REFUSED: .*noentry.so: refused: no entry point herald_plugin_entry" "missing entry point refused"
like "$out" "nosend.so +REFUSED: .*nosend.so: refused: plugin nosend has no send function" "plugin without send refused"
like "$out" "groupw.so +REFUSED: .*groupw.so: refused: writable by its group" "group-writable file refused"
like "$out" "worldw.so +REFUSED: .*worldw.so: refused: writable by others" "world-writable file refused"
like "$out" "junk.so +REFUSED: .*junk.so: refused: dlopen failed" "non-ELF file refused"
if [ "$(id -u)" = 0 ]; then
  like "$out" "other.so +REFUSED: .*other.so: refused: owned by uid 65534" "file owned by another user refused"
else
  echo "ok $((tap_n = tap_n + 1)) # SKIP not root: cannot chown"
fi

# Only the entry point is exported by the build's plugins.
for so in "$HERALD_BUILDDIR"/plugins/.libs/*.so; do
  syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^_' | sort | tr '\n' ' ')
  is "$syms" "herald_plugin_entry " "$(basename "$so") exports only herald_plugin_entry"
done

# A campaign whose channel uses a refused plugin fails with the reason.
mkdir -p "$T/tpl"
write_templates "$T/tpl"
cp "$B/badabi.so" "$P/badabi.so"
cat >> "$T/g.ini" <<INI
[channel.email]
plugin = badabi
INI
printf '[campaign]\nid = c\ntemplates = tpl\nchannels = email\n' > "$T/c.ini"
printf '{"id":"a","email":"a@example.com","consent":{"email":true}}\n' > "$T/cust.jsonl"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null 2>&1
out=$("$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "run with a refused plugin: exit 1"
like "$out" "g.ini:[0-9]+: \[channel.email\] plugin: .*badabi.so: refused: plugin ABI version 99" "run names the gateway line, the file and the reason"
printf '[store]\npath = %s/h.db\n[plugins]\ndir = %s\n[channel.email]\nplugin = nosuch\n' "$T" "$P" > "$T/g3.ini"
out=$("$HERALD" -c "$T/g3.ini" run "$T/c.ini" 2>&1)
like "$out" "plugin 'nosuch' not found \(looked for nosuch.so in $P" "missing plugin: where it looked"

done_testing
