# plugins/http.mk: automake fragment included by the top-level Makefile.am (appends only).
# The HTTP channel plugins (sms, push, webhook) and their shared libcurl
# layer, which is compiled into each plugin and never exported.
HTTP_PLUGIN_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(OPENSSL_CFLAGS)
HTTP_PLUGIN_LIBS = $(CURL_LIBS) $(JANSSON_LIBS) $(OPENSSL_LIBS) -lm
HTTP_LAYER = plugins/http/http.c plugins/http/http.h

pkglib_LTLIBRARIES += plugins/webhook.la
plugins_webhook_la_SOURCES = plugins/webhook/webhook.c $(HTTP_LAYER) \
	lib/jsoncheck.c lib/jsoncheck.h \
	lib/hmac256.c lib/hmac256.h \
	lib/address.c lib/address.h
plugins_webhook_la_CFLAGS = $(HTTP_PLUGIN_CFLAGS)
plugins_webhook_la_LDFLAGS = $(HERALD_PLUGIN_FLAGS)
plugins_webhook_la_LIBADD = $(HTTP_PLUGIN_LIBS)

# Tests: a fake provider on loopback (Python stdlib) and tests/plugin-run.
HTTP_TEST_LIBS = tests/http/fakeprovider.py tests/http/httptest.py
TESTS += tests/http/webhook-plugin.py
EXTRA_DIST += $(HTTP_TEST_LIBS) tests/http/webhook-plugin.py

pkglib_LTLIBRARIES += plugins/sms.la
plugins_sms_la_SOURCES = plugins/sms/sms.c $(HTTP_LAYER) \
	lib/address.c lib/address.h
plugins_sms_la_CFLAGS = $(HTTP_PLUGIN_CFLAGS)
plugins_sms_la_LDFLAGS = $(HERALD_PLUGIN_FLAGS)
plugins_sms_la_LIBADD = $(HTTP_PLUGIN_LIBS)
TESTS += tests/http/sms-plugin.py
EXTRA_DIST += tests/http/sms-plugin.py tests/http/fixtures/twilio-reply-advanced-optout.form \
	tests/http/fixtures/twilio-reply-cancel.form tests/http/fixtures/twilio-reply-end.form \
	tests/http/fixtures/twilio-reply-quit.form tests/http/fixtures/twilio-reply-start.form \
	tests/http/fixtures/twilio-reply-stop.form tests/http/fixtures/twilio-reply-text-stop-sentence.form \
	tests/http/fixtures/twilio-reply-text-utf8.form tests/http/fixtures/twilio-reply-unsubscribe.form \
	tests/http/fixtures/twilio-status-delivered.form tests/http/fixtures/twilio-status-sent.form \
	tests/http/fixtures/twilio-status-undelivered.form

pkglib_LTLIBRARIES += plugins/push.la
plugins_push_la_SOURCES = plugins/push/push.c $(HTTP_LAYER)
plugins_push_la_CFLAGS = $(HTTP_PLUGIN_CFLAGS)
plugins_push_la_LDFLAGS = $(HERALD_PLUGIN_FLAGS)
plugins_push_la_LIBADD = $(HTTP_PLUGIN_LIBS)
TESTS += tests/http/push-plugin.py
EXTRA_DIST += tests/http/push-plugin.py
EXTRA_DIST += plugins/sms/README.md plugins/push/README.md plugins/webhook/README.md \
	bench/webhook/run.sh
TESTS += tests/http/h2-plugin.py
EXTRA_DIST += tests/http/h2-plugin.py
TESTS += tests/http/run-plugins.py
EXTRA_DIST += tests/http/run-plugins.py
