# plugins/outbox/local.mk: the outbox plugin (the embedded default).
pkglib_LTLIBRARIES += plugins/outbox.la
plugins_outbox_la_SOURCES = plugins/outbox/outbox.c \
	plugins/common/mime.c plugins/common/mime.h \
	lib/address.c lib/address.h
plugins_outbox_la_CPPFLAGS = -I$(top_srcdir)/core $(JANSSON_CFLAGS)
plugins_outbox_la_LDFLAGS = $(HERALD_PLUGIN_FLAGS)
plugins_outbox_la_LIBADD = $(JANSSON_LIBS)
