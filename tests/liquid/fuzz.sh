#!/bin/sh
# fuzz.sh: builds the Liquid libFuzzer target with clang under
# AddressSanitizer and runs it over the seed corpus for FUZZ_SECONDS
# (default 60).  Exit 0 when nothing crashed; 77 (skip) when clang or
# libFuzzer is missing.  A crash leaves its input in $FUZZ_OUT (default
# a temporary directory): copy it into tests/liquid/regressions/ so the
# regress test replays it forever.
#   usage: tests/liquid/fuzz.sh [SECONDS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-60}}
CLANG=${CLANG:-clang}
if ! command -v "$CLANG" > /dev/null 2>&1; then
	echo "fuzz.sh: SKIP: $CLANG not found"
	exit 77
fi
if ! command -v pkg-config > /dev/null 2>&1 ||
   ! pkg-config --exists jansson icu-uc; then
	echo "fuzz.sh: SKIP: jansson or icu-uc development files not found"
	exit 77
fi
work=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/liquid-fuzz.XXXXXX")}
mkdir -p "$work/corpus" "$work/crashes"
cp "$here"/corpus/* "$here"/regressions/* "$work/corpus/" 2> /dev/null
# shellcheck disable=SC2046
if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE \
	-I"$top/core/liquid" $(pkg-config --cflags jansson icu-uc) \
	"$here/fuzz_liquid.c" "$top"/core/liquid/*.c \
	$(pkg-config --libs jansson icu-uc icu-i18n) -lm -lpthread \
	-o "$work/fuzz_liquid" 2> "$work/build.log"; then
	if grep -qi "fuzzer" "$work/build.log"; then
		echo "fuzz.sh: SKIP: libFuzzer not available"
		exit 77
	fi
	cat "$work/build.log"
	exit 1
fi
echo "fuzz.sh: running for ${secs}s in $work"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
"$work/fuzz_liquid" -max_total_time="$secs" -max_len=4096 -timeout=10 \
	-rss_limit_mb=2048 -artifact_prefix="$work/crashes/" \
	"$work/corpus" > "$work/fuzz.log" 2>&1
rc=$?
tail -5 "$work/fuzz.log"
if [ $rc -ne 0 ]; then
	echo "fuzz.sh: FAILED (exit $rc); inputs in $work/crashes:"
	ls -l "$work/crashes"
	exit 1
fi
echo "fuzz.sh: no crash"
exit 0
