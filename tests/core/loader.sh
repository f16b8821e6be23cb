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
is "$rc" 1 "herald plugins: exit 1, files were refused"
like "$out" "herald plugins: [0-9]+ files refused" "... saying how many"
like "$out" "outbox +version 1.0 +ABI 2 +channels: any  $P/outbox.so" "an accepted plugin is shown with its file"
like "$out" "outbox +version 1.0 +ABI 2 +channels: any" "accepted plugin listed with version, ABI, channels"
like "$out" "badabi.so +REFUSED: .*badabi.so: refused: plugin ABI version 100, this herald speaks versions 1 to 2" "other ABI refused, the versions named"
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
like "$out" "g.ini:[0-9]+: \[channel.email\] plugin: .*badabi.so: refused: plugin ABI version 100" "run names the gateway line, the file and the reason"
printf '[store]\npath = %s/h.db\n[plugins]\ndir = %s\n[channel.email]\nplugin = nosuch\n' "$T" "$P" > "$T/g3.ini"
out=$("$HERALD" -c "$T/g3.ini" run "$T/c.ini" 2>&1)
like "$out" "plugin 'nosuch' not found \(looked for nosuch.so in $P" "missing plugin: where it looked"

# A symbolic link is refused (the file itself must be installed), and so
# is any plugin of a folder others may write in: they could swap the file
# between the checks and the load.  A sticky folder (/tmp) is fine.
P2="$T/pl2"
mkdir -p "$P2"
cp "$HERALD_BUILDDIR/plugins/.libs/outbox.so" "$T/real-outbox.so"
ln -s "$T/real-outbox.so" "$P2/outbox.so"
cat > "$T/g2.ini" <<INI
[store]
path = $T/herald.db
[plugins]
dir = $P2
INI
out=$("$HERALD" -c "$T/g2.ini" plugins 2>&1)
like "$out" "outbox.so +REFUSED: .*outbox.so: refused: a symbolic link" "a symbolic link refused"
rm "$P2/outbox.so"
cp "$HERALD_BUILDDIR/plugins/.libs/outbox.so" "$P2/outbox.so"
chmod 755 "$P2"
out=$("$HERALD" -c "$T/g2.ini" plugins 2>&1)
like "$out" "outbox +version" "the file itself, in a folder of its owner: accepted"
chmod 777 "$P2"
out=$("$HERALD" -c "$T/g2.ini" plugins 2>&1)
like "$out" "outbox.so +REFUSED: .*the plugin folder .*pl2 is writable by others \\(mode 0777\\)" "a world-writable folder refused"
chmod 775 "$P2"
out=$("$HERALD" -c "$T/g2.ini" plugins 2>&1)
like "$out" "outbox.so +REFUSED: .*pl2 is writable by its group" "a group-writable folder refused"
chmod 1777 "$P2"
out=$("$HERALD" -c "$T/g2.ini" plugins 2>&1)
like "$out" "outbox +version" "a sticky world-writable folder (as /tmp): accepted"
chmod 755 "$P2"
if [ "$(id -u)" = 0 ]; then
  chown 65534 "$P2"
  out=$("$HERALD" -c "$T/g2.ini" plugins 2>&1)
  like "$out" "outbox.so +REFUSED: .*the plugin folder .*pl2 is owned by uid 65534" "a folder owned by another user refused"
  chown 0 "$P2"
else
  echo "ok $((tap_n = tap_n + 1)) # SKIP not root: cannot chown"
fi

# A C++ plugin built against the installed header alone: its entry point
# has C linkage, so the loader finds it.
if command -v g++ >/dev/null 2>&1; then
  P3="$T/pl3"
  mkdir -p "$P3"
  cat > "$T/cxx.cc" <<'CXX'
#include <herald/plugin.h>
#include <cstring>
static int cxx_send (void *, const struct herald_message *const *m, size_t n,
                     struct herald_result *const *r)
{
  for (size_t i = 0; i < n; i++) {
    r[i]->status = HERALD_SENT;
    if (HERALD_HAS (r[i], opt_out) && herald_message_part (m[i], "x"))
      r[i]->opt_out = 0;
  }
  return 0;
}
static const struct herald_plugin plugin = {
  HERALD_PLUGIN_INIT,
  .name = "cxx",
  .version = "1.0",
  .send = cxx_send,
};
HERALD_REGISTER_PLUGIN (plugin)
CXX
  g++ -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -Werror -shared -fPIC \
    -I"$HERALD_SRCDIR/core" \
    -o "$P3/cxx.so" "$T/cxx.cc" 2> "$T/cxx.err"
  is "$?" 0 "a C++ plugin builds against herald/plugin.h with -Wall -Wextra -Werror: $(cat "$T/cxx.err")"
  is "$(nm -D --defined-only "$P3/cxx.so" | awk '{print $3}' | grep herald)" "herald_plugin_entry" \
    "its entry point is not mangled"
  printf '[store]\npath = %s/herald.db\n[plugins]\ndir = %s\n' "$T" "$P3" > "$T/g3.ini"
  out=$("$HERALD" -c "$T/g3.ini" plugins 2>&1)
  like "$out" "cxx +version 1.0" "the loader accepts it"
else
  echo "ok $((tap_n = tap_n + 1)) # SKIP g++ not installed"
fi

done_testing
