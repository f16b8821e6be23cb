# tests/tests.mk: the lead's tests and test tools.

# plugin-run: drives one plugin through the real loader, for plugin tests.
check_PROGRAMS += tests/plugin-run
tests_plugin_run_SOURCES = tests/plugin-run.c core/loader.c core/config.c \
	core/util.c
tests_plugin_run_CPPFLAGS = $(herald_CPPFLAGS)
tests_plugin_run_LDADD = $(herald_LDADD)

# Plugins built only for the tests (the loader's refusals, failure modes).
TEST_PLUGIN_FLAGS = -module -avoid-version -shared -no-undefined -rpath /nowhere
check_LTLIBRARIES += tests/plugins/testplug.la tests/plugins/badabi.la \
	tests/plugins/noentry.la tests/plugins/nosend.la \
	tests/plugins/kindplug.la tests/plugins/abi1.la tests/plugins/badkind.la \
	tests/plugins/serialplug.la
tests_plugins_testplug_la_SOURCES = tests/plugins/testplug.c
tests_plugins_testplug_la_CPPFLAGS = -I$(top_srcdir)/core
tests_plugins_testplug_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_serialplug_la_SOURCES = tests/plugins/testplug.c
tests_plugins_serialplug_la_CPPFLAGS = -I$(top_srcdir)/core -DTP_SERIALIZE
tests_plugins_serialplug_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_badabi_la_SOURCES = tests/plugins/badabi.c
tests_plugins_badabi_la_CPPFLAGS = -I$(top_srcdir)/core
tests_plugins_badabi_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_noentry_la_SOURCES = tests/plugins/noentry.c
tests_plugins_noentry_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_nosend_la_SOURCES = tests/plugins/nosend.c
tests_plugins_nosend_la_CPPFLAGS = -I$(top_srcdir)/core
tests_plugins_nosend_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_kindplug_la_SOURCES = tests/plugins/kindplug.c
tests_plugins_kindplug_la_CPPFLAGS = -I$(top_srcdir)/core
tests_plugins_kindplug_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
# The disk failing under a program (LD_PRELOAD), for tests/core/iofault.py.
check_LTLIBRARIES += tests/core/iofault.la
tests_core_iofault_la_SOURCES = tests/core/iofault.c
tests_core_iofault_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_core_iofault_la_LIBADD = -ldl
# Built against the frozen version 1 header, as a plugin of that time was.
tests_plugins_abi1_la_SOURCES = tests/plugins/abi1.c \
	tests/plugins/abi1/herald/plugin.h
tests_plugins_abi1_la_CPPFLAGS = -I$(top_srcdir)/tests/plugins/abi1
tests_plugins_abi1_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_badkind_la_SOURCES = tests/plugins/badkind.c
tests_plugins_badkind_la_CPPFLAGS = -I$(top_srcdir)/core
tests_plugins_badkind_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)

# plugin-keys: prints a built plugin's config_keys and secret_keys, for
# tests/core/manpages.sh (every key documented in the plugin's page).
check_PROGRAMS += tests/core/plugin-keys
tests_core_plugin_keys_SOURCES = tests/core/plugin-keys.c
tests_core_plugin_keys_CPPFLAGS = -I$(top_srcdir)/core

# The small encoders and checkers (HMAC, JSON check and writer).
check_PROGRAMS += tests/core/common
tests_core_common_SOURCES = tests/core/common.c \
	lib/hmac256.c lib/hmac256.h \
	lib/jsoncheck.c lib/jsoncheck.h \
	lib/address.c lib/address.h \
	core/jsonw.c core/jsonw.h core/util.c core/util.h
tests_core_common_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS) $(JANSSON_CFLAGS)
tests_core_common_LDADD = $(OPENSSL_LIBS) $(JANSSON_LIBS)
TESTS += tests/core/common

CORE_TESTS = tests/core/config.sh tests/core/loader.sh tests/core/run.sh \
	tests/core/failures.sh tests/core/crash.sh tests/core/email-run.py \
	tests/core/routing.sh tests/core/lanes.sh tests/core/serve.py \
	tests/core/modes.sh tests/core/slow-clients.py tests/core/faults.py \
	tests/core/partials.sh tests/core/install.sh tests/core/poison.sh \
	tests/core/guardrails.sh \
	tests/core/addresses.py tests/core/retries.sh tests/core/kinds.sh \
	tests/core/plugin-chat.sh tests/core/send-timeout.sh tests/core/warmup.sh \
	tests/core/iofault.py tests/core/storefiles.sh tests/core/secrets.py \
	tests/core/load.py tests/core/readonly.sh
TESTS += $(CORE_TESTS)
# The manual pages render without a warning and document every key the
# code takes (a line of its own: the list above grows often).
TESTS += tests/core/manpages.sh
EXTRA_DIST += tests/core/manpages.sh
# A third-party plugin with its own Makefile, built by plugin-chat.sh
# against a scratch install.
EXTRA_DIST += examples/plugin-chat/Makefile examples/plugin-chat/chat.c \
	examples/plugin-chat/README.md
EXTRA_DIST += $(CORE_TESTS) tests/core/lib.sh tests/tap.h
# The crash suite: SIGKILL at random moments, the real plugins, counted at
# the receivers.  Appended on its own line, which make sees in TESTS and
# EXTRA_DIST all the same: both expand CORE_TESTS only when used.
CORE_TESTS += tests/core/crashsuite.py

# core/compose.c alone: the render context, the parts, the unsubscribe and
# tracking links.  No core/store.c here: compose records the short links
# of an SMS through its caller's link_sink, and a store call would not link.
check_PROGRAMS += tests/core/test-compose
tests_core_test_compose_SOURCES = tests/core/test-compose.c \
	core/compose.c core/run/internal.h core/campaign.c core/campaign.h \
	core/config.c core/config.h core/loader.c core/loader.h \
	core/router.c core/router.h core/linkrewrite.c core/linkrewrite.h \
	core/htmlentities.h core/token.c core/token.h core/jsonw.c \
	core/jsonw.h core/tz.c core/tz.h core/util.c core/util.h \
	lib/jsoncheck.c lib/jsoncheck.h lib/hmac256.c lib/hmac256.h
tests_core_test_compose_CPPFLAGS = $(herald_CPPFLAGS)
tests_core_test_compose_LDADD = $(herald_LDADD)
TESTS += tests/core/test-compose
