#!/bin/sh
# bench/run/dryrun.sh: herald run --dry-run (segment, routing with the
# engagement policy, rendering of every part) over N customers with
# events, at N/10 and N, to show speed and that memory does not grow with
# the audience.  Then a real run into outbox channels at N/10 (records,
# renders and writes every message durably).
#
#   HERALD_BUILDDIR=/path/to/build sh bench/run/dryrun.sh [N]   (default 1000000)
set -eu
N=${1:-1000000}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${HERALD_BUILDDIR:-$top}
H=${HERALD:-$build/herald}
[ -x "$H" ] || { echo "dryrun.sh: no herald at $H (set HERALD_BUILDDIR)" >&2; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/herald-bench-run.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

gateway () {   # DIR
  mkdir -p "$1/var"
  cat > "$1/g.ini" <<INI
[store]
path = var/herald.db
[plugins]
dir = $build/plugins/.libs
[tracking]
base_url = https://t.example.com
secret = bench-secret-0123456789abcdef
[channel.email]
plugin = outbox
dir = var/out/email
fsync = yes
[channel.sms]
plugin = outbox
dir = var/out/sms
[channel.push]
plugin = outbox
dir = var/out/push
INI
  sed -e "s|^templates = .*|templates = $top/templates/winback|" \
      "$top/etc/campaigns/winback.ini" > "$1/winback.ini"
}

measure () {   # LABEL N DIR ARGS...: wall seconds, rate, peak RSS
  label=$1; n=$2; dir=$3; shift 3
  /usr/bin/time -f '%e %M' -o "$work/time" "$H" -c "$dir/g.ini" "$@" > "$work/out" 2>&1 || {
    cat "$work/out" >&2; exit 1; }
  read -r secs kb < "$work/time"
  planned=$(sed -n 's/^campaign [^:]*: \([0-9]*\) customers planned/\1/p' "$work/out")
  awk -v l="$label" -v n="$n" -v s="$secs" -v k="$kb" -v p="$planned" 'BEGIN {
    printf "%-34s %9d customers %7.2f s %9.0f customers/s  peak RSS %6.1f MB  (%s in segment)\n",
           l, n, s, (s > 0 ? n / s : 0), k / 1024, p }'
}

for n in $((N / 10)) "$N"; do
  d="$work/n$n"
  mkdir -p "$d"
  gateway "$d"
  echo "generating $n customers and their events..."
  /usr/bin/python3 "$top/scripts/gen-customers.py" "$n" --events "$d/ev.jsonl" > "$d/c.jsonl"
  (cd "$d" && "$H" -c g.ini customers import c.jsonl >/dev/null && "$H" -c g.ini events import ev.jsonl >/dev/null)
  (cd "$d" && measure "run --dry-run (engagement)" "$n" "$d" run winback.ini --dry-run)
done
d="$work/n$((N / 10))"
(cd "$d" && measure "run (outbox, fsync per batch)" "$((N / 10))" "$d" run winback.ini)
echo "memory must not grow with the audience: compare the two dry-run peak RSS figures above"
