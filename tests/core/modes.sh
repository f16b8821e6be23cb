#!/bin/sh
# File modes under umask 000: the store (herald.db and the -wal and -shm
# SQLite makes beside it while it is open), a run's .lock file and the
# folders herald creates for them are the owner's alone (0600 files, 0700
# folders); so are the outbox plugin's folders, messages.jsonl and Maildir
# files.  Each holds customers' names and addresses.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
umask 000

G="$T/herald.ini"
write_gateway "$G"
# The store two folders down, neither of which exists yet.
sed -i "s|^path = .*herald.db\$|path = $T/var/db/herald.db|" "$G"
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s|^unsubscribe_mailto = .*|&\nlisten = 127.0.0.1:$port|" "$G"
write_templates "$T/tpl"
printf '[campaign]\nid = modes\ntemplates = tpl\nchannels = email, sms\n' > "$T/c.ini"
write_customers "$T/cust.jsonl" 6

mode () { stat -c %a "$1" 2>/dev/null || echo missing; }

"$HERALD" -c "$G" customers import "$T/cust.jsonl" >/dev/null
is "$?" 0 "customers imported under umask 000"
is "$(mode "$T/var")" 700 "the store's folders are created 0700 (var)"
is "$(mode "$T/var/db")" 700 "the store's folders are created 0700 (var/db)"
is "$(mode "$T/var/db/herald.db")" 600 "herald.db is created 0600"

out=$("$HERALD" -c "$G" run "$T/c.ini" 2>&1)
is "$?" 0 "the campaign ran"
is "$(mode "$T/var/db/herald.db.modes.lock")" 600 "the run's lock file is 0600"
for d in out out/email out/email/tmp out/email/new out/email/cur out/sms; do
  is "$(mode "$T/$d")" 700 "outbox folder $d is 0700"
done
is "$(mode "$T/out/email/messages.jsonl")" 600 "outbox messages.jsonl is 0600"
is "$(mode "$T/out/sms/messages.jsonl")" 600 "outbox messages.jsonl of sms is 0600"
n=0; bad=
for f in "$T"/out/email/new/*; do
  n=$((n + 1))
  [ "$(mode "$f")" = 600 ] || bad="$bad $(basename "$f"):$(mode "$f")"
done
is "$n:$bad" "4:" "every Maildir file is 0600"

# -wal and -shm exist while a herald holds the store open: the server does.
"$HERALD" -c "$G" serve >"$T/serve.out" 2>"$T/serve.err" &
srv=$!
i=0
while ! grep -q "listening on" "$T/serve.out" && [ $i -lt 300 ]; do
  kill -0 $srv 2>/dev/null || break
  i=$((i + 1)); sleep 0.1
done
like "$(cat "$T/serve.out" "$T/serve.err")" "listening on" "herald serve holds the store open"
is "$(mode "$T/var/db/herald.db-wal")" 600 "herald.db-wal is 0600"
is "$(mode "$T/var/db/herald.db-shm")" 600 "herald.db-shm is 0600"
kill -TERM $srv; wait $srv

# A store created by the server itself, in a folder it creates; on a
# port of its own (another test may have taken the first since).
rm -rf "$T/var"
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s|^listen = .*|listen = 127.0.0.1:$port|" "$G"
"$HERALD" -c "$G" serve >"$T/serve.out" 2>"$T/serve.err" &
srv=$!
i=0
while ! grep -q "listening on" "$T/serve.out" && [ $i -lt 300 ]; do
  kill -0 $srv 2>/dev/null || break
  i=$((i + 1)); sleep 0.1
done
is "$(mode "$T/var"):$(mode "$T/var/db")" "700:700" "serve creates the store's folders 0700"
[ "$(mode "$T/var")" = 700 ] || sed 's/^/# serve: /' "$T/serve.out" "$T/serve.err"
is "$(mode "$T/var/db/herald.db"):$(mode "$T/var/db/herald.db-wal"):$(mode "$T/var/db/herald.db-shm")" \
  "600:600:600" "serve creates herald.db, -wal and -shm 0600"
kill -TERM $srv; wait $srv

done_testing
