# tests/tests.mk: the lead's tests and test tools.

# plugin-run: drives one plugin through the real loader, for plugin tests.
check_PROGRAMS += tests/plugin-run
tests_plugin_run_SOURCES = tests/plugin-run.c core/loader.c core/config.c \
	core/util.c
tests_plugin_run_CPPFLAGS = $(herald_CPPFLAGS)
tests_plugin_run_LDADD = $(herald_LDADD)
