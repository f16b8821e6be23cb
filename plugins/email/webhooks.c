/* webhooks.c: the bounce, complaint and engagement webhooks of e-mail
 * providers (Mailgun, Postmark, Amazon SES through SNS, SendGrid), behind
 * the email plugin's inbound entry (webhooks.h).  Every signature is
 * checked with OpenSSL's EVP before a byte of the payload is believed, in
 * constant time where a secret is compared; a refused callback records
 * nothing.  It must never fetch a URL the configuration did not allow
 * (SNS certificates and subscription URLs: https on sns.REGION.amazonaws.com
 * or the ses_cert_host set on purpose), and never log a secret. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "webhooks.h"
#include "../../lib/hmac256.h"
#include "../../lib/verp.h"

/* Mailgun: how far a signature's timestamp may be from our clock, and so
 * how long a token is remembered against replays. */
#define HOOKS_MAX_SKEW 300
/* SNS signing certificates kept, by URL. */
#define HOOKS_CERT_CACHE 8
/* The largest certificate (or subscription answer) read. */
#define HOOKS_FETCH_MAX 65536
#define HOOKS_FETCH_TIMEOUT_MS 10000L

struct hooks_token {
  char *token;
  int64_t ts;
};

struct hooks_cert {
  char *url;
  EVP_PKEY *key;
  int64_t used;
};

struct email_hooks {
  const struct herald_host *host;
  char *from_domain;             /* the provider ids' domain */
  struct verp_key verp;          /* a key of its own (send() uses the
                                  * plugin's on other threads) */
  int verp_on;                   /* bounce_domain and verp_secret set */
  pthread_mutex_t mu;            /* all of the below, and verp */

  struct hmac256 mailgun;        /* keyed with mailgun_signing_key */
  int mailgun_on;
  struct hooks_token *seen;      /* Mailgun tokens taken, < 2 skews old */
  size_t n_seen, cap_seen;

  char *postmark_auth;           /* "USER:PASSWORD", NULL: off */

  char **ses_topics;             /* NULL-terminated; NULL: off */
  char *ses_cert_host;           /* an allowed host[:port] besides SNS's */
  char *ses_ca_file;
  struct hooks_cert certs[HOOKS_CERT_CACHE];
  int64_t cert_clock;

  EVP_PKEY *sendgrid_key;        /* NULL: off */
};

/* One event about to go to the sink; strings lent. */
struct hooks_event {
  const char *type;
  const char *address;
  const char *verp;              /* the envelope sender, or NULL */
  const char *message_id;        /* the Message-ID header quoted, or NULL */
  const char *provider_id;       /* the provider's own id (detail only), or
                                    NULL */
  int64_t at;
  json_t *detail;                /* borrowed */
};

/* ---- small helpers ---------------------------------------------------- */

static void
hooks_log (struct email_hooks *h, int level, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;

  if (!h->host->log)
    return;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  h->host->log (h->host->data, level, "%s", buf);
}

static int
hooks_respond (struct herald_response *resp, int status, const char *fmt, ...)
{
  va_list ap;
  int n;

  resp->status = status;
  snprintf (resp->content_type, sizeof resp->content_type,
            "text/plain; charset=utf-8");
  va_start (ap, fmt);
  n = vsnprintf (resp->body, sizeof resp->body, fmt, ap);
  va_end (ap);
  if (n < 0)
    n = 0;
  resp->body_len = (size_t) n < sizeof resp->body ? (size_t) n
                                                  : sizeof resp->body - 1;
  return 0;
}

static char *
hooks_strdup (const char *s)
{
  char *d = strdup (s);
  if (!d)
    abort ();
  return d;
}

static const char *
hooks_header (const struct herald_request *req, const char *name)
{
  size_t i;

  for (i = 0; i < req->n_headers; i++)
    if (strcasecmp (req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}

static const char *
hooks_jstr (json_t *o, const char *key)
{
  return json_string_value (json_object_get (o, key));
}

/* Decode base64 TEXT (whitespace ignored, padding as RFC 4648 says) into
 * a new buffer *OUT_R of *LEN_R bytes.  0, or -1 when it is not base64. */
static int
hooks_base64 (const char *text, unsigned char **out_r, size_t *len_r)
{
  EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new ();
  size_t tl = strlen (text);
  unsigned char *out = malloc (tl / 4 * 3 + 4);
  int n = 0, m = 0, r = -1;

  if (!ctx || !out || tl > INT32_MAX)
    goto out;
  EVP_DecodeInit (ctx);
  if (EVP_DecodeUpdate (ctx, out, &n, (const unsigned char *) text,
                        (int) tl) < 0
      || EVP_DecodeFinal (ctx, out + n, &m) != 1 || n + m == 0)
    goto out;
  *out_r = out;
  *len_r = (size_t) (n + m);
  out = NULL;
  r = 0;
out:
  free (out);
  EVP_ENCODE_CTX_free (ctx);
  return r;
}

/* Parse an RFC 3339 time ("2019-11-05T16:33:54.9070259Z", an offset
 * instead of Z) into unix seconds, the fraction dropped.  0 or -1. */
static int
hooks_rfc3339 (const char *s, int64_t *t_r)
{
  struct tm tm;
  int y, mo, d, hh, mi, ss, n = 0, oh = 0, om = 0;
  int64_t t;

  if (!s || sscanf (s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d,
                    &hh, &mi, &ss, &n) != 6 || n != 19)
    return -1;
  s += n;
  if (*s == '.') {
    s++;
    if (!isdigit ((unsigned char) *s))
      return -1;
    while (isdigit ((unsigned char) *s))
      s++;
  }
  if (*s == 'Z' || *s == 'z')
    s++;
  else if ((*s == '+' || *s == '-') && isdigit ((unsigned char) s[1])
           && isdigit ((unsigned char) s[2]) && s[3] == ':'
           && isdigit ((unsigned char) s[4]) && isdigit ((unsigned char) s[5])) {
    oh = (s[1] - '0') * 10 + (s[2] - '0');
    om = (s[4] - '0') * 10 + (s[5] - '0');
    if (*s == '-') {
      oh = -oh;
      om = -om;
    }
    s += 6;
  } else
    return -1;
  if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59
      || ss > 60)
    return -1;
  memset (&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = hh;
  tm.tm_min = mi;
  tm.tm_sec = ss;
  t = (int64_t) timegm (&tm);
  *t_r = t - (oh * 3600 + om * 60);
  return 0;
}

/* A Herald Message-ID "HEX32.herald@DOMAIN", with or without its angle
 * brackets, into BUF without them.  0, or -1 when ID is not one. */
static int
hooks_herald_message_id (const char *id, char *buf, size_t buflen)
{
  size_t i, n;

  if (!id)
    return -1;
  while (*id == ' ')
    id++;
  if (*id == '<')
    id++;
  n = strcspn (id, "> ");
  if (n < 2 * VERP_HASH_LEN + 9 || n >= buflen
      || strncmp (id + 2 * VERP_HASH_LEN, ".herald@", 8) != 0)
    return -1;
  for (i = 0; i < 2 * VERP_HASH_LEN; i++)
    if (!isxdigit ((unsigned char) id[i]))
      return -1;
  memcpy (buf, id, n);
  buf[n] = '\0';
  for (i = 0; i < 2 * VERP_HASH_LEN; i++)
    buf[i] = (char) tolower ((unsigned char) buf[i]);
  return 0;
}

/* The provider id of the message E is about, "HEX.herald@DOMAIN" (what
 * send() reports and the store keeps): from its VERP envelope sender when
 * the token is ours (verp_check), else from a Herald Message-ID the
 * provider quotes.  The provider's own id (Postmark's MessageID, SES's
 * messageId...) never names a message the email plugin sent: it only goes
 * into the detail.  Returns how it was found ("verp", "message-id") or
 * NULL (the core then takes the address). */
static const char *
hooks_provider_id (struct email_hooks *h, const struct hooks_event *e,
                   char *buf, size_t buflen)
{
  unsigned char hash[VERP_HASH_LEN];
  char mid[HERALD_ID_MAX];
  const char *at;
  size_t i;

  if (e->verp && h->verp_on && h->from_domain
      && strncasecmp (e->verp, VERP_PREFIX, strlen (VERP_PREFIX)) == 0
      && (at = strchr (e->verp, '@'))) {
    char local[VERP_ADDRESS_MAX];
    size_t n = (size_t) (at - e->verp);
    int ok;
    if (n < sizeof local) {
      memcpy (local, e->verp, n);
      local[n] = '\0';
      pthread_mutex_lock (&h->mu);
      ok = verp_check (&h->verp, local, hash) == 0;
      pthread_mutex_unlock (&h->mu);
      if (ok && 2 * VERP_HASH_LEN + 8 + strlen (h->from_domain) < buflen) {
        static const char digits[] = "0123456789abcdef";
        for (i = 0; i < VERP_HASH_LEN; i++) {
          buf[2 * i] = digits[hash[i] >> 4];
          buf[2 * i + 1] = digits[hash[i] & 15];
        }
        /* The Message-ID quoted, when it has the same hash, gives the
         * From domain the message was sent with (the from may have
         * changed since); else today's. */
        if (hooks_herald_message_id (e->message_id, mid, sizeof mid) == 0
            && strncmp (mid, buf, 2 * VERP_HASH_LEN) == 0
            && strlen (mid) < buflen) {
          memcpy (buf, mid, strlen (mid) + 1);
          return "verp";
        }
        snprintf (buf + 2 * VERP_HASH_LEN, buflen - 2 * VERP_HASH_LEN,
                  ".herald@%s", h->from_domain);
        return "verp";
      }
    }
  }
  if (hooks_herald_message_id (e->message_id, buf, buflen) == 0)
    return "message-id";
  return NULL;
}

/* Hand E to the sink.  0, or -1 when the store could not record it. */
static int
hooks_emit (struct email_hooks *h, const struct herald_sink *sink,
            const char *source, struct hooks_event *e)
{
  struct herald_event ev = { HERALD_EVENT_INIT };
  char pid[HERALD_ID_MAX], *detail;
  const char *how;
  int rc;

  how = hooks_provider_id (h, e, pid, sizeof pid);
  json_object_set_new (e->detail, "source", json_string (source));
  if (how)
    json_object_set_new (e->detail, "matched_by", json_string (how));
  else
    json_object_set_new (e->detail, "matched_by", json_string ("address"));
  if (e->address)
    json_object_set_new (e->detail, "recipient", json_string (e->address));
  if (e->provider_id)
    json_object_set_new (e->detail, "provider_message_id",
                         json_string (e->provider_id));
  detail = json_dumps (e->detail, JSON_COMPACT | JSON_SORT_KEYS);
  ev.type = e->type;
  ev.provider_id = how ? pid : NULL;
  ev.address = e->address;
  ev.at = e->at;
  ev.detail = detail;
  rc = sink->event (sink->data, &ev);
  free (detail);
  return rc;
}

/* Parse the body as JSON into *J_R, or answer 400 naming where it broke. */
static int
hooks_parse (const struct herald_request *req, struct herald_response *resp,
             const char *what, json_t **j_r)
{
  json_error_t e;

  *j_r = json_loadb (req->body ? req->body : "", req->body_len, 0, &e);
  if (!*j_r) {
    hooks_respond (resp, 400, "malformed %s: not JSON: %s (line %d, column "
                   "%d)\n", what, e.text, e.line, e.column);
    return -1;
  }
  return 0;
}

/* ---- Mailgun ---------------------------------------------------------- */

/* Whether TOKEN was taken within the last two skews (replayed), after
 * forgetting the older ones.  Caller holds h->mu. */
static int
hooks_token_seen (struct email_hooks *h, const char *token, int64_t now)
{
  size_t i, j;
  int seen = 0;

  for (i = j = 0; i < h->n_seen; i++) {
    if (h->seen[i].ts < now - 2 * HOOKS_MAX_SKEW) {
      free (h->seen[i].token);
      continue;
    }
    if (strcmp (h->seen[i].token, token) == 0)
      seen = 1;
    h->seen[j++] = h->seen[i];
  }
  h->n_seen = j;
  return seen;
}

static void
hooks_token_add (struct email_hooks *h, const char *token, int64_t now)
{
  pthread_mutex_lock (&h->mu);
  if (h->n_seen == h->cap_seen) {
    size_t cap = h->cap_seen ? 2 * h->cap_seen : 64;
    struct hooks_token *n = realloc (h->seen, cap * sizeof *n);
    if (!n)
      abort ();
    h->seen = n;
    h->cap_seen = cap;
  }
  h->seen[h->n_seen].token = hooks_strdup (token);
  h->seen[h->n_seen].ts = now;
  h->n_seen++;
  pthread_mutex_unlock (&h->mu);
}

/* Mailgun's webhook signature (its "Securing webhooks" page): signature =
 * hex HMAC-SHA256 (signing key, timestamp || token). */
static int
hooks_mailgun_sig_ok (struct email_hooks *h, const char *ts, const char *token,
                      const char *sig)
{
  unsigned char mac[HMAC256_LEN], got[HMAC256_LEN];
  size_t i;
  int ok;

  if (strlen (sig) != 2 * HMAC256_LEN)
    return 0;
  for (i = 0; i < HMAC256_LEN; i++) {
    unsigned hi, lo;
    if (!isxdigit ((unsigned char) sig[2 * i])
        || !isxdigit ((unsigned char) sig[2 * i + 1]))
      return 0;
    hi = (unsigned) (isdigit ((unsigned char) sig[2 * i]) ? sig[2 * i] - '0'
                     : tolower ((unsigned char) sig[2 * i]) - 'a' + 10);
    lo = (unsigned) (isdigit ((unsigned char) sig[2 * i + 1])
                     ? sig[2 * i + 1] - '0'
                     : tolower ((unsigned char) sig[2 * i + 1]) - 'a' + 10);
    got[i] = (unsigned char) (hi << 4 | lo);
  }
  pthread_mutex_lock (&h->mu);
  ok = hmac256_begin (&h->mailgun) == 0
       && hmac256_update (&h->mailgun, ts, strlen (ts)) == 0
       && hmac256_update (&h->mailgun, token, strlen (token)) == 0
       && hmac256_final (&h->mailgun, mac) == 0;
  pthread_mutex_unlock (&h->mu);
  return ok && CRYPTO_memcmp (mac, got, sizeof mac) == 0;
}

static int
hooks_mailgun (struct email_hooks *h, const struct herald_request *req,
               const struct herald_sink *sink, struct herald_response *resp)
{
  json_t *j = NULL, *sig, *ed, *msg, *ds, *detail = NULL;
  const char *ts, *token, *s, *event, *sev;
  struct hooks_event e;
  int64_t now = (int64_t) time (NULL), t;
  char *end;
  double at;
  int replay;

  if (!h->mailgun_on)
    return hooks_respond (resp, 404, "mailgun webhooks are off: set "
                          "mailgun_signing_key\n");
  if (hooks_parse (req, resp, "Mailgun webhook", &j) < 0)
    return 0;
  sig = json_object_get (j, "signature");
  ts = hooks_jstr (sig, "timestamp");
  token = hooks_jstr (sig, "token");
  s = hooks_jstr (sig, "signature");
  if (!json_is_object (j) || !ts || !token || !s) {
    hooks_respond (resp, 401, "signature: missing (an object with "
                   "timestamp, token and signature)\n");
    goto out;
  }
  if (!hooks_mailgun_sig_ok (h, ts, token, s)) {
    hooks_log (h, HERALD_LOG_WARNING, "email: mailgun webhook with an "
               "invalid signature refused");
    hooks_respond (resp, 403, "signature: invalid\n");
    goto out;
  }
  errno = 0;
  t = (int64_t) strtoll (ts, &end, 10);
  if (errno || end == ts || *end || t < now - HOOKS_MAX_SKEW
      || t > now + HOOKS_MAX_SKEW) {
    hooks_log (h, HERALD_LOG_WARNING, "email: mailgun webhook with a stale "
               "timestamp refused");
    hooks_respond (resp, 403, "signature.timestamp: more than %d s from "
                   "now\n", HOOKS_MAX_SKEW);
    goto out;
  }
  pthread_mutex_lock (&h->mu);
  replay = hooks_token_seen (h, token, now);
  pthread_mutex_unlock (&h->mu);
  if (replay) {
    hooks_log (h, HERALD_LOG_WARNING, "email: mailgun webhook with a "
               "replayed token refused");
    hooks_respond (resp, 403, "signature.token: already used\n");
    goto out;
  }
  ed = json_object_get (j, "event-data");
  event = hooks_jstr (ed, "event");
  if (!json_is_object (ed) || !event) {
    hooks_respond (resp, 400, "event-data.event: missing\n");
    goto out;
  }
  if (!json_is_number (json_object_get (ed, "timestamp"))) {
    hooks_respond (resp, 400, "event-data.timestamp: missing, or not a "
                   "number\n");
    goto out;
  }
  at = json_number_value (json_object_get (ed, "timestamp"));
  /* 0 would be "now" to the sink, and a retry would not be a repeat. */
  if (!(at >= 1 && at < 1e11)) {
    hooks_respond (resp, 400, "event-data.timestamp: %g is no time\n", at);
    goto out;
  }
  memset (&e, 0, sizeof e);
  sev = hooks_jstr (ed, "severity");
  if (strcmp (event, "failed") == 0) {
    if (sev && strcmp (sev, "permanent") == 0)
      e.type = "bounced";
    else if (sev && strcmp (sev, "temporary") == 0) {
      /* Mailgun reports a temporary failure at each attempt it makes
       * again: the message counts once towards soft_limit, at its first,
       * as the one DSN an MTA sends when it gives up would. */
      json_t *n = json_object_get (json_object_get (ed, "delivery-status"),
                                   "attempt-no");
      if (json_is_integer (n) && json_integer_value (n) > 1) {
        hooks_token_add (h, token, now);
        hooks_respond (resp, 200, "ignored: attempt %lld of a message whose "
                       "first temporary failure counted\n",
                       (long long) json_integer_value (n));
        goto out;
      }
      e.type = "soft_bounced";
    }
    else {
      hooks_respond (resp, 400, "event-data.severity: '%s' is not "
                     "permanent or temporary\n", sev ? sev : "");
      goto out;
    }
  } else if (strcmp (event, "complained") == 0)
    e.type = "complained";
  else if (strcmp (event, "delivered") == 0)
    e.type = "delivered";
  else if (strcmp (event, "opened") == 0)
    e.type = "opened";
  else if (strcmp (event, "clicked") == 0)
    e.type = "clicked";
  else if (strcmp (event, "unsubscribed") == 0)
    e.type = "unsubscribed";
  if (!e.type) {
    /* accepted, rejected, stored...: nothing Herald records. */
    hooks_token_add (h, token, now);
    hooks_respond (resp, 200, "ignored\n");
    goto out;
  }
  e.address = hooks_jstr (ed, "recipient");
  if (!e.address) {
    hooks_respond (resp, 400, "event-data.recipient: missing\n");
    goto out;
  }
  e.at = (int64_t) at;
  e.verp = hooks_jstr (json_object_get (ed, "envelope"), "sender");
  msg = json_object_get (json_object_get (ed, "message"), "headers");
  e.message_id = hooks_jstr (msg, "message-id");
  e.provider_id = hooks_jstr (ed, "id");
  detail = json_object ();
  json_object_set_new (detail, "event", json_string (event));
  if (sev)
    json_object_set_new (detail, "severity", json_string (sev));
  if ((s = hooks_jstr (ed, "reason")))
    json_object_set_new (detail, "reason", json_string (s));
  ds = json_object_get (ed, "delivery-status");
  if ((s = hooks_jstr (ds, "enhanced-code")) && *s)
    json_object_set_new (detail, "status", json_string (s));
  else if (json_is_integer (json_object_get (ds, "code")))
    json_object_set (detail, "status", json_object_get (ds, "code"));
  if ((s = hooks_jstr (ds, "description")) && *s)
    json_object_set_new (detail, "diagnostic", json_string (s));
  else if ((s = hooks_jstr (ds, "message")) && *s)
    json_object_set_new (detail, "diagnostic", json_string (s));
  if ((s = hooks_jstr (ed, "url")))
    json_object_set_new (detail, "url", json_string (s));
  e.detail = detail;
  if (hooks_emit (h, sink, "mailgun webhook", &e) < 0) {
    hooks_respond (resp, 503, "could not record the event; try again\n");
    goto out;
  }
  /* Only a callback taken is remembered: one the store failed on comes
   * back, and must not be refused as a replay. */
  hooks_token_add (h, token, now);
  hooks_respond (resp, 200, "ok\n");
out:
  json_decref (detail);
  json_decref (j);
  return 0;
}

/* ---- Postmark --------------------------------------------------------- */

/* Whether AUTH is "Basic BASE64(user:password)" with the configured
 * pair (RFC 7617; the scheme in any case, RFC 7235 section 2.1),
 * compared in constant time. */
static int
hooks_basic_ok (struct email_hooks *h, const char *auth)
{
  unsigned char *dec = NULL;
  size_t n = 0, want = strlen (h->postmark_auth);
  int ok;

  if (!auth || strncasecmp (auth, "Basic ", 6) != 0)
    return 0;
  for (auth += 6; *auth == ' '; auth++)
    ;
  if (hooks_base64 (auth, &dec, &n) < 0)
    return 0;
  ok = n == want && CRYPTO_memcmp (dec, h->postmark_auth, n) == 0;
  OPENSSL_cleanse (dec, n);
  free (dec);
  return ok;
}

static int
hooks_postmark (struct email_hooks *h, const struct herald_request *req,
                const struct herald_sink *sink, struct herald_response *resp)
{
  json_t *j = NULL, *detail = NULL;
  const char *rt, *type, *when, *whenkey, *s;
  struct hooks_event e;

  if (!h->postmark_auth)
    return hooks_respond (resp, 404, "postmark webhooks are off: set "
                          "postmark_username and postmark_password\n");
  if (!hooks_basic_ok (h, hooks_header (req, "Authorization"))) {
    hooks_log (h, HERALD_LOG_WARNING, "email: postmark webhook without the "
               "configured Basic credentials refused");
    return hooks_respond (resp, 401, "Authorization: the Basic credentials "
                          "of postmark_username and postmark_password are "
                          "needed\n");
  }
  if (hooks_parse (req, resp, "Postmark webhook", &j) < 0)
    return 0;
  rt = hooks_jstr (j, "RecordType");
  if (!json_is_object (j) || !rt) {
    hooks_respond (resp, 400, "RecordType: missing\n");
    goto out;
  }
  memset (&e, 0, sizeof e);
  e.address = hooks_jstr (j, "Recipient");
  whenkey = "ReceivedAt";
  type = hooks_jstr (j, "Type");
  if (strcmp (rt, "Bounce") == 0 || strcmp (rt, "SpamComplaint") == 0) {
    e.address = hooks_jstr (j, "Email");
    whenkey = "BouncedAt";
    if (!type) {
      hooks_respond (resp, 400, "Type: missing\n");
      goto out;
    }
    /* Postmark's bounce types: the permanent ones, the transient ones
     * that still failed the message, and complaints.  Transient (a
     * delay), AutoResponder, Subscribe... are not bounces. */
    if (strcmp (type, "HardBounce") == 0
        || strcmp (type, "BadEmailAddress") == 0)
      e.type = "bounced";
    else if (strcmp (type, "SoftBounce") == 0
             || strcmp (type, "DnsError") == 0)
      e.type = "soft_bounced";
    else if (strcmp (type, "SpamComplaint") == 0)
      e.type = "complained";
  } else if (strcmp (rt, "Delivery") == 0) {
    e.type = "delivered";
    whenkey = "DeliveredAt";
  } else if (strcmp (rt, "Open") == 0)
    e.type = "opened";
  else if (strcmp (rt, "Click") == 0)
    e.type = "clicked";
  else if (strcmp (rt, "SubscriptionChange") == 0) {
    json_t *sup = json_object_get (j, "SuppressSending");
    const char *why = hooks_jstr (j, "SuppressionReason");
    whenkey = "ChangedAt";
    if (!json_is_boolean (sup)) {
      hooks_respond (resp, 400, "SuppressSending: missing, or not true or "
                     "false\n");
      goto out;
    }
    /* A suppression for a bounce or a complaint comes with its own Bounce
     * or SpamComplaint callback: only the recipient's own choice counts. */
    if (json_is_true (sup) && why && strcmp (why, "ManualSuppression") == 0)
      e.type = "unsubscribed";
    else if (json_is_false (sup))
      e.type = "resubscribed";
  }
  if (!e.type) {
    hooks_respond (resp, 200, "ignored\n");
    goto out;
  }
  if (!e.address) {
    hooks_respond (resp, 400, "%s: missing\n",
                   strcmp (whenkey, "BouncedAt") == 0 ? "Email" : "Recipient");
    goto out;
  }
  when = hooks_jstr (j, whenkey);
  if (hooks_rfc3339 (when, &e.at) < 0) {
    hooks_respond (resp, 400, "%s: missing, or not an RFC 3339 time\n",
                   whenkey);
    goto out;
  }
  e.provider_id = hooks_jstr (j, "MessageID");
  detail = json_object ();
  json_object_set_new (detail, "record_type", json_string (rt));
  if (type)
    json_object_set_new (detail, "type", json_string (type));
  if ((s = hooks_jstr (j, "Description")))
    json_object_set_new (detail, "description", json_string (s));
  if ((s = hooks_jstr (j, "Details")) && *s)
    json_object_set_new (detail, "diagnostic", json_string (s));
  if ((s = hooks_jstr (j, "OriginalLink")))
    json_object_set_new (detail, "url", json_string (s));
  e.detail = detail;
  if (hooks_emit (h, sink, "postmark webhook", &e) < 0)
    hooks_respond (resp, 503, "could not record the event; try again\n");
  else
    hooks_respond (resp, 200, "ok\n");
out:
  json_decref (detail);
  json_decref (j);
  return 0;
}

/* ---- Amazon SES through SNS ------------------------------------------- */

struct hooks_buf {
  char *s;
  size_t len;
  int over;
};

static size_t
hooks_write (char *p, size_t size, size_t n, void *data)
{
  struct hooks_buf *b = data;
  size_t k = size * n;

  if (b->len + k > HOOKS_FETCH_MAX) {
    b->over = 1;
    return 0;
  }
  b->s = realloc (b->s, b->len + k + 1);
  if (!b->s)
    abort ();
  memcpy (b->s + b->len, p, k);
  b->len += k;
  b->s[b->len] = '\0';
  return k;
}

/* Whether URL is one the SNS endpoint may make us fetch: https, no user
 * name, on sns.REGION.amazonaws.com (no port), or on exactly the
 * configured ses_cert_host (host[:port], for tests).  AWS's own advice
 * ("Verifying the signatures of Amazon SNS messages"): never fetch a
 * certificate from anywhere else, or anyone can sign. */
static int
hooks_sns_url_ok (struct email_hooks *h, const char *url)
{
  const char *host, *end, *p;
  size_t n;

  if (!url || strncmp (url, "https://", 8) != 0)
    return 0;
  host = url + 8;
  end = host + strcspn (host, "/?#");
  if (*end != '/')
    return 0;
  n = (size_t) (end - host);
  if (memchr (host, '@', n) || memchr (host, '\\', n))
    return 0;
  if (h->ses_cert_host && strlen (h->ses_cert_host) == n
      && strncasecmp (host, h->ses_cert_host, n) == 0)
    return 1;
  if (n < 4 + 1 + 14 || strncasecmp (host, "sns.", 4) != 0
      || strncasecmp (end - 14, ".amazonaws.com", 14) != 0)
    return 0;
  for (p = host + 4; p < end - 14; p++)
    if (!(isalnum ((unsigned char) *p) || *p == '-'))
      return 0;
  return 1;
}

/* GET URL (already checked) with TLS verification, at most
 * HOOKS_FETCH_MAX bytes, no redirects, into *B.  0 on a 2xx, or -1 with
 * why in ERR. */
static int
hooks_fetch (struct email_hooks *h, const char *url, struct hooks_buf *b,
             char *err, size_t errlen)
{
  char cerr[CURL_ERROR_SIZE] = "";
  CURL *c = curl_easy_init ();
  long code = 0;
  CURLcode rc;

  if (!c) {
    snprintf (err, errlen, "curl_easy_init failed");
    return -1;
  }
  curl_easy_setopt (c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "https");
#else
  curl_easy_setopt (c, CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTPS);
#endif
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (h->ses_ca_file)
    curl_easy_setopt (c, CURLOPT_CAINFO, h->ses_ca_file);
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, HOOKS_FETCH_TIMEOUT_MS);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, hooks_write);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, (void *) b);
  curl_easy_setopt (c, CURLOPT_ERRORBUFFER, cerr);
  rc = curl_easy_perform (c);
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup (c);
  if (rc != CURLE_OK) {
    snprintf (err, errlen, "%s", b->over ? "answer too big"
                                         : cerr[0] ? cerr
                                         : curl_easy_strerror (rc));
    return -1;
  }
  if (code / 100 != 2) {
    snprintf (err, errlen, "HTTP status %ld", code);
    return -1;
  }
  return 0;
}

/* The public key of the certificate at URL (checked), from the cache or
 * fetched; a new reference the caller frees.  NULL with why in ERR. */
static EVP_PKEY *
hooks_sns_key (struct email_hooks *h, const char *url, char *err,
               size_t errlen)
{
  struct hooks_buf b = { NULL, 0, 0 };
  EVP_PKEY *key = NULL;
  X509 *x = NULL;
  BIO *bio;
  size_t i, victim = 0;

  pthread_mutex_lock (&h->mu);
  for (i = 0; i < HOOKS_CERT_CACHE; i++)
    if (h->certs[i].url && strcmp (h->certs[i].url, url) == 0) {
      h->certs[i].used = ++h->cert_clock;
      key = h->certs[i].key;
      EVP_PKEY_up_ref (key);
      pthread_mutex_unlock (&h->mu);
      return key;
    }
  pthread_mutex_unlock (&h->mu);
  if (hooks_fetch (h, url, &b, err, errlen) < 0)
    goto out;
  bio = BIO_new_mem_buf (b.s, (int) b.len);
  x = bio ? PEM_read_bio_X509 (bio, NULL, NULL, NULL) : NULL;
  BIO_free (bio);
  if (!x || !(key = X509_get_pubkey (x))) {
    snprintf (err, errlen, "not a PEM certificate");
    goto out;
  }
  pthread_mutex_lock (&h->mu);
  for (i = 0; i < HOOKS_CERT_CACHE; i++)
    if (h->certs[i].used < h->certs[victim].used)
      victim = i;
  free (h->certs[victim].url);
  EVP_PKEY_free (h->certs[victim].key);
  h->certs[victim].url = hooks_strdup (url);
  h->certs[victim].key = key;
  h->certs[victim].used = ++h->cert_clock;
  EVP_PKEY_up_ref (key);
  pthread_mutex_unlock (&h->mu);
out:
  X509_free (x);
  free (b.s);
  return key;
}

/* The string SNS signs (its "Verifying the signatures of Amazon SNS
 * messages" page): "Name\nvalue\n" for each field of the message's type,
 * in byte order of the names; Subject only when present. */
static char *
hooks_sns_canonical (json_t *j, const char *type, const char **missing_r)
{
  static const char *const notif[] = { "Message", "MessageId", "Subject",
                                       "Timestamp", "TopicArn", "Type",
                                       NULL };
  static const char *const sub[] = { "Message", "MessageId", "SubscribeURL",
                                     "Timestamp", "Token", "TopicArn",
                                     "Type", NULL };
  const char *const *names = strcmp (type, "Notification") == 0 ? notif : sub;
  size_t i, len = 0;
  char *s = NULL;

  for (i = 0; names[i]; i++) {
    const char *v = hooks_jstr (j, names[i]);
    size_t nl = strlen (names[i]), vl;
    if (!v) {
      if (strcmp (names[i], "Subject") == 0)
        continue;
      *missing_r = names[i];
      free (s);
      return NULL;
    }
    vl = strlen (v);
    s = realloc (s, len + nl + vl + 3);
    if (!s)
      abort ();
    memcpy (s + len, names[i], nl);
    s[len + nl] = '\n';
    memcpy (s + len + nl + 1, v, vl);
    s[len + nl + 1 + vl] = '\n';
    len += nl + vl + 2;
    s[len] = '\0';
  }
  return s;
}

/* SNS's signature of J: 1 good, 0 bad (with why in ERR), -1 when the
 * certificate could not be had (a 5xx: SNS tries again). */
static int
hooks_sns_verify (struct email_hooks *h, json_t *j, const char *type,
                  struct herald_response *resp)
{
  const char *ver = hooks_jstr (j, "SignatureVersion");
  const char *sig64 = hooks_jstr (j, "Signature");
  const char *url = hooks_jstr (j, "SigningCertURL");
  const char *missing = NULL;
  unsigned char *sig = NULL;
  size_t siglen = 0;
  char *canon = NULL, err[256];
  const EVP_MD *md;
  EVP_PKEY *key = NULL;
  EVP_MD_CTX *ctx = NULL;
  int r = 0;

  if (!ver || !sig64 || !url) {
    hooks_respond (resp, 401, "%s: missing\n", !ver ? "SignatureVersion"
                   : !sig64 ? "Signature" : "SigningCertURL");
    return 0;
  }
  if (strcmp (ver, "1") == 0)
    md = EVP_sha1 ();
  else if (strcmp (ver, "2") == 0)
    md = EVP_sha256 ();
  else {
    hooks_respond (resp, 403, "SignatureVersion: '%s' is not 1 or 2\n", ver);
    return 0;
  }
  if (!hooks_sns_url_ok (h, url)) {
    hooks_log (h, HERALD_LOG_WARNING, "email: ses notification refused: its "
               "SigningCertURL is not https on sns.REGION.amazonaws.com");
    hooks_respond (resp, 403, "SigningCertURL: not https on "
                   "sns.REGION.amazonaws.com\n");
    return 0;
  }
  if (!(canon = hooks_sns_canonical (j, type, &missing))) {
    hooks_respond (resp, 400, "%s: missing\n", missing);
    return 0;
  }
  if (hooks_base64 (sig64, &sig, &siglen) < 0) {
    hooks_respond (resp, 403, "Signature: not base64\n");
    goto out;
  }
  if (!(key = hooks_sns_key (h, url, err, sizeof err))) {
    hooks_log (h, HERALD_LOG_WARNING, "email: ses: could not get the SNS "
               "certificate: %s", err);
    hooks_respond (resp, 503, "SigningCertURL: could not get the "
                   "certificate: %s\n", err);
    r = -1;
    goto out;
  }
  ctx = EVP_MD_CTX_new ();
  if (ctx && EVP_DigestVerifyInit (ctx, NULL, md, NULL, key) == 1
      && EVP_DigestVerify (ctx, sig, siglen, (const unsigned char *) canon,
                           strlen (canon)) == 1)
    r = 1;
  else {
    hooks_log (h, HERALD_LOG_WARNING, "email: ses notification with an "
               "invalid SNS signature refused");
    hooks_respond (resp, 403, "Signature: invalid\n");
  }
out:
  EVP_MD_CTX_free (ctx);
  EVP_PKEY_free (key);
  free (sig);
  free (canon);
  return r;
}

static int
hooks_ses_topic_ok (struct email_hooks *h, const char *arn)
{
  size_t i;

  for (i = 0; arn && h->ses_topics[i]; i++)
    if (strcmp (h->ses_topics[i], arn) == 0)
      return 1;
  return 0;
}

/* The value of header NAME in SES's mail.headers list, or NULL. */
static const char *
hooks_ses_header (json_t *mail, const char *name)
{
  json_t *v;
  size_t i;

  json_array_foreach (json_object_get (mail, "headers"), i, v) {
    const char *n = hooks_jstr (v, "name");
    if (n && strcasecmp (n, name) == 0)
      return hooks_jstr (v, "value");
  }
  return NULL;
}

/* The events of one SES notification M (the SNS Message, parsed). */
static int
hooks_ses_events (struct email_hooks *h, const struct herald_sink *sink,
                  json_t *m, struct herald_response *resp)
{
  json_t *mail = json_object_get (m, "mail"), *what = NULL, *list = NULL;
  json_t *v, *detail;
  const char *nt = hooks_jstr (m, "notificationType"), *type = NULL;
  const char *listkey = NULL, *s, *sub = NULL, *wk;
  struct hooks_event e;
  char rp[VERP_ADDRESS_MAX];
  size_t i;
  int64_t at;

  if (!nt)
    nt = hooks_jstr (m, "eventType");
  if (!json_is_object (m) || !nt)
    return hooks_respond (resp, 400, "Message: no notificationType or "
                          "eventType\n");
  if (strcmp (nt, "Bounce") == 0) {
    what = json_object_get (m, "bounce");
    s = hooks_jstr (what, "bounceType");
    sub = hooks_jstr (what, "bounceSubType");
    listkey = "bouncedRecipients";
    /* Undetermined: SES could not tell; nothing is guessed. */
    if (s && strcmp (s, "Permanent") == 0)
      type = "bounced";
    else if (s && strcmp (s, "Transient") == 0)
      type = "soft_bounced";
    else if (!s)
      return hooks_respond (resp, 400, "Message: bounce.bounceType: "
                            "missing\n");
  } else if (strcmp (nt, "Complaint") == 0) {
    what = json_object_get (m, "complaint");
    s = hooks_jstr (what, "complaintFeedbackType");
    sub = s;
    listkey = "complainedRecipients";
    if (!s || strcmp (s, "not-spam") != 0)
      type = "complained";
  } else if (strcmp (nt, "Delivery") == 0) {
    what = json_object_get (m, "delivery");
    listkey = "recipients";
    type = "delivered";
  }
  if (!type)
    return hooks_respond (resp, 200, "ignored\n");
  wk = strcmp (nt, "Bounce") == 0 ? "bounce"
       : strcmp (nt, "Complaint") == 0 ? "complaint" : "delivery";
  if (!json_is_object (what))
    return hooks_respond (resp, 400, "Message: %s: missing\n", wk);
  if (hooks_rfc3339 (hooks_jstr (what, "timestamp"), &at) < 0)
    return hooks_respond (resp, 400, "Message: %s.timestamp: missing, or "
                          "not an ISO 8601 time\n", wk);
  list = json_object_get (what, listkey);
  if (!json_is_array (list) || json_array_size (list) == 0)
    return hooks_respond (resp, 400, "Message: %s: missing, or empty\n",
                          listkey);
  memset (&e, 0, sizeof e);
  e.type = type;
  e.at = at;
  /* The envelope sender: SES's mail.source is the MAIL FROM it was given
   * (our VERP address); else a Return-Path among the headers. */
  e.verp = hooks_jstr (mail, "source");
  if ((!e.verp || strncasecmp (e.verp, VERP_PREFIX, 2) != 0)
      && (s = hooks_ses_header (mail, "Return-Path"))) {
    size_t n;
    s += strspn (s, " <");
    n = strcspn (s, "> ");
    if (n < sizeof rp) {
      memcpy (rp, s, n);
      rp[n] = '\0';
      e.verp = rp;
    }
  }
  e.message_id = hooks_jstr (json_object_get (mail, "commonHeaders"),
                             "messageId");
  if (!e.message_id)
    e.message_id = hooks_ses_header (mail, "Message-ID");
  e.provider_id = hooks_jstr (mail, "messageId");
  /* All checked first: a bad recipient refuses the whole notification,
   * nothing recorded. */
  json_array_foreach (list, i, v)
    if (!json_is_string (v) && !hooks_jstr (v, "emailAddress"))
      return hooks_respond (resp, 400, "Message: %s.%s[%zu]: no "
                            "emailAddress\n", wk, listkey, i);
  json_array_foreach (list, i, v) {
    e.address = json_is_string (v) ? json_string_value (v)
                                   : hooks_jstr (v, "emailAddress");
    detail = json_object ();
    json_object_set_new (detail, "notification", json_string (nt));
    if (sub)
      json_object_set_new (detail, strcmp (nt, "Bounce") == 0
                           ? "bounce_subtype" : "feedback_type",
                           json_string (sub));
    if ((s = hooks_jstr (v, "status")))
      json_object_set_new (detail, "status", json_string (s));
    if ((s = hooks_jstr (v, "diagnosticCode")))
      json_object_set_new (detail, "diagnostic", json_string (s));
    if ((s = hooks_jstr (what, "smtpResponse")))
      json_object_set_new (detail, "diagnostic", json_string (s));
    e.detail = detail;
    if (hooks_emit (h, sink, "ses notification", &e) < 0) {
      json_decref (detail);
      return hooks_respond (resp, 503, "could not record the events; try "
                            "again\n");
    }
    json_decref (detail);
  }
  return hooks_respond (resp, 200, "ok\n");
}

static int
hooks_ses (struct email_hooks *h, const struct herald_request *req,
           const struct herald_sink *sink, struct herald_response *resp)
{
  json_t *j = NULL, *m = NULL;
  const char *type, *topic;
  json_error_t je;
  int v;

  if (!h->ses_topics)
    return hooks_respond (resp, 404, "ses notifications are off: set "
                          "ses_topic_arn\n");
  if (hooks_parse (req, resp, "SNS message", &j) < 0)
    return 0;
  type = hooks_jstr (j, "Type");
  topic = hooks_jstr (j, "TopicArn");
  if (!json_is_object (j) || !type) {
    hooks_respond (resp, 400, "Type: missing\n");
    goto out;
  }
  if (strcmp (type, "Notification") != 0
      && strcmp (type, "SubscriptionConfirmation") != 0
      && strcmp (type, "UnsubscribeConfirmation") != 0) {
    hooks_respond (resp, 400, "Type: '%s' is not Notification, "
                   "SubscriptionConfirmation or UnsubscribeConfirmation\n",
                   type);
    goto out;
  }
  /* A genuine SNS message of someone else's topic is signed too: only the
   * topics named in ses_topic_arn are believed. */
  if (!hooks_ses_topic_ok (h, topic)) {
    hooks_log (h, HERALD_LOG_WARNING, "email: ses: a message of a topic "
               "not in ses_topic_arn refused");
    hooks_respond (resp, 403, "TopicArn: not one of ses_topic_arn\n");
    goto out;
  }
  if ((v = hooks_sns_verify (h, j, type, resp)) <= 0)
    goto out;
  if (strcmp (type, "SubscriptionConfirmation") == 0) {
    /* Confirm by fetching SubscribeURL, only on SNS's own host (or the
     * configured test host): the message is signed and of our topic, but
     * the URL is fetched from here, so it must never point elsewhere. */
    const char *su = hooks_jstr (j, "SubscribeURL");
    struct hooks_buf b = { NULL, 0, 0 };
    char err[256];
    if (!hooks_sns_url_ok (h, su)) {
      hooks_respond (resp, 403, "SubscribeURL: not https on "
                     "sns.REGION.amazonaws.com\n");
      goto out;
    }
    if (hooks_fetch (h, su, &b, err, sizeof err) < 0) {
      free (b.s);
      hooks_log (h, HERALD_LOG_WARNING, "email: ses: confirming the "
                 "subscription to %s failed: %s", topic, err);
      hooks_respond (resp, 503, "could not confirm the subscription: %s\n",
                     err);
      goto out;
    }
    free (b.s);
    hooks_log (h, HERALD_LOG_INFO, "email: ses: subscription to %s "
               "confirmed", topic);
    hooks_respond (resp, 200, "subscription confirmed\n");
    goto out;
  }
  if (strcmp (type, "UnsubscribeConfirmation") == 0) {
    hooks_log (h, HERALD_LOG_WARNING, "email: ses: the subscription to %s "
               "was removed", topic);
    hooks_respond (resp, 200, "ok\n");
    goto out;
  }
  m = json_loads (hooks_jstr (j, "Message"), 0, &je);
  if (!m) {
    hooks_respond (resp, 400, "Message: not JSON: %s\n", je.text);
    goto out;
  }
  hooks_ses_events (h, sink, m, resp);
out:
  json_decref (m);
  json_decref (j);
  return 0;
}

/* ---- SendGrid --------------------------------------------------------- */

static int
hooks_sendgrid (struct email_hooks *h, const struct herald_request *req,
                const struct herald_sink *sink, struct herald_response *resp)
{
  const char *sig64 = hooks_header (req,
                                    "X-Twilio-Email-Event-Webhook-Signature");
  const char *ts = hooks_header (req,
                                 "X-Twilio-Email-Event-Webhook-Timestamp");
  unsigned char *sig = NULL;
  size_t siglen = 0, i;
  EVP_MD_CTX *ctx = NULL;
  json_t *j = NULL, *v, *detail = NULL;
  int ok = 0;

  if (!h->sendgrid_key)
    return hooks_respond (resp, 404, "sendgrid webhooks are off: set "
                          "sendgrid_public_key\n");
  if (!sig64 || !ts || !*sig64 || !*ts)
    return hooks_respond (resp, 401, "X-Twilio-Email-Event-Webhook-%s: "
                          "missing\n", !sig64 || !*sig64 ? "Signature"
                                                         : "Timestamp");
  /* SendGrid's "Event Webhook security": ECDSA (P-256, SHA-256, DER,
   * base64) over the timestamp header followed by the raw body. */
  ctx = EVP_MD_CTX_new ();
  if (hooks_base64 (sig64, &sig, &siglen) == 0 && ctx
      && EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL,
                               h->sendgrid_key) == 1
      && EVP_DigestVerifyUpdate (ctx, ts, strlen (ts)) == 1
      && EVP_DigestVerifyUpdate (ctx, req->body ? req->body : "",
                                 req->body_len) == 1
      && EVP_DigestVerifyFinal (ctx, sig, siglen) == 1)
    ok = 1;
  EVP_MD_CTX_free (ctx);
  free (sig);
  if (!ok) {
    hooks_log (h, HERALD_LOG_WARNING, "email: sendgrid webhook with an "
               "invalid signature refused");
    return hooks_respond (resp, 403, "X-Twilio-Email-Event-Webhook-"
                          "Signature: invalid\n");
  }
  if (hooks_parse (req, resp, "SendGrid events", &j) < 0)
    return 0;
  if (!json_is_array (j)) {
    hooks_respond (resp, 400, "malformed SendGrid events: not a JSON "
                   "array\n");
    goto out;
  }
  /* All checked first: one bad event refuses the batch, nothing
   * recorded. */
  json_array_foreach (j, i, v) {
    if (!hooks_jstr (v, "event") || !hooks_jstr (v, "email")
        || !json_is_integer (json_object_get (v, "timestamp"))) {
      hooks_respond (resp, 400, "event %zu: %s: missing\n", i,
                     !hooks_jstr (v, "event") ? "event"
                     : !hooks_jstr (v, "email") ? "email" : "timestamp");
      goto out;
    }
    /* 0 would be "now" to the sink, and a retry would not be a repeat. */
    if (json_integer_value (json_object_get (v, "timestamp")) < 1) {
      hooks_respond (resp, 400, "event %zu: timestamp: not a time\n", i);
      goto out;
    }
  }
  json_array_foreach (j, i, v) {
    const char *ev = hooks_jstr (v, "event"), *t = hooks_jstr (v, "type");
    const char *s;
    struct hooks_event e;
    memset (&e, 0, sizeof e);
    if (strcmp (ev, "bounce") == 0)
      e.type = t && strcmp (t, "blocked") == 0 ? "soft_bounced" : "bounced";
    else if (strcmp (ev, "dropped") == 0)
      e.type = "failed";
    else if (strcmp (ev, "spamreport") == 0)
      e.type = "complained";
    else if (strcmp (ev, "delivered") == 0)
      e.type = "delivered";
    else if (strcmp (ev, "open") == 0)
      e.type = "opened";
    else if (strcmp (ev, "click") == 0)
      e.type = "clicked";
    else if (strcmp (ev, "unsubscribe") == 0
             || strcmp (ev, "group_unsubscribe") == 0)
      e.type = "unsubscribed";
    if (!e.type)
      continue;                 /* processed, deferred...: not recorded */
    e.address = hooks_jstr (v, "email");
    e.at = (int64_t) json_integer_value (json_object_get (v, "timestamp"));
    e.message_id = hooks_jstr (v, "smtp-id");
    e.provider_id = hooks_jstr (v, "sg_message_id");
    detail = json_object ();
    json_object_set_new (detail, "event", json_string (ev));
    if (t)
      json_object_set_new (detail, "type", json_string (t));
    if ((s = hooks_jstr (v, "status")))
      json_object_set_new (detail, "status", json_string (s));
    if ((s = hooks_jstr (v, "reason")))
      json_object_set_new (detail, "diagnostic", json_string (s));
    if ((s = hooks_jstr (v, "url")))
      json_object_set_new (detail, "url", json_string (s));
    e.detail = detail;
    if (hooks_emit (h, sink, "sendgrid webhook", &e) < 0) {
      hooks_respond (resp, 503, "could not record the events; try again\n");
      goto out;
    }
    json_decref (detail);
    detail = NULL;
  }
  hooks_respond (resp, 200, "ok\n");
out:
  json_decref (detail);
  json_decref (j);
  return 0;
}

/* ---- the entry -------------------------------------------------------- */

int
email_hooks_inbound (struct email_hooks *h, const struct herald_request *req,
                     const struct herald_sink *sink,
                     struct herald_response *resp)
{
  const char *p = req->path ? req->path : "/";

  if (strcasecmp (req->method, "POST") != 0)
    return hooks_respond (resp, 405, "POST only\n");
  if (strcmp (p, "/mailgun") == 0)
    return hooks_mailgun (h, req, sink, resp);
  if (strcmp (p, "/postmark") == 0)
    return hooks_postmark (h, req, sink, resp);
  if (strcmp (p, "/ses") == 0)
    return hooks_ses (h, req, sink, resp);
  if (strcmp (p, "/sendgrid") == 0)
    return hooks_sendgrid (h, req, sink, resp);
  return hooks_respond (resp, 404, "no such webhook: the email channel "
                        "takes /mailgun, /postmark, /ses and /sendgrid\n");
}

/* ---- open / close ----------------------------------------------------- */

static const char *
hooks_get (const struct herald_host *host, const char *key)
{
  const char *v = host->config_get ? host->config_get (host->data, key)
                                   : NULL;
  return v && *v ? v : NULL;
}

static void
hooks_error (const struct herald_host *host, const char *key, char *err,
             size_t errlen, const char *msg)
{
  int line = host->config_line ? host->config_line (host->data, key) : 0;

  snprintf (err, errlen, "%s:%d: [channel.%s] %s: %s",
            host->config_file ? host->config_file : "(config)", line,
            host->channel_name ? host->channel_name : "?", key, msg);
}

static pthread_once_t hooks_curl_once = PTHREAD_ONCE_INIT;
static CURLcode hooks_curl_rc;

static void
hooks_curl_init (void)
{
  /* libcurl counts the calls: harmless when another part of the process
   * made it; never cleaned up, others may still need it. */
  hooks_curl_rc = curl_global_init (CURL_GLOBAL_DEFAULT);
}

void
email_hooks_free (struct email_hooks *h)
{
  size_t i;

  if (!h)
    return;
  if (h->mailgun_on)
    hmac256_free (&h->mailgun);
  if (h->verp_on)
    verp_key_free (&h->verp);
  for (i = 0; i < h->n_seen; i++)
    free (h->seen[i].token);
  free (h->seen);
  if (h->postmark_auth) {
    OPENSSL_cleanse (h->postmark_auth, strlen (h->postmark_auth));
    free (h->postmark_auth);
  }
  for (i = 0; h->ses_topics && h->ses_topics[i]; i++)
    free (h->ses_topics[i]);
  free (h->ses_topics);
  free (h->ses_cert_host);
  free (h->ses_ca_file);
  for (i = 0; i < HOOKS_CERT_CACHE; i++) {
    free (h->certs[i].url);
    EVP_PKEY_free (h->certs[i].key);
  }
  EVP_PKEY_free (h->sendgrid_key);
  free (h->from_domain);
  pthread_mutex_destroy (&h->mu);
  free (h);
}

int
email_hooks_new (const struct herald_host *host, const char *from_addr,
                 struct email_hooks **hooks_r, char *err, size_t errlen)
{
  struct email_hooks *h = calloc (1, sizeof *h);
  const char *v, *u, *at = from_addr ? strrchr (from_addr, '@') : NULL;
  int r = -1;

  if (!h)
    abort ();
  pthread_mutex_init (&h->mu, NULL);
  h->host = host;
  h->from_domain = hooks_strdup (at ? at + 1 : "localhost");

  /* email_open checked them: both or neither. */
  if (hooks_get (host, "bounce_domain")
      && (v = hooks_get (host, "verp_secret"))) {
    if (verp_key_init (&h->verp, v) < 0) {
      snprintf (err, errlen, "cannot derive the VERP key (OpenSSL)");
      goto out;
    }
    h->verp_on = 1;
  }

  if ((v = hooks_get (host, "mailgun_signing_key"))) {
    if (hmac256_init (&h->mailgun, v, strlen (v)) < 0) {
      snprintf (err, errlen, "cannot key HMAC-SHA256 (OpenSSL)");
      goto out;
    }
    h->mailgun_on = 1;
  }

  u = hooks_get (host, "postmark_username");
  v = hooks_get (host, "postmark_password");
  if (!u != !v) {
    hooks_error (host, u ? "postmark_username" : "postmark_password", err,
                 errlen, u ? "set, but postmark_password is not"
                           : "set, but postmark_username is not");
    goto out;
  }
  if (u && strchr (u, ':')) {
    hooks_error (host, "postmark_username", err, errlen, "has a ':', which "
                 "HTTP Basic cannot carry (RFC 7617)");
    goto out;
  }
  if (u) {
    size_t n = strlen (u) + strlen (v) + 2;
    h->postmark_auth = malloc (n);
    if (!h->postmark_auth)
      abort ();
    snprintf (h->postmark_auth, n, "%s:%s", u, v);
  }

  if ((v = hooks_get (host, "ses_topic_arn"))) {
    size_t n = 0;
    const char *p = v;
    while (*p) {
      size_t k;
      p += strspn (p, " \t,");
      k = strcspn (p, " \t,");
      if (!k)
        break;
      if (strncmp (p, "arn:aws", 7) != 0) {
        hooks_error (host, "ses_topic_arn", err, errlen, "not a list of "
                     "topic ARNs (arn:aws:sns:REGION:ACCOUNT:NAME)");
        goto out;
      }
      h->ses_topics = realloc (h->ses_topics, (n + 2) * sizeof *h->ses_topics);
      if (!h->ses_topics)
        abort ();
      h->ses_topics[n] = strndup (p, k);
      if (!h->ses_topics[n])
        abort ();
      h->ses_topics[++n] = NULL;
      p += k;
    }
  }
  if ((v = hooks_get (host, "ses_cert_host"))) {
    if (strpbrk (v, "/@?# \t\\")) {
      hooks_error (host, "ses_cert_host", err, errlen, "not a host[:port]");
      goto out;
    }
    h->ses_cert_host = hooks_strdup (v);
  }
  if ((v = hooks_get (host, "ses_ca_file"))
      && HERALD_HAS (host, config_path) && host->config_path)
    v = host->config_path (host->data, "ses_ca_file");
  if (v)
    h->ses_ca_file = hooks_strdup (v);
  if ((h->ses_cert_host || h->ses_ca_file) && !h->ses_topics) {
    hooks_error (host, h->ses_cert_host ? "ses_cert_host" : "ses_ca_file",
                 err, errlen, "set, but ses_topic_arn is not");
    goto out;
  }
  if (h->ses_topics) {
    pthread_once (&hooks_curl_once, hooks_curl_init);
    if (hooks_curl_rc != CURLE_OK) {
      snprintf (err, errlen, "curl_global_init: %s",
                curl_easy_strerror (hooks_curl_rc));
      goto out;
    }
  }

  if ((v = hooks_get (host, "sendgrid_public_key"))) {
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t n = 0;
    if (hooks_base64 (v, &der, &n) < 0) {
      hooks_error (host, "sendgrid_public_key", err, errlen, "not base64");
      goto out;
    }
    p = der;
    h->sendgrid_key = d2i_PUBKEY (NULL, &p, (long) n);
    free (der);
    if (!h->sendgrid_key || EVP_PKEY_base_id (h->sendgrid_key) != EVP_PKEY_EC) {
      hooks_error (host, "sendgrid_public_key", err, errlen, "not the base64 "
                   "of a DER EC public key (SubjectPublicKeyInfo), as "
                   "SendGrid shows it");
      goto out;
    }
  }
  *hooks_r = h;
  h = NULL;
  r = 0;
out:
  email_hooks_free (h);
  return r;
}
