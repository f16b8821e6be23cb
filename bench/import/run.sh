#!/bin/sh
# bench/import/run.sh: time 'herald customers import' of N varied customers
# (default 1,000,000) and its peak RSS, against the sqlite3 CLI's .import
# of the same customers as CSV into a table keyed by id, in the same run.
#
#   HERALD_BUILDDIR=/path/to/build sh bench/import/run.sh [N]
#
# Uses $HERALD when it lists 'customers', else the build's
# tests/store/store-cli (the same cmd_customers).  Needs /usr/bin/time,
# sqlite3 and python3.  Scratch files go to $TMPDIR (default /tmp).
set -eu

N=${1:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
build=${HERALD_BUILDDIR:-$(pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/herald-bench-import.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -n "${HERALD:-}" ] && "$HERALD" customers import --help >/dev/null 2>&1; then
    cmd="$HERALD"
elif [ -x "$build/herald" ] && "$build/herald" customers import --help >/dev/null 2>&1; then
    cmd="$build/herald"
elif [ -x "$build/tests/store/store-cli" ]; then
    cmd="$build/tests/store/store-cli"
else
    echo "run.sh: no herald with 'customers import' in $build (set HERALD_BUILDDIR)" >&2
    exit 77
fi
for p in /usr/bin/time sqlite3 python3; do
    command -v "$p" >/dev/null 2>&1 || { echo "run.sh: needs $p" >&2; exit 77; }
done

echo "generating $N customers..."
python3 "$here/gen.py" "$N" "$work/customers.jsonl" "$work/customers.csv"
ls -l "$work/customers.jsonl" "$work/customers.csv" | awk '{printf "  %s: %.1f MB\n", $NF, $5/1048576}'
# Warm the page cache so neither side pays for the first read.
cat "$work/customers.jsonl" "$work/customers.csv" >/dev/null

# measure LABEL CMD...: wall seconds and peak RSS from /usr/bin/time -v.
measure () {
    label=$1; shift
    /usr/bin/time -v "$@" >"$work/$label.out" 2>"$work/$label.time" || {
        cat "$work/$label.out" "$work/$label.time" >&2; exit 1; }
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$label.time" \
           | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$label.time")
    user=$(sed -n 's/.*User time (seconds): //p' "$work/$label.time")
    sys=$(sed -n 's/.*System time (seconds): //p' "$work/$label.time")
    printf '  %-28s %7.2f s wall  %6.2f s user  %5.2f s sys  %7.1f MB peak RSS\n' \
        "$label" "$wall" "$user" "$sys" "$(echo "$rss" | awk '{print $1/1024}')"
    cpu=$(echo "$user $sys" | awk '{print $1 + $2}')
    eval "${label%%-*}_wall=\$wall; ${label%%-*}_rss=\$rss; ${label%%-*}_cpu=\$cpu"
}

echo "importing ($cmd):"
measure herald-jsonl "$cmd" customers import --store "$work/herald.db" "$work/customers.jsonl"
sed 's/^/    /' "$work/herald-jsonl.out"
rm -f "$work/herald.db" "$work/herald.db-wal" "$work/herald.db-shm"
measure herald_csv-csv "$cmd" customers import --store "$work/herald.db" "$work/customers.csv"
sed 's/^/    /' "$work/herald_csv-csv.out"

sqlite3 "$work/peer.db" "PRAGMA journal_mode=WAL;
  CREATE TABLE customers (id TEXT PRIMARY KEY, email, phone, push, webhook,
    timezone, locale, consent, preferred_channels, attributes);" >/dev/null
measure peer-sqlite3-import sqlite3 "$work/peer.db" ".import --csv --skip 1 $work/customers.csv customers"
peer_n=$(sqlite3 "$work/peer.db" "SELECT count(*) FROM customers")
echo "    sqlite3 .import loaded $peer_n rows (no validation, one index)"

ls -l "$work"/herald.db "$work"/peer.db | awk '{printf "  store size %s: %.1f MB\n", $NF, $5/1048576}'
# Wall time on a shared machine is noisy: the CPU ratio (user + sys) is
# the steadier comparison.
awk -v h="$herald_wall" -v c="$herald_csv_wall" -v p="$peer_wall" \
    -v hc="$herald_cpu" -v cc="$herald_csv_cpu" -v pc="$peer_cpu" \
    -v hr="$herald_rss" -v pr="$peer_rss" -v n="$N" 'BEGIN {
    printf "herald jsonl: %.0f customers/s; ratio herald/sqlite3 .import: %.2fx wall, %.2fx CPU, %.2fx peak RSS\n", n / h, h / p, hc / pc, hr / pr
    printf "herald csv:   %.0f customers/s; ratio herald/sqlite3 .import: %.2fx wall, %.2fx CPU\n", n / c, c / p, cc / pc
}'
