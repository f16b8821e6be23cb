# plugins/email/local.mk: the email channel plugin (SMTP through libESMTP)
# and its tests; included by the top-level Makefile.am (appends only).
pkglib_LTLIBRARIES += plugins/email.la
plugins_email_la_SOURCES = plugins/email/email.c \
	plugins/email/dkimsign.c plugins/email/dkimsign.h \
	plugins/email/webhooks.c plugins/email/webhooks.h \
	plugins/common/mime.c plugins/common/mime.h \
	lib/address.c lib/address.h \
	lib/verp.c lib/verp.h \
	lib/hmac256.c lib/hmac256.h
plugins_email_la_CFLAGS = $(AM_CFLAGS) $(ESMTP_CFLAGS) $(OPENDKIM_CFLAGS) \
	$(OPENSSL_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
plugins_email_la_LDFLAGS = $(HERALD_PLUGIN_FLAGS)
plugins_email_la_LIBADD = $(ESMTP_LIBS) $(OPENDKIM_LIBS) $(OPENSSL_LIBS) \
	$(CURL_LIBS) $(JANSSON_LIBS)

# Tests: scripted aiosmtpd servers and Postfix's smtp-sink on loopback,
# driven through tests/plugin-run; DKIM signatures checked with python3-dkim.  The benchmark (bench/email/run.sh) is
# never run by make check.
EMAIL_TESTS = tests/email/mime.py tests/email/results.py tests/email/tls.py \
	tests/email/headers.py tests/email/signing.py tests/email/lint.sh \
	tests/email/verp.py tests/email/connect.py tests/email/faults.py \
	tests/email/config.sh tests/email/sink.sh
TESTS += $(EMAIL_TESTS)

# The VERP tokens (lib/verp.c), known answers and refusals.
check_PROGRAMS += tests/email/verp-check
tests_email_verp_check_SOURCES = tests/email/verp-check.c \
	lib/verp.c lib/verp.h \
	lib/hmac256.c lib/hmac256.h
tests_email_verp_check_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
tests_email_verp_check_LDADD = $(OPENSSL_LIBS)
TESTS += tests/email/verp-check
dist_check_SCRIPTS += $(EMAIL_TESTS)
EXTRA_DIST += tests/email/smtpserver.py bench/email/run.sh

# The providers' webhooks (webhooks.c) through herald serve: Mailgun,
# Postmark, SES through SNS (a local HTTPS server holds the certificate),
# SendGrid; payloads in each provider's shape in tests/email/webhooks/.
TESTS += tests/email/webhooks.py
dist_check_SCRIPTS += tests/email/webhooks.py
EXTRA_DIST += tests/email/webhooks/mailgun-complained.json \
	tests/email/webhooks/mailgun-delivered.json \
	tests/email/webhooks/mailgun-failed.json \
	tests/email/webhooks/postmark-bounce.json \
	tests/email/webhooks/postmark-delivery.json \
	tests/email/webhooks/postmark-spamcomplaint.json \
	tests/email/webhooks/sendgrid-events.json \
	tests/email/webhooks/ses-bounce.json \
	tests/email/webhooks/ses-complaint.json \
	tests/email/webhooks/sns-notification.json \
	tests/email/webhooks/sns-subscription.json
