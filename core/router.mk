# core/router.mk: automake fragment included by the top-level Makefile.am (appends only).
# The router: campaign routing policy and the per-customer decision (pure).
herald_SOURCES += core/router.c core/router.h

check_PROGRAMS += tests/router/test-router
tests_router_test_router_SOURCES = tests/router/test-router.c \
	core/router.c core/router.h core/util.c core/tz.c
tests_router_test_router_CPPFLAGS = $(herald_CPPFLAGS)
tests_router_test_router_LDADD = $(herald_LDADD)
TESTS += tests/router/test-router
