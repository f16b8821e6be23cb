/* metrics: herald serve's GET /metrics (see metrics.h).  It must never
 * write to the store, never make a label out of anything a client sends
 * (only the store's values and the server's own fixed names), and never
 * read the store on the server's thread. */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "metrics.h"

/* herald_http_requests_total's code label: 100 to 599. */
#define METRICS_MIN_STATUS 100
#define METRICS_N_STATUS 500

struct metrics_channel {
  char *name;
  uint64_t refused, failed;
};

/* One scrape that waits for a read of the store, from its request to
 * the end of that request (metrics_request_end). */
struct metrics_job {
  struct metrics_job *next;
  struct MHD_Connection *c;    /* suspended until done */
  int done;                    /* the read is in (the collector's) */
  int answered;                /* the answer is queued (the server's) */
  int rc;                      /* metrics_render_store's, or -1 */
  char *text;                  /* the families, or why not */
};

struct metrics {
  /* The server's thread alone. */
  int64_t started;
  uint64_t requests[METRICS_N_ENDPOINTS][METRICS_N_STATUS];
  struct metrics_channel *ch;
  size_t n_ch;
  /* Shared, under lock. */
  pthread_mutex_t lock;
  pthread_cond_t wake;         /* a job queued, or stopping */
  pthread_cond_t ended;        /* a job's request ended */
  struct metrics_job *jobs;
  int stopping;
  /* The collector's thread alone (after metrics_new). */
  struct store *st;
  pthread_t thread;
  int thread_running;
};

static const char *const metrics_endpoints[METRICS_N_ENDPOINTS] = {
  [METRICS_EP_UNSUBSCRIBE] = "unsubscribe",
  [METRICS_EP_CLICK] = "click",
  [METRICS_EP_OPEN] = "open",
  [METRICS_EP_EVENTS] = "events",
  [METRICS_EP_INBOUND] = "inbound",
  [METRICS_EP_HEALTHZ] = "healthz",
  [METRICS_EP_METRICS] = "metrics",
  [METRICS_EP_OTHER] = "other",
};

static void *metrics_collector (void *data);

struct metrics *
metrics_new (const char *store_path, int64_t started, char *err,
             size_t errlen)
{
  struct metrics *m = xcalloc (1, sizeof *m);
  sigset_t all, old;
  int e;

  m->started = started;
  pthread_mutex_init (&m->lock, NULL);
  pthread_cond_init (&m->wake, NULL);
  pthread_cond_init (&m->ended, NULL);
  m->st = store_open (store_path, err, errlen);
  if (!m->st)
    goto fail;
  /* The thread takes no signal: herald serve's main thread waits for
   * SIGTERM with sigtimedwait, and one the collector took would kill the
   * process at once. */
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  e = pthread_create (&m->thread, NULL, metrics_collector, m);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (e) {
    snprintf (err, errlen, "cannot start a thread for /metrics: %s",
              strerror (e));
    goto fail;
  }
  m->thread_running = 1;
  return m;
fail:
  metrics_free (m);
  return NULL;
}

/* How long metrics_stop gives the server's thread to answer the scrapes
 * the collector resumed, and to send the answers: MHD_stop_daemon closes
 * a connection whatever it was doing. */
#define METRICS_STOP_ANSWER_MS 1000

void
metrics_stop (struct metrics *m)
{
  struct timespec until;

  if (!m || !m->thread_running)
    return;
  pthread_mutex_lock (&m->lock);
  m->stopping = 1;
  pthread_cond_signal (&m->wake);
  pthread_mutex_unlock (&m->lock);
  pthread_join (m->thread, NULL);
  m->thread_running = 0;
  clock_gettime (CLOCK_REALTIME, &until);
  until.tv_sec += METRICS_STOP_ANSWER_MS / 1000;
  pthread_mutex_lock (&m->lock);
  while (m->jobs && pthread_cond_timedwait (&m->ended, &m->lock, &until) == 0)
    ;
  pthread_mutex_unlock (&m->lock);
}

void
metrics_free (struct metrics *m)
{
  struct metrics_job *j, *next;
  size_t i;

  if (!m)
    return;
  metrics_stop (m);
  for (j = m->jobs; j; j = next) {
    next = j->next;
    free (j->text);
    free (j);
  }
  for (i = 0; i < m->n_ch; i++)
    free (m->ch[i].name);
  free (m->ch);
  store_close (m->st);
  pthread_cond_destroy (&m->wake);
  pthread_cond_destroy (&m->ended);
  pthread_mutex_destroy (&m->lock);
  free (m);
}

static struct metrics_channel *
metrics_find_channel (struct metrics *m, const char *name)
{
  size_t i;

  for (i = 0; i < m->n_ch; i++)
    if (strcmp (m->ch[i].name, name) == 0)
      return &m->ch[i];
  m->ch = xrealloc (m->ch, (m->n_ch + 1) * sizeof *m->ch);
  memset (&m->ch[m->n_ch], 0, sizeof *m->ch);
  m->ch[m->n_ch].name = xstrdup (name);
  return &m->ch[m->n_ch++];
}

void
metrics_channel (struct metrics *m, const char *name)
{
  metrics_find_channel (m, name);
}

enum metrics_endpoint
metrics_endpoint (const char *url)
{
  if (strncmp (url, "/u/", 3) == 0)
    return METRICS_EP_UNSUBSCRIBE;
  if (strncmp (url, "/c/", 3) == 0)
    return METRICS_EP_CLICK;
  if (strncmp (url, "/o/", 3) == 0)
    return METRICS_EP_OPEN;
  if (strcmp (url, "/events") == 0)
    return METRICS_EP_EVENTS;
  if (strncmp (url, "/inbound/", 9) == 0)
    return METRICS_EP_INBOUND;
  if (strcmp (url, "/healthz") == 0)
    return METRICS_EP_HEALTHZ;
  if (strcmp (url, "/metrics") == 0)
    return METRICS_EP_METRICS;
  return METRICS_EP_OTHER;
}

/* C's job, or NULL; under m->lock. */
static struct metrics_job *
metrics_find_job (struct metrics *m, struct MHD_Connection *c)
{
  struct metrics_job *j;

  for (j = m->jobs; j; j = j->next)
    if (j->c == c)
      return j;
  return NULL;
}

void
metrics_request_end (struct metrics *m, struct MHD_Connection *c,
                     enum metrics_endpoint endpoint, unsigned status)
{
  struct metrics_job **p, *j = NULL;

  if ((unsigned) endpoint < METRICS_N_ENDPOINTS && status >= METRICS_MIN_STATUS
      && status < METRICS_MIN_STATUS + METRICS_N_STATUS)
    m->requests[endpoint][status - METRICS_MIN_STATUS]++;
  /* The job goes with its request (which cannot end while suspended, so
   * the job is done): left behind, it would be taken for that of the next
   * connection at the same address. */
  if (endpoint == METRICS_EP_METRICS) {
    pthread_mutex_lock (&m->lock);
    for (p = &m->jobs; (j = *p); p = &j->next)
      if (j->c == c && j->done) {
        *p = j->next;
        pthread_cond_signal (&m->ended);
        break;
      }
    pthread_mutex_unlock (&m->lock);
  }
  if (j) {
    free (j->text);
    free (j);
  }
}

void
metrics_count_plugin_error (struct metrics *m, const char *name, int failed)
{
  struct metrics_channel *ch = metrics_find_channel (m, name);

  if (failed)
    ch->failed++;
  else
    ch->refused++;
}

/* ---- the text format ----------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at S (RFC 3629 section 4:
 * no overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t
metrics_utf8_len (const unsigned char *s)
{
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    return (s[1] & 0xc0) == 0x80 ? 2 : 0;
  if (s[0] >= 0xe0 && s[0] <= 0xef) {
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
      return 0;
    return (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
      return 0;
    return (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80
           && (s[3] & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/* NAME="VALUE" for a label.  The format escapes backslash, double quote
 * and line feed in a label value, and nothing else.  It must be UTF-8:
 * Prometheus refuses a whole scrape for one bad byte, so each byte that
 * is not part of a well-formed sequence becomes U+FFFD.  A NULL value is
 * "", which Prometheus takes for no label. */
static void
metrics_label (struct strbuf *b, const char *name, const char *value)
{
  const unsigned char *s = (const unsigned char *) (value ? value : "");
  size_t n;

  strbuf_adds (b, name);
  strbuf_adds (b, "=\"");
  while (*s) {
    if (*s == '\\')
      strbuf_adds (b, "\\\\");
    else if (*s == '"')
      strbuf_adds (b, "\\\"");
    else if (*s == '\n')
      strbuf_adds (b, "\\n");
    else if ((n = metrics_utf8_len (s)) > 0) {
      strbuf_add (b, (const char *) s, n);
      s += n;
      continue;
    }
    else
      strbuf_adds (b, "\xef\xbf\xbd");
    s++;
  }
  strbuf_addc (b, '"');
}

/* The HELP and TYPE lines of a family.  HELP texts here hold no
 * backslash or line feed, the two characters HELP would escape. */
static void
metrics_family (struct strbuf *b, const char *name, const char *type,
                const char *help)
{
  strbuf_addf (b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_gauge (struct strbuf *b, const char *name, const char *help,
               int64_t v)
{
  metrics_family (b, name, "gauge", help);
  strbuf_addf (b, "%s %" PRId64 "\n", name, v);
}

int
metrics_render_store (struct store *st, int64_t now, struct strbuf *out)
{
  json_t *states = NULL, *events = NULL, *row;
  struct store_due due;
  size_t i;
  int rc = -1;

  if (store_outbox_state_counts (st, &states) < 0
      || store_event_counts (st, &events) < 0
      || store_due_summary (st, now, &due) < 0)
    goto out;

  metrics_family (out, "herald_messages", "gauge",
                  "Messages in the store's outbox, by campaign, channel "
                  "kind and state (channel \"\" when none was chosen: "
                  "skipped before routing).");
  json_array_foreach (states, i, row) {
    strbuf_adds (out, "herald_messages{");
    metrics_label (out, "campaign",
                   json_string_value (json_object_get (row, "campaign")));
    strbuf_addc (out, ',');
    metrics_label (out, "channel",
                   json_string_value (json_object_get (row, "channel")));
    strbuf_addc (out, ',');
    metrics_label (out, "state",
                   json_string_value (json_object_get (row, "state")));
    strbuf_addf (out, "} %" JSON_INTEGER_FORMAT "\n",
                 json_integer_value (json_object_get (row, "count")));
  }

  metrics_gauge (out, "herald_due_messages", "Outbox messages due and not "
                 "sent: state pending, retry or deferred, due now or "
                 "earlier.", due.messages);
  metrics_gauge (out, "herald_due_oldest_age_seconds", "How long the "
                 "longest-waiting due message has been due, in seconds (0 "
                 "when none is).",
                 due.messages ? now - due.oldest_next_at : 0);
  metrics_gauge (out, "herald_due_steps", "Journey steps in the timer "
                 "queue that are due now or earlier and not fired yet "
                 "(herald serve fires them).", due.steps);
  metrics_gauge (out, "herald_due_steps_oldest_age_seconds", "How long the "
                 "longest-waiting due journey step has been due, in seconds "
                 "(0 when none is).",
                 due.steps ? now - due.oldest_step_due : 0);
  metrics_gauge (out, "herald_waiting_steps", "Journey steps waiting in the "
                 "timer queue, due or not (triggered entries waiting out "
                 "their delay, follow-ups).", due.steps_waiting);

  /* Counted in the store, so across restarts and other processes (run,
   * events import).  The burst rule marks an earlier click as a
   * machine's after the fact, so a human series can drop by the clicks
   * of a burst a scrape fell into; their sum per type cannot. */
  metrics_family (out, "herald_events_total", "counter",
                  "Events recorded in the store, by type and origin "
                  "(machine: taken for a mail scanner's or a proxy's). A "
                  "click the burst rule flags later moves from human to "
                  "machine.");
  json_array_foreach (events, i, row) {
    strbuf_adds (out, "herald_events_total{");
    metrics_label (out, "type",
                   json_string_value (json_object_get (row, "type")));
    strbuf_addc (out, ',');
    metrics_label (out, "origin", json_is_true (json_object_get (row, "machine"))
                                  ? "machine" : "human");
    strbuf_addf (out, "} %" JSON_INTEGER_FORMAT "\n",
                 json_integer_value (json_object_get (row, "count")));
  }
  rc = 0;
out:
  json_decref (states);
  json_decref (events);
  return rc;
}

void
metrics_render_server (struct metrics *m, struct strbuf *out)
{
  size_t i, e, k;

  metrics_gauge (out, "herald_start_time_seconds", "When this herald serve "
                 "started, in unix seconds.", m->started);
  metrics_family (out, "herald_build_info", "gauge",
                  "Always 1; the version of herald serving.");
  strbuf_adds (out, "herald_build_info{");
  metrics_label (out, "version", PACKAGE_VERSION);
  strbuf_adds (out, "} 1\n");

  metrics_family (out, "herald_http_requests_total", "counter",
                  "Requests this herald serve answered, by endpoint and "
                  "status code.");
  for (e = 0; e < METRICS_N_ENDPOINTS; e++)
    for (k = 0; k < METRICS_N_STATUS; k++)
      if (m->requests[e][k]) {
        strbuf_adds (out, "herald_http_requests_total{");
        metrics_label (out, "endpoint", metrics_endpoints[e]);
        strbuf_addf (out, ",code=\"%zu\"} %" PRIu64 "\n",
                     k + METRICS_MIN_STATUS, m->requests[e][k]);
      }

  metrics_family (out, "herald_plugin_errors_total", "counter",
                  "Provider callbacks (/inbound/NAME/) that the plugin of "
                  "[channel.NAME] refused (answered 4xx: a bad signature, "
                  "a malformed callback) or failed on (an error, a 5xx or "
                  "no valid status) in this herald serve. A callback the "
                  "store could not record is not one.");
  for (i = 0; i < m->n_ch; i++) {
    strbuf_adds (out, "herald_plugin_errors_total{");
    metrics_label (out, "channel", m->ch[i].name);
    strbuf_addf (out, ",reason=\"refused\"} %" PRIu64 "\n", m->ch[i].refused);
    strbuf_adds (out, "herald_plugin_errors_total{");
    metrics_label (out, "channel", m->ch[i].name);
    strbuf_addf (out, ",reason=\"failed\"} %" PRIu64 "\n", m->ch[i].failed);
  }
}

/* ---- the collector's thread ----------------------------------------- */

/* Whether a job waits; under m->lock. */
static int
metrics_queued (struct metrics *m)
{
  struct metrics_job *j;

  for (j = m->jobs; j; j = j->next)
    if (!j->done)
      return 1;
  return 0;
}

/* Read the store while jobs wait, and give each read to every job
 * waiting when it ends: one that came during a read gets that read, at
 * most one read old, so that scrapes at once (two Prometheus servers)
 * cost one.  Until metrics_stop, and then until none waits. */
static void *
metrics_collector (void *data)
{
  struct metrics *m = data;
  struct strbuf b = STRBUF_INIT;
  struct MHD_Connection **resume = NULL;
  struct metrics_job *j;
  size_t n, i;
  int rc, stopping;

  for (;;) {
    pthread_mutex_lock (&m->lock);
    while (!m->stopping && !metrics_queued (m))
      pthread_cond_wait (&m->wake, &m->lock);
    if (!metrics_queued (m)) {
      pthread_mutex_unlock (&m->lock);
      break;
    }
    stopping = m->stopping;
    pthread_mutex_unlock (&m->lock);

    /* A read started after the stop would delay it by as long. */
    strbuf_reset (&b);
    rc = -1;
    if (stopping)
      strbuf_adds (&b, "herald serve is stopping");
    else if ((rc = metrics_render_store (m->st, now_seconds (), &b)) < 0) {
      strbuf_reset (&b);
      strbuf_adds (&b, store_error (m->st));
    }

    pthread_mutex_lock (&m->lock);
    for (n = 0, j = m->jobs; j; j = j->next)
      n += !j->done;
    resume = xrealloc (resume, (n ? n : 1) * sizeof *resume);
    for (n = 0, j = m->jobs; j; j = j->next)
      if (!j->done) {
        j->rc = rc;
        j->text = xstrdup (b.s ? b.s : "");
        j->done = 1;
        resume[n++] = j->c;
      }
    pthread_mutex_unlock (&m->lock);
    /* Outside the lock: libmicrohttpd takes its own.  The jobs stay
     * until the server's thread, called again for each connection,
     * takes them. */
    for (i = 0; i < n; i++)
      MHD_resume_connection (resume[i]);
  }
  free (resume);
  strbuf_free (&b);
  return NULL;
}

/* ---- the endpoint -------------------------------------------------- */

/* Answer STATUS with BODY (LEN bytes, taken: freed by libmicrohttpd), and
 * the header NAME: VALUE when NAME is not NULL. */
static enum MHD_Result
metrics_reply (struct MHD_Connection *c, unsigned status, const char *type,
               char *body, size_t len, const char *name, const char *value)
{
  struct MHD_Response *r;
  enum MHD_Result ret;

  r = MHD_create_response_from_buffer (len, body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free (body);
    return MHD_NO;
  }
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  /* A scrape is now: no cache must answer the next one. */
  MHD_add_response_header (r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (name)
    MHD_add_response_header (r, name, value);
  ret = MHD_queue_response (c, status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
metrics_reply_text (struct MHD_Connection *c, unsigned status,
                    const char *text, const char *name, const char *value)
{
  return metrics_reply (c, status, "text/plain; charset=utf-8",
                        xstrdup (text), strlen (text), name, value);
}

enum MHD_Result
metrics_request (struct metrics *m, struct MHD_Connection *c,
                 const char *method, int authorized)
{
  struct strbuf b = STRBUF_INIT;
  struct metrics_job *j;

  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
    return metrics_reply_text (c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET\n",
                               MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  /* RFC 6750 section 3: the scheme the client must use. */
  if (!authorized)
    return metrics_reply_text (c, MHD_HTTP_UNAUTHORIZED,
                               "a valid Authorization: Bearer token is "
                               "needed\n", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                               "Bearer");
  pthread_mutex_lock (&m->lock);
  j = metrics_find_job (m, c);
  if (!j && !m->stopping) {
    /* Suspended before the collector can see the job, so that it cannot
     * resume the connection first. */
    MHD_suspend_connection (c);
    j = xcalloc (1, sizeof *j);
    j->c = c;
    j->next = m->jobs;
    m->jobs = j;
    pthread_cond_signal (&m->wake);
    pthread_mutex_unlock (&m->lock);
    return MHD_YES;
  }
  /* Called again once resumed, the job done; answered once (a job found
   * otherwise is not this request's to answer). */
  if (j && (!j->done || j->answered))
    j = NULL;
  if (j)
    j->answered = 1;
  pthread_mutex_unlock (&m->lock);
  if (!j || j->rc < 0) {
    fprintf (stderr, "herald serve: /metrics: %s\n",
             j ? j->text : "herald serve is stopping");
    return metrics_reply_text (c, MHD_HTTP_SERVICE_UNAVAILABLE,
                               "could not read the store\n", NULL, NULL);
  }
  metrics_render_server (m, &b);
  strbuf_adds (&b, j->text);
  return metrics_reply (c, MHD_HTTP_OK, METRICS_CONTENT_TYPE, b.s, b.len,
                        NULL, NULL);
}
