#!/bin/sh
# The store's files taken away while a run uses them: the write-ahead log
# deleted, the store file renamed (and put back), the store's folder
# removed.  The run stops at its next commit, exit 1, saying what
# happened to which file; nothing it committed is lost (the log is copied
# into the store file as it closes), and a run after the fix completes
# the campaign, each customer messaged once, handed over at most twice.
. "$HERALD_SRCDIR/tests/core/lib.sh"
PY=/usr/bin/python3
N=1200
mkdir -p "$T/db"
cat > "$T/g.ini" <<INI
[store]
path = $T/db/herald.db
[plugins]
dir = $PLUGINS
[channel.email]
plugin = testplug
mode = sent
log = $T/email.log
ready = $T/ready
hold_ms = 20000
INI
write_templates "$T/tpl"
printf '[campaign]\nid = f\ntemplates = tpl\nchannels = email\n' > "$T/c.ini"
write_email_customers "$T/cust.jsonl" "$N"

# start_held: a run whose first batch is in the plugin (held until the
# ready file goes).
start_held () {
  rm -f "$T/ready"
  "$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run.out" 2>&1 &
  pid=$!
  wait_until 30 grep -q "^send" "$T/ready"
}
finish () {   # let the held batch go; the run's exit status
  rm -f "$T/ready"
  wait $pid
}
sent_once () {   # every customer recorded sent once; plugin saw each <= 2
  $PY - "$T/db/herald.db" "$T/email.log" "$N" <<'PYEOF'
import collections, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sent = [r[0] for r in db.execute("SELECT key FROM outbox WHERE state = 'sent'")]
check = db.execute("PRAGMA integrity_check").fetchone()[0]
seen = collections.Counter(l.split()[0] for l in open(sys.argv[2]))
print(check, len(sent), len(set(sent)), len(seen), max(seen.values()))
PYEOF
}

"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null

# 1. The write-ahead log deleted mid-run.
start_held
rm -f "$T/db/herald.db-wal"
finish; rc=$?
is "$rc" 1 "WAL deleted: the run stops, exit 1"
like "$(cat "$T/run.out")" "db/herald.db: its write-ahead log .*herald.db-wal was deleted while herald was using it: stopping" \
  "... naming the store and the log"
got=$(sqlite3 "$T/db/herald.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
ok "$([ "$got" -ge 500 ]; echo $?)" "... what it committed (the held batch's $got sent) is in the store file"
sed -i '/^ready = /d; /^hold_ms = /d' "$T/g.ini"
"$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run2.out" 2>&1
is "$?" 0 "... the next run completes"
is "$(sent_once)" "ok $N $N $N 1" "... every customer sent once, none handed over twice"

# 2. The store file renamed mid-run, then put back.
rm -rf "$T/db" "$T/email.log"; mkdir -p "$T/db"
printf 'ready = %s/ready\nhold_ms = 20000\n' "$T" >> "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
start_held
mv "$T/db/herald.db" "$T/db/moved.db"
finish; rc=$?
is "$rc" 1 "store file renamed: the run stops, exit 1"
like "$(cat "$T/run.out")" "db/herald.db: the store file was removed, renamed or replaced while herald was using it: stopping" \
  "... saying so"
mv "$T/db/moved.db" "$T/db/herald.db"
sed -i '/^ready = /d; /^hold_ms = /d' "$T/g.ini"
"$HERALD" -c "$T/g.ini" run "$T/c.ini" > "$T/run2.out" 2>&1
is "$?" 0 "... put back, the next run completes"
is "$(sent_once)" "ok $N $N $N 1" "... every customer sent once, none handed over twice"

# 3. The store's folder removed mid-run: stopped, said; the store is gone
# with it (restore it from a backup), and a new run starts afresh.
rm -rf "$T/db" "$T/email.log"; mkdir -p "$T/db"
printf 'ready = %s/ready\nhold_ms = 20000\n' "$T" >> "$T/g.ini"
"$HERALD" -c "$T/g.ini" customers import "$T/cust.jsonl" >/dev/null
start_held
rm -rf "$T/db"
finish; rc=$?
is "$rc" 1 "store folder removed: the run stops, exit 1"
like "$(cat "$T/run.out")" "db/herald.db: the store file was removed, renamed or replaced while herald was using it" \
  "... saying so"
is "$(ls "$T/db" 2>/dev/null | wc -l | tr -d ' ')" 0 "... and does not recreate files in a folder that is gone"
done_testing
