#!/bin/sh
# fuzz.sh: builds the tracking libFuzzer targets with clang under
# AddressSanitizer and UndefinedBehaviorSanitizer and runs each for
# FUZZ_SECONDS (default 20):
#   fuzz_linkrewrite  core/linkrewrite.c over HTML and text, with its
#                     invariants (see the file);
#   fuzz_token        core/token.c's readers over token texts, the SMS
#                     short tokens' included.
# Exit 0 when nothing crashed; 77 (skip) when clang, libFuzzer or the
# libraries are missing.  A crash leaves its input in $FUZZ_OUT (default
# a temporary directory); add it to tests/track/test-linkrewrite.c or
# test-token.c as a case.
#   usage: tests/track/fuzz.sh [SECONDS]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-20}}
CLANG=${CLANG:-clang}
if ! command -v "$CLANG" > /dev/null 2>&1; then
	echo "fuzz.sh: SKIP: $CLANG not found"
	exit 77
fi
if ! command -v pkg-config > /dev/null 2>&1 || ! pkg-config --exists libcrypto; then
	echo "fuzz.sh: SKIP: libcrypto development files not found"
	exit 77
fi
work=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/track-fuzz.XXXXXX")}
mkdir -p "$work/inc" "$work/crashes" "$work/corpus-linkrewrite" "$work/corpus-token"
: > "$work/inc/config.h"       # the sources include autoconf's config.h
cp "$here"/corpus/* "$work/corpus-linkrewrite/" 2> /dev/null
cp "$top"/templates/*/email.html.liquid "$work/corpus-linkrewrite/" 2> /dev/null
# Seed tokens: valid ones for the harness's secret, made independently.
/usr/bin/python3 - "$work/corpus-token" << 'PY' || exit 1
import base64, hashlib, hmac, os, sys
secret = b"fuzz-secret-0123456789"
def b64(b): return base64.urlsafe_b64encode(b).decode().rstrip("=")
def tok(key, p): return b64(p) + "." + b64(hmac.new(key, p, hashlib.sha256).digest()[:16])
track = hmac.new(secret, b"herald tracking links v1", hashlib.sha256).digest()
def short(i):   # the short token of link i of fuzz_token.c's "store"
    msg = b"s" + i.to_bytes(8, "big") + b"sms:1:c%d\0https://shop.example/p%d" % (i, i)
    return b64(i.to_bytes((i.bit_length() + 7) // 8, "big") + hmac.new(track, msg, hashlib.sha256).digest()[:8])
seeds = [tok(track, b"cnews:1:a\0https://shop.example/p?a=1&b=2"), tok(track, b"onews:1:a"),
         tok(secret, b"a\nnews\nemail"), "news:1:a\0https://shop.example/",
         short(1), short(1234567), short(2 ** 40 + 5)]
for i, s in enumerate(seeds):
    with open(os.path.join(sys.argv[1], "seed%d" % i), "w") as f:
        f.write(s)
PY
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$work/inc -I$top/core"
# shellcheck disable=SC2086
if ! "$CLANG" $flags "$here/fuzz_linkrewrite.c" "$top/core/linkrewrite.c" "$top/core/util.c" \
	-o "$work/fuzz_linkrewrite" 2> "$work/build.log" ||
   ! "$CLANG" $flags $(pkg-config --cflags libcrypto) "$here/fuzz_token.c" "$top/core/token.c" \
	"$top/core/util.c" "$top/lib/hmac256.c" $(pkg-config --libs libcrypto) \
	-o "$work/fuzz_token" 2>> "$work/build.log"; then
	if grep -qi "fuzzer" "$work/build.log"; then
		echo "fuzz.sh: SKIP: libFuzzer not available"
		exit 77
	fi
	cat "$work/build.log"
	exit 1
fi
status=0
for target in linkrewrite token; do
	echo "fuzz.sh: fuzz_$target for ${secs}s in $work"
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	"$work/fuzz_$target" -max_total_time="$secs" -max_len=8192 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$work/crashes/$target-" \
		"$work/corpus-$target" > "$work/fuzz-$target.log" 2>&1
	rc=$?
	tail -3 "$work/fuzz-$target.log"
	if [ $rc -ne 0 ]; then
		echo "fuzz.sh: fuzz_$target FAILED (exit $rc); inputs in $work/crashes:"
		ls -l "$work/crashes"
		status=1
	fi
done
[ $status -eq 0 ] && echo "fuzz.sh: no crash"
exit $status
