# core/core.mk: the lead's core modules (config, loader, scheduler, CLI).
herald_SOURCES += \
	core/config.c core/config.h \
	core/loader.c core/loader.h core/abi1.h
herald_SOURCES += \
	core/campaign.c core/campaign.h \
	core/run.h core/run/internal.h core/plan.c core/compose.c \
	core/dispatch.c core/lane.c core/fire.c core/cmd_run.c \
	core/journey.c core/journey.h \
	core/jsonw.c core/jsonw.h \
	core/token.c core/token.h core/serve.c core/serve.h \
	lib/jsoncheck.c lib/jsoncheck.h \
	lib/hmac256.c lib/hmac256.h \
	lib/address.c lib/address.h

# Journeys: triggered campaigns and follow-up steps through herald serve,
# end to end in real time.
TESTS += tests/journey/journey.py tests/journey/schedule.py tests/journey/pause.py \
	tests/journey/stepfallback.py tests/journey/stuck.py
EXTRA_DIST += tests/journey/journey.py tests/journey/schedule.py \
	tests/journey/pause.py tests/journey/stepfallback.py tests/journey/stuck.py
