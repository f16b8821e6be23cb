# tests/fuzz/fuzz.mk: the hostile-input fuzzers' corpora, replayed by the
# normal suite (tests/fuzz/replay.c linked with each target), and
# `make fuzz`, which runs the fuzzers themselves (clang, libFuzzer) for
# FUZZ_SECONDS each (default 300).  .ci/run runs them briefly.

FUZZ_TARGETS = gateway campaign import mime sms json

check_PROGRAMS += tests/fuzz/replay-gateway
tests_fuzz_replay_gateway_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_gateway.c core/config.c core/util.c
tests_fuzz_replay_gateway_CPPFLAGS = $(herald_CPPFLAGS) -DFUZZ_TARGET='"gateway"'
tests_fuzz_replay_gateway_LDADD = $(INIH_LIBS)
TESTS += tests/fuzz/replay-gateway

check_PROGRAMS += tests/fuzz/replay-campaign
tests_fuzz_replay_campaign_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_campaign.c core/campaign.c core/config.c core/loader.c \
	core/router.c core/tz.c core/util.c
tests_fuzz_replay_campaign_CPPFLAGS = $(herald_CPPFLAGS) \
	-DFUZZ_TARGET='"campaign"'
tests_fuzz_replay_campaign_LDADD = core/liquid/libliquid.la $(herald_LDADD)
TESTS += tests/fuzz/replay-campaign

# The importers' readers are static: fuzz_import.c includes import.c
# and stands in for the store.
check_PROGRAMS += tests/fuzz/replay-import
tests_fuzz_replay_import_SOURCES = tests/fuzz/replay.c \
	tests/fuzz/fuzz_import.c core/config.c core/tz.c core/util.c \
	lib/address.c lib/jsoncheck.c
tests_fuzz_replay_import_CPPFLAGS = $(herald_CPPFLAGS) \
	-DFUZZ_TARGET='"import"'
tests_fuzz_replay_import_LDADD = $(herald_LDADD)
TESTS += tests/fuzz/replay-import

check_PROGRAMS += tests/fuzz/replay-mime
tests_fuzz_replay_mime_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_mime.c \
	plugins/common/mime.c plugins/common/mime.h lib/address.c lib/address.h
tests_fuzz_replay_mime_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"mime"' \
	-I$(top_srcdir)/plugins/common
TESTS += tests/fuzz/replay-mime

check_PROGRAMS += tests/fuzz/replay-json
tests_fuzz_replay_json_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_json.c \
	lib/jsoncheck.c lib/jsoncheck.h
tests_fuzz_replay_json_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"json"' \
	$(JANSSON_CFLAGS)
tests_fuzz_replay_json_LDADD = $(JANSSON_LIBS)
TESTS += tests/fuzz/replay-json

# The plugin's functions are static: fuzz_sms.c includes sms.c.
check_PROGRAMS += tests/fuzz/replay-sms
tests_fuzz_replay_sms_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_sms.c \
	$(HTTP_LAYER) lib/address.c lib/address.h
tests_fuzz_replay_sms_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"sms"'
tests_fuzz_replay_sms_CFLAGS = $(HTTP_PLUGIN_CFLAGS)
tests_fuzz_replay_sms_LDADD = $(HTTP_PLUGIN_LIBS)
TESTS += tests/fuzz/replay-sms

EXTRA_DIST += tests/fuzz/fuzz.sh tests/fuzz/corpus tests/fuzz/campaign.dict \
	tests/fuzz/gateway.dict tests/fuzz/import.dict tests/fuzz/sms.dict

FUZZ_SECONDS = 300
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(SHELL) $(top_srcdir)/tests/fuzz/fuzz.sh \
		$(FUZZ_SECONDS) $(FUZZ_TARGETS)
.PHONY: fuzz
