# core/bounce.mk: automake fragment included by the top-level Makefile.am
# (appends only).  herald bounces import: the bounce reader (core/bounce.c,
# through GMime), the command (core/cmd_bounces.c), their tests and the
# parser's libFuzzer target.
herald_SOURCES += core/bounce.c core/bounce.h core/cmd_bounces.c \
	core/feedback.c core/feedback.h \
	lib/verp.c lib/verp.h
herald_CPPFLAGS += $(GMIME_CFLAGS)
herald_LDADD += $(GMIME_LIBS)

# bounce-parse prints what core/bounce.c reads, for the tests.
check_PROGRAMS += tests/bounces/bounce-parse
tests_bounces_bounce_parse_SOURCES = tests/bounces/bounce-parse.c \
	core/bounce.c core/bounce.h core/util.c core/util.h
tests_bounces_bounce_parse_CPPFLAGS = $(AM_CPPFLAGS) $(GMIME_CFLAGS) \
	$(JANSSON_CFLAGS)
tests_bounces_bounce_parse_LDADD = $(GMIME_LIBS) $(JANSSON_LIBS)

# What bounce.c reads in each shape of the corpus, and the command end to
# end: a campaign through the email plugin to aiosmtpd, its bounces built
# from the VERP senders seen, imported as a Maildir and an mbox, twice.
BOUNCE_TESTS = tests/bounces/parse.py tests/bounces/import.py
TESTS += $(BOUNCE_TESTS)
EXTRA_DIST += $(BOUNCE_TESTS) tests/bounces/shapes.py \
	tests/bounces/make-corpus.py

# The libFuzzer target, built and run by tests/bounces/fuzz.sh (CI runs
# it), seeded with the corpus that make-corpus.py writes from shapes.py.
EXTRA_DIST += tests/bounces/fuzz.sh tests/bounces/fuzz_bounce.c \
	tests/bounces/corpus/arf-not-spam.eml \
	tests/bounces/corpus/arf-redacted.eml tests/bounces/corpus/arf.eml \
	tests/bounces/corpus/dsn-broken.eml \
	tests/bounces/corpus/dsn-delayed.eml \
	tests/bounces/corpus/dsn-delivered.eml \
	tests/bounces/corpus/dsn-hard.eml \
	tests/bounces/corpus/dsn-headers.eml \
	tests/bounces/corpus/dsn-nostatus.eml \
	tests/bounces/corpus/dsn-soft.eml \
	tests/bounces/corpus/exchange.eml tests/bounces/corpus/forged.eml \
	tests/bounces/corpus/garbage.eml tests/bounces/corpus/gmail.eml \
	tests/bounces/corpus/postfix.eml \
	tests/bounces/corpus/qmail-soft.eml tests/bounces/corpus/qmail.eml \
	tests/bounces/corpus/vacation.eml tests/bounces/corpus/yahoo.eml
