# core/metrics.mk: automake fragment included by the top-level Makefile.am
# (appends only).  herald serve's GET /metrics (Prometheus text format).
herald_SOURCES += core/metrics.c core/metrics.h

# The exposition built from a small store, byte for byte.
check_PROGRAMS += tests/core/test-metrics
tests_core_test_metrics_SOURCES = tests/core/test-metrics.c \
	core/metrics.c core/metrics.h $(STORE_SOURCES) \
	core/util.c core/util.h lib/jsoncheck.c
tests_core_test_metrics_CPPFLAGS = $(herald_CPPFLAGS)
tests_core_test_metrics_LDADD = $(herald_LDADD)
TESTS += tests/core/test-metrics

# End to end: herald run through the outbox, then herald serve's
# /metrics checked with promtool and against the SQLite file.
TESTS += tests/core/metrics.py
EXTRA_DIST += tests/core/metrics.py
