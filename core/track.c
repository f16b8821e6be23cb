/* track: herald serve's click and open endpoints (see track.h).  It must
 * never redirect without a valid token, and never fail a customer's
 * click because the store did. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "track.h"
#include "util.h"

/* Several links of one message clicked within this: a scanner following
 * every link, not a reader. */
#define TRACK_BURST_MS 1000

/* The 43-byte transparent GIF: GIF89a, 1x1, a two-colour table, a
 * graphic control extension making colour 0 transparent, one pixel of
 * colour 0. */
static const unsigned char track_gif[43] = {
  'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
  0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
  0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00,
  0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
  0x02, 0x02, 0x44, 0x01, 0x00, 0x3b
};

/* User-Agent substrings (compared without regard to case) of programs
 * that fetch links and images by themselves: crawlers and link-preview
 * fetchers (chat apps unfurl a shared link), headless browsers, the HTTP
 * libraries scanners are written with, and mail security gateways'
 * link scanners.  Short on purpose: a false "machine" hides a real
 * reader, so only names no browser sends. */
static const char *const track_machine_agents[] = {
  "bot/", "bot;", "bot)", "bingpreview", "spider", "crawler",
  "facebookexternalhit", "slackbot", "whatsapp", "skypeuripreview",
  "headlesschrome", "phantomjs",
  "python-requests", "python-urllib", "curl/", "wget/", "go-http-client",
  "java/", "libwww-perl", "apache-httpclient",
  "barracuda", "mimecast", "proofpoint",
  NULL
};

int
track_init (struct track *t, struct store *st, const struct gateway *gw)
{
  memset (t, 0, sizeof *t);
  t->st = st;
  t->machine_window_ms = gw->tracking_machine_window * 1000;
  return token_track_key_init (&t->key, gw->tracking_secret);
}

void
track_free (struct track *t)
{
  token_key_free (&t->key);
}

int
track_path (const char *url)
{
  return strncmp (url, "/c/", 3) == 0 || strncmp (url, "/o/", 3) == 0
         || strncmp (url, "/s/", 3) == 0;
}

const char *
track_machine_request (const char *method, const char *agent)
{
  size_t i;

  if (strcmp (method, "HEAD") == 0)
    return "head";
  if (!agent || !*agent)
    return "agent";
  for (i = 0; track_machine_agents[i]; i++)
    if (strcasestr (agent, track_machine_agents[i]))
      return "agent";
  return NULL;
}

const char *
track_machine_timing (int64_t sent_at, int64_t now_ms, int64_t window_ms)
{
  if (sent_at <= 0)
    return "unsent";
  if (now_ms - sent_at * 1000 < window_ms)
    return "fast";
  return NULL;
}

/* ---- answers ------------------------------------------------------- */

static enum MHD_Result
track_reply (struct MHD_Connection *c, unsigned status, const char *type,
             const void *body, size_t len, const char *location)
{
  struct MHD_Response *r;
  enum MHD_Result ret;

  r = MHD_create_response_from_buffer (len, (void *) body,
                                       MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  /* Every open and click must reach us, not a cache. */
  MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (location && MHD_add_response_header (r, MHD_HTTP_HEADER_LOCATION,
                                           location) == MHD_NO) {
    MHD_destroy_response (r);
    return MHD_NO;
  }
  ret = MHD_queue_response (c, status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
track_not_found (struct MHD_Connection *c)
{
  static const char text[] = "This link is not valid.\n";
  /* The same answer for a forged, mangled or truncated token. */
  return track_reply (c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                      text, sizeof text - 1, NULL);
}

/* URL[0..LEN) as a Location value: bytes past ASCII, space, '"', '<' and
 * '>' percent-encoded, which the WHATWG URL parser does anyway wherever
 * they are allowed (RFC 9110 section 5.5: a field value is visible
 * ASCII). */
static char *
track_location (const char *url, size_t len)
{
  static const char hex[] = "0123456789ABCDEF";
  struct strbuf b = STRBUF_INIT;
  size_t i;

  strbuf_grow (&b, len);
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char) url[i];
    if (ch >= 0x80 || ch == ' ' || ch == '"' || ch == '<' || ch == '>') {
      strbuf_addc (&b, '%');
      strbuf_addc (&b, hex[ch >> 4]);
      strbuf_addc (&b, hex[ch & 15]);
    }
    else
      strbuf_addc (&b, (char) ch);
  }
  return b.s ? b.s : xstrdup ("");
}

/* ---- recording ----------------------------------------------------- */

/* The burst rule's look at a message's recent clicks. */
struct burst {
  struct store *st;
  int found;
  int failed;
};

static int
burst_click (void *data, int64_t id, int64_t at_ms, const char *detail,
             const char *machine)
{
  struct burst *b = data;

  (void) at_ms;
  (void) machine;
  (void) detail;
  /* Another link of the message (the store left out this link's clicks,
   * whose detail is the same text): this click and that one are a
   * scanner's. */
  b->found = 1;
  if (store_event_set_machine (b->st, id, "burst") < 0)
    b->failed = 1;
  return b->failed;
}

/* Record TYPE ("clicked" or "opened") of message KEY (URL: a click's
 * link, else NULL) on the channel of its outbox row, or CHANNEL when it
 * has none.  0, or -1 on a store failure (logged). */
static int
track_record (struct track *t, struct MHD_Connection *c, const char *method,
              const char *type, const char *key, const char *url,
              size_t url_len, const char *channel)
{
  const char *agent = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_USER_AGENT);
  struct outbox_row *row = NULL;
  struct store_event ev;
  struct burst b;
  json_t *j = NULL;
  char *campaign = NULL, *customer = NULL, *detail = NULL;
  const char *machine, *colon;
  int64_t now = now_ms ();
  int rc = -1;

  memset (&ev, 0, sizeof ev);
  if (store_begin (t->st) < 0)
    goto out;
  if (store_outbox_get (t->st, key, &row) < 0)
    goto out;
  if (row) {
    customer = xstrdup (row->customer);
    campaign = xstrdup (row->campaign);
    ev.channel = row->channel ? row->channel : channel;
  }
  else {
    /* No row: a preview's link.  The key is campaign:step:customer. */
    colon = strchr (key, ':');
    campaign = colon ? xstrndup (key, (size_t) (colon - key)) : NULL;
    colon = colon ? strchr (colon + 1, ':') : NULL;
    customer = xstrdup (colon ? colon + 1 : key);
    ev.channel = channel;
  }
  machine = track_machine_request (method, agent);
  if (!machine)
    machine = track_machine_timing (row && strcmp (row->state, "sent") == 0
                                    ? row->sent_at : 0, now,
                                    t->machine_window_ms);
  if (url) {
    json_t *s = json_stringn (url, url_len);
    if (!s) {                  /* not UTF-8: keep what the redirect sent */
      char *loc = track_location (url, url_len);
      s = json_string (loc);
      free (loc);
    }
    j = json_object ();
    json_object_set_new (j, "url", s);
    detail = json_dumps (j, JSON_COMPACT);

    memset (&b, 0, sizeof b);
    b.st = t->st;
    /* The clicks of the last second on the message's other links: a
     * click's detail is this very text for the same URL, so the store
     * leaves the same link's out (a hot link costs no more per click). */
    if (store_message_events_except (t->st, key, "clicked", detail,
                                     now - TRACK_BURST_MS, now, burst_click,
                                     &b) < 0 || b.failed)
      goto out;
    if (b.found && !machine)
      machine = "burst";
  }
  ev.customer = customer;
  ev.type = type;
  ev.at = now / 1000;
  ev.at_ms = now;
  ev.campaign = campaign;
  ev.message_key = key;
  ev.detail_json = detail;
  ev.machine = machine;
  if (store_event_record (t->st, &ev) < 0 || store_commit (t->st) < 0)
    goto out;
  rc = 0;
out:
  if (rc < 0) {
    fprintf (stderr, "herald serve: recording a %s of %s: %s\n",
             strcmp (type, "clicked") == 0 ? "click" : "open", key,
             store_error (t->st));
    store_rollback (t->st);
  }
  store_row_free (row);
  json_decref (j);
  free (customer);
  free (campaign);
  free (detail);
  return rc;
}

/* ---- the endpoints ------------------------------------------------- */

/* 1 when URL[0..LEN) holds a control character: linkrewrite never signs
 * such a URL, and a header must not carry one whatever was signed. */
static int
track_has_control (const char *url, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++)
    if ((unsigned char) url[i] < 0x20 || url[i] == 0x7f)
      return 1;
  return 0;
}

/* A click on the short link TOK (/s/TOK): the link's message key and URL
 * come from the store, and the token's MAC must be theirs. */
static enum MHD_Result
track_short (struct track *t, struct MHD_Connection *c, const char *method,
             const char *tok)
{
  struct token_short ts;
  enum MHD_Result ret;
  char *key = NULL, *url = NULL, *loc;
  size_t len = 0;
  int rc;

  if (token_short_read (tok, &ts) < 0)
    return track_not_found (c);
  rc = store_link_get (t->st, ts.id, &key, &url, &len);
  if (rc < 0) {
    /* Unlike /c/, the URL is in the store alone: nowhere to send the
     * reader.  Ask them to come back rather than call the link bad. */
    static const char text[] = "Please try again in a moment.\n";
    struct MHD_Response *r;

    fprintf (stderr, "herald serve: reading short link %lld: %s\n",
             (long long) ts.id, store_error (t->st));
    r = MHD_create_response_from_buffer (sizeof text - 1, (void *) text,
                                         MHD_RESPMEM_PERSISTENT);
    if (!r)
      return MHD_NO;
    MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE,
                             "text/plain; charset=utf-8");
    MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (r, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    ret = MHD_queue_response (c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
    MHD_destroy_response (r);
    return ret;
  }
  /* No such link and a wrong MAC get the same answer. */
  if (rc == 1 || token_short_verify (&t->key, &ts, key, url, len) < 0
      || track_has_control (url, len)) {
    free (key);
    free (url);
    return track_not_found (c);
  }
  track_record (t, c, method, "clicked", key, url, len, "sms");
  loc = track_location (url, len);
  ret = track_reply (c, MHD_HTTP_FOUND, "text/plain; charset=utf-8", "", 0,
                     loc);
  free (loc);
  free (key);
  free (url);
  return ret;
}

enum MHD_Result
track_request (struct track *t, struct MHD_Connection *c, const char *method,
               const char *url)
{
  struct token_track tt;
  enum MHD_Result ret;
  int click = url[1] == 'c';
  char *tok, *loc;
  size_t n;

  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
    static const char text[] = "GET\n";
    struct MHD_Response *r =
      MHD_create_response_from_buffer (sizeof text - 1, (void *) text,
                                       MHD_RESPMEM_PERSISTENT);
    if (!r)
      return MHD_NO;
    MHD_add_response_header (r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response (c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response (r);
    return ret;
  }
  if (url[1] == 's')
    return track_short (t, c, method, url + 3);
  tok = xstrdup (url + 3);
  n = strlen (tok);
  if (!click) {
    if (n < 4 || strcmp (tok + n - 4, ".gif") != 0) {
      free (tok);
      return track_not_found (c);
    }
    tok[n - 4] = '\0';
  }
  if (token_track_check (&t->key, tok, &tt) < 0
      || tt.kind != (click ? 'c' : 'o')) {
    free (tt.payload);
    free (tok);
    return track_not_found (c);
  }
  free (tok);
  if (!click) {
    track_record (t, c, method, "opened", tt.key, NULL, 0, "email");
    free (tt.payload);
    return track_reply (c, MHD_HTTP_OK, "image/gif", track_gif,
                        sizeof track_gif, NULL);
  }
  if (track_has_control (tt.url, tt.url_len)) {
    free (tt.payload);
    return track_not_found (c);
  }
  track_record (t, c, method, "clicked", tt.key, tt.url, tt.url_len,
                "email");
  loc = track_location (tt.url, tt.url_len);
  ret = track_reply (c, MHD_HTTP_FOUND, "text/plain; charset=utf-8", "", 0,
                     loc);
  free (loc);
  free (tt.payload);
  return ret;
}
