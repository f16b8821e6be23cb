#!/bin/sh
# An installed Herald works from where it is installed: `make install`
# into a scratch prefix, then the installed herald lints the installed
# sample campaigns with the installed gateway file, imports the installed
# sample customers and runs the welcome campaign through the installed
# plugins, its store and outbox under $(localstatedir)/lib/herald; and
# pkg-config's pluginlibdir names the folder the plugins went to.
. "$HERALD_SRCDIR/tests/core/lib.sh"
I="$T/inst"
make -C "$HERALD_BUILDDIR" install prefix="$I" > "$T/install.log" 2>&1
is "$?" 0 "make install prefix=$I"
G="$I/etc/herald/herald.ini"
unset HERALD_PLUGIN_DIR
# The plugins: where the build put them ($(pkglibdir)), found through the
# gateway's folder (this herald was configured for another prefix; lint
# loads them to check the channels' keys).
printf '[plugins]\ndir = %s\n' "$I/lib/herald" >> "$G"
out=$("$I/bin/herald" -c "$G" lint "$I"/etc/herald/campaigns/*.ini 2>&1); rc=$?
is "$rc" 0 "the installed samples lint with the installed gateway"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /' 
like "$(grep '^templates' "$I/etc/herald/campaigns/welcome.ini")" "^templates = $I/share/herald/templates/welcome\$" \
  "the installed campaign names the installed templates"
like "$(grep '^path' "$G")" "^path = $I/var/lib/herald/herald.db\$" "the installed gateway keeps its store under var/lib/herald"
out=$("$I/bin/herald" -c "$G" customers import "$I/share/herald/samples/customers.jsonl" 2>&1)
like "$out" "imported 300 customers" "the installed sample customers import"
out=$("$I/bin/herald" -c "$G" run "$I/etc/herald/campaigns/welcome.ini" 2>&1); rc=$?
is "$rc" 0 "the installed welcome campaign runs"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /' 
[ -s "$I/var/lib/herald/outbox/email/messages.jsonl" ]
is "$?" 0 "its e-mails are in var/lib/herald/outbox"
is "$(stat -c %a "$I/var/lib/herald")" 700 "the state folder is created 0700"
# The .pc was made for the configured prefix: --define-prefix reads it as
# installed here, which only works when every variable leads to prefix.
pc=$(PKG_CONFIG_PATH="$I/lib/pkgconfig" pkg-config --define-prefix \
       --variable=pluginlibdir herald-plugin 2>&1)
is "$pc" "$I/lib/herald" "pkg-config's pluginlibdir is the plugin folder"
[ -f "$pc/outbox.so" ]
is "$?" 0 "... which holds the plugins"
is "$(ls "$I/lib/herald" | grep -c '\.la$')" 0 "no libtool .la files in the plugin folder"
# An edited gateway file survives a new install; the new sample goes beside.
echo "; edited by the user" >> "$G"
cp "$G" "$T/edited.ini"
make -C "$HERALD_BUILDDIR" install prefix="$I" > "$T/install2.log" 2>&1
is "$?" 0 "make install again"
cmp -s "$G" "$T/edited.ini"
is "$?" 0 "the edited herald.ini is kept"
[ -f "$G.new" ]
is "$?" 0 "... the new sample beside it, herald.ini.new"
like "$(cat "$T/install2.log")" "kept your .*herald.ini; the new sample is .*herald.ini.new" "... and make install says so"
make -C "$HERALD_BUILDDIR" uninstall prefix="$I" > "$T/uninstall.log" 2>&1
is "$?" 0 "make uninstall"
is "$(find "$I" -type f -not -path "$I/var/*" | sed "s|^$I/||" | sort | tr '\n' ' ')" \
  "etc/herald/herald.ini " "uninstall leaves only the edited gateway file (and the state in var/)"
done_testing
