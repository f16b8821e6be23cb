#!/bin/sh
# pg.sh: the PostgreSQL store.  A server of the test's own
# (tests/pgserver.py, a Unix socket in a temporary folder), stopped on
# exit whatever happens; then test-store's whole suite against it, and,
# through the herald binary: a database that was never migrated is
# refused with the hint to migrate (and left empty), two migrations at
# once and a third later are harmless, a postgres:// URL from the gateway
# file works, and a garbage URL or one with a password gets a clear error
# without the password.
. "$HERALD_SRCDIR/tests/core/lib.sh"

PY=${PYTHON3:-/usr/bin/python3}
PGSERVER="$HERALD_SRCDIR/tests/pgserver.py"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "1..0 # SKIP PostgreSQL is not installed (scripts/install-deps.sh)"
  exit 0
fi

# Not under $T: the server may run as another user (nobody, under root),
# who must reach its folder.
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/herald-pg.XXXXXX")
trap '"$PY" "$PGSERVER" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR" "$T"' EXIT
trap 'exit 1' HUP INT TERM
if ! out=$("$PY" "$PGSERVER" start "$PGDIR" 2>&1); then
  echo "Bail out! cannot start PostgreSQL: $out"
  exit 1
fi
eval "$out"
URL=$HERALD_PG_URL

psql_ () { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1; }

# test-store's suite, each of its assertions one of ours.
start=$(date +%s)
HERALD_TEST_PG_URL=$URL "$HERALD_BUILDDIR/tests/store/test-store" > "$T/suite" 2>&1
rc=$?
while IFS= read -r line; do
  case $line in
    "ok "*) ok 0 "test-store: ${line#ok * - }" ;;
    "not ok "*) ok 1 "test-store: ${line#not ok * - }" ;;
    "Bail out!"*) ok 1 "test-store: $line" ;;
    "#"*) echo "$line" ;;
  esac
done < "$T/suite"
ok "$rc" "test-store ran to its end against PostgreSQL (exit $rc, $(( $(date +%s) - start )) s)"

# A database never migrated: every command but 'store migrate' refuses it,
# with the hint, and creates nothing in it.
psql_ "$URL" "CREATE DATABASE fresh" >/dev/null
FRESH=$(printf '%s' "$URL" | sed 's|:///herald?|:///fresh?|')
out=$("$HERALD" report --store "$FRESH" spring 2>&1); rc=$?
is "$rc" 1 "report on an empty database: exit 1"
like "$out" "^herald: postgresql:///fresh\?host=.*: the store is at schema version 0, this herald needs 6: run 'herald store migrate'\$" \
  "it names the store and says to migrate"
out=$("$HERALD" customers import --store "$FRESH" \
        "$HERALD_SRCDIR/tests/store/customers-good.jsonl" 2>&1); rc=$?
ok $(( rc != 1 )) "so does customers import"
like "$out" "run 'herald store migrate'" "with the same hint"
is "$(psql_ "$FRESH" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0 \
  "and nothing was created in it"

# Two migrations at once: the advisory lock serialises them.
"$HERALD" store migrate --store "$FRESH" > "$T/m1" 2>&1 & p1=$!
"$HERALD" store migrate --store "$FRESH" > "$T/m2" 2>&1 & p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
ok $(( rc1 || rc2 )) "two migrations at once both succeed: $(cat "$T/m1" "$T/m2" | tr '\n' ' ')"
is "$(psql_ "$FRESH" "SELECT value FROM meta WHERE key = 'schema_version'")" 6 \
  "the database is at schema version 6"
out=$("$HERALD" customers import --store "$FRESH" \
        "$HERALD_SRCDIR/tests/store/customers-good.jsonl" 2>&1); rc=$?
is "$rc" 0 "the migrated database takes an import: $out"
out=$("$HERALD" store migrate --store "$FRESH" 2>&1); rc=$?
is "$rc:$out" "0:store at schema version 6" "migrating again is harmless"
is "$(psql_ "$FRESH" "SELECT count(*) FROM customers")" 6 \
  "and keeps the customers"

# The gateway file names the store by [store] url (postgres://, the other
# spelling), which is not a path relative to the file.
PGURL=$(printf '%s' "$FRESH" | sed 's|^postgresql://|postgres://|')
mkdir -p "$T/etc"
printf '[store]\nurl = %s\n' "$PGURL" > "$T/etc/herald.ini"
out=$("$HERALD" -c "$T/etc/herald.ini" report spring 2>&1); rc=$?
like "$out" "unknown campaign 'spring': the store postgres:///fresh" \
  "a postgres:// URL in the gateway file is the store"
ok $(( $(find "$T/etc" | wc -l) != 2 )) "and no folder is made of it"

# Garbage and passwords.
out=$("$HERALD" report --store 'postgresql://%zz/x' spring 2>&1); rc=$?
is "$rc" 1 "a garbage URL: exit 1"
like "$out" "^herald: postgresql://%zz/x: cannot connect to the store: .*%zz" \
  "its error names the URL and what is wrong with it"
out=$("$HERALD" report --store "postgresql://nobody:s3cret@/nosuchdb?host=$PGDIR&password=s3cret" spring 2>&1); rc=$?
like "$out" "^herald: postgresql://nobody@/nosuchdb\?host=[^ ]*: cannot connect to the store: .*nosuchdb" \
  "a database that does not exist is named"
ok $(( rc != 1 )) "exit 1"
case $out in *s3cret*) r=1 ;; *) r=0 ;; esac
ok $r "the password is in no message"

done_testing
