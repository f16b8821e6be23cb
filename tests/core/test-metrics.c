/* tests/core/test-metrics.c: the /metrics exposition of a small store,
 * byte for byte (metrics.h): label values with a backslash, a double
 * quote, a line feed and a byte that is not UTF-8; the due messages and
 * the age of the oldest; events by origin; requests by endpoint and
 * status; the plugins' errors, at 0 from the start; a store failure.
 * herald serve's answers (405, 401, the content type, a scrape on the
 * collector's thread) and promtool's verdict are in tests/core/metrics.py. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "metrics.h"
#include "store.h"
#include "util.h"
#include "../tap.h"

static char dir[] = "/tmp/herald-test-metrics-XXXXXX";

static int
put (struct store *st, const char *key, const char *campaign,
     const char *channel, const char *state, int64_t next_at)
{
  struct outbox_row r;

  memset (&r, 0, sizeof r);
  r.key = key;
  r.campaign = campaign;
  r.customer = "c1";
  r.step = 1;
  r.channel = channel;
  r.state = state;
  r.next_at = next_at;
  r.created = 1000;
  return store_outbox_insert (st, &r);
}

int
main (void)
{
  struct store *st;
  struct metrics *m;
  struct store_event ev;
  struct strbuf b = STRBUF_INIT, sb = STRBUF_INIT;
  char err[512], *path, *cmd;
  int bad = 0;

  setenv ("HERALD_NOW", "1000000", 1);
  if (!mkdtemp (dir)) {
    printf ("Bail out! mkdtemp\n");
    return 1;
  }
  path = xasprintf ("%s/herald.db", dir);
  st = store_open (path, err, sizeof err);
  if (!st) {
    printf ("Bail out! %s\n", err);
    return 1;
  }

  m = metrics_new (path, 999000, err, sizeof err);
  if (!m) {
    printf ("Bail out! %s\n", err);
    return 1;
  }

  /* An empty store, a new server: every family, no series from the
   * store, no request. */
  tap_ok (metrics_render_store (st, 1000000, &b) == 0,
          "an empty store renders");
  tap_is (b.s,
          "# HELP herald_messages Messages in the store's outbox, by "
          "campaign, channel kind and state (channel \"\" when none was "
          "chosen: skipped before routing).\n"
          "# TYPE herald_messages gauge\n"
          "# HELP herald_due_messages Outbox messages due and not sent: "
          "state pending, retry or deferred, due now or earlier.\n"
          "# TYPE herald_due_messages gauge\n"
          "herald_due_messages 0\n"
          "# HELP herald_due_oldest_age_seconds How long the "
          "longest-waiting due message has been due, in seconds (0 when "
          "none is).\n"
          "# TYPE herald_due_oldest_age_seconds gauge\n"
          "herald_due_oldest_age_seconds 0\n"
          "# HELP herald_due_steps Journey steps in the timer queue that are "
          "due now or earlier and not fired yet (herald serve fires them).\n"
          "# TYPE herald_due_steps gauge\n"
          "herald_due_steps 0\n"
          "# HELP herald_due_steps_oldest_age_seconds How long the "
          "longest-waiting due journey step has been due, in seconds (0 when "
          "none is).\n"
          "# TYPE herald_due_steps_oldest_age_seconds gauge\n"
          "herald_due_steps_oldest_age_seconds 0\n"
          "# HELP herald_waiting_steps Journey steps waiting in the timer "
          "queue, due or not (triggered entries waiting out their delay, "
          "follow-ups).\n"
          "# TYPE herald_waiting_steps gauge\n"
          "herald_waiting_steps 0\n"
          "# HELP herald_events_total Events recorded in the store, by type "
          "and origin (machine: taken for a mail scanner's or a proxy's). A "
          "click the burst rule flags later moves from human to machine.\n"
          "# TYPE herald_events_total counter\n",
          "an empty store: the families, the due gauges at 0");
  metrics_render_server (m, &sb);
  tap_is (sb.s,
          "# HELP herald_start_time_seconds When this herald serve started, "
          "in unix seconds.\n"
          "# TYPE herald_start_time_seconds gauge\n"
          "herald_start_time_seconds 999000\n"
          "# HELP herald_build_info Always 1; the version of herald serving.\n"
          "# TYPE herald_build_info gauge\n"
          "herald_build_info{version=\"" PACKAGE_VERSION "\"} 1\n"
          "# HELP herald_http_requests_total Requests this herald serve "
          "answered, by endpoint and status code.\n"
          "# TYPE herald_http_requests_total counter\n"
          "# HELP herald_plugin_errors_total Provider callbacks "
          "(/inbound/NAME/) that the plugin of [channel.NAME] refused "
          "(answered 4xx: a bad signature, a malformed callback) or failed "
          "on (an error, a 5xx or no valid status) in this herald serve. A "
          "callback the store could not record is not one.\n"
          "# TYPE herald_plugin_errors_total counter\n",
          "a new server: its start time, version, and the families of its "
          "counters with no series");

  /* Rows: a campaign id holding every character the format escapes
   * (campaign files allow none of them, the store does), and a byte
   * that is not UTF-8. */
  bad |= put (st, "a:1:1", "a", "email", "sent", 0);
  bad |= put (st, "a:1:2", "a", "email", "sent", 0);
  bad |= put (st, "a:1:3", "a", NULL, "skipped", 0);
  bad |= put (st, "a:1:4", "a", "sms", "pending", 999900);     /* due */
  bad |= put (st, "a:1:5", "a", "sms", "retry", 999990);       /* due */
  bad |= put (st, "a:1:6", "a", "sms", "deferred", 1000100);   /* later */
  bad |= put (st, "a:1:7", "a", "sms", "sending", 999000);     /* not due */
  bad |= put (st, "q:1:1", "q\"b\\s\nn", "email", "sent", 0);
  bad |= put (st, "x:1:1", "x\xff" "y\xc3\xa9", "email", "failed", 0);
  {
    /* The timer queue: a step due 50 s ago, one due later. */
    struct store_timer tm;
    memset (&tm, 0, sizeof tm);
    tm.campaign = "a";
    tm.customer = "c1";
    tm.instance = 1;
    tm.step = 1;
    tm.entered = 999950;
    tm.due = 999950;
    bad |= store_timer_add (st, &tm) != 0;
    tm.customer = "c2";
    tm.due = 2000000;
    bad |= store_timer_add (st, &tm) != 0;
  }
  bad |= store_event_put (st, "c1", "email", "opened", 1000, "a", NULL, NULL) < 0;
  bad |= store_event_put (st, "c2", "email", "opened", 1000, "a", NULL, NULL) < 0;
  memset (&ev, 0, sizeof ev);
  ev.customer = "c1";
  ev.channel = "email";
  ev.type = "clicked";
  ev.at = 1000;
  ev.at_ms = 1000000;
  ev.machine = "agent";
  bad |= store_event_record (st, &ev) < 0;
  tap_ok (!bad, "rows and events stored: %s", store_error (st));

  metrics_channel (m, "sms\"x\\y");
  metrics_channel (m, "twilio");
  metrics_count_plugin_error (m, "sms\"x\\y", 0);
  metrics_count_plugin_error (m, "sms\"x\\y", 0);
  metrics_count_plugin_error (m, "twilio", 1);
  metrics_count_plugin_error (m, "late", 1);       /* never declared */
  metrics_request_end (m, NULL, METRICS_EP_CLICK, 404);
  metrics_request_end (m, NULL, METRICS_EP_CLICK, 302);
  metrics_request_end (m, NULL, METRICS_EP_CLICK, 302);
  metrics_request_end (m, NULL, METRICS_EP_OTHER, 404);
  metrics_request_end (m, NULL, METRICS_EP_METRICS, 200);
  metrics_request_end (m, NULL, METRICS_EP_METRICS, 0);      /* no answer */
  metrics_request_end (m, NULL, METRICS_EP_METRICS, 99);     /* ignored */
  metrics_request_end (m, NULL, METRICS_EP_METRICS, 600);    /* ignored */
  metrics_request_end (m, NULL, METRICS_N_ENDPOINTS, 200);   /* ignored */

  strbuf_reset (&b);
  tap_ok (metrics_render_store (st, 1000000, &b) == 0, "the store renders");
  tap_ok (strstr (b.s,
                  "# TYPE herald_messages gauge\n"
                  "herald_messages{campaign=\"a\",channel=\"\",state=\"skipped\"} 1\n"
                  "herald_messages{campaign=\"a\",channel=\"email\",state=\"sent\"} 2\n"
                  "herald_messages{campaign=\"a\",channel=\"sms\",state=\"deferred\"} 1\n"
                  "herald_messages{campaign=\"a\",channel=\"sms\",state=\"pending\"} 1\n"
                  "herald_messages{campaign=\"a\",channel=\"sms\",state=\"retry\"} 1\n"
                  "herald_messages{campaign=\"a\",channel=\"sms\",state=\"sending\"} 1\n"
                  "herald_messages{campaign=\"q\\\"b\\\\s\\nn\",channel=\"email\",state=\"sent\"} 1\n"
                  "herald_messages{campaign=\"x\xef\xbf\xbdy\xc3\xa9\",channel=\"email\",state=\"failed\"} 1\n"
                  "# HELP herald_due_messages") != NULL,
          "messages by campaign, channel and state; \\, \" and line feed "
          "escaped; a byte that is not UTF-8 becomes U+FFFD, é is kept");
  tap_ok (strstr (b.s, "herald_due_messages 2\n") != NULL,
          "due: pending and retry due by now; not deferred later, not sending");
  tap_ok (strstr (b.s, "herald_due_oldest_age_seconds 100\n") != NULL,
          "the oldest due has waited 100 s");
  tap_ok (strstr (b.s, "herald_due_steps 1\n") && strstr (b.s,
          "herald_due_steps_oldest_age_seconds 50\n")
          && strstr (b.s, "herald_waiting_steps 2\n"),
          "the timer queue: one step due for 50 s, two waiting");
  {
    static const char tail[] =
      "# TYPE herald_events_total counter\n"
      "herald_events_total{type=\"clicked\",origin=\"machine\"} 1\n"
      "herald_events_total{type=\"opened\",origin=\"human\"} 2\n";
    tap_ok (b.len >= sizeof tail - 1
            && strcmp (b.s + b.len - (sizeof tail - 1), tail) == 0,
            "events by type and origin, last, ending with a line feed");
  }
  strbuf_reset (&sb);
  metrics_render_server (m, &sb);
  tap_ok (strstr (sb.s,
                  "# TYPE herald_http_requests_total counter\n"
                  "herald_http_requests_total{endpoint=\"click\",code=\"302\"} 2\n"
                  "herald_http_requests_total{endpoint=\"click\",code=\"404\"} 1\n"
                  "herald_http_requests_total{endpoint=\"metrics\",code=\"200\"} 1\n"
                  "herald_http_requests_total{endpoint=\"other\",code=\"404\"} 1\n"
                  "# HELP") != NULL,
          "requests by endpoint and code; codes out of 100-599 and unknown "
          "endpoints ignored");
  tap_ok (strstr (sb.s,
                  "# TYPE herald_plugin_errors_total counter\n"
                  "herald_plugin_errors_total{channel=\"sms\\\"x\\\\y\",reason=\"refused\"} 2\n"
                  "herald_plugin_errors_total{channel=\"sms\\\"x\\\\y\",reason=\"failed\"} 0\n"
                  "herald_plugin_errors_total{channel=\"twilio\",reason=\"refused\"} 0\n"
                  "herald_plugin_errors_total{channel=\"twilio\",reason=\"failed\"} 1\n"
                  "herald_plugin_errors_total{channel=\"late\",reason=\"refused\"} 0\n"
                  "herald_plugin_errors_total{channel=\"late\",reason=\"failed\"} 1\n")
          != NULL && sb.s[sb.len - 1] == '\n',
          "plugin errors per channel, both reasons, zeros shown; the text "
          "ends with a line feed");
  if (tap_failed)
    printf ("# the exposition:\n%s%s", sb.s, b.s);

  tap_ok (metrics_endpoint ("/u/tok") == METRICS_EP_UNSUBSCRIBE
          && metrics_endpoint ("/c/tok") == METRICS_EP_CLICK
          && metrics_endpoint ("/o/tok.gif") == METRICS_EP_OPEN
          && metrics_endpoint ("/events") == METRICS_EP_EVENTS
          && metrics_endpoint ("/inbound/sms/x") == METRICS_EP_INBOUND
          && metrics_endpoint ("/healthz") == METRICS_EP_HEALTHZ
          && metrics_endpoint ("/metrics") == METRICS_EP_METRICS
          && metrics_endpoint ("/metrics/") == METRICS_EP_OTHER
          && metrics_endpoint ("/events/x") == METRICS_EP_OTHER
          && metrics_endpoint ("/") == METRICS_EP_OTHER
          && metrics_endpoint ("/u") == METRICS_EP_OTHER,
          "paths map to the fixed endpoints, anything else to other");

  /* A store that fails (another connection dropped a table): -1, and
   * store_error says what failed, for serve's 503 and its log line. */
  {
    sqlite3 *db = NULL;
    int dropped = sqlite3_open (path, &db) == SQLITE_OK
                  && sqlite3_exec (db, "DROP TABLE events", NULL, NULL,
                                   NULL) == SQLITE_OK;
    sqlite3_close (db);
    strbuf_reset (&b);
    tap_ok (dropped && metrics_render_store (st, 1000000, &b) == -1
            && strstr (store_error (st), "counting the events"),
            "a store failure: -1 and the error (%s)", store_error (st));
  }
  store_close (st);
  metrics_free (m);
  metrics_free (NULL);
  cmd = xasprintf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    printf ("# could not remove %s\n", dir);
  free (cmd);
  strbuf_free (&b);
  strbuf_free (&sb);
  free (path);
  return tap_done ();
}
