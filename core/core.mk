# core/core.mk: the lead's core modules (config, loader, scheduler, CLI).
herald_SOURCES += \
	core/config.c core/config.h \
	core/loader.c core/loader.h
herald_SOURCES += \
	core/campaign.c core/campaign.h \
	core/run.c core/run.h
