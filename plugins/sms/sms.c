/* plugins/sms/sms.c: the SMS channel plugin: Twilio's Messages API and
 * Vonage's legacy SMS API over the shared libcurl layer, plus the Twilio
 * status-callback and inbound-reply parser behind the ABI's inbound entry.
 * It never logs a credential and never acts on an unsigned callback.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <herald/plugin.h>
#include "../../lib/address.h"
#include "../http/http.h"

enum sms_provider { SMS_TWILIO, SMS_VONAGE };

/* Channel state; owns every pointer. */
struct sms_state {
  const struct herald_host *host;
  struct http_client *http;
  enum sms_provider provider;
  char *base_url;              /* no trailing slash */
  char *account_sid;           /* twilio */
  char *auth_token;            /* twilio: secret */
  char *messaging_service_sid; /* twilio, instead of from */
  char *from;
  char *api_key;               /* vonage */
  char *api_secret;            /* vonage: secret */
  char *status_callback;       /* twilio StatusCallback URL, or NULL */
  char *messages_url;          /* the provider's send URL */
};

/* A body's segment count as the handset will see it. */
struct sms_segments {
  int ucs2;                    /* 0: GSM-7, 1: UCS-2 */
  unsigned segments;
  size_t units;                /* septets or UTF-16 code units */
  size_t chars;                /* code points */
};

struct sms_item {
  struct http_req req;
  struct http_buf form;
  struct sms_segments seg;
  int skip;
};

static const char *const sms_channels[] = { "sms", NULL };
static const char *const sms_config_keys[] = {
  "provider", "base_url", "from", "account_sid", "auth_token",
  "auth_token_file", "messaging_service_sid", "status_callback", "api_key",
  "api_secret", "api_secret_file", "rate", "concurrency", "timeout_ms",
  "ca_file", NULL
};
static const char *const sms_secret_keys[] = {
  "auth_token", "api_secret", NULL
};

/* ---- Segments (3GPP TS 23.038, TS 23.040 9.2.3.24.1). ---- */

/* GSM 7-bit default alphabet (TS 23.038 6.2.1) as Unicode, and the
 * characters of its extension table that cost an escape septet too. */
static const unsigned sms_gsm_basic[] = {
  '@', 0xa3, '$', 0xa5, 0xe8, 0xe9, 0xf9, 0xec, 0xf2, 0xc7, '\n', 0xd8, 0xf8,
  '\r', 0xc5, 0xe5, 0x394, '_', 0x3a6, 0x393, 0x39b, 0x3a9, 0x3a0, 0x3a8,
  0x3a3, 0x398, 0x39e, 0xc6, 0xe6, 0xdf, 0xc9, ' ', '!', '"', '#', 0xa4, '%',
  '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', ':', ';', '<', '=', '>',
  '?', 0xa1, 0xc4, 0xd6, 0xd1, 0xdc, 0xa7, 0xbf, 0xe4, 0xf6, 0xf1, 0xfc, 0xe0,
};
static const unsigned sms_gsm_ext[] = {
  '\f', '^', '{', '}', '\\', '[', '~', ']', '|', 0x20ac,
};

/* Septets of code point c in GSM-7: 1, 2 (extension), or 0 (not GSM). */
static int
sms_gsm_septets (unsigned c)
{
  size_t i;
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
      || (c >= '0' && c <= '9'))
    return 1;
  for (i = 0; i < sizeof sms_gsm_basic / sizeof *sms_gsm_basic; i++)
    if (sms_gsm_basic[i] == c)
      return 1;
  for (i = 0; i < sizeof sms_gsm_ext / sizeof *sms_gsm_ext; i++)
    if (sms_gsm_ext[i] == c)
      return 2;
  return 0;
}

/* Decode one UTF-8 code point at s[*i]; returns it, or -1 when malformed. */
static long
sms_utf8_next (const unsigned char *s, size_t len, size_t *i)
{
  unsigned c = s[*i], n, k;
  unsigned long cp;
  if (c < 0x80) {
    (*i)++;
    return c;
  }
  if ((c & 0xe0) == 0xc0 && c >= 0xc2) { n = 1; cp = c & 0x1f; }
  else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
  else if ((c & 0xf8) == 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
  else
    return -1;
  for (k = 1; k <= n; k++) {
    if (*i + k >= len || (s[*i + k] & 0xc0) != 0x80)
      return -1;
    cp = (cp << 6) | (s[*i + k] & 0x3f);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
      || (cp >= 0xd800 && cp <= 0xdfff))
    return -1;
  *i += n + 1;
  return (long) cp;
}

/* Count segments of body.  Returns 0, or -1 when it is not UTF-8.  A long
 * message is split by the provider into parts of 153 septets (GSM-7) or 67
 * UTF-16 units (UCS-2) after the 6-byte concatenation header; an escape
 * pair or a surrogate pair is never split across parts. */
static int
sms_count_segments (const char *body, size_t len, struct sms_segments *sg)
{
  const unsigned char *s = (const unsigned char *) body;
  size_t i = 0, units = 0, seg_fill = 0;
  unsigned segs = 1;
  int ucs2 = 0;
  long cp;

  sg->chars = 0;
  while (i < len) {
    cp = sms_utf8_next (s, len, &i);
    if (cp < 0)
      return -1;
    sg->chars++;
    if (!ucs2 && sms_gsm_septets ((unsigned) cp) == 0)
      ucs2 = 1;
  }
  /* Second pass: the multipart packing of the chosen encoding. */
  for (i = 0; i < len;) {
    unsigned w;
    cp = sms_utf8_next (s, len, &i);
    w = ucs2 ? (cp > 0xffff ? 2 : 1) : (unsigned) sms_gsm_septets ((unsigned) cp);
    units += w;
    if (seg_fill + w > (ucs2 ? 67u : 153u)) {
      segs++;
      seg_fill = 0;
    }
    seg_fill += w;
  }
  if (units <= (ucs2 ? 70u : 160u))
    segs = 1;
  sg->ucs2 = ucs2;
  sg->segments = segs;
  sg->units = units;
  return 0;
}

static void
sms_detail (struct herald_result *res, const struct sms_segments *sg,
            const char *extra)
{
  snprintf (res->detail, sizeof res->detail,
            "{\"segments\":%u,\"encoding\":\"%s\"%s}", sg->segments,
            sg->ucs2 ? "UCS-2" : "GSM-7", extra ? extra : "");
}

/* ---- Open and close. ---- */

static void
sms_close (void *vs)
{
  struct sms_state *s = vs;
  if (!s)
    return;
  http_client_free (s->http);
  free (s->base_url);
  free (s->account_sid);
  http_secret_free (s->auth_token);
  free (s->messaging_service_sid);
  free (s->from);
  free (s->api_key);
  http_secret_free (s->api_secret);
  free (s->status_callback);
  free (s->messages_url);
  free (s);
}

/* Copy of key's value (NULL when absent or empty); caller frees. */
static char *
sms_conf_str (const struct herald_host *h, const char *key)
{
  const char *v = h->config_get (h->data, key);
  return v && *v ? http_strdup (v) : NULL;
}

static int
sms_require (const struct herald_host *h, const char *key, const char *v,
             const char *provider, char *err, size_t errlen)
{
  if (v)
    return 0;
  http_conf_error (h, key, err, errlen, "missing (required by provider = %s)",
                   provider);
  return -1;
}

static int
sms_open (const struct herald_host *host, void **state_r, char *err,
          size_t errlen)
{
  struct sms_state *s = http_xcalloc (1, sizeof *s);
  struct http_opts o = { .rate = 10, .concurrency = 8, .timeout_ms = 15000 };
  const char *prov = host->config_get (host->data, "provider");
  struct http_buf b;
  int cb = 1, ret = -1;
  size_t n;

  http_buf_init (&b);
  s->host = host;
  if (!prov || !*prov) {
    http_conf_error (host, "provider", err, errlen,
                     "missing (twilio or vonage)");
    goto out;
  }
  if (!strcmp (prov, "twilio"))
    s->provider = SMS_TWILIO;
  else if (!strcmp (prov, "vonage"))
    s->provider = SMS_VONAGE;
  else {
    http_conf_error (host, "provider", err, errlen,
                     "'%s' is not twilio or vonage", prov);
    goto out;
  }
  if (http_conf_common (host, &o, err, errlen) < 0)
    goto out;
  s->base_url = sms_conf_str (host, "base_url");
  if (!s->base_url)
    s->base_url = http_strdup (s->provider == SMS_TWILIO
                               ? "https://api.twilio.com"
                               : "https://rest.nexmo.com");
  if (strncmp (s->base_url, "http://", 7) && strncmp (s->base_url, "https://", 8)) {
    http_conf_error (host, "base_url", err, errlen,
                     "'%s' is not an http:// or https:// URL", s->base_url);
    goto out;
  }
  n = strlen (s->base_url);
  while (n > 0 && s->base_url[n - 1] == '/')
    s->base_url[--n] = '\0';
  s->from = sms_conf_str (host, "from");

  if (s->provider == SMS_TWILIO) {
    s->account_sid = sms_conf_str (host, "account_sid");
    s->messaging_service_sid = sms_conf_str (host, "messaging_service_sid");
    if (sms_require (host, "account_sid", s->account_sid, prov, err, errlen) < 0
        || http_conf_secret (host, "auth_token", "auth_token_file", 1,
                             &s->auth_token, err, errlen) < 0
        || http_conf_bool (host, "status_callback", 1, &cb, err, errlen) < 0)
      goto out;
    if (!s->from && !s->messaging_service_sid) {
      http_conf_error (host, "from", err, errlen,
                       "missing (give from or messaging_service_sid)");
      goto out;
    }
    if (strspn (s->account_sid, "ABCDEFabcdef0123456789") != strlen (s->account_sid)) {
      http_conf_error (host, "account_sid", err, errlen,
                       "'%s' is not an account SID (AC + hex)", s->account_sid);
      goto out;
    }
    http_buf_printf (&b, "%s/2010-04-01/Accounts/%s/Messages.json",
                     s->base_url, s->account_sid);
    /* Delivery receipts come back through herald serve's inbound route. */
    if (cb && host->tracking_base_url && *host->tracking_base_url) {
      struct http_buf u;
      http_buf_init (&u);
      http_buf_printf (&u, "%s/inbound/", host->tracking_base_url);
      http_buf_add_urlenc (&u, host->channel_name, strlen (host->channel_name));
      http_buf_adds (&u, "/status");
      s->status_callback = u.data;
    }
  } else {
    s->api_key = sms_conf_str (host, "api_key");
    if (sms_require (host, "api_key", s->api_key, prov, err, errlen) < 0
        || http_conf_secret (host, "api_secret", "api_secret_file", 1,
                             &s->api_secret, err, errlen) < 0
        || sms_require (host, "from", s->from, prov, err, errlen) < 0)
      goto out;
    http_buf_printf (&b, "%s/sms/json", s->base_url);
  }
  s->messages_url = b.data;
  http_buf_init (&b);
  s->http = http_client_new (&o, err, errlen);
  if (!s->http)
    goto out;
  ret = 0;
out:
  http_buf_free (&b);
  if (ret < 0)
    sms_close (s);
  else
    *state_r = s;
  return ret;
}

/* ---- Sending. ---- */

/* Twilio: https://www.twilio.com/docs/api/errors.  Fills res from a
 * non-transient answer. */
static void
sms_twilio_classify (const struct http_req *r, struct herald_result *res,
                     const struct sms_segments *sg)
{
  json_t *j = json_loadb (r->resp_body.data ? r->resp_body.data : "",
                          r->resp_body.len, 0, NULL);
  json_t *sid = json_object_get (j, "sid");
  long long code = json_integer_value (json_object_get (j, "code"));
  const char *msg = json_string_value (json_object_get (j, "message"));
  char ex[160];

  sms_detail (res, sg, NULL);
  if ((r->status == 200 || r->status == 201) && json_is_string (sid)) {
    http_result_sent (res, json_string_value (sid),
                      json_string_length (sid));
    goto out;
  }
  if (!msg) {
    http_excerpt (ex, sizeof ex, r->resp_body.data, r->resp_body.len, 120);
    msg = ex;
  }
  if (code == 20429) {             /* too many requests: not processed */
    http_result_set (res, HERALD_RETRY, "twilio 20429: %s", msg);
    res->retry_after_ms = http_req_retry_after_ms (r);
  } else if (code == 21610) {
    /* The recipient replied STOP: Twilio refuses every message to it from
     * this sender until START.  Reported as an invalid address so the core
     * suppresses it, with opt_out in the detail so it records an opt-out
     * (a consent change) rather than a dead number. */
    http_result_set (res, HERALD_INVALID_ADDRESS, "twilio 21610: %s", msg);
    sms_detail (res, sg, ",\"opt_out\":true,\"code\":21610");
    res->opt_out = 1;
  } else if (code == 21211 || code == 21614 || code == 21217) {
    /* Invalid To / not a mobile number / not a valid phone number. */
    http_result_set (res, HERALD_INVALID_ADDRESS, "twilio %lld: %s", code, msg);
  } else if (r->status == 401 || r->status == 403 || code == 20003
             || code == 21212 || code == 21606 || code == 21659) {
    /* Credentials, or a From this account may not use. */
    http_result_set (res, HERALD_CHANNEL_ERROR, "twilio %lld (HTTP %ld): %s",
                     code, r->status, msg);
  } else
    http_result_set (res, HERALD_REJECTED, "twilio %lld (HTTP %ld): %s",
                     code, r->status, msg);
out:
  json_decref (j);
}

/* Vonage legacy SMS answers HTTP 200 with a status per part:
 * https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms */
static void
sms_vonage_classify (const struct http_req *r, struct herald_result *res,
                     const struct sms_segments *sg)
{
  json_t *j = json_loadb (r->resp_body.data ? r->resp_body.data : "",
                          r->resp_body.len, 0, NULL);
  json_t *parts = json_object_get (j, "messages"), *p, *bad = NULL;
  const char *id = NULL, *st, *text;
  size_t i;
  long code;
  char ex[160];

  sms_detail (res, sg, NULL);
  if (r->status != 200 || !json_is_array (parts) || !json_array_size (parts)) {
    http_excerpt (ex, sizeof ex, r->resp_body.data, r->resp_body.len, 120);
    http_result_set (res, r->status == 401 ? HERALD_CHANNEL_ERROR
                                           : HERALD_REJECTED,
                     "vonage: HTTP %ld: %s", r->status, ex);
    goto out;
  }
  json_array_foreach (parts, i, p) {
    st = json_string_value (json_object_get (p, "status"));
    if (st && !strcmp (st, "0")) {
      if (!id)
        id = json_string_value (json_object_get (p, "message-id"));
    } else if (!bad)
      bad = p;
  }
  if (!bad && id) {
    http_result_sent (res, id, strlen (id));
    goto out;
  }
  if (!bad)
    bad = json_array_get (parts, 0);
  st = json_string_value (json_object_get (bad, "status"));
  text = json_string_value (json_object_get (bad, "error-text"));
  if (!text)
    text = "no error-text";
  code = st ? strtol (st, NULL, 10) : -1;
  switch (code) {
  case 1: case 5: case 10:   /* throttled, internal error, too many binds */
    http_result_set (res, HERALD_RETRY, "vonage %ld: %s", code, text);
    res->retry_after_ms = code == 1 ? 1000 : 0;
    break;
  case 7: case 33:           /* number barred, number de-activated */
    http_result_set (res, HERALD_INVALID_ADDRESS, "vonage %ld: %s", code, text);
    break;
  case 4: case 8: case 9: case 11: case 14: case 15: case 23: case 32:
    /* credentials, account barred or out of credit, sender refused */
    http_result_set (res, HERALD_CHANNEL_ERROR, "vonage %ld: %s", code, text);
    break;
  default:
    http_result_set (res, HERALD_REJECTED, "vonage %ld: %s", code, text);
  }
out:
  json_decref (j);
}

static int
sms_send (void *vs, const struct herald_message *const *msgs,
          size_t n, struct herald_result *const *results)
{
  struct sms_state *s = vs;
  struct sms_item *items = http_xcalloc (n, sizeof *items);
  struct http_req **reqs = http_xcalloc (n, sizeof *reqs);
  const char *what = s->provider == SMS_TWILIO ? "twilio" : "vonage";
  size_t i, nreq = 0;

  for (i = 0; i < n; i++) {
    const struct herald_message *m = msgs[i];
    struct herald_result *res = results[i];
    struct sms_item *it = &items[i];
    const struct herald_part *body = herald_message_part (m, "sms.body");
    const char *to = m->n_to ? m->to[0]->value : NULL;
    char why[128];

    http_req_init (&it->req);
    http_buf_init (&it->form);
    it->skip = 1;
    if (!body || body->len == 0) {
      http_result_set (res, HERALD_REJECTED, "sms: no sms.body part");
      continue;
    }
    if (sms_count_segments (body->data, body->len, &it->seg) < 0) {
      http_result_set (res, HERALD_REJECTED, "sms: sms.body is not UTF-8");
      continue;
    }
    sms_detail (res, &it->seg, NULL);
    /* Twilio's limit is 1600 characters; longer bodies are refused by the
     * provider anyway, so refuse them here without spending a request. */
    if (it->seg.chars > 1600) {
      http_result_set (res, HERALD_REJECTED,
                       "sms: body of %zu characters exceeds 1600",
                       it->seg.chars);
      continue;
    }
    /* The check herald customers import makes (address.h). */
    if (!address_e164_ok (to, why, sizeof why)) {
      http_result_set (res, HERALD_INVALID_ADDRESS,
                       "sms: '%.40s' is not an E.164 number: %s", to ? to : "",
                       why);
      continue;
    }
    if (s->provider == SMS_TWILIO) {
      http_buf_add_form (&it->form, "To", to, strlen (to));
      if (s->messaging_service_sid)
        http_buf_add_form (&it->form, "MessagingServiceSid",
                           s->messaging_service_sid,
                           strlen (s->messaging_service_sid));
      else
        http_buf_add_form (&it->form, "From", s->from, strlen (s->from));
      http_buf_add_form (&it->form, "Body", body->data, body->len);
      if (s->status_callback)
        http_buf_add_form (&it->form, "StatusCallback", s->status_callback,
                           strlen (s->status_callback));
      it->req.username = s->account_sid;
      it->req.password = s->auth_token;
    } else {
      http_buf_add_form (&it->form, "api_key", s->api_key, strlen (s->api_key));
      http_buf_add_form (&it->form, "api_secret", s->api_secret,
                         strlen (s->api_secret));
      http_buf_add_form (&it->form, "from", s->from, strlen (s->from));
      /* Vonage wants E.164 without the '+'. */
      http_buf_add_form (&it->form, "to", to + 1, strlen (to + 1));
      http_buf_add_form (&it->form, "text", body->data, body->len);
      if (it->seg.ucs2)
        http_buf_add_form (&it->form, "type", "unicode", 7);
      if (strlen (m->key) <= 100)  /* client-ref: at most 100 characters */
        http_buf_add_form (&it->form, "client-ref", m->key, strlen (m->key));
    }
    it->req.url = s->messages_url;
    it->req.body = it->form.data;
    it->req.body_len = it->form.len;
    it->skip = 0;
    reqs[nreq++] = &it->req;
  }

  if (http_client_run (s->http, reqs, nreq) < 0)
    s->host->log (s->host->data, HERALD_LOG_WARNING,
                  "sms: the curl multi interface failed; unfinished "
                  "messages will be retried");
  for (i = 0; i < n; i++) {
    struct sms_item *it = &items[i];
    if (!it->skip) {
      /* No idempotency key at Twilio: a timeout may have sent it; the
       * core's retry then duplicates (PROTOCOLS.md), which is the
       * at-least-once trade-off. */
      if (http_result_transient (results[i], &it->req, what, 0))
        ;                       /* 429 (Twilio 20429), 5xx, no answer */
      else if (s->provider == SMS_TWILIO)
        sms_twilio_classify (&it->req, results[i], &it->seg);
      else
        sms_vonage_classify (&it->req, results[i], &it->seg);
    }
    http_req_free (&it->req);
    if (it->form.data)   /* vonage forms carry api_secret */
      OPENSSL_cleanse (it->form.data, it->form.len);
    http_buf_free (&it->form);
  }
  free (reqs);
  free (items);
  return 0;
}

/* ---- Inbound: Twilio status callbacks and replies. ---- */

struct sms_pair {
  char *name;
  char *value;
};

static char *
sms_urldecode (const char *s, size_t n)
{
  char *out = http_xmalloc (n + 1);
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    if (s[i] == '+')
      out[o++] = ' ';
    else if (s[i] == '%' && i + 2 < n
             && isxdigit ((unsigned char) s[i + 1])
             && isxdigit ((unsigned char) s[i + 2])) {
      char h[3] = { s[i + 1], s[i + 2], 0 };
      out[o++] = (char) strtol (h, NULL, 16);
      i += 2;
    } else
      out[o++] = s[i];
  }
  out[o] = '\0';
  return out;
}

/* Parse an application/x-www-form-urlencoded body into a malloc'ed array
 * of pairs (caller frees with sms_pairs_free). */
static struct sms_pair *
sms_form_parse (const char *body, size_t len, size_t *n_r)
{
  size_t cap = 16, n = 0, i = 0;
  struct sms_pair *p = http_xcalloc (cap, sizeof *p);
  while (i < len) {
    size_t end = i, eq;
    while (end < len && body[end] != '&')
      end++;
    if (end > i) {
      eq = i;
      while (eq < end && body[eq] != '=')
        eq++;
      if (n == cap) {
        struct sms_pair *np;
        cap *= 2;
        np = realloc (p, cap * sizeof *p);
        if (!np)
          abort ();
        p = np;
      }
      p[n].name = sms_urldecode (body + i, eq - i);
      p[n].value = eq < end ? sms_urldecode (body + eq + 1, end - eq - 1)
                            : http_strdup ("");
      n++;
    }
    i = end + 1;
  }
  *n_r = n;
  return p;
}

static void
sms_pairs_free (struct sms_pair *p, size_t n)
{
  size_t i;
  for (i = 0; p && i < n; i++) {
    free (p[i].name);
    free (p[i].value);
  }
  free (p);
}

static const char *
sms_pair_get (const struct sms_pair *p, size_t n, const char *name)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!strcmp (p[i].name, name))
      return p[i].value;
  return NULL;
}

static int
sms_pair_cmp (const void *a, const void *b)
{
  const struct sms_pair *x = a, *y = b;
  int c = strcmp (x->name, y->name);
  return c ? c : strcmp (x->value, y->value);
}

/* X-Twilio-Signature: base64 HMAC-SHA1 keyed with the auth token over the
 * full URL followed by every POST parameter, sorted by name, as name+value
 * (https://www.twilio.com/docs/usage/security#validating-requests).
 * Compared in constant time.  Sorts p. */
static int
sms_twilio_signature_ok (const struct sms_state *s,
                         const struct herald_request *req,
                         struct sms_pair *p, size_t n)
{
  const char *got = NULL;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  struct http_buf data, want;
  size_t i;
  int ok = 0;

  for (i = 0; i < req->n_headers; i++)
    if (!strcasecmp (req->headers[i].name, "X-Twilio-Signature"))
      got = req->headers[i].value;
  if (!got || !req->url)
    return 0;
  http_buf_init (&data);
  http_buf_init (&want);
  qsort (p, n, sizeof *p, sms_pair_cmp);
  http_buf_adds (&data, req->url);
  for (i = 0; i < n; i++) {
    http_buf_adds (&data, p[i].name);
    http_buf_adds (&data, p[i].value);
  }
  if (HMAC (EVP_sha1 (), s->auth_token, (int) strlen (s->auth_token),
            (const unsigned char *) data.data, data.len, mac, &maclen)) {
    http_base64 (&want, mac, maclen, 0);
    ok = http_ct_equal (want.data, want.len, got, strlen (got));
  }
  http_buf_free (&data);
  http_buf_free (&want);
  return ok;
}

static void
sms_respond (struct herald_response *resp, int status, const char *ctype,
             const char *body)
{
  size_t n = strlen (body);
  resp->status = status;
  snprintf (resp->content_type, sizeof resp->content_type, "%s", ctype);
  if (n >= sizeof resp->body)
    n = sizeof resp->body - 1;
  memcpy (resp->body, body, n);
  resp->body[n] = '\0';
  resp->body_len = n;
}

/* Twilio's default opt-out and opt-in keywords (a reply that is exactly
 * one of them, any case, surrounding blanks ignored). */
static const char *const sms_stop_words[] = {
  "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
  "REVOKE", NULL
};
static const char *const sms_start_words[] = {
  "START", "UNSTOP", "YES", NULL
};

/* The consent keyword of a reply body, uppercased into kw, or NULL. */
static const char *
sms_keyword (const char *body, char *kw, size_t kwlen,
             const char *const **which)
{
  size_t i, n = 0;
  const char *const *lists[2] = { sms_stop_words, sms_start_words };
  int l;
  while (*body && isspace ((unsigned char) *body))
    body++;
  while (body[n] && n + 1 < kwlen) {
    kw[n] = (char) toupper ((unsigned char) body[n]);
    n++;
  }
  if (body[n])
    return NULL;                /* longer than any keyword */
  while (n > 0 && (isspace ((unsigned char) kw[n - 1]) || kw[n - 1] == '.'
                   || kw[n - 1] == '!'))
    n--;
  kw[n] = '\0';
  for (l = 0; l < 2; l++)
    for (i = 0; lists[l][i]; i++)
      if (!strcmp (kw, lists[l][i])) {
        *which = lists[l];
        return kw;
      }
  return NULL;
}

static int
sms_emit (const struct herald_sink *sink, const char *type, const char *sid,
          const char *address, json_t *detail)
{
  struct herald_event ev = { HERALD_EVENT_INIT };
  char *d = detail ? json_dumps (detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  int rc;
  ev.type = type;
  ev.provider_id = sid;
  ev.address = address;
  ev.at = 0;
  ev.detail = d;
  rc = sink->event (sink->data, &ev);
  free (d);
  return rc;
}

static int
sms_inbound (void *vs, const struct herald_request *req,
             const struct herald_sink *sink, struct herald_response *resp)
{
  struct sms_state *s = vs;
  struct sms_pair *p = NULL;
  size_t n = 0;
  const char *status, *sid, *from, *to, *body, *ecode, *optout;
  json_t *detail = NULL;
  int rc = 0;

  if (s->provider != SMS_TWILIO) {
    sms_respond (resp, 404, "text/plain", "no inbound route for this provider\n");
    goto out;
  }
  if (strcasecmp (req->method, "POST") != 0) {
    sms_respond (resp, 405, "text/plain", "POST only\n");
    goto out;
  }
  p = sms_form_parse (req->body ? req->body : "", req->body_len, &n);
  if (!sms_twilio_signature_ok (s, req, p, n)) {
    s->host->log (s->host->data, HERALD_LOG_WARNING,
                  "sms: inbound request to %s with a missing or invalid "
                  "X-Twilio-Signature refused", req->path ? req->path : "/");
    sms_respond (resp, 403, "text/plain", "invalid signature\n");
    goto out;
  }
  sid = sms_pair_get (p, n, "MessageSid");
  if (!sid)
    sid = sms_pair_get (p, n, "SmsSid");
  status = sms_pair_get (p, n, "MessageStatus");
  if (!status)
    status = sms_pair_get (p, n, "SmsStatus");
  from = sms_pair_get (p, n, "From");
  to = sms_pair_get (p, n, "To");
  body = sms_pair_get (p, n, "Body");
  ecode = sms_pair_get (p, n, "ErrorCode");
  optout = sms_pair_get (p, n, "OptOutType");

  if (status && strcmp (status, "received") != 0 && !body) {
    /* A status callback.  They arrive out of order and gain fields without
     * notice: unknown statuses are acknowledged and ignored. */
    const char *type = NULL;
    if (!strcmp (status, "delivered"))
      type = "delivered";
    else if (!strcmp (status, "undelivered") || !strcmp (status, "failed"))
      type = "failed";
    else if (!strcmp (status, "read"))
      type = "opened";
    if (type) {
      detail = json_pack ("{s:s}", "status", status);
      if (ecode && *ecode)
        json_object_set_new (detail, "error_code", json_string (ecode));
      rc = sms_emit (sink, type, sid, to, detail);
    }
    sms_respond (resp, rc < 0 ? 503 : 200, "text/plain", "");
    rc = 0;
    goto out;
  }
  if (body && from) {
    /* A reply.  Twilio's Advanced Opt-Out names the keyword it acted on
     * in OptOutType; otherwise we match its default keywords ourselves. */
    char kw[16];
    const char *const *which = NULL;
    const char *type = "replied", *k = NULL;
    if (optout && !strcasecmp (optout, "STOP")) {
      type = "unsubscribed";
      k = optout;
    } else if (optout && !strcasecmp (optout, "START")) {
      type = "resubscribed";
      k = optout;
    } else {
      k = sms_keyword (body, kw, sizeof kw, &which);
      if (k)
        type = which == sms_stop_words ? "unsubscribed" : "resubscribed";
    }
    if (k)
      detail = json_pack ("{s:s}", "keyword", k);
    else {
      detail = json_object ();
      json_object_set_new (detail, "body", json_string (body));
      if (!json_object_get (detail, "body"))   /* not UTF-8 */
        json_object_set_new (detail, "body", json_string (""));
    }
    if (to)
      json_object_set_new (detail, "to", json_string (to));
    rc = sms_emit (sink, type, sid, from, detail);
    /* An empty TwiML answer: no auto-reply from us (Twilio sends its own
     * STOP/START confirmations). */
    if (rc < 0)
      sms_respond (resp, 503, "text/plain", "try again\n");
    else
      sms_respond (resp, 200, "text/xml",
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                   "<Response></Response>");
    rc = 0;
    goto out;
  }
  sms_respond (resp, 400, "text/plain", "neither a status callback nor a reply\n");
out:
  json_decref (detail);
  sms_pairs_free (p, n);
  return rc;
}

/* herald lint and run --dry-run: every value checked as open checks it
 * (files such as keys are read, nothing is connected or written), and
 * nothing kept. */
static int
sms_config_check (const struct herald_host *host, char *err, size_t errlen)
{
  void *state = NULL;

  if (sms_open (host, &state, err, errlen) < 0)
    return -1;
  sms_close (state);
  return 0;
}

static const struct herald_plugin sms_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "sms",
  .version = PACKAGE_VERSION,
  .description = "SMS through Twilio or Vonage (libcurl), with Twilio callbacks",
  .channels = sms_channels,
  .config_keys = sms_config_keys,
  .secret_keys = sms_secret_keys,
  .open = sms_open,
  .close = sms_close,
  .config_check = sms_config_check,
  .send = sms_send,
  .inbound = sms_inbound,
};

HERALD_REGISTER_PLUGIN (sms_plugin)
