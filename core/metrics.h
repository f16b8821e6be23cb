/* metrics: herald serve's GET /metrics, in the Prometheus text exposition
 * format, version 0.0.4.
 *
 * A scrape reads the store (messages by campaign, channel and state; the
 * due messages; events by type and origin) and the counters serve keeps
 * in memory through the functions below (requests by endpoint and status,
 * the plugins' refused and failed callbacks).  Those counters start at 0
 * with each herald serve process, as Prometheus expects of a counter.
 *
 * The store's part costs a scan of the outbox and of the events: about
 * 3 s for a million messages and two million events.  libmicrohttpd runs
 * every request of herald serve on one internal thread, and a scrape
 * must not stall the clicks behind it; so the scrape's connection is
 * suspended while a thread of this module (the collector), with its own
 * connection to the store, reads it, and resumed with the result.  A
 * scrape that arrives during a read gets that read: scrapes at once (two
 * Prometheus servers) cost one.
 *
 * Threads: metrics_new, metrics_stop and metrics_free run on herald
 * serve's main thread, metrics_render_store on the collector's, the rest
 * on the server's (the access handler and the request-completed
 * callback); the counters are that thread's alone and take no lock.  The
 * collector shares only the list of scrapes waiting, under a lock. */
#ifndef HERALD_METRICS_H
#define HERALD_METRICS_H

#include <stdint.h>

#include <microhttpd.h>

#include "store.h"
#include "util.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The endpoint label of herald_http_requests_total: a fixed set, never
 * the path, so that a client trying paths cannot grow the series. */
enum metrics_endpoint {
  METRICS_EP_UNSUBSCRIBE,      /* /u/... */
  METRICS_EP_CLICK,            /* /c/... */
  METRICS_EP_OPEN,             /* /o/... */
  METRICS_EP_EVENTS,           /* /events */
  METRICS_EP_INBOUND,          /* /inbound/... */
  METRICS_EP_HEALTHZ,          /* /healthz */
  METRICS_EP_METRICS,          /* /metrics */
  METRICS_EP_OTHER,            /* anything else */
  METRICS_N_ENDPOINTS
};

struct metrics;

/* New counters, all 0, for a server that started at STARTED (unix
 * seconds), with a thread of their own that reads the store at
 * STORE_PATH (opened here).  NULL with a message in ERR when the store
 * cannot be opened or the thread started.  Free with metrics_free;
 * metrics_free (NULL) is a no-op. */
struct metrics *metrics_new (const char *store_path, int64_t started,
                             char *err, size_t errlen);
/* Before MHD_stop_daemon, which must not find a connection suspended:
 * end the thread, once the read under way (if one is) has resumed the
 * scrapes waiting for it, and give the server's thread up to a second to
 * send their answers.  A scrape after this gets 503 at once. */
void metrics_stop (struct metrics *m);
/* metrics_stop, then free. */
void metrics_free (struct metrics *m);

/* Declare the channel NAME ([channel.NAME], copied), whose plugin takes
 * callbacks: its herald_plugin_errors_total series are shown from the
 * start, at 0, so that rate() sees the first error. */
void metrics_channel (struct metrics *m, const char *name);

/* The endpoint of URL (a request's path). */
enum metrics_endpoint metrics_endpoint (const char *url);

/* A request on connection C to ENDPOINT has ended, answered with STATUS
 * (counted when from 100 to 599; 0: no answer, not counted).  Called for
 * every request that reached the access handler: it also lets go of a
 * scrape's result that the connection did not live to send. */
void metrics_request_end (struct metrics *m, struct MHD_Connection *c,
                          enum metrics_endpoint endpoint, unsigned status);

/* A callback for channel NAME that its plugin refused (FAILED 0: it
 * answered 4xx, a bad signature or a malformed callback) or failed on
 * (FAILED 1: an error, a 5xx of its own, or no valid status). */
void metrics_count_plugin_error (struct metrics *m, const char *name,
                                 int failed);

/* The families read from ST at NOW (unix seconds), appended to OUT.  0,
 * or -1 when the store failed (store_error says why; OUT then holds a
 * part). */
int metrics_render_store (struct store *st, int64_t now, struct strbuf *out);
/* The families of this process (start time, version, requests, plugin
 * errors), appended to OUT. */
void metrics_render_server (struct metrics *m, struct strbuf *out);

/* Answer a request for /metrics with METHOD, the request complete: 405
 * to anything but GET and HEAD, 401 unless AUTHORIZED (the caller
 * checked [tracking] metrics_token); else the connection is suspended
 * until the store is read, and the call that follows its resumption
 * answers 200 and the exposition, or 503 when the store failed (logged).
 * The daemon needs MHD_ALLOW_SUSPEND_RESUME. */
enum MHD_Result metrics_request (struct metrics *m, struct MHD_Connection *c,
                                 const char *method, int authorized);

#endif
