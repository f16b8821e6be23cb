/* serve: the tracking server, `herald serve`.
 *
 * What customers do comes back here:
 *   GET  /u/TOKEN        a page asking to confirm the unsubscribe (a GET
 *                        changes nothing: mail scanners follow links);
 *   POST /u/TOKEN        the unsubscribe itself: the one-click POST of RFC
 *                        8058 ("List-Unsubscribe=One-Click"), or the
 *                        page's button.  Consent for that channel is
 *                        withdrawn and an "unsubscribed" event recorded;
 *   POST /inbound/NAME/… a provider's callback for [channel.NAME], handed
 *                        to its plugin's inbound entry, which checks the
 *                        signature and reports events (delivered, failed,
 *                        a STOP or START reply...);
 *   POST /events         events as JSON lines, what `herald events import`
 *                        takes, with "Authorization: Bearer" and
 *                        [tracking] events_token: all or nothing;
 *   GET  /c/TOKEN        a click: recorded, then 302 to the link (track.c);
 *   GET  /o/TOKEN.gif    an open: recorded, then a transparent GIF;
 *   ANY  /healthz        "ok", to any method, before any body;
 *   GET  /metrics        the Prometheus metrics (metrics.c), with
 *                        "Authorization: Bearer" when [tracking]
 *                        metrics_token is set.
 * Paths are those below [tracking] base_url (a reverse proxy in front
 * strips any prefix).  libmicrohttpd runs every request on one internal
 * thread, which alone uses the store and the plugins (/metrics reads
 * the store on a thread and a connection of its own); the main thread
 * waits for SIGTERM or SIGINT and, once a second, closes the connections
 * that are too slow (see "slow clients").  A client must never be able to
 * keep the server from answering others. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "config.h"
#include "feedback.h"
#include "import.h"
#include "loader.h"
#include "main.h"
#include "run.h"
#include "journey.h"
#include "metrics.h"
#include "serve.h"
#include "store.h"
#include "token.h"
#include "track.h"
#include "util.h"

/* A request body (the events of one POST /events, a provider's callback)
 * is at most this; a bigger one gets 413 as soon as it is known to be. */
#define SERVE_MAX_BODY (64 * 1024)
#define SERVE_MAX_BODY_TEXT "65536 bytes (64 KiB)"
#define SERVE_MAX_HEADERS 64

/* Slow clients (see "slow clients" below).  A request head must be in
 * within HEAD_MS of the connection (or of the previous answer on a kept-
 * alive one), its body within BODY_MS of the head.  libmicrohttpd's own
 * timeout, IDLE_S, is for inactivity: a client that sends a byte now and
 * then never meets it. */
#define SERVE_HEAD_MS 5000
#define SERVE_BODY_MS 30000
#define SERVE_IDLE_S 30
/* Connections at once, if RLIMIT_NOFILE allows (the soft limit is raised
 * to fit, up to the hard one), leaving RESERVE descriptors to the store,
 * the plugins and the logs; and per client address by default. */
#define SERVE_MAX_CONNECTIONS 4000
#define SERVE_FD_RESERVE 64
#define SERVE_PER_CLIENT 32

/* One open connection, for the deadlines: created and freed on the
 * server's thread (MHD_OPTION_NOTIFY_CONNECTION), its deadline read and
 * acted on by the main thread, all under server.lock. */
struct conn {
  struct conn *prev, *next;
  int fd;
  int64_t deadline;            /* monotonic ms; 0: none (answering) */
};

struct server {
  struct gateway *gw;
  struct store *st;
  struct token_key key;
  int key_ready;
  const char *events_token;    /* [tracking] events_token, or NULL */
  struct channel **ch;         /* parallel to gw->channels; NULL: no inbound */
  int quiet_close;             /* refuse_mid_body just closed one */
  pthread_mutex_t lock;        /* conns and every conn's deadline */
  struct conn *conns;
  int64_t log_second;          /* serve_log's rate limit: this second, */
  int log_lines;               /* the lines printed in it, */
  long log_dropped;            /* and those left out */
  struct track track;          /* /c/ and /o/ */
  int track_ready;
  struct metrics *metrics;     /* /metrics, and the counters it shows */
};

/* One request's body, gathered over the upload callbacks. */
struct upload {
  struct strbuf body;
  enum metrics_endpoint endpoint;
  unsigned status;             /* of an answer sent by hand, or 0 */
};

static enum MHD_Result
reply (struct MHD_Connection *c, unsigned status, const char *type,
       const char *body, size_t len)
{
  struct MHD_Response *r;
  enum MHD_Result ret;

  r = MHD_create_response_from_buffer (len, (void *) body,
                                       MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  ret = MHD_queue_response (c, status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
reply_text (struct MHD_Connection *c, unsigned status, const char *text)
{
  return reply (c, status, "text/plain; charset=utf-8", text, strlen (text));
}

static void
html_escape (struct strbuf *b, const char *s)
{
  for (; *s; s++)
    switch (*s) {
    case '&': strbuf_adds (b, "&amp;"); break;
    case '<': strbuf_adds (b, "&lt;"); break;
    case '>': strbuf_adds (b, "&gt;"); break;
    case '"': strbuf_adds (b, "&quot;"); break;
    case '\'': strbuf_adds (b, "&#39;"); break;
    default: strbuf_addc (b, *s);
    }
}

static enum MHD_Result
reply_page (struct MHD_Connection *c, unsigned status, const char *title,
            const char *html_body)
{
  struct strbuf b = STRBUF_INIT;
  enum MHD_Result ret;

  strbuf_adds (&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width\">"
               "<title>");
  html_escape (&b, title);
  strbuf_adds (&b, "</title></head><body>\n");
  strbuf_adds (&b, html_body);
  strbuf_adds (&b, "\n</body></html>\n");
  ret = reply (c, status, "text/html; charset=utf-8", b.s, b.len);
  strbuf_free (&b);
  return ret;
}

/* ---- /u/TOKEN ------------------------------------------------------ */

static enum MHD_Result
unsubscribe (struct server *sv, struct MHD_Connection *c, const char *method,
             const char *token)
{
  struct strbuf page = STRBUF_INIT;
  char *payload, *campaign, *channel;
  size_t len;
  enum MHD_Result ret;

  /* customer "\n" campaign "\n" channel: split from the right, since a
   * campaign id or a channel kind never holds a newline and a customer id
   * might. */
  payload = sv->key_ready ? token_check (&sv->key, token, &len) : NULL;
  channel = payload ? memrchr (payload, '\n', len) : NULL;
  campaign = channel && channel > payload
             ? memrchr (payload, '\n', (size_t) (channel - payload)) : NULL;
  if (!campaign || campaign == payload || memchr (payload, '\0', len)) {
    free (payload);
    /* The same answer for a forged token as for a mangled one. */
    return reply_page (c, MHD_HTTP_NOT_FOUND, "Link not valid",
                       "<p>This unsubscribe link is not valid. Copy the whole "
                       "link from the message, or reply to it.</p>");
  }
  *campaign++ = '\0';
  *channel++ = '\0';

  if (strcmp (method, "POST") != 0) {
    strbuf_adds (&page, "<p>Stop receiving ");
    html_escape (&page, channel);
    strbuf_adds (&page, " messages like this one?</p>\n"
                 "<form method=\"post\"><input type=\"hidden\" "
                 "name=\"List-Unsubscribe\" value=\"One-Click\">"
                 "<button type=\"submit\">Unsubscribe</button></form>");
    ret = reply_page (c, MHD_HTTP_OK, "Unsubscribe", page.s);
    strbuf_free (&page);
    free (payload);
    return ret;
  }
  /* The event withdraws the consent in the same transaction (store.c);
   * recorded again (a second click in the same second) it is one event. */
  if (store_event_put (sv->st, payload, channel, "unsubscribed",
                       now_seconds (), campaign, NULL, NULL) < 0) {
    fprintf (stderr, "herald serve: %s\n", store_error (sv->st));
    free (payload);
    return reply_text (c, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "could not record the unsubscribe; try again\n");
  }
  fprintf (stderr, "herald serve: customer %s unsubscribed from %s "
           "(campaign %s)\n", payload, channel, campaign);
  strbuf_adds (&page, "<p>Done: you will not receive ");
  html_escape (&page, channel);
  strbuf_adds (&page, " messages from us any more.</p>");
  ret = reply_page (c, MHD_HTTP_OK, "Unsubscribed", page.s);
  strbuf_free (&page);
  free (payload);
  return ret;
}

/* ---- /inbound/NAME/... --------------------------------------------- */

struct inbound {
  struct server *sv;
  const char *kind;            /* the channel's kind: email, sms... */
  int failed;
  int in_tx;                   /* the first event began the transaction */
};

struct inbound_one {
  struct inbound *in;
  const struct herald_event *ev;
  const char *campaign;        /* the message's, when its provider id */
  const char *message_key;     /* named it; else NULL */
  const char *address_json;    /* where the message went (its outbox
                                * row's address), else the event's
                                * address as a JSON string, or NULL */
};

/* Whether TYPE is a bounce or a complaint, with its kind in *KIND_R: those
 * go through feedback_record, as herald bounces import's do, so that both
 * have the same effect (feedback.h). */
static int
inbound_feedback (const char *type, enum feedback_kind *kind_r)
{
  if (strcmp (type, "bounced") == 0)
    *kind_r = FEEDBACK_HARD;
  else if (strcmp (type, "soft_bounced") == 0)
    *kind_r = FEEDBACK_SOFT;
  else if (strcmp (type, "complained") == 0)
    *kind_r = FEEDBACK_COMPLAINT;
  else
    return 0;
  return 1;
}

static int
inbound_customer (void *data, const char *customer)
{
  struct inbound_one *o = data;
  const struct herald_event *ev = o->ev;
  struct store *st = o->in->sv->st;
  int64_t at = ev->at ? ev->at : now_seconds ();
  enum feedback_kind kind;

  if (strcmp (ev->type, "resubscribed") == 0) {
    if (store_consent_set (st, customer, o->in->kind, 1, at, "resubscribed") < 0)
      o->in->failed = 1;
  }
  else if (inbound_feedback (ev->type, &kind)) {
    struct feedback_policy policy = { o->in->sv->gw->bounces_soft_limit,
                                      o->in->sv->gw->bounces_soft_window };
    struct feedback f;
    memset (&f, 0, sizeof f);
    f.kind = kind;
    f.customer = customer;
    f.channel = o->in->kind;
    f.campaign = o->campaign;
    f.message_key = o->message_key;
    f.address_json = o->address_json;
    f.at = at;
    f.detail = ev->detail;
    if (feedback_record (st, &policy, &f, NULL) < 0)
      o->in->failed = 1;
  }
  else if (store_event_put (st, customer, o->in->kind, ev->type, at,
                            o->campaign, o->message_key, ev->detail) < 0)
    o->in->failed = 1;
  return o->in->failed;
}

/* The event types a plugin may report (plugin.h). */
static int
inbound_type_known (const char *type)
{
  static const char *const types[] = { "delivered", "failed", "opened",
                                       "clicked", "replied", "unsubscribed",
                                       "resubscribed", "bounced",
                                       "soft_bounced", "complained", NULL };
  size_t i;

  for (i = 0; types[i]; i++)
    if (strcmp (types[i], type) == 0)
      return 1;
  return 0;
}

/* The plugin's sink: an event about ADDRESS applies to every customer
 * with that address on the channel's kind. */
static int
inbound_event (void *data, const struct herald_event *ev)
{
  struct inbound *in = data;
  struct inbound_one o = { in, ev, NULL, NULL, NULL };
  struct outbox_row *row = NULL;
  char *addr_json = NULL;

  if (!ev->type)
    return 0;
  /* The transaction begins with the first event, not before the plugin
   * is called: a plugin may fetch over the network first (an SNS signing
   * certificate), and SQLite's write lock must not wait on that. */
  if (!in->in_tx) {
    if (store_begin (in->sv->st) < 0) {
      in->failed = 1;
      return -1;
    }
    in->in_tx = 1;
  }
  /* Loudly: a plugin that reports what Herald does not know is a bug to
   * fix (the callback is answered, so the provider does not retry it). */
  if (!inbound_type_known (ev->type)) {
    struct strbuf t = STRBUF_INIT;
    strbuf_add_escaped (&t, ev->type, strlen (ev->type));
    fprintf (stderr, "herald serve: channel %s: the plugin reported an event "
             "of unknown type '%s': not recorded\n", in->kind,
             t.s ? t.s : "");
    strbuf_free (&t);
    return 0;
  }
  /* The provider's message id first: the event is that message's (its
   * customer, campaign and key); else every customer with the address. */
  if (ev->provider_id && *ev->provider_id) {
    if (store_outbox_by_provider (in->sv->st, in->kind, ev->provider_id,
                                  &row) < 0)
      return -1;
    if (row) {
      o.campaign = row->campaign;
      o.message_key = row->key;
      o.address_json = row->address;
      inbound_customer (&o, row->customer);
      store_row_free (row);
      return in->failed ? -1 : 0;
    }
  }
  if (!ev->address || !*ev->address)
    return 0;                  /* nobody to attach it to */
  {
    json_t *a = json_string (ev->address);
    addr_json = a ? json_dumps (a, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref (a);
    o.address_json = addr_json;
  }
  if (store_customer_find (in->sv->st, in->kind, ev->address,
                           inbound_customer, &o) < 0)
    in->failed = 1;
  free (addr_json);
  return in->failed ? -1 : 0;
}

struct header_list {
  struct herald_header h[SERVE_MAX_HEADERS];
  size_t n;
};

static enum MHD_Result
collect_header (void *data, enum MHD_ValueKind kind, const char *key,
                const char *value)
{
  struct header_list *l = data;

  (void) kind;
  if (l->n < SERVE_MAX_HEADERS) {
    l->h[l->n].name = key;
    l->h[l->n].value = value ? value : "";
    l->n++;
  }
  return MHD_YES;
}

static enum MHD_Result
inbound (struct server *sv, struct MHD_Connection *c, const char *method,
         const char *url, const char *rest, struct upload *up)
{
  const char *slash = strchr (rest, '/');
  size_t nlen = slash ? (size_t) (slash - rest) : strlen (rest);
  struct header_list hl;
  struct herald_request req;
  struct herald_response resp;
  struct herald_sink sink;
  struct inbound in;
  struct channel *ch = NULL;
  char *full;
  size_t i;
  int rc;

  for (i = 0; i < sv->gw->n_channels; i++)
    if (strlen (sv->gw->channels[i].name) == nlen
        && strncmp (sv->gw->channels[i].name, rest, nlen) == 0)
      ch = sv->ch[i];
  if (!ch)
    return reply_text (c, MHD_HTTP_NOT_FOUND, "no such channel\n");
  hl.n = 0;
  MHD_get_connection_values (c, MHD_HEADER_KIND, collect_header, &hl);
  /* Providers sign the URL they were given: base_url + the path. */
  full = xasprintf ("%s%s", sv->gw->tracking_base_url ? sv->gw->tracking_base_url
                                                      : "", url);
  memset (&req, 0, sizeof req);
  req.struct_size = sizeof req;
  req.method = method;
  req.url = full;
  req.path = slash ? slash : "/";
  req.headers = hl.h;
  req.n_headers = hl.n;
  req.body = up->body.s ? up->body.s : "";
  req.body_len = up->body.len;
  memset (&resp, 0, sizeof resp);
  resp.struct_size = sizeof resp;
  memset (&in, 0, sizeof in);
  in.sv = sv;
  in.kind = ch->kind;
  sink.data = &in;
  sink.event = inbound_event;
  /* The events of one callback land together or not at all: on a store
   * failure the plugin answers 5xx and the provider calls again.  The
   * transaction is begun by the first event (inbound_event). */
  rc = channel_inbound (ch, &req, &sink, &resp);
  /* The plugin's own refusals and failures; a 5xx it gave because the
   * store failed (in.failed) is the store's. */
  if (!in.failed && (rc < 0 || resp.status < 100 || resp.status >= 500))
    metrics_count_plugin_error (sv->metrics, ch->name, 1);
  else if (!in.failed && resp.status >= 400)
    metrics_count_plugin_error (sv->metrics, ch->name, 0);
  if (!in.in_tx)
    ;                          /* nothing was recorded */
  else if (rc < 0 || in.failed || resp.status >= 500)
    store_rollback (sv->st);
  else if (store_commit (sv->st) < 0) {
    store_rollback (sv->st);
    in.failed = 1;
  }
  free (full);
  if (in.failed)
    return reply_text (c, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "could not record the events; try again\n");
  if (rc < 0 || resp.status < 100 || resp.status > 599)
    return reply_text (c, MHD_HTTP_INTERNAL_SERVER_ERROR, "plugin failed\n");
  return reply (c, (unsigned) resp.status,
                resp.content_type[0] ? resp.content_type : "text/plain",
                resp.body, resp.body_len < sizeof resp.body ? resp.body_len
                                                            : sizeof resp.body);
}

/* ---- /events ------------------------------------------------------- */

/* Whether AUTH, an Authorization header, is "Bearer TOKEN".  RFC 7235
 * section 2.1: the scheme is case-insensitive ("bearer" is as good), and
 * one or more spaces separate it from the credentials (1*SP).  The token
 * is compared in constant time. */
static int
bearer_ok (const char *auth, const char *token)
{
  size_t tl = strlen (token);

  if (!auth || strncasecmp (auth, "Bearer", 6) != 0 || auth[6] != ' ')
    return 0;
  for (auth += 6; *auth == ' '; auth++)
    ;
  return strlen (auth) == tl && CRYPTO_memcmp (auth, token, tl) == 0;
}

static enum MHD_Result
events_api (struct server *sv, struct MHD_Connection *c, struct upload *up)
{
  const char *auth = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_AUTHORIZATION);
  struct strbuf report = STRBUF_INIT, msg = STRBUF_INIT;
  long imported, dups;
  enum MHD_Result ret;
  int r;

  if (!bearer_ok (auth, sv->events_token)) {
    struct MHD_Response *resp;
    static const char text[] = "a valid Authorization: Bearer token is needed\n";
    resp = MHD_create_response_from_buffer (sizeof text - 1, (void *) text,
                                            MHD_RESPMEM_PERSISTENT);
    if (!resp)
      return MHD_NO;
    MHD_add_response_header (resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                             "text/plain; charset=utf-8");
    ret = MHD_queue_response (c, MHD_HTTP_UNAUTHORIZED, resp);
    MHD_destroy_response (resp);
    return ret;
  }
  r = import_events_buffer (sv->st, "events", up->body.s ? up->body.s : "",
                            up->body.len, &report, &imported, &dups);
  if (r < 0) {
    fprintf (stderr, "herald serve: events: %s\n", store_error (sv->st));
    strbuf_free (&report);
    return reply_text (c, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "could not record the events; nothing was; try again\n");
  }
  if (r > 0) {
    strbuf_adds (&report, "nothing imported\n");
    ret = reply_text (c, MHD_HTTP_BAD_REQUEST, report.s);
    strbuf_free (&report);
    return ret;
  }
  strbuf_addf (&msg, "imported %ld event%s", imported, imported == 1 ? "" : "s");
  if (dups)
    strbuf_addf (&msg, " (%ld already recorded)", dups);
  strbuf_addc (&msg, '\n');
  ret = reply_text (c, MHD_HTTP_OK, msg.s);
  strbuf_free (&msg);
  strbuf_free (&report);
  return ret;
}

/* ---- bodies over the limit ---------------------------------------- */

static const char too_big_text[] =
  "request body too large: the limit is " SERVE_MAX_BODY_TEXT "\n";

/* Whether the request announces (Content-Length) a body over the limit. */
static int
declared_too_big (struct MHD_Connection *c)
{
  const char *v = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  int64_t n;

  /* libmicrohttpd answered 400 to a malformed one already; a number past
   * int64 is over the limit too. */
  if (!v)
    return 0;
  return parse_int64 (v, 0, INT64_MAX, &n) < 0 || n > SERVE_MAX_BODY;
}

/* Whether the request has a body to come (RFC 9112 section 6.3: a
 * Transfer-Encoding, or a Content-Length other than 0). */
static int
has_body (struct MHD_Connection *c)
{
  const char *cl = MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);

  return MHD_lookup_connection_value (c, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_TRANSFER_ENCODING)
         || (cl && strspn (cl, "0") != strlen (cl));
}

/* 413 for a chunked body that has grown past the limit.  libmicrohttpd
 * 0.9.75 queues a response only before the body is read (the first call)
 * or after all of it (MHD_queue_response refuses in between), and reading
 * the rest could take forever; so the answer is written on the socket here
 * and MHD_NO makes libmicrohttpd close the connection without reading
 * more.  The answer is a few hundred bytes on a connection that has sent
 * nothing back yet (or only "100 Continue"): it fits the socket buffer. */
static enum MHD_Result
refuse_mid_body (struct server *sv, struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci
    = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CONNECTION_FD);
  struct strbuf b = STRBUF_INIT;
  char date[64];
  time_t now = time (NULL);
  struct tm tm;

  /* RFC 9110 section 6.6.1: an origin server with a clock sends Date. */
  strftime (date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT",
            gmtime_r (&now, &tm));
  strbuf_addf (&b, "HTTP/1.1 413 Content Too Large\r\n"
               "Date: %s\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Cache-Control: no-store\r\n"
               "Connection: close\r\n"
               "Content-Length: %zu\r\n\r\n%s",
               date, sizeof too_big_text - 1, too_big_text);
  if (ci && send (ci->connect_fd, b.s, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
    shutdown (ci->connect_fd, SHUT_WR);    /* the answer, then FIN */
  strbuf_free (&b);
  sv->quiet_close = 1;
  return MHD_NO;
}

/* Milliseconds of CLOCK_MONOTONIC (HERALD_NOW does not move it). */
static int64_t
mono_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libmicrohttpd's messages, with the program's prefix.  The one it logs
 * when refuse_mid_body closes a connection ("Application reported internal
 * error") is not one: it is left out. */
static void serve_log (void *cls, const char *fmt, va_list ap)
  __attribute__ ((format (printf, 2, 0)));
static void
serve_log (void *cls, const char *fmt, va_list ap)
{
  struct server *sv = cls;
  char msg[512];
  size_t n;

  vsnprintf (msg, sizeof msg, fmt, ap);
  if (sv->quiet_close) {
    sv->quiet_close = 0;
    if (strstr (msg, "reported internal error"))
      return;
  }
  /* A slow-client attack makes libmicrohttpd log every refused and
   * closed connection: at most 10 lines a second, and a count of the
   * rest. */
  if (sv->log_second != mono_ms () / 1000) {
    if (sv->log_dropped)
      fprintf (stderr, "herald serve: (%ld more messages from "
               "libmicrohttpd left out)\n", sv->log_dropped);
    sv->log_second = mono_ms () / 1000;
    sv->log_lines = 0;
    sv->log_dropped = 0;
  }
  if (sv->log_lines++ >= 10) {
    sv->log_dropped++;
    return;
  }
  n = strlen (msg);
  fprintf (stderr, "herald serve: %s%s", msg,
           n && msg[n - 1] == '\n' ? "" : "\n");
}

/* ---- slow clients -------------------------------------------------- */

/* libmicrohttpd 0.9.75 has two timeouts, MHD_OPTION_CONNECTION_TIMEOUT
 * and MHD_CONNECTION_OPTION_TIMEOUT (per connection), and both count
 * inactivity: a connection that sent one byte of a request head, or sends
 * one every few seconds, is kept.  A thousand of them filled the
 * connection limit, and /healthz went unanswered.  So every connection
 * has a deadline of its own, and the main thread shuts down the socket of
 * any connection past it; libmicrohttpd then reads the end of the stream
 * and closes the connection itself.  The socket is shut down under the
 * lock, and libmicrohttpd closes it only after telling conn_notify (which
 * takes the lock): the descriptor is still that connection's. */

static void
conn_notify (void *cls, struct MHD_Connection *c, void **socket_context,
             enum MHD_ConnectionNotificationCode toe)
{
  struct server *sv = cls;
  struct conn *k = *socket_context;

  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci
      = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k = xcalloc (1, sizeof *k);
    k->fd = ci ? ci->connect_fd : -1;
    k->deadline = mono_ms () + SERVE_HEAD_MS;
    pthread_mutex_lock (&sv->lock);
    k->next = sv->conns;
    if (sv->conns)
      sv->conns->prev = k;
    sv->conns = k;
    pthread_mutex_unlock (&sv->lock);
    *socket_context = k;
  }
  else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && k) {
    pthread_mutex_lock (&sv->lock);
    if (k->prev)
      k->prev->next = k->next;
    else
      sv->conns = k->next;
    if (k->next)
      k->next->prev = k->prev;
    pthread_mutex_unlock (&sv->lock);
    free (k);
    *socket_context = NULL;
  }
}

/* Give C's connection until MS from now (0: no deadline). */
static void
conn_deadline (struct server *sv, struct MHD_Connection *c, int64_t ms)
{
  const union MHD_ConnectionInfo *ci
    = MHD_get_connection_info (c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  struct conn *k = ci ? ci->socket_context : NULL;

  if (!k)
    return;
  pthread_mutex_lock (&sv->lock);
  k->deadline = ms ? mono_ms () + ms : 0;
  pthread_mutex_unlock (&sv->lock);
}

/* The main thread, once a second: shut down the connections past their
 * deadline.  Returns how many. */
static long
conns_expire (struct server *sv)
{
  int64_t now = mono_ms ();
  struct conn *k;
  long n = 0;

  pthread_mutex_lock (&sv->lock);
  for (k = sv->conns; k; k = k->next)
    if (k->deadline && now >= k->deadline && k->fd >= 0) {
      shutdown (k->fd, SHUT_RDWR);
      k->deadline = 0;
      n++;
    }
  pthread_mutex_unlock (&sv->lock);
  return n;
}

/* Raise RLIMIT_NOFILE's soft limit to fit SERVE_MAX_CONNECTIONS if the
 * hard one allows, and return the connection limit it leaves room for. */
static unsigned
connection_limit (void)
{
  rlim_t want = SERVE_MAX_CONNECTIONS + SERVE_FD_RESERVE, have;
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return 1000;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    struct rlimit up = rl;
    up.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want
                  ? rl.rlim_max : want;
    if (setrlimit (RLIMIT_NOFILE, &up) == 0)
      rl = up;
  }
  have = rl.rlim_cur == RLIM_INFINITY ? want : rl.rlim_cur;
  if (have < SERVE_FD_RESERVE + 16)
    return 16;
  have -= SERVE_FD_RESERVE;
  return have > SERVE_MAX_CONNECTIONS ? SERVE_MAX_CONNECTIONS
                                      : (unsigned) have;
}

/* ---- the HTTP handler ---------------------------------------------- */

static enum MHD_Result
handle (void *cls, struct MHD_Connection *c, const char *url,
        const char *method, const char *version, const char *upload_data,
        size_t *upload_data_size, void **con_cls)
{
  struct server *sv = cls;
  struct upload *up = *con_cls;

  (void) version;
  if (!up) {
    *con_cls = up = xcalloc (1, sizeof *up);
    up->endpoint = metrics_endpoint (url);
    conn_deadline (sv, c, SERVE_BODY_MS);      /* the head is in */
    /* Whatever the method, and before any body (which it does not need,
     * of whatever size): a health check must not wait on one.  Without a
     * body it is answered in the last call like any request, since an
     * answer queued now makes libmicrohttpd close the connection. */
    if (strcmp (url, "/healthz") == 0 && has_body (c))
      return reply_text (c, MHD_HTTP_OK, "ok\n");
    /* Refused before a byte of it is read: libmicrohttpd then sends no
     * "100 Continue", discards the body and closes after the answer. */
    if (declared_too_big (c))
      return reply_text (c, MHD_HTTP_CONTENT_TOO_LARGE, too_big_text);
    return MHD_YES;
  }
  if (*upload_data_size) {
    /* Only a chunked body can get here past the limit: libmicrohttpd
     * stops a declared length at its end. */
    if (up->body.len + *upload_data_size > SERVE_MAX_BODY) {
      up->status = MHD_HTTP_CONTENT_TOO_LARGE;    /* sent by hand */
      return refuse_mid_body (sv, c);
    }
    strbuf_add (&up->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  /* The whole request is in: what is left is ours to answer, and
   * libmicrohttpd's inactivity timeout covers a client that stops
   * reading the answer. */
  conn_deadline (sv, c, 0);
  if (strcmp (url, "/healthz") == 0)
    return reply_text (c, MHD_HTTP_OK, "ok\n");
  if (strcmp (url, "/metrics") == 0) {
    const char *tok = sv->gw->tracking_metrics_token;
    return metrics_request (sv->metrics, c, method,
                            !tok || bearer_ok (MHD_lookup_connection_value
                                               (c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION),
                                               tok));
  }
  if (strncmp (url, "/u/", 3) == 0) {
    if (strcmp (method, "GET") && strcmp (method, "HEAD") && strcmp (method, "POST"))
      return reply_text (c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST\n");
    return unsubscribe (sv, c, method, url + 3);
  }
  if (track_path (url))
    return track_request (&sv->track, c, method, url);
  if (strcmp (url, "/events") == 0) {
    if (!sv->events_token)
      return reply_text (c, MHD_HTTP_NOT_FOUND, "the events API is off: set "
                         "[tracking] events_token\n");
    if (strcmp (method, "POST") != 0)
      return reply_text (c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST\n");
    return events_api (sv, c, up);
  }
  if (strncmp (url, "/inbound/", 9) == 0) {
    if (strcmp (method, "POST") != 0)
      return reply_text (c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST\n");
    return inbound (sv, c, method, url, url + 9, up);
  }
  return reply_text (c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void
request_done (void *cls, struct MHD_Connection *c, void **con_cls,
              enum MHD_RequestTerminationCode toe)
{
  struct server *sv = cls;
  struct upload *up = *con_cls;
  const union MHD_ConnectionInfo *ci
    = MHD_get_connection_info (c, MHD_CONNECTION_INFO_HTTP_STATUS);

  (void) toe;
  /* A kept-alive connection waits for its next request head. */
  conn_deadline (cls, c, SERVE_HEAD_MS);
  /* Counted as the request ends, on the server's one thread.  The status
   * is the queued response's: libmicrohttpd (0.9.75 to 1.0) calls this
   * before it lets go of the response.  A request that got no answer
   * (the client left first, or MHD_NO) is not counted. */
  if (up && ci && ci->http_status)
    up->status = ci->http_status;
  if (up)
    metrics_request_end (sv->metrics, c, up->endpoint, up->status);
  if (up) {
    strbuf_free (&up->body);
    free (up);
  }
  *con_cls = NULL;
}

/* ---- the command --------------------------------------------------- */

static int
serve_usage (FILE *fp, int rc)
{
  fprintf (fp,
           "Usage: herald [-c GATEWAY.ini] serve [--listen HOST:PORT] "
           "[CAMPAIGN.ini...]\n\n"
           "Runs the tracking server: the one-click unsubscribe links of the\n"
           "messages (base_url/u/...), their tracked links (base_url/c/...)\n"
           "and open pixels (base_url/o/...), the providers' callbacks for each\n"
           "channel (base_url/inbound/NAME/...) and, with [tracking]\n"
           "events_token, POST /events (JSON lines, as events import reads),\n"
           "and GET /metrics (Prometheus text format).\n"
           "Listens on [tracking] listen (default 127.0.0.1:8025) until\n"
           "SIGTERM or SIGINT.\n\n"
           "With campaigns, also runs their journeys: a campaign with a\n"
           "[trigger] for each such event, and the follow-up [step.N] of\n"
           "every campaign listed, from the timer queue in the store.\n");
  return rc;
}

int
cmd_serve (int argc, char **argv)
{
  struct server sv;
  struct MHD_Daemon *d = NULL;
  struct sockaddr_storage sa;
  socklen_t salen = 0;
  const char *listen = NULL;
  const struct ini_section *tsec;
  char err[2048];
  sigset_t stop, old;
  struct timespec tick = { 1, 0 };
  struct journeys *jr = NULL;
  char **campaigns = NULL;
  int n_campaigns = 0;
  int64_t per_client = SERVE_PER_CLIENT;
  unsigned max_conns;
  size_t i;
  int sig, rc = 1, listen_line = 0;

  memset (&sv, 0, sizeof sv);
  pthread_mutex_init (&sv.lock, NULL);
  for (i = 1; i < (size_t) argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
      free (campaigns);
      return serve_usage (stdout, 0);
    }
    else if (strcmp (argv[i], "--listen") == 0 && i + 1 < (size_t) argc)
      listen = argv[++i];
    else if (argv[i][0] != '-') {
      campaigns = xrealloc (campaigns, (size_t) (n_campaigns + 1)
                                       * sizeof *campaigns);
      campaigns[n_campaigns++] = argv[i];
    }
    else {
      fprintf (stderr, "herald serve: unexpected argument '%s'\n", argv[i]);
      free (campaigns);
      return serve_usage (stderr, EXIT_USAGE);
    }
  }
  sv.gw = config_gateway_load (main_config_path, err, sizeof err);
  if (!sv.gw) {
    fprintf (stderr, "herald: %s\n", err);
    free (campaigns);
    return 1;
  }
  tsec = ini_section (sv.gw->ini, "tracking");
  if (!listen) {
    listen = ini_get (tsec, "listen");
    listen_line = ini_line (tsec, "listen");
  }
  if (!listen)
    listen = "127.0.0.1:8025";
  if (parse_listen_addr (listen, &sa, &salen) < 0) {
    if (listen_line)
      fprintf (stderr, "herald: %s:%d: [tracking] listen: '%s' is not "
               "HOST:PORT with a numeric address\n", sv.gw->ini->path,
               listen_line, listen);
    else
      fprintf (stderr, "herald serve: --listen: '%s' is not HOST:PORT with a "
               "numeric address\n", listen);
    goto out;
  }
  /* events_token and connections_per_client were checked with the
   * gateway (config.c). */
  sv.events_token = ini_get (tsec, "events_token");
  if (sv.gw->tracking_per_client >= 0)
    per_client = sv.gw->tracking_per_client;
  if (!sv.gw->tracking_secret) {
    fprintf (stderr, "herald: %s: [tracking] secret is not set: it signs the "
             "unsubscribe links the server checks\n", sv.gw->ini->path);
    goto out;
  }
  if (token_key_init (&sv.key, sv.gw->tracking_secret) < 0) {
    fprintf (stderr, "herald: OpenSSL cannot do HMAC-SHA256\n");
    goto out;
  }
  sv.key_ready = 1;
  if (!store_location_is_url (sv.gw->store_path)
      && mkdir_parents (sv.gw->store_path) < 0) {
    fprintf (stderr, "herald: %s: cannot create its folder: %s\n",
             sv.gw->store_path, strerror (errno));
    goto out;
  }
  sv.st = store_open (sv.gw->store_path, err, sizeof err);
  if (!sv.st) {
    fprintf (stderr, "herald: %s\n", err);
    goto out;
  }
  if (track_init (&sv.track, sv.st, sv.gw) < 0) {
    fprintf (stderr, "herald: OpenSSL cannot do HMAC-SHA256\n");
    goto out;
  }
  sv.track_ready = 1;
  /* An instance of every channel whose plugin takes callbacks. */
  sv.ch = xcalloc (sv.gw->n_channels ? sv.gw->n_channels : 1, sizeof *sv.ch);
  for (i = 0; i < sv.gw->n_channels; i++) {
    const struct channel_conf *cc = &sv.gw->channels[i];
    struct plugin *pl = loader_get (sv.gw->plugin_dir, cc->plugin, err,
                                    sizeof err);
    if (!pl) {
      fprintf (stderr, "herald: %s:%d: [channel.%s] plugin: %s\n",
               sv.gw->ini->path, ini_line (cc->sec, "plugin"), cc->name, err);
      goto out;
    }
    if (!pl->p.inbound)
      continue;
    sv.ch[i] = channel_open (pl, cc->name, cc->kind, cc->sec, sv.gw->ini->path,
                             sv.gw->tracking_base_url, err, sizeof err);
    if (!sv.ch[i]) {
      fprintf (stderr, "herald: %s\n", err);
      goto out;
    }
  }
  sv.metrics = metrics_new (sv.gw->store_path, now_seconds (), err,
                            sizeof err);
  if (!sv.metrics) {
    fprintf (stderr, "herald: %s\n", err);
    goto out;
  }
  for (i = 0; i < sv.gw->n_channels; i++)
    if (sv.ch[i])
      metrics_channel (sv.metrics, sv.gw->channels[i].name);

  /* The journeys of the campaigns listed: this thread works their timer
   * queue between signals, five times a second (a step fires within
   * 200 ms of being due, plus the time to send what came before it). */
  if (n_campaigns) {
    jr = journeys_open (campaigns, n_campaigns);
    if (!jr)
      goto out;
    tick.tv_sec = 0;
    tick.tv_nsec = 200 * 1000 * 1000;
  }

  /* The server's thread inherits the blocked signals; this one waits. */
  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  pthread_sigmask (SIG_BLOCK, &stop, &old);
  /* MHD_USE_AUTO: epoll on Linux.  With select(), the default, a
   * descriptor past FD_SETSIZE (1024) cannot be watched, and libmicrohttpd
   * refuses such a connection whatever the limit says. */
  max_conns = connection_limit ();
  /* MHD_ALLOW_SUSPEND_RESUME: a scrape of /metrics waits, suspended,
   * for the store to be read on another thread (metrics.h). */
  d = MHD_start_daemon (MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG
                        | MHD_ALLOW_SUSPEND_RESUME
                        | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                        0, NULL, NULL, handle, &sv,
                        MHD_OPTION_EXTERNAL_LOGGER, serve_log, &sv,
                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                        MHD_OPTION_NOTIFY_COMPLETED, request_done, &sv,
                        MHD_OPTION_NOTIFY_CONNECTION, conn_notify, &sv,
                        MHD_OPTION_CONNECTION_TIMEOUT,
                        (unsigned int) SERVE_IDLE_S,
                        MHD_OPTION_CONNECTION_LIMIT, max_conns,
                        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                        (unsigned int) per_client,
                        MHD_OPTION_END);
  if (!d) {
    fprintf (stderr, "herald serve: cannot listen on %s: %s\n", listen,
             strerror (errno));
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    goto out;
  }
  printf ("herald serve: listening on %s%s%s\n", listen,
          sv.gw->tracking_base_url ? " for " : "",
          sv.gw->tracking_base_url ? sv.gw->tracking_base_url : "");
  printf ("herald serve: up to %u connections, ", max_conns);
  if (per_client)
    printf ("%ld per client address", (long) per_client);
  else
    printf ("any number per client address");
  printf ("; a request head must arrive within %d s, its body within "
          "%d s\n", SERVE_HEAD_MS / 1000, SERVE_BODY_MS / 1000);
  fflush (stdout);
  for (;;) {
    long n;

    sig = sigtimedwait (&stop, NULL, &tick);
    if (sig == SIGTERM || sig == SIGINT)
      break;
    n = conns_expire (&sv);
    if (n)
      fprintf (stderr, "herald serve: closed %ld connection%s too slow to "
               "send a request\n", n, n == 1 ? "" : "s");
    journeys_tick (jr);
    /* A plugin stuck in send (past send_timeout): its batch stays in
     * flight for the next start, which a supervisor makes. */
    if (__atomic_load_n (&run_stuck, __ATOMIC_RELAXED))
      break;
  }
  metrics_stop (sv.metrics);          /* no connection left suspended */
  MHD_stop_daemon (d);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (__atomic_load_n (&run_stuck, __ATOMIC_RELAXED)) {
    fprintf (stderr, "herald serve: stopped: a plugin did not return from "
             "send within its channel's send_timeout (said above); its batch "
             "stays in flight and is sent again, one message at a time, "
             "after a restart\n");
    rc = 1;
    goto out;
  }
  printf ("herald serve: stopped (%s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  rc = 0;
out:
  journeys_close (jr);       /* lands the batches in flight */
  free (campaigns);
  for (i = 0; sv.ch && i < sv.gw->n_channels; i++)
    channel_close (sv.ch[i]);
  free (sv.ch);
  metrics_free (sv.metrics);
  if (sv.key_ready)
    token_key_free (&sv.key);
  if (sv.track_ready)
    track_free (&sv.track);
  store_close (sv.st);
  config_gateway_free (sv.gw);
  loader_unload_all ();
  pthread_mutex_destroy (&sv.lock);
  return rc;
}
