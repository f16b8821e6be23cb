# core/track.mk: automake fragment included by the top-level Makefile.am
# (appends only).  First-party open and click tracking: the link rewriter
# (run renders through it) and its unit test.
herald_SOURCES += core/linkrewrite.c core/linkrewrite.h core/htmlentities.h \
	core/track.c core/track.h

check_PROGRAMS += tests/track/test-linkrewrite
tests_track_test_linkrewrite_SOURCES = tests/track/test-linkrewrite.c \
	core/linkrewrite.c core/linkrewrite.h core/htmlentities.h \
	core/util.c core/util.h
tests_track_test_linkrewrite_CPPFLAGS = $(AM_CPPFLAGS)
TESTS += tests/track/test-linkrewrite
EXTRA_DIST += scripts/gen-htmlentities.py

check_PROGRAMS += tests/track/test-token
tests_track_test_token_SOURCES = tests/track/test-token.c \
	core/token.c core/token.h core/util.c core/util.h \
	lib/hmac256.c lib/hmac256.h
tests_track_test_token_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
tests_track_test_token_LDADD = $(OPENSSL_LIBS)
TESTS += tests/track/test-token

check_PROGRAMS += tests/track/test-track
tests_track_test_track_SOURCES = tests/track/test-track.c \
	core/track.c core/track.h core/token.c core/token.h $(STORE_SOURCES) \
	core/util.c lib/hmac256.c lib/jsoncheck.c
tests_track_test_track_CPPFLAGS = $(herald_CPPFLAGS)
tests_track_test_track_LDADD = $(herald_LDADD)
TESTS += tests/track/test-track

# End to end: herald run through the outbox, then herald serve.
TESTS += tests/track/tracking.py
EXTRA_DIST += tests/track/tracking.py

# The short links of SMS (track_links), end to end the same way.
TESTS += tests/track/sms-links.py
EXTRA_DIST += tests/track/sms-links.py

# The clicks benchmark (on demand only, never by make check).
EXTRA_DIST += bench/serve/clicks.sh

# The libFuzzer targets, built and run by tests/track/fuzz.sh (CI runs it).
EXTRA_DIST += tests/track/fuzz.sh tests/track/fuzz_linkrewrite.c \
	tests/track/fuzz_token.c tests/track/corpus/links.html \
	tests/track/corpus/raw.html tests/track/corpus/comments.html \
	tests/track/corpus/urls.html tests/track/corpus/text.txt
