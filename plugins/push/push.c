/* plugins/push/push.c: the push channel plugin: FCM HTTP v1 (OAuth 2 token
 * from a service-account RS256 JWT) and APNs token-based HTTP/2 (ES256 JWT),
 * over the shared libcurl layer.  One request per device token; dead tokens
 * are reported per address.  It never logs a token, key or JWT.
 */
#include <config.h>

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <herald/plugin.h>
#include "../http/http.h"

enum push_provider { PUSH_FCM, PUSH_APNS };

/* Outcome of one token's request. */
enum push_outcome {
  PT_OK, PT_DEAD, PT_RETRY, PT_REJECT, PT_CHANNEL,
  PT_AUTH,               /* credential refused: refresh once and resend */
};

#define PUSH_MAX_PAYLOAD 4096    /* FCM and APNs both */
#define PUSH_FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"

/* Channel state; owns every pointer. */
struct push_state {
  const struct herald_host *host;
  struct http_client *http;
  enum push_provider provider;
  char *base_url;
  char **platforms;            /* address types this instance serves */
  size_t n_platforms;
  EVP_PKEY *key;               /* RSA (FCM) or P-256 (APNs) */
  /* FCM */
  char *client_email, *project_id, *token_uri, *send_url;
  char *access_token;          /* cached OAuth token, or NULL */
  int64_t token_exp;
  /* APNs */
  char *key_id, *team_id, *topic, *push_type;
  long priority, jwt_refresh_s;
  char *jwt;                   /* cached provider token, or NULL */
  int64_t jwt_iat;
};

/* One message to one device token. */
struct push_tok {
  size_t msg, addr;
  struct http_req req;
  struct curl_slist *headers;
  struct http_buf url, body;
  int outcome;
  int64_t retry_ms;
  char id[HERALD_ID_MAX];
  char err[HERALD_ERROR_MAX];
};

static const char *const push_channels[] = { "push", NULL };
static const char *const push_config_keys[] = {
  "provider", "base_url", "platforms", "rate", "concurrency", "timeout_ms",
  "ca_file",
  "service_account_file", "project_id", "token_uri",
  "key_file", "key_id", "team_id", "topic", "push_type", "priority",
  "sandbox", "jwt_refresh_s", NULL
};
/* Credentials live in files (service_account_file, key_file), never in
 * the INI itself, so no key holds a secret value. */
static const char *const push_secret_keys[] = { NULL };

/* ---- JWT (RFC 7519) with JWS signatures (RFC 7515, RFC 7518 3.3/3.4). ---- */

/* Sign "b64url(header).b64url(claims)" with key and append the signature;
 * for ES256 convert OpenSSL's DER ECDSA-Sig-Value to raw R||S (RFC 7518
 * 3.4).  Returns a malloc'ed JWT the caller frees, or NULL. */
static char *
push_jwt (EVP_PKEY *key, int es256, json_t *header, json_t *claims)
{
  EVP_MD_CTX *ctx = NULL;
  ECDSA_SIG *esig = NULL;
  unsigned char *sig = NULL, raw[64];
  const unsigned char *p;
  size_t siglen = 0;
  char *h = json_dumps (header, JSON_COMPACT);
  char *c = json_dumps (claims, JSON_COMPACT);
  struct http_buf b;
  char *ret = NULL;

  http_buf_init (&b);
  if (!h || !c)
    goto out;
  http_base64 (&b, (unsigned char *) h, strlen (h), 1);
  http_buf_add (&b, ".", 1);
  http_base64 (&b, (unsigned char *) c, strlen (c), 1);
  ctx = EVP_MD_CTX_new ();
  if (!ctx || EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, key) != 1
      || EVP_DigestSign (ctx, NULL, &siglen, (unsigned char *) b.data, b.len) != 1)
    goto out;
  sig = http_xmalloc (siglen);
  if (EVP_DigestSign (ctx, sig, &siglen, (unsigned char *) b.data, b.len) != 1)
    goto out;
  http_buf_add (&b, ".", 1);
  if (es256) {
    const BIGNUM *r, *s;
    p = sig;
    esig = d2i_ECDSA_SIG (NULL, &p, (long) siglen);
    if (!esig)
      goto out;
    ECDSA_SIG_get0 (esig, &r, &s);
    if (BN_bn2binpad (r, raw, 32) != 32 || BN_bn2binpad (s, raw + 32, 32) != 32)
      goto out;
    http_base64 (&b, raw, 64, 1);
  } else
    http_base64 (&b, sig, siglen, 1);
  ret = b.data;
  http_buf_init (&b);
out:
  ECDSA_SIG_free (esig);
  EVP_MD_CTX_free (ctx);
  free (sig);
  free (h);
  free (c);
  http_buf_free (&b);
  return ret;
}

static EVP_PKEY *
push_load_key (const char *pem, size_t len)
{
  BIO *bio = BIO_new_mem_buf (pem, (int) len);
  EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL) : NULL;
  BIO_free (bio);
  return k;
}

/* ---- Open and close. ---- */

static void
push_close (void *vs)
{
  struct push_state *s = vs;
  size_t i;
  if (!s)
    return;
  http_client_free (s->http);
  free (s->base_url);
  for (i = 0; i < s->n_platforms; i++)
    free (s->platforms[i]);
  free (s->platforms);
  EVP_PKEY_free (s->key);
  free (s->client_email);
  free (s->project_id);
  free (s->token_uri);
  free (s->send_url);
  http_secret_free (s->access_token);
  free (s->key_id);
  free (s->team_id);
  free (s->topic);
  free (s->push_type);
  http_secret_free (s->jwt);
  free (s);
}

static char *
push_conf_str (const struct herald_host *h, const char *key, const char *def)
{
  const char *v = h->config_get (h->data, key);
  return v && *v ? http_strdup (v) : def ? http_strdup (def) : NULL;
}

static int
push_platforms (struct push_state *s, const char *def, char *err,
                size_t errlen)
{
  const char *v = s->host->config_get (s->host->data, "platforms");
  const char *p;
  if (!v || !*v)
    v = def;
  for (p = v; *p;) {
    size_t n;
    while (*p == ',' || isspace ((unsigned char) *p))
      p++;
    n = strcspn (p, ", \t");
    if (n) {
      char **np = realloc (s->platforms, (s->n_platforms + 1) * sizeof *np);
      if (!np)
        abort ();
      s->platforms = np;
      s->platforms[s->n_platforms] = http_xmalloc (n + 1);
      memcpy (s->platforms[s->n_platforms], p, n);
      s->platforms[s->n_platforms][n] = '\0';
      s->n_platforms++;
    }
    p += n;
  }
  if (!s->n_platforms) {
    http_conf_error (s->host, "platforms", err, errlen, "empty");
    return -1;
  }
  return 0;
}

static int
push_open_fcm (struct push_state *s, char *err, size_t errlen)
{
  const struct herald_host *h = s->host;
  const char *path = http_conf_path (h, "service_account_file");
  char ferr[256];
  char *text = NULL;
  size_t len = 0;
  json_t *j = NULL;
  json_error_t jerr;
  const char *type, *pk;
  struct http_buf b;
  int ret = -1;

  http_buf_init (&b);
  if (!path || !*path) {
    http_conf_error (h, "service_account_file", err, errlen,
                     "missing (the service account JSON key file)");
    goto out;
  }
  text = http_read_file (path, &len, ferr, sizeof ferr);
  if (!text) {
    http_conf_error (h, "service_account_file", err, errlen, "%s", ferr);
    goto out;
  }
  j = json_loadb (text, len, 0, &jerr);
  type = json_string_value (json_object_get (j, "type"));
  pk = json_string_value (json_object_get (j, "private_key"));
  if (!j || (type && strcmp (type, "service_account")) || !pk
      || !json_is_string (json_object_get (j, "client_email"))) {
    http_conf_error (h, "service_account_file", err, errlen,
                     "'%s' is not a service account key (JSON with "
                     "private_key and client_email)", path);
    goto out;
  }
  s->key = push_load_key (pk, strlen (pk));
  if (!s->key || EVP_PKEY_base_id (s->key) != EVP_PKEY_RSA) {
    http_conf_error (h, "service_account_file", err, errlen,
                     "'%s': private_key is not an RSA PEM key", path);
    goto out;
  }
  s->client_email = http_strdup (json_string_value (json_object_get (j, "client_email")));
  s->project_id = push_conf_str (h, "project_id",
                                 json_string_value (json_object_get (j, "project_id")));
  s->token_uri = push_conf_str (h, "token_uri",
                                json_string_value (json_object_get (j, "token_uri")));
  if (!s->token_uri)
    s->token_uri = http_strdup ("https://oauth2.googleapis.com/token");
  if (!s->project_id) {
    http_conf_error (h, "project_id", err, errlen,
                     "missing (and not in the service account file)");
    goto out;
  }
  http_buf_printf (&b, "%s/v1/projects/", s->base_url);
  http_buf_add_urlenc (&b, s->project_id, strlen (s->project_id));
  http_buf_adds (&b, "/messages:send");
  s->send_url = b.data;
  http_buf_init (&b);
  ret = 0;
out:
  if (text) {
    OPENSSL_cleanse (text, len);
    free (text);
  }
  json_decref (j);   /* its private_key copy is freed unwiped: jansson's */
  http_buf_free (&b);
  return ret;
}

static int
push_open_apns (struct push_state *s, char *err, size_t errlen)
{
  const struct herald_host *h = s->host;
  const char *path = http_conf_path (h, "key_file");
  char ferr[256];
  char *text = NULL;
  size_t len = 0;
  int ret = -1;

  if (!path || !*path) {
    http_conf_error (h, "key_file", err, errlen,
                     "missing (the .p8 signing key from Apple)");
    goto out;
  }
  text = http_read_file (path, &len, ferr, sizeof ferr);
  if (!text) {
    http_conf_error (h, "key_file", err, errlen, "%s", ferr);
    goto out;
  }
  s->key = push_load_key (text, len);
  if (!s->key || EVP_PKEY_base_id (s->key) != EVP_PKEY_EC
      || EVP_PKEY_bits (s->key) != 256) {
    http_conf_error (h, "key_file", err, errlen,
                     "'%s' is not a P-256 private key in PEM", path);
    goto out;
  }
  s->key_id = push_conf_str (h, "key_id", NULL);
  s->team_id = push_conf_str (h, "team_id", NULL);
  s->topic = push_conf_str (h, "topic", NULL);
  s->push_type = push_conf_str (h, "push_type", "alert");
  if (!s->key_id || !s->team_id || !s->topic) {
    const char *k = !s->key_id ? "key_id" : !s->team_id ? "team_id" : "topic";
    http_conf_error (h, k, err, errlen, "missing (required by provider = apns)");
    goto out;
  }
  if (strcmp (s->push_type, "alert") && strcmp (s->push_type, "background")) {
    http_conf_error (h, "push_type", err, errlen,
                     "'%s' is not alert or background", s->push_type);
    goto out;
  }
  /* Apple: 10 delivers at once, 5 when convenient; background must be 5. */
  if (http_conf_long (h, "priority", strcmp (s->push_type, "background") ? 10 : 5,
                      1, 10, &s->priority, err, errlen) < 0)
    goto out;
  if (s->priority != 5 && s->priority != 10 && s->priority != 1) {
    http_conf_error (h, "priority", err, errlen, "'%ld' is not 10, 5 or 1",
                     s->priority);
    goto out;
  }
  /* Refresh no more often than every 20 minutes (TooManyProviderTokenUpdates)
   * and before 60 (ExpiredProviderToken). */
  if (http_conf_long (h, "jwt_refresh_s", 1800, 1200, 3540, &s->jwt_refresh_s,
                      err, errlen) < 0)
    goto out;
  ret = 0;
out:
  if (text) {
    OPENSSL_cleanse (text, len);
    free (text);
  }
  return ret;
}

static int
push_open (const struct herald_host *host, void **state_r, char *err,
           size_t errlen)
{
  struct push_state *s = http_xcalloc (1, sizeof *s);
  struct http_opts o = { .rate = 0, .concurrency = 32, .timeout_ms = 15000 };
  const char *prov = host->config_get (host->data, "provider");
  int sandbox = 0, ret = -1;
  size_t n;

  s->host = host;
  if (!prov || !*prov) {
    http_conf_error (host, "provider", err, errlen, "missing (fcm or apns)");
    goto out;
  }
  if (!strcmp (prov, "fcm"))
    s->provider = PUSH_FCM;
  else if (!strcmp (prov, "apns"))
    s->provider = PUSH_APNS;
  else {
    http_conf_error (host, "provider", err, errlen, "'%s' is not fcm or apns",
                     prov);
    goto out;
  }
  if (http_conf_common (host, &o, err, errlen) < 0
      || http_conf_bool (host, "sandbox", 0, &sandbox, err, errlen) < 0
      || push_platforms (s, s->provider == PUSH_FCM ? "android,web" : "ios",
                         err, errlen) < 0)
    goto out;
  s->base_url = push_conf_str (host, "base_url",
                               s->provider == PUSH_FCM
                               ? "https://fcm.googleapis.com"
                               : sandbox ? "https://api.sandbox.push.apple.com"
                                         : "https://api.push.apple.com");
  n = strlen (s->base_url);
  while (n > 0 && s->base_url[n - 1] == '/')
    s->base_url[--n] = '\0';
  if (strncmp (s->base_url, "http://", 7) && strncmp (s->base_url, "https://", 8)) {
    http_conf_error (host, "base_url", err, errlen,
                     "'%s' is not an http:// or https:// URL", s->base_url);
    goto out;
  }
  if ((s->provider == PUSH_FCM ? push_open_fcm : push_open_apns) (s, err, errlen) < 0)
    goto out;
  s->http = http_client_new (&o, err, errlen);
  if (!s->http)
    goto out;
  ret = 0;
out:
  if (ret < 0)
    push_close (s);
  else
    *state_r = s;
  return ret;
}

/* ---- Credentials. ---- */

/* Make sure a usable credential is cached (force: replace it).  On failure
 * fill *outcome (PT_RETRY or PT_CHANNEL), err and *retry_ms. */
static int
push_credential (struct push_state *s, int force, int *outcome,
                 int64_t *retry_ms, char *err, size_t errlen)
{
  int64_t now = http_now ();
  json_t *hdr = NULL, *claims = NULL, *j = NULL;
  char *jwt = NULL;
  struct http_req req, *rp = &req;
  struct http_buf form;
  struct herald_result tmp;
  int ret = -1;

  http_req_init (&req);
  http_buf_init (&form);
  *retry_ms = 0;
  if (s->provider == PUSH_APNS) {
    if (!force && s->jwt && now - s->jwt_iat < s->jwt_refresh_s)
      return 0;
    hdr = json_pack ("{s:s,s:s}", "alg", "ES256", "kid", s->key_id);
    claims = json_pack ("{s:s,s:I}", "iss", s->team_id, "iat", (json_int_t) now);
    jwt = push_jwt (s->key, 1, hdr, claims);
    if (!jwt) {
      *outcome = PT_CHANNEL;
      snprintf (err, errlen, "apns: signing the provider token failed");
      goto out;
    }
    http_secret_free (s->jwt);
    s->jwt = jwt;
    jwt = NULL;
    s->jwt_iat = now;
    ret = 0;
    goto out;
  }

  /* FCM: an OAuth 2 access token for a self-signed JWT (RFC 7523),
   * cached until five minutes before it expires. */
  if (!force && s->access_token && now < s->token_exp - 300)
    return 0;
  hdr = json_pack ("{s:s,s:s}", "alg", "RS256", "typ", "JWT");
  claims = json_pack ("{s:s,s:s,s:s,s:I,s:I}", "iss", s->client_email,
                      "scope", PUSH_FCM_SCOPE, "aud", s->token_uri,
                      "iat", (json_int_t) now, "exp", (json_int_t) now + 3600);
  jwt = push_jwt (s->key, 0, hdr, claims);
  if (!jwt) {
    *outcome = PT_CHANNEL;
    snprintf (err, errlen, "fcm: signing the token request failed");
    goto out;
  }
  http_buf_add_form (&form, "grant_type",
                     "urn:ietf:params:oauth:grant-type:jwt-bearer", 43);
  http_buf_add_form (&form, "assertion", jwt, strlen (jwt));
  req.url = s->token_uri;
  req.body = form.data;
  req.body_len = form.len;
  http_client_run (s->http, &rp, 1);
  memset (&tmp, 0, sizeof tmp);
  if (http_result_transient (&tmp, &req, "fcm token", 0)) {
    *outcome = PT_RETRY;
    *retry_ms = tmp.retry_after_ms;
    snprintf (err, errlen, "%s", tmp.error);
    goto out;
  }
  j = json_loadb (req.resp_body.data ? req.resp_body.data : "",
                  req.resp_body.len, 0, NULL);
  if (req.status != 200 || !json_is_string (json_object_get (j, "access_token"))) {
    char ex[160];
    http_excerpt (ex, sizeof ex, req.resp_body.data, req.resp_body.len, 150);
    *outcome = PT_CHANNEL;
    snprintf (err, errlen, "fcm token: HTTP %ld: %s", req.status, ex);
    goto out;
  }
  http_secret_free (s->access_token);
  s->access_token = http_strdup (json_string_value (json_object_get (j, "access_token")));
  s->token_exp = now + (json_integer_value (json_object_get (j, "expires_in")) > 0
                        ? json_integer_value (json_object_get (j, "expires_in"))
                        : 3600);
  ret = 0;
out:
  json_decref (hdr);
  json_decref (claims);
  json_decref (j);
  http_secret_free (jwt);
  if (form.data)
    OPENSSL_cleanse (form.data, form.len);
  http_buf_free (&form);
  http_req_free (&req);
  return ret;
}

/* ---- Payloads. ---- */

/* apns-id: a UUID (RFC 9562 version 8) from SHA-256 of the message key, so
 * every retry of a message carries the same id. */
static void
push_uuid (const char *key, char out[37])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  static const char hex[] = "0123456789abcdef";
  size_t i, o = 0;
  EVP_Digest (key, strlen (key), md, &mdlen, EVP_sha256 (), NULL);
  md[6] = (unsigned char) ((md[6] & 0x0f) | 0x80);
  md[8] = (unsigned char) ((md[8] & 0x3f) | 0x80);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[md[i] >> 4];
    out[o++] = hex[md[i] & 15];
  }
  out[o] = '\0';
}

/* Part NAME as a JSON string in *r (NULL when absent or empty); -1 when it
 * is not UTF-8. */
static int
push_part_string (const struct herald_message *m, const char *name,
                  json_t **r)
{
  const struct herald_part *p = herald_message_part (m, name);
  *r = p && p->len ? json_stringn (p->data, p->len) : NULL;
  return p && p->len && !*r ? -1 : 0;
}

/* The JSON payload shared by every token of message m, as a new reference
 * (the FCM token is added per request).  NULL with err set when the parts
 * are unusable. */
static json_t *
push_payload (const struct push_state *s, const struct herald_message *m,
              char *err, size_t errlen)
{
  json_t *title = NULL, *body = NULL, *data = NULL, *out = NULL, *v;
  const struct herald_part *dp = herald_message_part (m, "push.data");
  json_error_t jerr;
  const char *k;

  if (push_part_string (m, "push.title", &title) < 0
      || push_part_string (m, "push.body", &body) < 0) {
    snprintf (err, errlen, "push: push.title or push.body is not UTF-8");
    goto out;
  }
  if (dp && dp->len) {
    data = json_loadb (dp->data, dp->len, 0, &jerr);
    if (!json_is_object (data)) {
      snprintf (err, errlen, "push: push.data is not a JSON object%s%s",
                data ? "" : ": ", data ? "" : jerr.text);
      goto out;
    }
  }
  if (!title && !body && !(s->provider == PUSH_APNS
                           && !strcmp (s->push_type, "background"))
      && !data) {
    snprintf (err, errlen, "push: no push.title, push.body or push.data part");
    goto out;
  }
  if (s->provider == PUSH_FCM) {
    json_t *msg = json_object (), *notif = NULL, *sdata;
    out = json_pack ("{s:o}", "message", msg);
    if (title || body) {
      notif = json_object ();
      if (title)
        json_object_set (notif, "title", title);
      if (body)
        json_object_set (notif, "body", body);
      json_object_set_new (msg, "notification", notif);
    }
    if (data && json_object_size (data)) {
      /* FCM data values must be strings: other JSON values travel as
       * their compact JSON text. */
      sdata = json_object ();
      json_object_foreach (data, k, v) {
        if (json_is_string (v))
          json_object_set (sdata, k, v);
        else if (json_is_null (v))
          json_object_set_new (sdata, k, json_string (""));
        else {
          char *t = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY);
          json_object_set_new (sdata, k, json_string (t ? t : ""));
          free (t);
        }
      }
      json_object_set_new (msg, "data", sdata);
    }
  } else {
    json_t *aps = json_object ();
    out = json_object ();
    if (!strcmp (s->push_type, "background"))
      json_object_set_new (aps, "content-available", json_integer (1));
    else {
      json_t *alert = json_object ();
      if (title)
        json_object_set (alert, "title", title);
      if (body)
        json_object_set (alert, "body", body);
      json_object_set_new (aps, "alert", alert);
      json_object_set_new (aps, "sound", json_string ("default"));
    }
    /* Custom keys sit beside aps (Apple: "Creating the remote notification
     * payload"); a data key named aps cannot replace it. */
    json_object_foreach (data, k, v)
      if (strcmp (k, "aps"))
        json_object_set (out, k, v);
    json_object_set_new (out, "aps", aps);
  }
out:
  json_decref (title);
  json_decref (body);
  json_decref (data);
  return out;
}

static int
push_platform_ok (const struct push_state *s, const char *type)
{
  size_t i;
  for (i = 0; type && i < s->n_platforms; i++)
    if (!strcasecmp (s->platforms[i], type))
      return 1;
  return 0;
}

/* (Re)build the request of t for the current credential. */
static void
push_tok_headers (const struct push_state *s, struct push_tok *t,
                  const char *msg_key)
{
  struct http_buf h;
  char uuid[37];
  http_buf_init (&h);
  curl_slist_free_all (t->headers);
  t->headers = curl_slist_append (NULL, "Expect:");
  t->headers = curl_slist_append (t->headers, "Content-Type: application/json");
  if (s->provider == PUSH_FCM) {
    http_buf_printf (&h, "Authorization: Bearer %s", s->access_token);
    t->headers = curl_slist_append (t->headers, h.data);
  } else {
    http_buf_printf (&h, "authorization: bearer %s", s->jwt);
    t->headers = curl_slist_append (t->headers, h.data);
    http_buf_reset (&h);
    http_buf_printf (&h, "apns-topic: %s", s->topic);
    t->headers = curl_slist_append (t->headers, h.data);
    http_buf_reset (&h);
    http_buf_printf (&h, "apns-push-type: %s", s->push_type);
    t->headers = curl_slist_append (t->headers, h.data);
    http_buf_reset (&h);
    http_buf_printf (&h, "apns-priority: %ld", s->priority);
    t->headers = curl_slist_append (t->headers, h.data);
    http_buf_reset (&h);
    push_uuid (msg_key, uuid);
    http_buf_printf (&h, "apns-id: %s", uuid);
    t->headers = curl_slist_append (t->headers, h.data);
  }
  if (h.data)
    OPENSSL_cleanse (h.data, h.len);
  http_buf_free (&h);
  if (!t->headers)
    abort ();
  t->req.headers = t->headers;
}

/* ---- Classification. ---- */

static void
push_classify_fcm (struct push_tok *t)
{
  const struct http_req *r = &t->req;
  json_t *j = json_loadb (r->resp_body.data ? r->resp_body.data : "",
                          r->resp_body.len, 0, NULL);
  json_t *e = json_object_get (j, "error"), *d;
  const char *status = json_string_value (json_object_get (e, "status"));
  const char *msg = json_string_value (json_object_get (e, "message"));
  const char *code = NULL;
  size_t i;

  if (r->status == 200) {
    const char *name = json_string_value (json_object_get (j, "name"));
    t->outcome = PT_OK;
    snprintf (t->id, sizeof t->id, "%s", name ? name : "");
    goto out;
  }
  json_array_foreach (json_object_get (e, "details"), i, d)
    if (!code)
      code = json_string_value (json_object_get (d, "errorCode"));
  if (!code)
    code = status ? status : "";
  snprintf (t->err, sizeof t->err, "fcm %s (HTTP %ld): %s", code, r->status,
            msg ? msg : "");
  if (!strcmp (code, "UNREGISTERED") || !strcmp (code, "SENDER_ID_MISMATCH"))
    t->outcome = PT_DEAD;
  else if (!strcmp (code, "QUOTA_EXCEEDED") || r->status == 429) {
    /* Back off at least a minute (FCM's guidance for quota errors). */
    t->outcome = PT_RETRY;
    t->retry_ms = http_req_retry_after_ms (r);
    if (t->retry_ms < 60000)
      t->retry_ms = 60000;
  } else if (!strcmp (code, "UNAVAILABLE") || !strcmp (code, "INTERNAL")
             || r->status >= 500 || r->status == 408) {
    t->outcome = PT_RETRY;
    t->retry_ms = http_req_retry_after_ms (r);
  } else if (r->status == 401 && strcmp (code, "THIRD_PARTY_AUTH_ERROR"))
    t->outcome = PT_AUTH;
  else if (r->status == 401 || r->status == 403)
    t->outcome = PT_CHANNEL;
  else
    t->outcome = PT_REJECT;
out:
  json_decref (j);
}

static void
push_classify_apns (struct push_tok *t)
{
  const struct http_req *r = &t->req;
  json_t *j = json_loadb (r->resp_body.data ? r->resp_body.data : "",
                          r->resp_body.len, 0, NULL);
  const char *reason = json_string_value (json_object_get (j, "reason"));

  if (r->status == 200) {
    t->outcome = PT_OK;
    if (http_req_header (r, "apns-id", t->id, sizeof t->id) <= 0)
      snprintf (t->id, sizeof t->id, "%s", "");
    goto out;
  }
  if (!reason)
    reason = "";
  snprintf (t->err, sizeof t->err, "apns %s (HTTP %ld)", reason, r->status);
  if (r->status == 410 || !strcmp (reason, "BadDeviceToken")
      || !strcmp (reason, "DeviceTokenNotForTopic")
      || !strcmp (reason, "Unregistered"))
    t->outcome = PT_DEAD;
  else if (!strcmp (reason, "ExpiredProviderToken"))
    t->outcome = PT_AUTH;
  else if (r->status == 403)
    t->outcome = PT_CHANNEL;   /* InvalidProviderToken, BadTopic... */
  else if (r->status == 429 || r->status >= 500 || r->status == 408) {
    t->outcome = PT_RETRY;
    t->retry_ms = http_req_retry_after_ms (r);
  } else
    t->outcome = PT_REJECT;
out:
  json_decref (j);
}

static void
push_classify (const struct push_state *s, struct push_tok *t)
{
  struct herald_result tmp;
  memset (&tmp, 0, sizeof tmp);
  t->retry_ms = 0;
  /* No answer at all: retry.  Answers are the provider's to explain. */
  if (t->req.curl_code != CURLE_OK) {
    http_result_transient (&tmp, &t->req,
                           s->provider == PUSH_FCM ? "fcm" : "apns", 0);
    t->outcome = PT_RETRY;
    snprintf (t->err, sizeof t->err, "%s", tmp.error);
    return;
  }
  if (s->provider == PUSH_FCM)
    push_classify_fcm (t);
  else
    push_classify_apns (t);
}

/* ---- Sending. ---- */

static int
push_send (void *vs, const struct herald_message *const *msgs,
           size_t n, struct herald_result *const *results)
{
  struct push_state *s = vs;
  struct push_tok *toks = NULL;
  struct http_req **reqs = NULL;
  size_t ntok = 0, cap = 0, i, j, nreq;
  char err[HERALD_ERROR_MAX];
  int cred_outcome = PT_OK, refreshed = 0;
  int64_t cred_retry = 0;
  size_t *first = http_xcalloc (n + 1, sizeof *first);

  /* 1. One request per (message, accepted token). */
  for (i = 0; i < n; i++) {
    const struct herald_message *m = msgs[i];
    json_t *payload;
    size_t before = ntok;

    first[i] = ntok;
    memset (&results[i]->status, 0, offsetof (struct herald_result, to_invalid)
            - offsetof (struct herald_result, status));
    /* Zero is HERALD_SENT: until a token's outcome says, no result. */
    results[i]->status = HERALD_NO_RESULT;
    payload = push_payload (s, m, err, sizeof err);
    if (!payload) {
      http_result_set (results[i], HERALD_REJECTED, "%s", err);
      continue;
    }
    for (j = 0; j < m->n_to; j++) {
      const char *tok = m->to[j]->value;
      struct push_tok *t;
      char *text;
      if (!push_platform_ok (s, m->to[j]->type) || !tok || !*tok)
        continue;
      if (ntok == cap) {
        cap = cap ? cap * 2 : 16;
        toks = realloc (toks, cap * sizeof *toks);
        if (!toks)
          abort ();
      }
      t = &toks[ntok++];
      memset (t, 0, sizeof *t);
      t->msg = i;
      t->addr = j;
      http_req_init (&t->req);
      http_buf_init (&t->url);
      http_buf_init (&t->body);
      if (s->provider == PUSH_FCM) {
        json_object_set_new (json_object_get (payload, "message"), "token",
                             json_string (tok));
        http_buf_adds (&t->url, s->send_url);
      } else {
        if (strspn (tok, "0123456789abcdefABCDEF") != strlen (tok)) {
          /* Not a device token at all: dead without asking Apple. */
          t->outcome = PT_DEAD;
          snprintf (t->err, sizeof t->err, "apns: token is not hexadecimal");
          t->req.url = NULL;
          continue;
        }
        http_buf_printf (&t->url, "%s/3/device/%s", s->base_url, tok);
      }
      text = json_dumps (payload, JSON_COMPACT);
      http_buf_adds (&t->body, text ? text : "");
      free (text);
      if (t->body.len > PUSH_MAX_PAYLOAD) {
        t->outcome = PT_REJECT;
        snprintf (t->err, sizeof t->err, "push: payload of %zu bytes exceeds %d",
                  t->body.len, PUSH_MAX_PAYLOAD);
        continue;
      }
      t->req.url = t->url.data;
      t->req.body = t->body.data;
      t->req.body_len = t->body.len;
      t->outcome = -1;            /* to be sent */
    }
    json_decref (payload);
    if (ntok == before)
      http_result_set (results[i], HERALD_REJECTED,
                       "push: no device token for this channel's platforms");
  }
  first[n] = ntok;

  /* 2. Credentials, then everything in flight at once; a refused
   * credential is refreshed once and its requests resent. */
  reqs = http_xcalloc (ntok + 1, sizeof *reqs);
  for (;;) {
    if (push_credential (s, refreshed, &cred_outcome, &cred_retry, err,
                         sizeof err) < 0) {
      for (j = 0; j < ntok; j++)
        if (toks[j].outcome == -1 || toks[j].outcome == PT_AUTH) {
          toks[j].outcome = cred_outcome;
          toks[j].retry_ms = cred_retry;
          snprintf (toks[j].err, sizeof toks[j].err, "%s", err);
        }
      break;
    }
    nreq = 0;
    for (j = 0; j < ntok; j++)
      if (toks[j].outcome == -1 || toks[j].outcome == PT_AUTH) {
        push_tok_headers (s, &toks[j], msgs[toks[j].msg]->key);
        reqs[nreq++] = &toks[j].req;
      }
    if (!nreq)
      break;
    http_client_run (s->http, reqs, nreq);
    for (j = 0; j < nreq; j++)
      push_classify (s, (struct push_tok *) ((char *) reqs[j]
                                             - offsetof (struct push_tok, req)));
    if (refreshed)
      break;
    refreshed = 1;
    for (j = 0; j < ntok; j++)
      if (toks[j].outcome == PT_AUTH)
        break;
    if (j == ntok)
      break;
  }

  /* APNs: after 429, 500 or 503, retry "on a new connection". */
  if (s->provider == PUSH_APNS) {
    for (j = 0; j < ntok; j++)
      if (toks[j].outcome == PT_RETRY && (toks[j].req.status == 429
                                          || toks[j].req.status == 500
                                          || toks[j].req.status == 503))
        break;
    if (j < ntok)
      http_client_reconnect (s->http);
  }

  /* 3. One result per message from its tokens' outcomes. */
  for (i = 0; i < n; i++) {
    struct herald_result *res = results[i];
    size_t nt = first[i + 1] - first[i], ok = 0, dead = 0, retry = 0;
    size_t chan = 0;
    int64_t after = 0;
    const char *firsterr = NULL, *chanerr = NULL, *retryerr = NULL;
    if (!nt)
      continue;
    for (j = first[i]; j < first[i + 1]; j++) {
      struct push_tok *t = &toks[j];
      if (t->outcome == PT_AUTH) {
        t->outcome = PT_CHANNEL;   /* refused even after a refresh */
      }
      switch (t->outcome) {
      case PT_OK:
        if (!ok++)
          http_result_sent (res, t->id, strlen (t->id));
        break;
      case PT_DEAD:
        dead++;
        if (res->to_invalid)
          res->to_invalid[t->addr] = 1;
        break;
      case PT_RETRY:
        retry++;
        if (t->retry_ms > after)
          after = t->retry_ms;
        if (!retryerr)
          retryerr = t->err;
        break;
      case PT_CHANNEL:
        chan++;
        if (!chanerr)
          chanerr = t->err;
        break;
      default:
        break;
      }
      if (t->outcome != PT_OK && !firsterr)
        firsterr = t->err;
    }
    snprintf (res->detail, sizeof res->detail,
              "{\"tokens\":%zu,\"sent\":%zu,\"invalid\":%zu}", nt, ok, dead);
    if (ok)
      continue;               /* sent to at least one device */
    if (dead == nt)
      http_result_set (res, HERALD_INVALID_ADDRESS, "%s", firsterr);
    else if (chan)
      http_result_set (res, HERALD_CHANNEL_ERROR, "%s", chanerr);
    else if (retry) {
      http_result_set (res, HERALD_RETRY, "%s", retryerr);
      res->retry_after_ms = after;
    } else
      http_result_set (res, HERALD_REJECTED, "%s", firsterr ? firsterr : "push: failed");
  }

  for (j = 0; j < ntok; j++) {
    http_req_free (&toks[j].req);
    curl_slist_free_all (toks[j].headers);
    http_buf_free (&toks[j].url);
    http_buf_free (&toks[j].body);
  }
  free (toks);
  free (reqs);
  free (first);
  return 0;
}

static const struct herald_plugin push_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "push",
  .version = PACKAGE_VERSION,
  .description = "Mobile push through FCM HTTP v1 or APNs (libcurl, HTTP/2)",
  .channels = push_channels,
  .config_keys = push_config_keys,
  .secret_keys = push_secret_keys,
  .open = push_open,
  .close = push_close,
  .send = push_send,
};

HERALD_REGISTER_PLUGIN (push_plugin)
