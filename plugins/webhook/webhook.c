/* plugins/webhook/webhook.c: the webhook channel plugin.  POSTs each
 * message's rendered webhook.body to the customer's URL (or the channel's
 * fixed url), signed per Standard Webhooks (webhook-id = the message key,
 * the same on every retry).  It never sends a body that is not valid JSON
 * and never follows redirects.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <herald/plugin.h>
#include "../http/http.h"
#include "../../lib/address.h"
#include "../../lib/hmac256.h"
#include "../../lib/jsoncheck.h"

#define WH_MAX_SECRETS 8

/* Channel state; owns everything it points to. */
struct wh_state {
  const struct herald_host *host;
  struct http_client *http;
  char *url;                            /* fixed url, or NULL */
  int allow_private;                    /* customer URLs may be private */
  struct hmac256 secrets[WH_MAX_SECRETS];   /* keys absorbed once */
  size_t n_secrets;
};

/* Per message work for one send call. */
struct wh_item {
  struct http_req req;
  /* The request's header list, built in place rather than with
   * curl_slist_append (ten allocations a message): nodes here, the three
   * variable lines NUL-separated in lines.  Never curl_slist_free_all'ed. */
  struct curl_slist hl[5];
  struct http_buf lines;
  int skip;                             /* result already filled */
  int fixed_url;
};

static char wh_expect[] = "Expect:";
static char wh_ctype[] = "Content-Type: application/json";

static const char *const wh_channels[] = { "webhook", NULL };
static const char *const wh_config_keys[] = {
  "url", "secret", "secret_file", "allow_private", "rate", "concurrency",
  "timeout_ms", "ca_file", NULL
};
static const char *const wh_secret_keys[] = { "secret", NULL };

static void
wh_close (void *vs)
{
  struct wh_state *s = vs;
  size_t i;
  if (!s)
    return;
  http_client_free (s->http);
  free (s->url);
  for (i = 0; i < s->n_secrets; i++)
    hmac256_free (&s->secrets[i]);
  free (s);
}

/* Parse "whsec_BASE64 [whsec_BASE64...]" (several during rotation) into
 * s->secrets.  The secret text never reaches err. */
static int
wh_parse_secrets (struct wh_state *s, const char *key, const char *text,
                  char *err, size_t errlen)
{
  const char *p = text;
  int ret = -1;
  char *one = NULL;

  while (*p) {
    size_t n, klen;
    unsigned char *k;
    while (isspace ((unsigned char) *p))
      p++;
    if (!*p)
      break;
    n = strcspn (p, " \t\r\n");
    if (s->n_secrets == WH_MAX_SECRETS) {
      http_conf_error (s->host, key, err, errlen, "more than %d secrets",
                       WH_MAX_SECRETS);
      goto out;
    }
    if (n < 6 || strncmp (p, "whsec_", 6) != 0) {
      http_conf_error (s->host, key, err, errlen,
                       "secret %zu does not start with whsec_",
                       s->n_secrets + 1);
      goto out;
    }
    one = http_xmalloc (n - 6 + 1);
    memcpy (one, p + 6, n - 6);
    one[n - 6] = '\0';
    k = http_unbase64 (one, &klen);
    http_secret_free (one);
    one = NULL;
    /* Standard Webhooks: 24 to 64 random bytes. */
    if (!k || klen < 24 || klen > 64) {
      if (k) {
        OPENSSL_cleanse (k, klen);
        free (k);
      }
      http_conf_error (s->host, key, err, errlen,
                       "secret %zu is not whsec_ and the base64 of 24 to 64 "
                       "bytes", s->n_secrets + 1);
      goto out;
    }
    if (hmac256_init (&s->secrets[s->n_secrets], k, klen) < 0) {
      OPENSSL_cleanse (k, klen);
      free (k);
      http_conf_error (s->host, key, err, errlen, "OpenSSL cannot do "
                       "HMAC-SHA256");
      goto out;
    }
    OPENSSL_cleanse (k, klen);
    free (k);
    s->n_secrets++;
    p += n;
  }
  ret = 0;
out:
  http_secret_free (one);
  return ret;
}

static int
wh_open (const struct herald_host *host, void **state_r, char *err,
         size_t errlen)
{
  struct wh_state *s = http_xcalloc (1, sizeof *s);
  struct http_opts o = { .rate = 0, .concurrency = 32, .timeout_ms = 15000 };
  const char *url = host->config_get (host->data, "url");
  char *secret = NULL, why[128];
  int ret = -1;

  s->host = host;
  if (http_conf_common (host, &o, err, errlen) < 0
      || http_conf_bool (host, "allow_private", 0, &s->allow_private, err,
                         errlen) < 0)
    goto out;
  if (url && *url) {
    if (!address_url_ok (url, why, sizeof why)) {
      http_conf_error (host, "url", err, errlen,
                       "'%s' is not an http:// or https:// URL: %s", url, why);
      goto out;
    }
    s->url = http_strdup (url);
  }
  if (http_conf_secret (host, "secret", "secret_file", 1, &secret, err,
                        errlen) < 0)
    goto out;
  if (wh_parse_secrets (s, host->config_get (host->data, "secret")
                        ? "secret" : "secret_file", secret, err, errlen) < 0)
    goto out;
  if (s->n_secrets == 0) {
    http_conf_error (host, "secret", err, errlen, "no secret given");
    goto out;
  }
  s->http = http_client_new (&o, err, errlen);
  if (!s->http)
    goto out;
  ret = 0;
out:
  http_secret_free (secret);
  if (ret < 0)
    wh_close (s);
  else
    *state_r = s;
  return ret;
}

/* Append the webhook-signature value: "v1,SIG" per secret, space separated,
 * each an HMAC-SHA256 over "id.timestamp.body" (Standard Webhooks).
 * Returns 0, or -1 when OpenSSL failed. */
static int
wh_sign (struct wh_state *s, const char *id, const char *ts,
         const char *body, size_t len, struct http_buf *out)
{
  unsigned char mac[HMAC256_LEN];
  size_t i;

  for (i = 0; i < s->n_secrets; i++) {
    struct hmac256 *h = &s->secrets[i];
    if (hmac256_begin (h) < 0
        || hmac256_update (h, id, strlen (id)) < 0
        || hmac256_update (h, ".", 1) < 0
        || hmac256_update (h, ts, strlen (ts)) < 0
        || hmac256_update (h, ".", 1) < 0
        || hmac256_update (h, body, len) < 0
        || hmac256_final (h, mac) < 0)
      return -1;
    if (i)
      http_buf_add (out, " ", 1);
    http_buf_adds (out, "v1,");
    http_base64 (out, mac, sizeof mac, 0);
  }
  return 0;
}

static int
wh_header_safe (const char *v)
{
  for (; *v; v++)
    if ((unsigned char) *v < 0x20 || *v == 0x7f)
      return 0;
  return 1;
}

static void
wh_classify (const struct wh_state *s, const struct herald_message *m,
             struct wh_item *it, struct herald_result *res)
{
  const struct http_req *r = &it->req;
  char ex[160];

  if (r->blocked && r->curl_code != CURLE_OK) {
    http_result_set (res, HERALD_INVALID_ADDRESS,
                     "webhook: '%.200s' leads to a loopback, private or "
                     "link-local address (allow_private = yes permits it)",
                     r->url);
    return;
  }
  if (r->curl_code == CURLE_URL_MALFORMAT
      || r->curl_code == CURLE_UNSUPPORTED_PROTOCOL) {
    http_result_set (res, it->fixed_url ? HERALD_CHANNEL_ERROR
                                        : HERALD_INVALID_ADDRESS,
                     "webhook: %s", r->curl_error);
    return;
  }
  if (http_result_transient (res, r, "webhook", 0))
    return;
  if (r->status >= 200 && r->status <= 299) {
    /* Receivers return no id of their own: they know the message by its
     * webhook-id, so that is the provider id. */
    http_result_sent (res, m->key, strlen (m->key));
    return;
  }
  http_excerpt (ex, sizeof ex, r->resp_body.data, r->resp_body.len, 120);
  if (r->status == 410) {
    /* Standard Webhooks: 410 Gone disables the endpoint.  A customer's
     * URL is an address the core suppresses; the channel's own url is the
     * channel's problem. */
    http_result_set (res, it->fixed_url ? HERALD_CHANNEL_ERROR
                                        : HERALD_INVALID_ADDRESS,
                     "webhook: HTTP 410 Gone%s%s", ex[0] ? ": " : "", ex);
    return;
  }
  http_result_set (res, HERALD_REJECTED, "webhook: HTTP %ld%s%s%s",
                   r->status, r->status >= 300 && r->status < 400
                   ? " (redirects are not followed)" : "",
                   ex[0] ? ": " : "", ex);
}

static int
wh_send (void *vs, const struct herald_message *const *msgs,
         size_t n, struct herald_result *const *results)
{
  struct wh_state *s = vs;
  struct wh_item *items = http_xcalloc (n, sizeof *items);
  struct http_req **reqs = http_xcalloc (n, sizeof *reqs);
  char ts[24];
  size_t i, k, nreq = 0, off_ts, off_sig, ts_len;
  int ret = 0;

  ts_len = (size_t) snprintf (ts, sizeof ts, "%lld", (long long) http_now ());
  for (i = 0; i < n; i++) {
    const struct herald_message *m = msgs[i];
    struct herald_result *res = results[i];
    struct wh_item *it = &items[i];
    const struct herald_part *body = herald_message_part (m, "webhook.body");
    const char *url, *why;
    char bad[128];
    size_t off;

    http_req_init (&it->req);
    http_buf_init (&it->lines);
    it->skip = 1;
    if (!body) {
      http_result_set (res, HERALD_REJECTED, "webhook: no webhook.body part");
      continue;
    }
    /* Checked before sending: a receiver must be able to parse what we
     * sign (Standard Webhooks payloads are JSON). */
    if (jsoncheck (body->data, body->len, &why, &off) < 0) {
      http_result_set (res, HERALD_REJECTED,
                       "webhook: webhook.body is not valid JSON: byte %zu: %s",
                       off, why);
      continue;
    }
    if (!wh_header_safe (m->key)) {
      http_result_set (res, HERALD_REJECTED,
                       "webhook: message key has control characters");
      continue;
    }
    if (s->url) {
      url = s->url;
      it->fixed_url = 1;
    } else if (m->n_to > 0 && m->to[0]->value && *m->to[0]->value) {
      url = m->to[0]->value;
      /* The check herald customers import makes (address.h). */
      if (!address_url_ok (url, bad, sizeof bad)) {
        http_result_set (res, HERALD_INVALID_ADDRESS,
                         "webhook: '%.200s' is not an http:// or https:// "
                         "URL: %s", url, bad);
        continue;
      }
    } else {
      http_result_set (res, HERALD_INVALID_ADDRESS,
                       "webhook: no URL (no address and no channel url)");
      continue;
    }

    /* Appended piece by piece: vsnprintf twice per message was 3k
     * instructions of the bench's 110k in the plugin. */
    http_buf_add (&it->lines, "webhook-id: ", 12);
    http_buf_adds (&it->lines, m->key);
    http_buf_add (&it->lines, "\0webhook-timestamp: ", 20);
    off_ts = it->lines.len - 19;
    http_buf_add (&it->lines, ts, ts_len);
    http_buf_add (&it->lines, "\0webhook-signature: ", 20);
    off_sig = it->lines.len - 19;
    if (wh_sign (s, m->key, ts, body->data, body->len, &it->lines) < 0) {
      http_result_set (res, HERALD_RETRY, "webhook: HMAC-SHA256 failed");
      continue;
    }
    /* Pointers only now: the buffer no longer moves. */
    it->hl[0].data = wh_expect;
    it->hl[1].data = wh_ctype;
    it->hl[2].data = it->lines.data;
    it->hl[3].data = it->lines.data + off_ts;
    it->hl[4].data = it->lines.data + off_sig;
    for (k = 0; k < 4; k++)
      it->hl[k].next = &it->hl[k + 1];
    it->hl[4].next = NULL;
    it->req.url = url;
    /* The operator's own url is trusted; a customer's is not. */
    it->req.public_only = !it->fixed_url && !s->allow_private;
    it->req.body = body->data;
    it->req.body_len = body->len;
    it->req.headers = it->hl;
    it->skip = 0;
    reqs[nreq++] = &it->req;
  }

  if (http_client_run (s->http, reqs, nreq) < 0)
    s->host->log (s->host->data, HERALD_LOG_WARNING,
                  "webhook: the curl multi interface failed; "
                  "unfinished messages will be retried");
  for (i = 0; i < n; i++) {
    if (!items[i].skip)
      wh_classify (s, msgs[i], &items[i], results[i]);
    http_req_free (&items[i].req);
    http_buf_free (&items[i].lines);
  }
  free (reqs);
  free (items);
  return ret;
}

/* herald lint and run --dry-run: every value checked as open checks it
 * (files such as keys are read, nothing is connected or written), and
 * nothing kept. */
static int
wh_config_check (const struct herald_host *host, char *err, size_t errlen)
{
  void *state = NULL;

  if (wh_open (host, &state, err, errlen) < 0)
    return -1;
  wh_close (state);
  return 0;
}

static const struct herald_plugin wh_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "webhook",
  .version = PACKAGE_VERSION,
  .description = "Standard Webhooks signed JSON POSTs (libcurl)",
  .channels = wh_channels,
  .config_keys = wh_config_keys,
  .secret_keys = wh_secret_keys,
  .open = wh_open,
  .close = wh_close,
  .config_check = wh_config_check,
  .send = wh_send,
};

HERALD_REGISTER_PLUGIN (wh_plugin)
