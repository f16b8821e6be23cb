/* chat.c: a sample third-party Herald plugin, built outside Herald's tree.
 *
 * It declares a channel kind of its own, "chat" (ABI 2), whose address
 * is the customer's chat_id (addresses.chat_id, else attributes.chat_id)
 * and whose one template part is chat.text.  For each message it POSTs
 *   {"chat_id": "...", "text": "..."}
 * to the channel's url with libcurl, with the message key as
 * Idempotency-Key so a receiver can drop a resend.
 *
 *   [channel.chat]
 *   plugin = chat
 *   kind = chat
 *   url = https://chat.example.com/send
 *   timeout_ms = 10000          ; optional, 100 to 600000
 *
 * Answers: 2xx sent (the body's first line, if any, is the provider id),
 * 410 the chat is gone (the core suppresses the chat_id), 429 and 5xx
 * retry later (honouring Retry-After in seconds), other 4xx rejected.
 * Every function is static except the entry point; all names start chat_.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <herald/plugin.h>

struct chat_state {
  const struct herald_host *host;
  char *url;
  long timeout_ms;
  CURL *curl;                 /* one handle: connections are reused */
};

/* The response body, kept short: only its first line is used. */
struct chat_buf {
  char data[HERALD_ID_MAX];
  size_t len;
};

static const char *const chat_channels[] = { "chat", NULL };
static const char *const chat_config_keys[] = { "url", "timeout_ms", NULL };
static const char *const chat_required[] = { "chat.text", NULL };

static const struct herald_kind chat_kind = {
  HERALD_KIND_INIT,
  .name = "chat",
  .address_field = "chat_id",
  .required_parts = chat_required,
  .optional_parts = NULL,
};
static const struct herald_kind *const chat_kinds[] = { &chat_kind, NULL };

static pthread_once_t chat_once = PTHREAD_ONCE_INIT;

static void
chat_global_init (void)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
}

/* "FILE:LINE: [channel.NAME] KEY: " + message, as Herald's own plugins. */
static void
chat_conf_error (const struct herald_host *h, const char *key, char *err,
                 size_t errlen, const char *msg, const char *value)
{
  int line = h->config_line (h->data, key);

  snprintf (err, errlen, "%s:%d: [channel.%s] %s: %s%s%s%s", h->config_file,
            line, h->channel_name, key, value ? "'" : "", value ? value : "",
            value ? "' " : "", msg);
}

/* Reads and checks the keys; no effect.  0, or -1 with err. */
static int
chat_read_config (const struct herald_host *h, const char **url_r,
                  long *timeout_r, char *err, size_t errlen)
{
  const char *url = h->config_get (h->data, "url");
  const char *t = h->config_get (h->data, "timeout_ms");

  if (!url || !*url) {
    chat_conf_error (h, "url", err, errlen, "required (the chat service's "
                     "send URL)", NULL);
    return -1;
  }
  if (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0) {
    chat_conf_error (h, "url", err, errlen, "is not an http or https URL",
                     url);
    return -1;
  }
  *timeout_r = 10000;
  if (t) {
    char *end;
    long v = strtol (t, &end, 10);
    if (end == t || *end || v < 100 || v > 600000) {
      chat_conf_error (h, "timeout_ms", err, errlen,
                       "is not a number from 100 to 600000", t);
      return -1;
    }
    *timeout_r = v;
  }
  *url_r = url;
  return 0;
}

static int
chat_config_check (const struct herald_host *h, char *err, size_t errlen)
{
  const char *url;
  long timeout;

  return chat_read_config (h, &url, &timeout, err, errlen);
}

static void
chat_close (void *vs)
{
  struct chat_state *s = vs;

  if (!s)
    return;
  if (s->curl)
    curl_easy_cleanup (s->curl);
  free (s->url);
  free (s);
}

static int
chat_open (const struct herald_host *h, void **state_r, char *err,
           size_t errlen)
{
  struct chat_state *s;
  const char *url;
  long timeout;

  if (chat_read_config (h, &url, &timeout, err, errlen) < 0)
    return -1;
  pthread_once (&chat_once, chat_global_init);
  s = calloc (1, sizeof *s);
  if (!s || !(s->url = strdup (url)) || !(s->curl = curl_easy_init ())) {
    snprintf (err, errlen, "chat: out of memory");
    chat_close (s);
    return -1;
  }
  s->host = h;
  s->timeout_ms = timeout;
  *state_r = s;
  return 0;
}

/* A growing text: the request body. */
struct chat_text {
  char *s;
  size_t len, cap;
  int failed;                 /* out of memory */
};

static void
chat_add (struct chat_text *t, const char *s, size_t n)
{
  if (t->failed)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *ns = realloc (t->s, cap);
    if (!ns) {
      t->failed = 1;
      return;
    }
    t->s = ns;
    t->cap = cap;
  }
  memcpy (t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

/* S[0..LEN) as a JSON string (RFC 8259 section 7): quote, backslash and
 * control characters escaped; UTF-8 passes as it is. */
static void
chat_add_json (struct chat_text *t, const char *s, size_t len)
{
  size_t i;

  chat_add (t, "\"", 1);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char) s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char) c;
      chat_add (t, esc, 2);
    }
    else if (c < 0x20)
      chat_add (t, esc, (size_t) snprintf (esc, sizeof esc, "\\u%04x", c));
    else
      chat_add (t, s + i, 1);
  }
  chat_add (t, "\"", 1);
}

static size_t
chat_write (char *p, size_t size, size_t n, void *data)
{
  struct chat_buf *b = data;
  size_t len = size * n, room = sizeof b->data - 1 - b->len;

  memcpy (b->data + b->len, p, len < room ? len : room);
  b->len += len < room ? len : room;
  b->data[b->len] = '\0';
  return len;
}

static size_t
chat_header (char *p, size_t size, size_t n, void *data)
{
  long *retry_after = data;
  size_t len = size * n;

  if (len > 12 && strncasecmp (p, "Retry-After:", 12) == 0)
    *retry_after = strtol (p + 12, NULL, 10);
  return len;
}

static void
chat_send_one (struct chat_state *s, const struct herald_message *m,
               struct herald_result *r)
{
  const struct herald_part *text = herald_message_part (m, "chat.text");
  struct chat_text body = { NULL, 0, 0, 0 };
  char *hdr = NULL;
  size_t hlen;
  struct curl_slist *hl = NULL;
  struct chat_buf resp = { .len = 0 };
  long status = 0, retry_after = 0;
  CURLcode cc;

  if (!text || m->n_to < 1) {
    r->status = HERALD_REJECTED;
    snprintf (r->error, sizeof r->error, "no chat.text or no chat_id");
    return;
  }
  chat_add (&body, "{\"chat_id\": ", 12);
  chat_add_json (&body, m->to[0]->value, strlen (m->to[0]->value));
  chat_add (&body, ", \"text\": ", 10);
  chat_add_json (&body, text->data, text->len);
  chat_add (&body, "}", 1);
  if (body.failed)
    goto oom;

  hlen = strlen (m->key) + 32;
  hdr = malloc (hlen);
  if (!hdr)
    goto oom;
  snprintf (hdr, hlen, "Idempotency-Key: %s", m->key);
  hl = curl_slist_append (hl, "Content-Type: application/json");
  hl = curl_slist_append (hl, "Expect:");
  hl = curl_slist_append (hl, hdr);
  curl_easy_reset (s->curl);
  curl_easy_setopt (s->curl, CURLOPT_URL, s->url);
  curl_easy_setopt (s->curl, CURLOPT_POSTFIELDS, body.s);
  curl_easy_setopt (s->curl, CURLOPT_POSTFIELDSIZE, (long) body.len);
  curl_easy_setopt (s->curl, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt (s->curl, CURLOPT_TIMEOUT_MS, s->timeout_ms);
  curl_easy_setopt (s->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (s->curl, CURLOPT_WRITEFUNCTION, chat_write);
  curl_easy_setopt (s->curl, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt (s->curl, CURLOPT_HEADERFUNCTION, chat_header);
  curl_easy_setopt (s->curl, CURLOPT_HEADERDATA, &retry_after);
  cc = curl_easy_perform (s->curl);
  if (cc != CURLE_OK) {
    r->status = HERALD_RETRY;
    snprintf (r->error, sizeof r->error, "chat: %s", curl_easy_strerror (cc));
    goto out;
  }
  curl_easy_getinfo (s->curl, CURLINFO_RESPONSE_CODE, &status);
  resp.data[strcspn (resp.data, "\r\n")] = '\0';
  if (status >= 200 && status < 300) {
    r->status = HERALD_SENT;
    snprintf (r->provider_id, sizeof r->provider_id, "%s",
              *resp.data ? resp.data : m->key);
  }
  else {
    r->status = status == 410 ? HERALD_INVALID_ADDRESS
                : status == 429 || status >= 500 ? HERALD_RETRY
                : HERALD_REJECTED;
    if (r->status == HERALD_RETRY && retry_after > 0)
      r->retry_after_ms = retry_after * 1000;
    snprintf (r->error, sizeof r->error, "HTTP %ld %s", status, resp.data);
  }
  goto out;

oom:
  r->status = HERALD_RETRY;
  snprintf (r->error, sizeof r->error, "chat: out of memory");
out:
  curl_slist_free_all (hl);
  free (hdr);
  free (body.s);
}

static int
chat_send (void *vs, const struct herald_message *const *messages,
           size_t n, struct herald_result *const *results)
{
  struct chat_state *s = vs;
  size_t i;

  for (i = 0; i < n; i++)
    chat_send_one (s, messages[i], results[i]);
  return 0;
}

static const struct herald_plugin chat_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "chat",
  .version = "1.0",
  .description = "sample third-party plugin: a chat kind over HTTP POST",
  .channels = chat_channels,
  .config_keys = chat_config_keys,
  .open = chat_open,
  .close = chat_close,
  .send = chat_send,
  .kinds = chat_kinds,
  .config_check = chat_config_check,
};

HERALD_REGISTER_PLUGIN (chat_plugin)
