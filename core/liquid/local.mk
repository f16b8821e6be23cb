# core/liquid/local.mk: the Liquid template engine (issue 3) and its tests.
# Included by the top-level Makefile.am; only appends (+=).
#
# Needs from configure.ac (already there): PKG_CHECK_MODULES JANSSON
# (jansson) and ICU (icu-uc icu-i18n).  The engine uses ICU for Unicode
# case mapping; it does not need utf8proc.  libm and pthread come with libc.
# core/tz.c is linked by herald itself (not by libliquid): the engine takes
# the tz_offset function through struct liquid_options.

noinst_LTLIBRARIES += core/liquid/libliquid.la
core_liquid_libliquid_la_SOURCES = \
	core/liquid/liquid.h core/liquid/liquid_int.h \
	core/liquid/buf.c core/liquid/value.c core/liquid/parse.c \
	core/liquid/render.c core/liquid/filters.c core/liquid/date.c \
	core/liquid/json.c
core_liquid_libliquid_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/core/liquid $(JANSSON_CFLAGS) $(ICU_CFLAGS)
core_liquid_libliquid_la_LIBADD = $(JANSSON_LIBS) $(ICU_LIBS) -lm

herald_SOURCES += core/cmd_render.c
herald_LDADD += core/liquid/libliquid.la

LIQUID_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/liquid \
	-I$(top_srcdir)/tests $(JANSSON_CFLAGS) $(ICU_CFLAGS)
LIQUID_TEST_LDADD = core/liquid/libliquid.la $(JANSSON_LIBS) $(ICU_LIBS) -lm

check_PROGRAMS += tests/liquid/conformance tests/liquid/unit \
	tests/liquid/regress
TESTS += tests/liquid/conformance tests/liquid/unit tests/liquid/regress \
	tests/liquid/cmd.sh

tests_liquid_conformance_SOURCES = tests/liquid/conformance.c
tests_liquid_conformance_CPPFLAGS = $(LIQUID_TEST_CPPFLAGS)
tests_liquid_conformance_LDADD = $(LIQUID_TEST_LDADD)

tests_liquid_unit_SOURCES = tests/liquid/unit.c core/tz.c core/tz.h
tests_liquid_unit_CPPFLAGS = $(LIQUID_TEST_CPPFLAGS)
tests_liquid_unit_LDADD = $(LIQUID_TEST_LDADD) -lpthread

tests_liquid_regress_SOURCES = tests/liquid/regress.c tests/liquid/fuzz_harness.h
tests_liquid_regress_CPPFLAGS = $(LIQUID_TEST_CPPFLAGS)
tests_liquid_regress_LDADD = $(LIQUID_TEST_LDADD)

EXTRA_DIST += core/liquid/README.md \
	tests/liquid/known-failures.txt tests/liquid/fuzz.sh \
	tests/liquid/fuzz_liquid.c tests/liquid/cmd.sh tests/liquid/regressions \
	tests/liquid/corpus bench/liquid
