#!/bin/sh
# fuzz.sh: builds the bounce reader's libFuzzer target (fuzz_bounce.c over
# core/bounce.c and GMime) with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer and runs it for FUZZ_SECONDS (default 20),
# seeded with tests/bounces/corpus (every shape the tests know) and an mbox
# of them.  Exit 0 when nothing crashed; 77 (skip) when clang, libFuzzer or
# GMime's development files are missing.  A crash leaves its input in
# $FUZZ_OUT (default a temporary directory): add it to the corpus, with
# its expected reading in parse.py.
#   usage: tests/bounces/fuzz.sh [SECONDS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-20}}
CLANG=${CLANG:-clang}
if ! command -v "$CLANG" > /dev/null 2>&1; then
	echo "fuzz.sh: SKIP: $CLANG not found"
	exit 77
fi
if ! command -v pkg-config > /dev/null 2>&1 || ! pkg-config --exists gmime-3.0; then
	echo "fuzz.sh: SKIP: GMime 3 development files not found"
	exit 77
fi
work=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/bounce-fuzz.XXXXXX")}
mkdir -p "$work/inc" "$work/crashes" "$work/corpus"
: > "$work/inc/config.h"       # the sources include autoconf's config.h
cp "$here"/corpus/*.eml "$work/corpus/"
# One mbox of a few shapes, for the mbox path (inputs starting "From ").
for f in qmail dsn-hard arf; do
	printf 'From MAILER-DAEMON Mon Dec  7 10:00:00 2026\n'
	sed 's/^From />From /' "$here/corpus/$f.eml"
	printf '\n'
done > "$work/corpus/mbox"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$work/inc -I$top/core"
# shellcheck disable=SC2046,SC2086
if ! "$CLANG" $flags $(pkg-config --cflags gmime-3.0) "$here/fuzz_bounce.c" \
	"$top/core/bounce.c" "$top/core/util.c" $(pkg-config --libs gmime-3.0) \
	-o "$work/fuzz_bounce" 2> "$work/build.log"; then
	if grep -qi "fuzzer" "$work/build.log"; then
		echo "fuzz.sh: SKIP: libFuzzer not available"
		exit 77
	fi
	cat "$work/build.log"
	exit 1
fi
echo "fuzz.sh: fuzz_bounce for ${secs}s in $work"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
"$work/fuzz_bounce" -max_total_time="$secs" -max_len=65536 -timeout=10 \
	-rss_limit_mb=2048 -artifact_prefix="$work/crashes/" \
	"$work/corpus" > "$work/fuzz.log" 2>&1
rc=$?
tail -3 "$work/fuzz.log"
if [ $rc -ne 0 ]; then
	echo "fuzz.sh: FAILED (exit $rc); inputs in $work/crashes:"
	ls -l "$work/crashes"
	grep -m1 -A20 "ERROR\|abort\|SUMMARY" "$work/fuzz.log"
	exit 1
fi
echo "fuzz.sh: no crash"
exit 0
