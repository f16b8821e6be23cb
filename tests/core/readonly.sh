#!/bin/sh
# A store herald cannot write: its folder read-only (the run lock cannot
# be created), then the store file read-only.  Each run stops at once,
# exit 1, naming the file and saying what the user must change; the store
# is left as it was; made writable again, the next run completes.  Root
# writes anything, so under root herald runs as nobody here.
. "$HERALD_SRCDIR/tests/core/lib.sh"
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || { echo "1..0 # SKIP setpriv not found"; exit 0; }
  AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
  chmod 755 "$T" "$PLUGINS"
  chmod 644 "$PLUGINS"/*.so
else
  AS=""
fi
mkdir -p "$T/db"
write_gateway "$T/g.ini"
sed -i "s|^path = .*|path = $T/db/herald.db|" "$T/g.ini"
write_templates "$T/tpl"
printf '[campaign]\nid = ro\ntemplates = tpl\nchannels = email\n' > "$T/c.ini"
printf '{"id": "a", "email": "a@example.com", "consent": {"email": true}}\n' > "$T/c.jsonl"
chmod 644 "$T/g.ini" "$T/c.ini" "$T/c.jsonl"; chmod -R a+rX "$T/tpl"
[ -n "$AS" ] && chown -R 65534 "$T/db" && mkdir -p "$T/out" && chown 65534 "$T/out"
$AS "$HERALD" -c "$T/g.ini" customers import "$T/c.jsonl" >/dev/null
is "$?" 0 "customers imported"
sum () { sha256sum "$T/db/herald.db" | cut -d' ' -f1; }
before=$(sum)

# 1. The folder read-only.
chmod 0500 "$T/db"
out=$($AS "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "store folder read-only: exit 1"
like "$out" "db/herald.db: cannot create the run lock .*herald.db.ro.lock: Permission denied \(the store's folder must be writable by the user running herald\)" \
  "... naming the lock file and what to change (not 'already running')"
is "$(sum)" "$before" "... the store unchanged"

# 2. The store file read-only, its folder writable.
chmod 0700 "$T/db"; chmod 0400 "$T/db/herald.db"
out=$($AS "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 1 "store file read-only: exit 1"
like "$out" "db/herald.db: .*attempt to write a readonly database \(the store file, its -wal and -shm files and their folder must be writable by the user running herald\)" \
  "... naming the store and what to change"
is "$(sum)" "$before" "... the store unchanged"
is "$(count_lines "$T/out/email/messages.jsonl")" 0 "... nothing sent"

# 3. Writable again: the run completes.
chmod 0600 "$T/db/herald.db"
rm -f "$T/db/herald.db-wal" "$T/db/herald.db-shm"
out=$($AS "$HERALD" -c "$T/g.ini" run "$T/c.ini" 2>&1); rc=$?
is "$rc" 0 "writable again: the run completes"
is "$(count_lines "$T/out/email/messages.jsonl")" 1 "... and sends the message"
done_testing
