#!/bin/sh
# fuzz.sh: builds the hostile-input libFuzzer targets of tests/fuzz with
# clang under AddressSanitizer and UndefinedBehaviorSanitizer (leaks
# included) and runs each for FUZZ_SECONDS (default 20) over its seed
# corpus, tests/fuzz/corpus/TARGET:
#   gateway   core/config.c: the gateway INI, inih and every check after it
#   campaign  core/campaign.c: a campaign INI against a fixed gateway
#   import    core/import.c: customers and events, JSON lines and CSV
#   mime      plugins/common/mime.c: every e-mail's bytes, with invariants
#   sms       plugins/sms/sms.c: Twilio's form callbacks and signatures
#   json      lib/jsoncheck.c against jansson
# Each target's file says what it checks besides the sanitizers; TARGET.dict
# is its libFuzzer dictionary (sections, keys, field names), if any.
# Exit 0 when nothing crashed; 77 (skip) when clang, libFuzzer or a
# library is missing.  A crash leaves its input in $FUZZ_OUT/crashes
# (default a temporary directory): fix the bug, add a case to the normal
# suite, and copy the input into the target's corpus.
#   usage: tests/fuzz/fuzz.sh [SECONDS] [TARGET...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-20}}
[ $# -gt 0 ] && shift
targets=${*:-gateway campaign import mime sms json}
CLANG=${CLANG:-clang}
if ! command -v "$CLANG" > /dev/null 2>&1; then
	echo "fuzz.sh: SKIP: $CLANG not found"
	exit 77
fi
for p in jansson inih icu-uc icu-i18n libcurl libcrypto; do
	if ! pkg-config --exists "$p" 2> /dev/null; then
		echo "fuzz.sh: SKIP: $p development files not found"
		exit 77
	fi
done
work=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/herald-fuzz.XXXXXX")}
mkdir -p "$work/inc" "$work/crashes"
# The sources include autoconf's config.h: what they read of it.
{
	echo '#define PACKAGE_NAME "herald"'
	echo '#define PACKAGE_VERSION "fuzz"'
	echo '#define HERALD_SYSCONFDIR "/nonexistent/etc"'
	echo '#define HERALD_PKGLIBDIR "/nonexistent/lib"'
	echo '#define HERALD_PKGDATADIR "/nonexistent/share"'
	echo '#define HERALD_BUILD_PLUGIN_DIR "/nonexistent/plugins"'
	grep -q 'ini_max_line' "$(pkg-config --variable=includedir inih)/ini.h" \
		2> /dev/null && echo '#define HAVE_DECL_INI_MAX_LINE 1'
} > "$work/inc/config.h"

flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-D_GNU_SOURCE -I$work/inc -I$top/core -I$top/core/liquid -I$top/plugins/common"
c=$top/core
liquid="$c/liquid/buf.c $c/liquid/value.c $c/liquid/parse.c $c/liquid/render.c
	$c/liquid/filters.c $c/liquid/date.c $c/liquid/json.c"

build () {  # build TARGET: fuzz_TARGET from its sources
	case $1 in
	gateway) src="$c/config.c $c/util.c"
		libs="inih" ;;
	campaign) src="$c/campaign.c $c/config.c $c/loader.c $c/router.c $c/tz.c
		$c/util.c $liquid"
		libs="inih jansson icu-uc icu-i18n" ;;
	import) src="$c/config.c $c/tz.c $c/util.c $top/lib/address.c
		$top/lib/jsoncheck.c"
		libs="inih jansson icu-uc icu-i18n" ;;
	mime) src="$top/plugins/common/mime.c $top/lib/address.c"
		libs="" ;;
	sms) src="$top/plugins/http/http.c $top/lib/address.c"
		libs="libcurl jansson libcrypto" ;;
	json) src="$top/lib/jsoncheck.c"
		libs="jansson" ;;
	*) echo "fuzz.sh: no target $1"; return 1 ;;
	esac
	# shellcheck disable=SC2086
	"$CLANG" $flags ${libs:+$(pkg-config --cflags $libs)} \
		"$here/fuzz_$1.c" $src ${libs:+$(pkg-config --libs $libs)} \
		-ldl -lm -lpthread -o "$work/fuzz_$1" >> "$work/build.log" 2>&1
}

status=0
for t in $targets; do
	if ! build "$t"; then
		if grep -qi "fuzzer" "$work/build.log"; then
			echo "fuzz.sh: SKIP: libFuzzer not available"
			exit 77
		fi
		cat "$work/build.log"
		exit 1
	fi
done
for t in $targets; do
	mkdir -p "$work/corpus-$t"
	cp "$here/corpus/$t"/* "$work/corpus-$t/" 2> /dev/null
	echo "fuzz.sh: fuzz_$t for ${secs}s in $work"
	# The targets write their scratch files under FUZZ_TMP.
	mkdir -p "$work/tmp-$t"
	dict=
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	# shellcheck disable=SC2086
	FUZZ_TMP="$work/tmp-$t" HERALD_SRCDIR="$top" \
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	"$work/fuzz_$t" -max_total_time="$secs" -max_len=8192 -timeout=10 $dict \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/crashes/$t-" \
		"$work/corpus-$t" < /dev/null > "$work/fuzz-$t.log" 2>&1
	rc=$?
	grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' \
		"$work/fuzz-$t.log" | tr '\n' ' '
	echo
	if [ $rc -ne 0 ]; then
		echo "fuzz.sh: fuzz_$t FAILED (exit $rc); inputs in $work/crashes:"
		ls -l "$work/crashes"
		grep -m1 -B2 -A25 "ERROR\|==ABORT\|SUMMARY\|runtime error" \
			"$work/fuzz-$t.log"
		status=1
	fi
done
[ $status -eq 0 ] && echo "fuzz.sh: no crash"
exit $status
