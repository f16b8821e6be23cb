# core/store.mk: automake fragment included by the top-level Makefile.am (appends only).
# The store (its interface, store.h, over two backends: SQLite, the
# embedded default, and PostgreSQL), the customers/events import commands
# and the report.
STORE_SOURCES = core/store.h core/store/backend.h core/store/store.c \
	core/store/sqlite.c core/store/pg.c core/store/copy.c
herald_SOURCES += $(STORE_SOURCES) core/import.c core/import.h \
	core/report.c core/cmd_store.c

# Unit tests of the store interface (tests/store/pg.sh runs them again
# against a PostgreSQL server of its own).
check_PROGRAMS += tests/store/test-store
tests_store_test_store_SOURCES = tests/store/test-store.c \
	$(STORE_SOURCES) core/util.c core/util.h \
	lib/jsoncheck.c lib/jsoncheck.h
tests_store_test_store_CPPFLAGS = $(herald_CPPFLAGS) -I$(top_srcdir)/tests
tests_store_test_store_LDADD = $(herald_LDADD)

# The import and report commands alone, for the command tests (they run
# the same functions herald's command table calls).
check_PROGRAMS += tests/store/store-cli
tests_store_store_cli_SOURCES = tests/store/store-cli.c \
	lib/jsoncheck.c lib/jsoncheck.h \
	lib/address.c lib/address.h \
	$(STORE_SOURCES) core/import.c core/report.c core/config.c core/router.c \
	core/util.c core/tz.c
tests_store_store_cli_CPPFLAGS = $(herald_CPPFLAGS)
tests_store_store_cli_LDADD = $(herald_LDADD)

TESTS += tests/store/test-store
STORE_SCRIPT_TESTS = tests/store/import.py tests/store/events.py \
	tests/store/report.py tests/store/crash.py tests/store/locks.py \
	tests/store/pg.sh tests/store/workers.py tests/store/replicas.py \
	tests/store/copy.py tests/store/pglocks.py
TESTS += $(STORE_SCRIPT_TESTS)
EXTRA_DIST += $(STORE_SCRIPT_TESTS) tests/store/storetest.py tests/store/customers-good.jsonl \
	tests/pgserver.py \
	tests/store/customers-good.csv tests/store/customers-crlf.csv \
	tests/store/customers-bom.csv tests/store/events-good.jsonl \
	bench/import/run.sh bench/import/gen.py
