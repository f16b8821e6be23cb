# core/store.mk: automake fragment included by the top-level Makefile.am (appends only).
# The store (SQLite), the customers/events import commands and the report.
herald_SOURCES += core/store.c core/store.h core/import.c core/import.h \
	core/report.c
