/* test-store: the store interface against a fresh SQLite file: outbox
 * life cycle, duplicate keys, due rows, crash recovery, caps, consent,
 * suppressions, events and their side effects, migrations, WAL.
 * With HERALD_TEST_PG_URL set (tests/store/pg.sh), the same suite against
 * that PostgreSQL database, emptied first (its public schema dropped),
 * and PostgreSQL's own cases: reconnection, schema versions, URLs. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "util.h"
#include "tap.h"

static char dir[] = "/tmp/herald-test-store-XXXXXX";

static char *
path_in (const char *name)
{
  return xasprintf ("%s/%s", dir, name);
}

static struct store *
open_or_die (const char *path)
{
  char err[512];
  struct store *st = store_open (path, err, sizeof err);
  if (!st) {
    printf ("Bail out! %s\n", err);
    exit (1);
  }
  return st;
}

static json_t *
J (const char *text)
{
  json_error_t je;
  json_t *j = json_loads (text, 0, &je);
  if (!j) {
    printf ("Bail out! bad test JSON: %s\n", je.text);
    exit (1);
  }
  return j;
}

static int
put (struct store *st, const char *id, const char *text)
{
  json_t *j = J (text);
  int r = store_customer_put (st, id, j);
  json_decref (j);
  return r;
}

static struct outbox_row
row (const char *key, const char *campaign, int step, const char *customer,
     const char *channel, const char *state)
{
  struct outbox_row r = { 0 };
  r.key = key;
  r.campaign = campaign;
  r.step = step;
  r.customer = customer;
  r.channel = channel;
  r.instance = channel;
  r.variant = "A";
  r.state = state;
  r.address = "[\"x@example.com\"]";
  r.parts = "{\"email.subject\": \"Hi\"}";
  r.trace = "email: only channel";
  return r;
}

/* Callbacks collecting keys into a strbuf, space separated. */
static int
collect_row (void *data, const struct outbox_row *r)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s%s", b->len ? " " : "", r->key);
  return 0;
}

static int
collect_customer (void *data, json_t *c)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s%s", b->len ? " " : "",
               json_string_value (json_object_get (c, "id")));
  return 0;
}

static int
collect_event (void *data, const char *channel, const char *type, int64_t at)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s%s/%s@%lld", b->len ? " " : "", channel, type,
               (long long) at);
  return 0;
}

static int
ignore_row (void *data, const struct outbox_row *r)
{
  (void) data;
  (void) r;
  return 0;
}

/* The callback of store_outbox_due that claims each row, as the
 * scheduler does. */
static int
claim_row (void *data, const struct outbox_row *r)
{
  struct store *st = data;
  return store_outbox_update (st, r->key, "sending", r->attempts + 1, 0, NULL,
                              NULL, NULL) != 0;
}

static void
test_outbox (struct store *st)
{
  struct outbox_row r;
  struct outbox_row *got = NULL;
  struct strbuf b = STRBUF_INIT;
  int64_t next;
  int n, i;
  json_t *counts;

  r = row ("c1:0:alice", "c1", 0, "alice", "email", "pending");
  tap_ok (store_outbox_insert (st, &r) == 0, "insert a new row");
  r.state = "sent";
  r.channel = "sms";
  tap_ok (store_outbox_insert (st, &r) == 1,
          "insert of an existing key returns 1");
  store_outbox_get (st, "c1:0:alice", &got);
  tap_ok (got != NULL, "get the row");
  tap_is (got ? got->state : NULL, "pending",
          "a duplicate insert changed nothing (state)");
  tap_is (got ? got->channel : NULL, "email",
          "a duplicate insert changed nothing (channel)");
  tap_is (got ? got->parts : NULL, "{\"email.subject\": \"Hi\"}",
          "parts are kept as given");
  tap_ok (got && got->created == 1000000 && got->sent_at == 0,
          "created from HERALD_NOW, sent_at unset");
  store_row_free (got);

  r = row ("c1:0:bob", "c1", 0, "bob", "email", "retry");
  r.next_at = 1000100;
  store_outbox_insert (st, &r);
  r = row ("c1:0:carol", "c1", 0, "carol", "sms", "deferred");
  r.next_at = 1000050;
  store_outbox_insert (st, &r);
  r = row ("c1:0:dave", "c1", 0, "dave", "email", "skipped");
  r.reason = "no consent";
  store_outbox_insert (st, &r);
  r = row ("c2:0:alice", "c2", 0, "alice", "email", "pending");
  store_outbox_insert (st, &r);

  n = store_outbox_due (st, "c1", 1000000, 10, collect_row, &b);
  tap_ok (n == 1, "one row of c1 due now (got %d)", n);
  tap_is (b.s, "c1:0:alice", "the pending row is due");
  strbuf_reset (&b);
  n = store_outbox_due (st, "c1", 1000100, 10, collect_row, &b);
  tap_is (b.s, "c1:0:alice c1:0:carol c1:0:bob",
          "pending, deferred and retry rows in next_at order");
  strbuf_reset (&b);
  n = store_outbox_due (st, "c1", 1000100, 2, collect_row, &b);
  tap_ok (n == 2, "limit honoured");

  tap_ok (store_outbox_next_due (st, "c1", &next) == 1 && next == 1000050,
          "next due among retry/deferred is the earliest");
  tap_ok (store_outbox_next_due (st, "nope", &next) == 0 && next == 0,
          "no next due for an unknown campaign");

  /* The scheduler claims every due row through the callback: none comes
   * back on the next call. */
  n = store_outbox_due (st, "c1", 1000100, 10, claim_row, st);
  tap_ok (n == 3, "claimed three rows from the callback");
  strbuf_reset (&b);
  n = store_outbox_due (st, "c1", 1000100, 10, collect_row, &b);
  tap_ok (n == 0, "claimed rows are not due again");

  tap_ok (store_outbox_update (st, "c1:0:alice", "sent", 1, 0, "prov-1", NULL,
                               NULL) == 0, "update to sent");
  store_outbox_get (st, "c1:0:alice", &got);
  tap_ok (got && got->sent_at == 1000000 && got->attempts == 1
          && got->provider_id && strcmp (got->provider_id, "prov-1") == 0,
          "sent_at, attempts, provider id recorded");
  tap_ok (got && got->parts == NULL, "a sent row's parts are dropped");
  store_row_free (got);
  tap_ok (store_outbox_update (st, "no:such:key", "sent", 1, 0, NULL, NULL,
                               NULL) == 1, "update of an unknown key returns 1");
  tap_ok (store_outbox_update (st, "c1:0:alice", "bogus", 1, 0, NULL, NULL,
                               NULL) == -1 && *store_error (st),
          "an unknown state is refused");
  store_outbox_get (st, "c1:0:bob", &got);
  tap_ok (got && got->parts != NULL, "a row not yet sent keeps its parts");
  store_row_free (got);
  tap_ok (store_outbox_update_reason (st, "c1:0:bob", "failed",
                                      "address invalid", 2, 0, NULL, "550",
                                      NULL) == 0, "update with a reason");

  /* Fallback: bob's email failed, re-route to sms. */
  r = row ("c1:0:bob", "c1", 0, "bob", "sms", "pending");
  r.address = "[\"+33612345678\"]";
  r.parts = "{\"sms.body\": \"Hi\"}";
  r.trace = "email failed: 550; sms next";
  tap_ok (store_outbox_reroute (st, &r) == 0, "reroute a failed row");
  store_outbox_get (st, "c1:0:bob", &got);
  tap_ok (got && strcmp (got->channel, "sms") == 0
          && strcmp (got->state, "pending") == 0 && got->attempts == 0
          && got->error == NULL, "rerouted row is pending on sms, reset");
  store_row_free (got);

  /* Crash recovery: carol (and bob, claimed) are still in "sending". */
  store_outbox_update (st, "c1:0:bob", "sending", 1, 0, NULL, NULL, NULL);
  tap_ok (store_outbox_recover (st, "c1", 1, 0, &n) == 0 && n == 2,
          "at-least-once recovery resets 2 sending rows (got %d)", n);
  store_outbox_get (st, "c1:0:carol", &got);
  tap_is (got ? got->state : NULL, "pending", "recovered row is pending");
  store_row_free (got);
  store_outbox_update (st, "c1:0:carol", "sending", 1, 0, NULL, NULL, NULL);
  tap_ok (store_outbox_recover (st, NULL, 0, 0, &n) == 0 && n == 1,
          "at-most-once recovery over all campaigns");
  store_outbox_get (st, "c1:0:carol", &got);
  tap_ok (got && strcmp (got->state, "failed") == 0 && got->reason
          && strcmp (got->reason, "in flight at crash") == 0,
          "at-most-once: failed, 'in flight at crash'");
  store_row_free (got);

  /* At most once, a row claimed for a batch and never handed to a plugin
   * (the lane still held the last one) goes back to pending; the row
   * handed over is failed. */
  r = row ("am:0:a", "am", 0, "a", "sms", "pending");
  store_outbox_insert (st, &r);
  r = row ("am:0:b", "am", 0, "b", "sms", "pending");
  store_outbox_insert (st, &r);
  tap_ok (store_outbox_claim (st, "am", 4000000000LL, 10, ignore_row, NULL) == 2,
          "at-most-once: two rows claimed");
  store_outbox_update_reason (st, "am:0:a", "sending", NULL, 1, 0, NULL, NULL,
                              NULL);
  i = store_outbox_recover (st, "am", 0, 0, &n);
  tap_ok (i == 0 && n == 1,
          "at-most-once recovery fails the one row handed over (got %d)", n);
  store_outbox_get (st, "am:0:a", &got);
  tap_is (got ? got->state : NULL, "failed", "at-most-once: the handed row failed");
  store_row_free (got);
  store_outbox_get (st, "am:0:b", &got);
  tap_ok (got && strcmp (got->state, "pending") == 0 && got->reason == NULL
          && got->attempts == 0,
          "at-most-once: the row only claimed is pending again, no attempt counted");
  store_row_free (got);

  /* A channel's volume of the day (warm-up): what was handed to it. */
  {
    static const char *const keys[] = { "wv:0:a", "wv:0:b", "wv:0:c",
                                        "wv:0:d", "wv:0:e", "wv:0:f" };
    static const char *const states[] = { "sent", "sending", "retry",
                                          "pending", "failed", "dead" };
    static const int attempts[] = { 1, 1, 1, 0, 0, 3 };
    size_t k;

    for (k = 0; k < 6; k++) {
      r = row (keys[k], "wv", 0, keys[k] + 5, "wk", "pending");
      r.instance = "warm";
      store_outbox_insert (st, &r);
      store_outbox_update (st, keys[k], states[k], attempts[k], 0, NULL,
                           NULL, NULL);
    }
    tap_ok (store_instance_volume (st, "warm", 0) == 4,
            "a channel's volume: sent, in flight, retried and dead after "
            "attempts; not pending, nor failed unattempted (got %ld)",
            store_instance_volume (st, "warm", 0));
    tap_ok (store_instance_volume (st, "warm", 1000001) == 0,
            "... none since later");
    tap_ok (store_instance_volume (st, "email", 0) >= 0
            && store_instance_volume (st, "cold", 0) == 0,
            "... another channel's are not counted");
  }

  /* Frequency caps. */
  r = row ("c3:0:alice", "c3", 0, "alice", "sms", "sent");
  store_outbox_insert (st, &r);
  /* A cap counts what was sent and what is committed to be sent (c2's
   * pending row): two campaigns planning alice at once see each other. */
  tap_ok (store_sent_count (st, "alice", NULL, 0) == 3,
          "alice: 2 sent and 1 pending over all channels");
  tap_ok (store_sent_count (st, "alice", "email", 0) == 2,
          "alice: 1 sent and 1 pending by email");
  tap_ok (store_sent_count (st, "alice", NULL, 1000001) == 0,
          "nothing sent or planned since later");
  tap_ok (store_sent_count (st, "bob", NULL, 0) == 1,
          "bob: his recovered (pending) message counts");
  tap_ok (store_sent_count (st, "dave", NULL, 0) == 0,
          "dave: a skipped row does not count");
  tap_ok (store_sent_count (st, "carol", NULL, 0) == 0,
          "carol: a failed row does not count");

  tap_ok (store_campaign_counts (st, "c1", &counts) == 0, "campaign counts");
  tap_ok (json_integer_value (json_object_get (counts, "total")) == 4,
          "c1 has 4 rows");
  tap_ok (json_integer_value (json_object_get (json_object_get (counts,
                                                                "states"),
                                               "skipped")) == 1,
          "one skipped");
  {
    char *t = json_dumps (json_object_get (counts, "rows"), JSON_COMPACT);
    tap_ok (strstr (t, "\"state\":\"skipped\",\"reason\":\"no consent\","
                    "\"count\":1") != NULL, "skipped by reason: %s", t);
    free (t);
  }
  json_decref (counts);
  strbuf_free (&b);
}

static int
collect_id (void *data, const char *id)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s%s", b->len ? " " : "", id);
  return 0;
}

static void
test_customers (struct store *st)
{
  json_t *c;
  struct strbuf b = STRBUF_INIT;
  int n;

  tap_ok (put (st, "alice", "{\"id\":\"alice\",\"email\":\"a@example.com\","
               "\"consent\":{\"email\":true,\"sms\":false},"
               "\"attributes\":{\"plan\":\"gold\"}}") == 0, "put alice");
  put (st, "bob", "{\"id\":\"bob\",\"phone\":\"+33612345678\"}");
  put (st, "carol", "{\"id\":\"carol\",\"email\":\"c@example.com\"}");
  put (st, "dave", "{\"id\":\"dave\"}");
  tap_ok (store_customer_count (st) == 4, "4 customers");
  tap_ok (store_customer_exists (st, "bob") == 1
          && store_customer_exists (st, "zed") == 0, "exists");
  c = store_customer_get (st, "alice");
  tap_is (json_string_value (json_object_get (json_object_get (c,
                                                               "attributes"),
                                              "plan")), "gold",
          "record round trip");
  json_decref (c);
  tap_ok (store_customer_get (st, "zed") == NULL && !*store_error (st),
          "unknown customer: NULL, no error");
  tap_ok (store_consent_get (st, "alice", "email") == 1, "imported consent yes");
  tap_ok (store_consent_get (st, "alice", "sms") == 0, "imported consent no");
  tap_ok (store_consent_get (st, "alice", "push") == -1, "unknown consent");

  /* An SMS STOP wins over a later import that still says yes. */
  store_consent_set (st, "alice", "email", 0, 1000010, "unsubscribe link");
  put (st, "alice", "{\"id\":\"alice\",\"email\":\"a@example.com\","
       "\"consent\":{\"email\":true,\"push\":true}}");
  tap_ok (store_consent_get (st, "alice", "email") == 0,
          "explicit withdrawal beats a re-import");
  tap_ok (store_consent_get (st, "alice", "push") == 1,
          "a re-import adds new consent");
  tap_ok (store_consent_get (st, "alice", "sms") == -1,
          "a re-import drops imported consent it no longer has");
  store_consent_set (st, "alice", "email", 1, 1000005, "old grant");
  tap_ok (store_consent_get (st, "alice", "email") == 0,
          "an older explicit change loses to a newer one");
  store_consent_set (st, "alice", "email", 1, 1000020, "opt-in form");
  tap_ok (store_consent_get (st, "alice", "email") == 1,
          "a newer explicit grant wins");
  c = store_customer_get (st, "alice");
  {
    char *t = json_dumps (json_object_get (c, "consent"), JSON_COMPACT);
    tap_is (t, "{\"email\":true,\"push\":true}",
            "the record carries the effective consent");
    free (t);
  }
  json_decref (c);

  put (st, "erin", "{\"id\":\"erin\",\"phone\":\"+33612345678\"}");
  tap_ok (store_customer_find (st, "sms", "+33612345678", collect_id, &b) == 2,
          "two customers share a phone");
  tap_is (b.s, "bob erin", "found by phone, in id order");
  strbuf_reset (&b);
  tap_ok (store_customer_find (st, "email", "c@example.com", collect_id, &b)
          == 1 && strcmp (b.s, "carol") == 0, "found by email");
  strbuf_reset (&b);
  tap_ok (store_customer_find (st, "email", "nobody@example.com", collect_id,
                               &b) == 0, "unknown address: none");
  tap_ok (store_customer_find (st, "push", "tok", collect_id, &b) == -1,
          "push tokens are not searchable");
  strbuf_reset (&b);

  /* Audience: customers without a row for (c1, 0), in id order. */
  n = store_audience_next (st, "c1", 0, NULL, 10, collect_customer, &b);
  tap_ok (n == 1 && strcmp (b.s, "erin") == 0,
          "only erin has no c1 step 0 row (got %d: %s)", n, b.s ? b.s : "");
  strbuf_reset (&b);
  n = store_audience_next (st, "c1", 1, NULL, 2, collect_customer, &b);
  tap_is (b.s, "alice bob", "audience page 1");
  strbuf_reset (&b);
  n = store_audience_next (st, "c1", 1, "bob", 2, collect_customer, &b);
  tap_is (b.s, "carol dave", "audience page 2");
  strbuf_reset (&b);
  n = store_audience_next (st, "c1", 1, "dave", 2, collect_customer, &b);
  tap_is (b.s, "erin", "audience page 3");
  strbuf_reset (&b);
  n = store_audience_next (st, "c1", 1, "erin", 2, collect_customer, &b);
  tap_ok (n == 0, "audience exhausted");
  n = store_audience_next (st, "c2", 0, NULL, 10, collect_customer, &b);
  tap_is (b.s, "bob carol dave erin", "c2: alice already has a row");
  strbuf_free (&b);
}

static void
test_events (struct store *st)
{
  struct strbuf b = STRBUF_INIT;
  json_t *stats, *eng;
  char *t;

  tap_ok (store_suppress (st, "email", "x@example.com", "manual") == 0
          && store_is_suppressed (st, "email", "x@example.com") == 1
          && store_is_suppressed (st, "sms", "x@example.com") == 0,
          "suppress is per channel and address");
  tap_ok (store_suppress (st, "email", "x@example.com", "again") == 0,
          "suppressing twice is fine");

  tap_ok (store_event_put (st, "alice", "email", "opened", 1000001, "c1",
                           "c1:0:alice", NULL) == 0, "event put");
  tap_ok (store_event_put (st, "alice", "email", "opened", 1000001, "c1",
                           "c1:0:alice", NULL) == 1,
          "the same event again returns 1 (recorded once)");
  store_event_put (st, "alice", "email", "clicked", 1000002, "c1", NULL, NULL);
  store_event_put (st, "alice", "sms", "delivered", 1000003, "c3",
                   "c3:0:alice", NULL);
  store_customer_events (st, "alice", 1000002, collect_event, &b);
  tap_is (b.s, "email/clicked@1000002 sms/delivered@1000003",
          "customer events since, oldest first");

  /* An unsubscribe withdraws consent for that channel. */
  store_consent_set (st, "bob", "sms", 1, 1000000, "form");
  tap_ok (store_event_put (st, "bob", "sms", "unsubscribed", 1000030, NULL,
                           NULL, NULL) == 0
          && store_consent_get (st, "bob", "sms") == 0,
          "unsubscribed event withdraws consent");
  /* A bounce suppresses the customer's address on that channel. */
  store_event_put (st, "carol", "email", "bounced", 1000031, NULL, NULL, NULL);
  tap_ok (store_is_suppressed (st, "email", "c@example.com") == 1,
          "bounced event suppresses the customer's email");
  store_event_put (st, "bob", "sms", "complained", 1000032, NULL, NULL, NULL);
  tap_ok (store_is_suppressed (st, "sms", "+33612345678") == 1,
          "complained event suppresses the customer's phone");
  /* ... the message's address when the event names the message. */
  {
    /* As plan.c records it: {"type", "value"} destinations. */
    struct outbox_row m = row ("c7:0:zed", "c7", 0, "zed", "email", "sent");
    m.address = "[{\"type\": \"email\", \"value\": \"old@example.com\"}]";
    store_outbox_insert (st, &m);
    store_event_put (st, "zed", "email", "bounced", 1000033, "c7",
                     "c7:0:zed", NULL);
    tap_ok (store_is_suppressed (st, "email", "old@example.com") == 1,
            "bounce with a message key suppresses that message's address");
  }
  store_event_put (st, "dave", "email", "bounced", 1000034, NULL, NULL,
                   "{\"address\": \"d@example.com\"}");
  tap_ok (store_is_suppressed (st, "email", "d@example.com") == 1,
          "bounce with an address in the detail suppresses it");

  /* The scheduler's own "sent" events do not double the outbox count. */
  store_event_put (st, "alice", "email", "sent", 1000000, NULL, NULL, NULL);
  store_event_put (st, "alice", "email", "sent", 1000000, "c9", "c9:0:alice",
                   NULL);
  tap_ok (store_channel_stats (st, 0, &stats) == 0, "channel stats");
  t = json_dumps (stats, JSON_COMPACT | JSON_SORT_KEYS);
  /* zed's message and its bounce count too. */
  tap_ok (strstr (t, "\"email\":{\"bounced\":3,\"clicked\":1,"
                  "\"complained\":0,\"converted\":0,\"delivered\":0,"
                  "\"opened\":1,\"replied\":0,\"sent\":2,\"unsubscribed\":0}")
          != NULL, "email stats: %s", t);
  free (t);
  json_decref (stats);

  tap_ok (store_campaign_engagement (st, "c1", &eng) == 0, "engagement");
  t = json_dumps (eng, JSON_COMPACT);
  tap_ok (strstr (t, "{\"channel\":\"email\",\"variant\":\"A\","
                  "\"type\":\"clicked\",\"count\":1,\"messages\":1,"
                  "\"machine\":false}") != NULL,
          "a click without a message key is attributed to alice's row: %s",
          t);
  free (t);
  json_decref (eng);
  strbuf_free (&b);
}

static int
collect_msg_event (void *data, int64_t id, int64_t at_ms, const char *detail,
                   const char *machine)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s%lld:%s:%s", b->len ? " " : "", (long long) at_ms,
               detail ? detail : "-", machine ? machine : "person");
  return 0;
}

static int
first_id (void *data, int64_t id, int64_t at_ms, const char *detail,
          const char *machine)
{
  *(int64_t *) data = id;
  return 1;
}

/* The tracking server's events: to the millisecond, some a machine's. */
static void
test_machine_events (struct store *st)
{
  struct store_event ev;
  struct strbuf b = STRBUF_INIT;
  json_t *stats, *eng, *row;
  size_t i;
  int64_t id = 0;
  char *t;
  int people = 0, machines = 0;

  memset (&ev, 0, sizeof ev);
  ev.customer = "erin";
  ev.channel = "email";
  ev.type = "clicked";
  ev.at = 2000000;
  ev.campaign = "m1";
  ev.message_key = "m1:1:erin";
  ev.detail_json = "{\"url\":\"https://a.example/\"}";
  ev.at_ms = 2000000100;
  tap_ok (store_event_record (st, &ev) == 0, "a click to the millisecond");
  ev.at_ms = 2000000700;
  ev.detail_json = "{\"url\":\"https://b.example/\"}";
  tap_ok (store_event_record (st, &ev) == 0,
          "a second click in the same second is another event");
  ev.at_ms = 2000000100;
  tap_ok (store_event_record (st, &ev) == 0,
          "a click on another link in the same millisecond is another event");
  ev.type = "opened";
  ev.detail_json = NULL;
  ev.at_ms = 2000000050;
  ev.machine = "head";
  tap_ok (store_event_record (st, &ev) == 0, "a machine's open");

  store_message_events (st, "m1:1:erin", "clicked", 2000000000, 2000000999,
                        collect_msg_event, &b);
  tap_is (b.s, "2000000100:{\"url\":\"https://a.example/\"}:person "
          "2000000100:{\"url\":\"https://b.example/\"}:person "
          "2000000700:{\"url\":\"https://b.example/\"}:person",
          "a message's clicks in a window, oldest first");
  strbuf_reset (&b);
  store_message_events (st, "m1:1:erin", "clicked", 2000000101, 2000000699,
                        collect_msg_event, &b);
  tap_ok (b.len == 0, "none outside the window");
  store_message_events (st, "m1:1:erin", "clicked", 0, INT64_MAX, first_id,
                        &id);
  tap_ok (store_event_set_machine (st, id, "burst") == 0
          && store_event_set_machine (st, id, "other") == 1,
          "flag a click as a machine's; an event flagged keeps its reason");
  strbuf_reset (&b);
  store_message_events (st, "m1:1:erin", "clicked", 0, INT64_MAX,
                        collect_msg_event, &b);
  tap_ok (b.s && strstr (b.s, "2000000100:{\"url\":\"https://a.example/\"}:burst"),
          "the flag is stored: %s", b.s ? b.s : "");

  strbuf_reset (&b);
  store_customer_events (st, "erin", 0, collect_event, &b);
  tap_is (b.s, "email/clicked@2000000 email/clicked@2000000",
          "the router's history leaves the machines' events out");
  tap_ok (store_channel_stats (st, 1999999, &stats) == 0
          && json_integer_value (json_object_get (json_object_get (stats, "email"),
                                                  "clicked")) == 2
          && json_integer_value (json_object_get (json_object_get (stats, "email"),
                                                  "opened")) == 0,
          "so do the population rates");
  json_decref (stats);
  tap_ok (store_campaign_engagement (st, "m1", &eng) == 0, "engagement");
  json_array_foreach (eng, i, row) {
    const char *type = json_string_value (json_object_get (row, "type"));
    json_int_t n = json_integer_value (json_object_get (row, "count"));
    if (json_is_true (json_object_get (row, "machine")))
      machines += strcmp (type, "clicked") == 0 && n == 1 ? 10
                  : strcmp (type, "opened") == 0 && n == 1 ? 1 : 100;
    else
      people += strcmp (type, "clicked") == 0 && n == 2 ? 1 : 100;
  }
  t = json_dumps (eng, JSON_COMPACT);
  tap_ok (people == 1 && machines == 11,
          "engagement counts the machines' clicks and opens apart: %s", t);
  free (t);
  json_decref (eng);
  strbuf_free (&b);
}

static void
test_campaigns (struct store *st)
{
  json_t *c = NULL;

  tap_ok (store_campaign_get (st, "c1", &c) == 1 && c == NULL,
          "unknown campaign returns 1");
  store_campaign_start (st, "c1", "Spring", 1000000);
  store_campaign_start (st, "c1", NULL, 1000100);
  store_campaign_finish (st, "c1", "done", 1000200);
  tap_ok (store_campaign_get (st, "c1", &c) == 0, "campaign get");
  tap_ok (json_integer_value (json_object_get (c, "runs")) == 2
          && json_integer_value (json_object_get (c, "first_started"))
             == 1000000
          && json_integer_value (json_object_get (c, "finished")) == 1000200,
          "runs, first start and finish recorded");
  tap_is (json_string_value (json_object_get (c, "name")), "Spring",
          "a NULL name keeps the old one");
  json_decref (c);
}

static void
test_transactions (struct store *st)
{
  struct outbox_row r = row ("t:0:x", "t", 0, "x", "email", "pending");
  struct outbox_row *got = NULL;

  tap_ok (store_begin (st) == 0, "begin");
  tap_ok (store_begin (st) == -1, "begin inside a transaction is refused");
  store_outbox_insert (st, &r);
  tap_ok (store_rollback (st) == 0, "rollback");
  store_outbox_get (st, "t:0:x", &got);
  tap_ok (got == NULL, "a rolled-back insert is gone");
  store_begin (st);
  store_outbox_insert (st, &r);
  tap_ok (store_commit (st) == 0, "commit");
  store_outbox_get (st, "t:0:x", &got);
  tap_ok (got != NULL, "a committed insert stays");
  store_row_free (got);
  tap_ok (store_commit (st) == -1, "commit without a transaction is refused");
}

/* The short links of SMS: what is recorded reads back by id, byte for
 * byte; ids grow; an unknown id is 1; a rolled-back link is gone. */
static void
test_links (struct store *st)
{
  static const char url[] = "https://shop.example/caf\xc3\xa9?a=1&b=\xff";
  int64_t a = 0, b = 0, c = 0;
  char *key = NULL, *u = NULL;
  size_t len = 0;

  int rc = store_link_add (st, "spring:1:c1", url, sizeof url - 1, &a);

  tap_ok (rc == 0 && a >= 1, "a short link is recorded: id %lld",
          (long long) a);
  tap_ok (store_link_add (st, "spring:1:c1", "https://b.example/", 18, &b) == 0
          && b > a, "a second link of the message: a greater id");
  tap_ok (store_link_get (st, a, &key, &u, &len) == 0 && key && u
          && strcmp (key, "spring:1:c1") == 0 && len == sizeof url - 1
          && memcmp (u, url, len + 1) == 0,
          "it reads back by id: the message key and the URL, byte for byte "
          "(not UTF-8 too), NUL-terminated");
  free (key);
  free (u);
  tap_ok (store_link_get (st, b + 1000, &key, &u, &len) == 1 && !key && !u
          && len == 0, "an unknown id: 1, nothing handed back");
  store_begin (st);
  store_link_add (st, "spring:1:c2", "https://c.example/", 18, &c);
  store_rollback (st);
  tap_ok (c > b && store_link_get (st, c, &key, &u, &len) == 1,
          "a link recorded in a rolled-back transaction is gone");
}

/* SQL that takes a version-5 file back to version 4 (as migration 4 -> 5
 * found it). */
#define UNDO_5 "DROP INDEX events_message_ms; DROP TABLE links;"
/* And 6 -> 5: the index on provider ids. */
#define UNDO_6 "DROP INDEX outbox_provider;"

/* SQL that takes a version-3 file back to version 2 (as migration 2 -> 3
 * found it). */
/* The same for schema 4 (journeys): back to a version-3 file. */
#define UNDO_4 \
  "DROP TABLE timers;" \
  "ALTER TABLE outbox DROP COLUMN journey;"

#define UNDO_3 \
  "DROP INDEX events_once;" \
  "ALTER TABLE events DROP COLUMN machine;" \
  "ALTER TABLE events DROP COLUMN at_ms;" \
  "CREATE UNIQUE INDEX events_once ON events (customer, type, at," \
  " coalesce(channel, ''), coalesce(campaign, '')," \
  " coalesce(message_key, ''));"

/* The timer queue: queued once, due in order, done once, cancelled by
 * time, follow-ups inheriting step 1's entry and event; the events
 * cursor; unless lookups that ignore machines and other journeys. */
static int
collect_timer (void *data, const struct store_timer *t)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s/%lld/%d@%lld%s ", t->customer, (long long) t->instance,
               t->step, (long long) t->due, t->event ? t->event : "");
  return 0;
}

static int
collect_new_event (void *data, const struct store_event_row *e)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s:%s ", e->customer, e->type);
  return 0;
}

static void
test_journeys (struct store *st)
{
  struct store_timer t;
  struct strbuf b = STRBUF_INIT;
  int64_t inst = 0, entered = 0, last = 0, id0 = 0, due = 0, n = 0;
  char *ev = NULL, found[32] = "";
  struct outbox_row row;
  struct store_event e;
  static const char *const unless[] = { "clicked", "converted", NULL };

  memset (&t, 0, sizeof t);
  t.campaign = "cart";
  t.customer = "alice";
  t.instance = 1;
  t.step = 1;
  t.due = 200;
  t.entered = 100;
  t.event = "{\"item\":\"shoes\"}";
  tap_ok (store_timer_add (st, &t) == 0, "timer: queued");
  tap_ok (store_timer_add (st, &t) == 1, "timer: the same step again is a no-op");
  t.customer = "bob";
  t.due = 150;
  t.event = NULL;
  tap_ok (store_timer_add (st, &t) == 0, "timer: another customer");
  tap_ok (store_timers_due (st, "cart", 199, 10, collect_timer, &b) == 1,
          "timer: only what is due");
  tap_is (b.s, "bob/1/1@150 ", "timer: bob's, due at 150");
  strbuf_reset (&b);
  store_timers_due (st, "cart", 1000, 10, collect_timer, &b);
  tap_is (b.s, "bob/1/1@150 alice/1/1@200{\"item\":\"shoes\"} ",
          "timer: oldest due first, with the event");
  tap_ok (store_journey_last (st, "cart", "alice", &inst, &entered) == 1
          && inst == 1 && entered == 100, "journey: alice's last entry");
  tap_ok (store_journey_last (st, "cart", "carol", &inst, &entered) == 0,
          "journey: carol never entered");
  tap_ok (store_timer_cancel (st, "cart", "bob", 99, "cancel_on: x") == 0,
          "cancel: an event older than the entry cancels nothing");
  tap_ok (store_timer_cancel (st, "cart", "bob", 100, "cancel_on: x") == 1,
          "cancel: one at or after it cancels bob's step");
  /* Alice's step 1 fires and is sent; step 2 inherits the entry. */
  tap_ok (store_timer_done (st, 1, "fired", "email") == 0, "done: fired");
  tap_ok (store_timer_done (st, 1, "fired", "email") == 1,
          "done: a second time changes nothing");
  memset (&row, 0, sizeof row);
  row.key = "cart:1:alice:1";
  row.campaign = "cart";
  row.step = 1;
  row.journey = 1;
  row.customer = "alice";
  row.channel = "email";
  row.state = "sent";
  row.sent_at = 300;
  tap_ok (store_outbox_insert (st, &row) == 0, "journey: step 1 recorded sent");
  memset (&t, 0, sizeof t);
  t.campaign = "cart";
  t.customer = "alice";
  t.instance = 1;
  t.step = 2;
  t.due = 400;
  tap_ok (store_timer_add (st, &t) == 0, "follow-up queued");
  tap_ok (store_journey_event (st, "cart", "alice", 1, &ev) == 0 && ev
          && strcmp (ev, "{\"item\":\"shoes\"}") == 0,
          "journey: step 1's event read back");
  free (ev);
  strbuf_reset (&b);
  store_timers_due (st, "cart", 1000, 10, collect_timer, &b);
  tap_is (b.s, "alice/1/2@400{\"item\":\"shoes\"} ",
          "follow-up: the only waiting step, with step 1's event");
  tap_ok (store_timer_next (st, "cart", &due) == 1 && due == 400,
          "the next due step");
  tap_ok (store_timer_stats (st, 1000, &n, &due) == 0 && n == 1 && due == 400,
          "queue stats: one due, oldest at 400");
  /* unless: machines' and other journeys' clicks do not count. */
  store_events_last_id (st, &id0);
  memset (&e, 0, sizeof e);
  e.customer = "alice";
  e.channel = "email";
  e.type = "clicked";
  e.at = 310;
  e.message_key = "cart:1:alice:1";
  e.at_ms = 310000;
  e.machine = "head";
  store_event_record (st, &e);
  e.machine = NULL;
  e.message_key = "other:1:alice";
  store_event_record (st, &e);
  tap_ok (store_journey_engaged (st, "cart", "alice", 1, 300, unless, found,
                                 sizeof found) == 0,
          "unless: a machine's click and another campaign's click don't count");
  e.message_key = "cart:1:alice:1";
  e.at_ms = 320000;
  e.at = 320;
  store_event_record (st, &e);
  tap_ok (store_journey_engaged (st, "cart", "alice", 1, 300, unless, found,
                                 sizeof found) == 1
          && strcmp (found, "clicked") == 0, "unless: her click counts");
  tap_ok (store_journey_engaged (st, "cart", "alice", 1, 321, unless, found,
                                 sizeof found) == 0,
          "unless: not before SINCE");
  strbuf_reset (&b);
  tap_ok (store_events_after (st, id0, 10, collect_new_event, &b) == 3,
          "events after the cursor");
  tap_is (b.s, "alice:clicked alice:clicked alice:clicked ", "... in order");
  tap_ok (store_meta_get_int (st, "journey_cursor:cart", &last) == 0,
          "meta: no cursor yet");
  tap_ok (store_meta_set_int (st, "journey_cursor:cart", 42) == 0
          && store_meta_get_int (st, "journey_cursor:cart", &last) == 1
          && last == 42, "meta: a cursor set and read");
  strbuf_free (&b);
}

/* ---- paging: read a page, then hand it out (page_each) ---------- */

/* Callbacks that count their calls in *DATA and answer by the count:
 * stop (non-zero) or fail (-1) on the second. */
static int
stop_second_row (void *data, const struct outbox_row *r)
{
  int *calls = data;
  (void) r;
  return ++*calls == 2;
}

static int
fail_second_timer (void *data, const struct store_timer *t)
{
  int *calls = data;
  (void) t;
  return ++*calls == 2 ? -1 : 0;
}

static int
positive_timer (void *data, const struct store_timer *t)
{
  int *calls = data;
  (void) t;
  ++*calls;
  return 1;
}

static int
fail_second_event (void *data, const struct store_event_row *e)
{
  int *calls = data;
  (void) e;
  return ++*calls == 2 ? -1 : 0;
}

static void
test_pages (struct store *st)
{
  static const char *const who[] = { "p1", "p2", "p3" };
  struct outbox_row r;
  struct store_timer t;
  int i, n, calls;
  int64_t last = 0;

  memset (&t, 0, sizeof t);
  t.campaign = "pages";
  t.instance = 1;
  t.step = 1;
  t.entered = 100;
  for (i = 0; i < 3; i++) {
    char key[32];

    snprintf (key, sizeof key, "pages:0:%s", who[i]);
    r = row (key, "pages", 0, who[i], "email", "pending");
    store_outbox_insert (st, &r);
    t.customer = who[i];
    t.due = 200 + i;
    store_timer_add (st, &t);
  }
  calls = 0;
  n = store_outbox_due (st, "pages", 2000000, 10, stop_second_row, &calls);
  tap_ok (n == 2 && calls == 2, "page: a callback that stops is counted, "
          "and the next is not called (%d, %d calls)", n, calls);
  calls = 0;
  n = store_timers_due (st, "pages", 1000, 10, fail_second_timer, &calls);
  tap_ok (n == -1 && calls == 2, "page: a callback that fails makes -1 and "
          "is not called again (%d, %d calls)", n, calls);
  calls = 0;
  n = store_timers_due (st, "pages", 1000, 10, positive_timer, &calls);
  tap_ok (n == 3 && calls == 3, "page: timers go on after a positive answer "
          "(%d, %d calls)", n, calls);
  calls = 0;
  n = store_timers_due (st, "pages", 1000, 2, positive_timer, &calls);
  tap_ok (n == 2 && calls == 2, "page: the limit holds (%d)", n);
  store_events_last_id (st, &last);
  calls = 0;
  n = store_events_after (st, 0, 10, fail_second_event, &calls);
  tap_ok (last >= 2 && n == -1 && calls == 2, "page: an event callback "
          "that fails makes -1 (%d, %d calls of %lld events)", n, calls,
          (long long) last);
}

/* store_close as a tap_returns callback. */
static void
call_store_close (void *st)
{
  store_close (st);
}

static void
test_files (void)
{
  char *p = path_in ("v0.db"), *q = path_in ("no/such/dir/x.db");
  char err[512];
  sqlite3 *db;
  sqlite3_stmt *s;
  struct store *st;
  const char *mode = NULL;
  char buf[16] = "";

  /* A file from before versioning ("v0"): a meta table without a version
   * and an unrelated table the migration must leave alone. */
  sqlite3_open (p, &db);
  sqlite3_exec (db, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                "CREATE TABLE notes (x); INSERT INTO notes VALUES (42);",
                NULL, NULL, NULL);
  sqlite3_close (db);
  st = store_open (p, err, sizeof err);
  tap_ok (st != NULL, "open a version-0 file: %s", st ? "ok" : err);
  tap_ok (st && store_schema_version (st) == STORE_SCHEMA_VERSION,
          "migrated to version %d", STORE_SCHEMA_VERSION);
  tap_ok (st && put (st, "z", "{\"id\":\"z\"}") == 0,
          "the migrated file takes customers");
  store_close (st);

  /* Reopen: data kept, no migration re-run. */
  st = open_or_die (p);
  tap_ok (store_customer_exists (st, "z") == 1, "data kept across reopen");
  store_close (st);

  sqlite3_open (p, &db);
  sqlite3_prepare_v2 (db, "PRAGMA journal_mode", -1, &s, NULL);
  if (sqlite3_step (s) == SQLITE_ROW) {
    mode = (const char *) sqlite3_column_text (s, 0);
    strlcpy_ (buf, mode, sizeof buf);
  }
  sqlite3_finalize (s);
  tap_is (buf, "wal", "the file is in WAL mode");
  sqlite3_prepare_v2 (db, "SELECT count(*) FROM notes", -1, &s, NULL);
  tap_ok (sqlite3_step (s) == SQLITE_ROW && sqlite3_column_int (s, 0) == 1,
          "the migration left other tables alone");
  sqlite3_finalize (s);
  /* A version-1 file (outbox_customer on customer, sent_at) with a
   * message in it: migrated to 2, the message kept, the index on customer
   * alone and still used by the caps query. */
  sqlite3_exec (db, UNDO_6 UNDO_5 UNDO_4 UNDO_3 "DROP INDEX outbox_customer;"
                "CREATE INDEX outbox_customer ON outbox (customer, sent_at);"
                "INSERT INTO outbox (key, campaign, step, customer, channel, state,"
                " created, updated, sent_at) VALUES ('c:1:z', 'c', 1, 'z',"
                " 'email', 'sent', 10, 10, 10);"
                "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
                NULL, NULL, NULL);
  sqlite3_close (db);
  st = store_open (p, err, sizeof err);
  tap_ok (st && store_schema_version (st) == STORE_SCHEMA_VERSION,
          "a version-1 file is migrated to %d: %s", STORE_SCHEMA_VERSION,
          st ? "ok" : err);
  tap_ok (st && store_sent_count (st, "z", "email", 5) == 1,
          "its message is kept and counted by the caps query");
  store_close (st);
  sqlite3_open (p, &db);
  {
    struct strbuf cols = STRBUF_INIT;
    sqlite3_prepare_v2 (db, "SELECT name FROM pragma_index_info('outbox_customer')",
                        -1, &s, NULL);
    while (sqlite3_step (s) == SQLITE_ROW) {
      strbuf_adds (&cols, (const char *) sqlite3_column_text (s, 0));
      strbuf_addc (&cols, ' ');
    }
    sqlite3_finalize (s);
    tap_is (cols.s ? cols.s : "", "customer ", "outbox_customer is on customer alone");
    strbuf_free (&cols);
    sqlite3_prepare_v2 (db, "EXPLAIN QUERY PLAN SELECT count(*) FROM outbox "
                        "WHERE customer = 'z' AND sent_at >= 5 AND state = 'sent'",
                        -1, &s, NULL);
    buf[0] = '\0';
    while (sqlite3_step (s) == SQLITE_ROW)
      if (strstr ((const char *) sqlite3_column_text (s, 3), "outbox_customer"))
        strlcpy_ (buf, "indexed", sizeof buf);
    sqlite3_finalize (s);
    tap_is (buf, "indexed", "the caps query searches outbox_customer");
  }
  /* A version-2 file (events without machine and at_ms, the once-only
   * index without at_ms) with a click in it: migrated to 3, the click
   * kept as a person's, and two clicks in one second now two events. */
  sqlite3_exec (db, UNDO_6 UNDO_5 UNDO_4 UNDO_3 "INSERT INTO events (customer, channel, type, at, campaign,"
                " message_key) VALUES ('z', 'email', 'clicked', 20, 'c', 'c:1:z');"
                "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
                NULL, NULL, NULL);
  sqlite3_close (db);
  st = store_open (p, err, sizeof err);
  tap_ok (st && store_schema_version (st) == STORE_SCHEMA_VERSION,
          "a version-2 file is migrated to %d: %s", STORE_SCHEMA_VERSION,
          st ? "ok" : err);
  {
    struct strbuf ev = STRBUF_INIT;
    struct store_event e;

    store_customer_events (st, "z", 0, collect_event, &ev);
    tap_is (ev.s, "email/sent@10 email/clicked@20",
            "its click is kept, a person's");
    memset (&e, 0, sizeof e);
    e.customer = "z";
    e.channel = "email";
    e.type = "clicked";
    e.at = 30;
    e.message_key = "c:1:z";
    e.at_ms = 30100;
    tap_ok (store_event_record (st, &e) == 0, "a click to the millisecond");
    tap_ok (store_event_record (st, &e) == 0,
            "and the same again: the once-only index leaves them out");
    e.at_ms = 0;
    tap_ok (store_event_record (st, &e) == 0
            && store_event_record (st, &e) == 1,
            "an event without at_ms is still recorded once");
    strbuf_free (&ev);
  }
  store_close (st);
  /* A version-3 file (no timer queue, no outbox.journey) with a message:
   * migrated to 4, the message kept with journey 0, the queue usable. */
  sqlite3_open (p, &db);
  sqlite3_exec (db, UNDO_6 UNDO_5 UNDO_4 "UPDATE meta SET value = '3' WHERE key = "
                "'schema_version'", NULL, NULL, NULL);
  sqlite3_close (db);
  st = store_open (p, err, sizeof err);
  tap_ok (st && store_schema_version (st) == STORE_SCHEMA_VERSION,
          "a version-3 file is migrated to %d: %s", STORE_SCHEMA_VERSION,
          st ? "ok" : err);
  {
    struct outbox_row *row = NULL;
    struct store_timer tm;

    tap_ok (st && store_outbox_get (st, "c:1:z", &row) == 0 && row
            && row->journey == 0, "its message is kept, journey 0");
    store_row_free (row);
    memset (&tm, 0, sizeof tm);
    tm.campaign = "c";
    tm.customer = "z";
    tm.step = 2;
    tm.due = 50;
    tap_ok (st && store_timer_add (st, &tm) == 0, "its timer queue takes a step");
  }
  store_close (st);
  sqlite3_open (p, &db);
  /* A version-4 file (no links table): migrated to 5, its messages and
   * events kept, and it takes short links. */
  sqlite3_exec (db, UNDO_6 UNDO_5 "UPDATE meta SET value = '4' WHERE key = "
                "'schema_version'", NULL, NULL, NULL);
  sqlite3_close (db);
  st = store_open (p, err, sizeof err);
  tap_ok (st && store_schema_version (st) == STORE_SCHEMA_VERSION
          && STORE_SCHEMA_VERSION == 6, "a version-4 file is migrated to 6: %s",
          st ? "ok" : err);
  {
    struct strbuf ev = STRBUF_INIT;
    int64_t id = 0;
    char *key = NULL, *u = NULL;
    size_t len;

    store_customer_events (st, "z", 0, collect_event, &ev);
    tap_ok (ev.s && strstr (ev.s, "email/sent@10 email/clicked@20"),
            "its message and events are kept: %s", ev.s ? ev.s : "");
    tap_ok (store_link_add (st, "c:1:z", "https://a.example/", 18, &id) == 0
            && id == 1 && store_link_get (st, id, &key, &u, &len) == 0
            && strcmp (u, "https://a.example/") == 0,
            "and it takes short links, from id 1");
    free (key);
    free (u);
    strbuf_free (&ev);
  }
  store_close (st);
  sqlite3_open (p, &db);
  /* A file from a newer herald is refused, not damaged. */
  sqlite3_exec (db, "UPDATE meta SET value = '99' WHERE key = "
                "'schema_version'", NULL, NULL, NULL);
  sqlite3_close (db);
  st = store_open (p, err, sizeof err);
  tap_ok (st == NULL && strstr (err, "schema version 99 is newer"),
          "a newer schema is refused: %s", err);
  store_close (st);

  st = store_open (q, err, sizeof err);
  tap_ok (st == NULL && strstr (err, q) && strstr (err, "does not exist"),
          "a missing folder is named: %s", err);
  store_close (st);

  {
    char *nd = path_in ("notadb");
    FILE *fp = fopen (nd, "w");
    fputs ("this is not an SQLite file, but long enough to look like one "
           "to nobody at all.................................................",
           fp);
    fclose (fp);
    st = store_open (nd, err, sizeof err);
    tap_ok (st == NULL && strstr (err, nd), "a non-database is refused: %s",
            err);
    store_close (st);
    free (nd);
  }
  tap_ok (tap_returns (call_store_close, NULL),
          "store_close (NULL) is a no-op");
  free (p);
  free (q);
}

/* ---- PostgreSQL ---------------------------------------------------- */

static void
pg_quiet (void *arg, const char *message)
{
  (void) arg;
  (void) message;
}

/* A connection of the test's own to the database at URL (not herald's:
 * its application_name tells them apart), or to DB on the same server
 * (not NULL), or bail out. */
static PGconn *
pg_admin (const char *url, const char *db)
{
  static const char *const keys[] = { "dbname", "application_name",
                                      "dbname", NULL };
  const char *values[] = { url, "herald-test", db, NULL };
  PGconn *c = PQconnectdbParams (keys, values, 1);

  if (PQstatus (c) != CONNECTION_OK) {
    printf ("Bail out! %s: %s\n", url, PQerrorMessage (c));
    exit (1);
  }
  PQsetNoticeProcessor (c, pg_quiet, NULL);
  return c;
}

/* Run SQL on the test's connection; 0 or -1 (printed as a comment). */
static int
pg_sql (PGconn *c, const char *sql)
{
  PGresult *res = PQexec (c, sql);
  ExecStatusType s = PQresultStatus (res);
  int r = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : -1;

  if (r < 0)
    printf ("# %s: %s", sql, PQerrorMessage (c));
  PQclear (res);
  return r;
}

/* End herald's connections to the database (the store's), waiting until
 * they are gone. */
static int
pg_kill_herald (PGconn *c)
{
  return pg_sql (c, "SELECT pg_terminate_backend (pid, 5000) "
                 "FROM pg_stat_activity WHERE application_name = 'herald' "
                 "AND datname = current_database ()");
}

/* An empty database: the suite starts from nothing, as from a new file. */
static void
pg_empty (const char *url)
{
  PGconn *c = pg_admin (url, NULL);

  if (pg_sql (c, "DROP SCHEMA IF EXISTS public CASCADE") < 0
      || pg_sql (c, "CREATE SCHEMA public") < 0) {
    printf ("Bail out! cannot empty %s\n", url);
    exit (1);
  }
  PQfinish (c);
}

/* Many workers on one database: claims that never overlap, leases that
 * expire unless renewed, recovery that takes back only expired work, plan
 * chunks that split the audience. */
static int
collect_state (void *data, const struct outbox_row *r)
{
  struct strbuf *b = data;
  strbuf_addf (b, "%s%s=%s", b->len ? " " : "", r->key, r->state);
  return 1;                     /* a claim hands every row all the same */
}

static void
test_pg_workers (const char *url, struct store *a)
{
  struct store *b;
  struct outbox_row r, *got = NULL;
  struct strbuf s = STRBUF_INIT;
  int64_t n = -1, until = -1;
  int i, k, chunk = -1, mine = 0, back = -1, total = 0, seen[64] = { 0 };
  char err[512];

  if (!(b = store_open (url, err, sizeof err))) {
    printf ("Bail out! %s\n", err);
    exit (1);
  }
  tap_ok (store_set_worker (a, "wA", 60) == 0
          && store_set_worker (b, "wB", 60) == 0, "two workers");
  for (i = 0; i < 3; i++) {
    char key[16];
    snprintf (key, sizeof key, "w:1:c%d", i);
    r = row (key, "w", 1, key + 4, "email", "pending");
    r.next_at = 999990 + i;
    store_outbox_insert (a, &r);
  }
  n = store_outbox_claim (a, "w", 1000000, 2, collect_state, &s);
  tap_ok (n == 2, "A claims 2 of the 3 due rows (%lld)", (long long) n);
  tap_is (s.s, "w:1:c0=pending w:1:c1=pending",
          "in due order, each handed as it was before the claim, whatever "
          "the callback says");
  strbuf_reset (&s);
  n = store_outbox_claim (b, "w", 1000000, 10, collect_state, &s);
  tap_ok (n == 1 && s.s && strcmp (s.s, "w:1:c2=pending") == 0,
          "B claims the one left: %s", s.s ? s.s : "");
  tap_ok (store_outbox_claim (a, "w", 1000000, 10, collect_state, &s) == 0,
          "nothing is left to claim");
  store_outbox_get (a, "w:1:c0", &got);
  tap_ok (got && strcmp (got->state, "sending") == 0 && got->attempts == 0,
          "a claimed row is sending, its attempts unchanged");
  store_row_free (got);
  i = store_work_held (b, "w", 1, 1000000, &n, &until);
  tap_ok (i == 0 && n == 2 && until == 1000060, "B sees A's 2 rows held "
          "until 1000060 (%lld, %lld)", (long long) n, (long long) until);
  tap_ok (store_work_held (a, "w", 1, 1000000, &n, &until) == 0 && n == 1,
          "A sees B's one");
  tap_ok (store_outbox_recover (b, "w", 1, 0, &back) == 0 && back == 0,
          "recovery leaves rows under live leases alone");
  /* At the lease's last second the work is held, and not taken back: a
   * worker polling then must wait for it. */
  setenv ("HERALD_NOW", "1000060", 1);
  tap_ok (store_work_held (b, "w", 1, 1000060, &n, &until) == 0 && n == 2
          && store_outbox_recover (b, "w", 1, 0, &back) == 0 && back == 0,
          "at its lease's last second, A's work is held, not taken back");
  /* A stops renewing (it died); B renews; A's leases expire. */
  setenv ("HERALD_NOW", "1000061", 1);
  tap_ok (store_lease_renew (b) == 1, "B renews its row's lease");
  tap_ok (store_work_held (b, "w", 1, 1000061, &n, &until) == 0 && n == 0,
          "A's expired leases hold nothing");
  i = store_outbox_recover (b, "w", 1, 0, &back);
  tap_ok (i == 0 && back == 2, "recovery takes A's two rows back (%d)", back);
  store_outbox_get (a, "w:1:c0", &got);
  tap_ok (got && strcmp (got->state, "pending") == 0
          && strcmp (got->reason, "recovered") == 0, "A's row is pending");
  store_row_free (got);
  store_outbox_get (a, "w:1:c2", &got);
  tap_is (got ? got->state : NULL, "sending", "B's row is still B's");
  store_row_free (got);
  tap_ok (store_lease_renew (a) == 0, "A, back, has nothing to renew");
  /* A row a worker writes as sending is leased to it. */
  r = row ("w:2:c9", "w", 2, "c9", "email", "sending");
  store_outbox_insert (b, &r);
  store_outbox_update (b, "w:1:c2", "sent", 1, 0, NULL, NULL, NULL);
  tap_ok (store_work_held (a, "w", 2, 1000061, &n, &until) == 0 && n == 1
          && until == 1000121, "a row planned as sending is leased");

  /* Chunks: claimed one at a time, never twice while leased. */
  tap_ok (store_chunk_claim (a, "w", 1, &chunk) == 1 && chunk == 0,
          "A claims chunk 0");
  i = store_chunk_claim (b, "w", 1, &k);
  tap_ok (i == 1 && k == 1, "B claims chunk 1 (%d, %d: %s)", i, k,
          store_error (b));
  tap_ok (store_work_held (b, "w", 1, 1000061, &n, &until) == 0 && n == 1,
          "B sees A's chunk held");
  tap_ok (store_chunk_done (a, "w", 1, 0) == 0
          && store_work_held (b, "w", 1, 1000061, &n, &until) == 0 && n == 0,
          "a done chunk is held no more");
  store_chunk_done (b, "w", 1, 1);
  while (store_chunk_claim (b, "w", 1, &k) == 1) {
    mine++;
    store_chunk_done (b, "w", 1, k);
  }
  tap_ok (mine == 62, "B claims the other 62, then none is left (%d)", mine);
  tap_ok (store_chunk_claim (a, "w", 1, &k) == 0,
          "a later claim of the same worker does not open them again");
  store_close (b);
  b = store_open (url, err, sizeof err);
  store_set_worker (b, "wC", 60);
  tap_ok (b && store_chunk_claim (b, "w", 1, &k) == 1 && k == 0,
          "a new worker's first claim opens them all again (a later run)");
  /* Every customer is in exactly one chunk. */
  strbuf_reset (&s);
  for (i = 0; i < STORE_CHUNKS; i++) {
    struct strbuf c = STRBUF_INIT;
    int got_n = store_audience_chunk (b, "none", 1, i, NULL, 100,
                                      collect_customer, &c);
    if (got_n > 0) {
      seen[i] = got_n;
      total += got_n;
      strbuf_addf (&s, "%s%s", s.len ? " " : "", c.s);
    }
    strbuf_free (&c);
  }
  tap_ok (total == (int) store_customer_count (b),
          "the chunks hold every customer once (%d): %s", total,
          s.s ? s.s : "");
  tap_ok (store_audience_chunk (b, "none", 1, 64, NULL, 10, collect_customer,
                                &s) == -1, "there is no chunk 64");
  setenv ("HERALD_NOW", "1000000", 1);
  store_close (b);
  strbuf_free (&s);
  (void) seen;
}

/* What only a database server has: the schema's versions, connections
 * lost and found again, transactions that a failed statement aborts,
 * URLs and their passwords. */
static void
test_pg (const char *url, struct store *st)
{
  PGconn *c = pg_admin (url, NULL), *other = pg_admin (url, "postgres");
  struct store *st2;
  struct outbox_row r;
  struct outbox_row *got = NULL;
  char err[512], *bad, *sql;

  tap_ok (store_shared (st) == 1, "a PostgreSQL store is shared");
  st2 = store_open (url, err, sizeof err);
  tap_ok (st2 && store_schema_version (st2) == STORE_SCHEMA_VERSION,
          "store_open takes a database at this herald's version: %s",
          st2 ? "ok" : err);
  store_close (st2);
  st2 = store_open_migrate (url, err, sizeof err);
  tap_ok (st2 && store_schema_version (st2) == STORE_SCHEMA_VERSION,
          "migrating a migrated database is harmless: %s", st2 ? "ok" : err);
  store_close (st2);

  /* Writes deferred in a transaction (pipeline mode): what they did
   * lands, and a failure among them fails the transaction, naming the
   * write that failed, and nothing of it is kept. */
  {
    json_t *rec = J ("{\"id\": \"pipe\"}");
    int i, ok = 1;
    char id[32];

    ok &= store_begin (st) == 0;
    for (i = 0; i < 1200; i++) {
      snprintf (id, sizeof id, "pipe%04d", i);
      ok &= store_customer_put (st, id, rec) == 0;
    }
    ok &= store_commit (st) == 0;
    tap_ok (ok && store_customer_exists (st, "pipe1199") == 1,
            "1,200 customers put in one transaction (pipelined) all land");
    ok = store_begin (st) == 0;
    ok &= store_customer_put (st, "pipe-a", rec) == 0;
    /* a NUL-free byte string that is not UTF-8: PostgreSQL refuses it */
    ok &= store_customer_put (st, "bad\xff\xfe", rec) >= -1;
    ok &= store_customer_put (st, "pipe-b", rec) >= -1;
    tap_ok (ok && store_commit (st) < 0
            && strstr (store_error (st), "writing customer 'bad"),
            "a deferred write that fails fails the commit, naming it: %s",
            store_error (st));
    tap_ok (store_customer_exists (st, "pipe-a") == 0
            && store_customer_exists (st, "pipe-b") == 0,
            "and nothing of that transaction is kept");
    json_decref (rec);
  }

  /* A newer schema is refused, migrating or not, and left alone. */
  pg_sql (c, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  st2 = store_open (url, err, sizeof err);
  tap_ok (!st2 && strstr (err, "schema version 99, newer than this herald's"),
          "a newer schema is refused: %s", st2 ? "opened" : err);
  store_close (st2);
  st2 = store_open_migrate (url, err, sizeof err);
  tap_ok (!st2 && strstr (err, "schema version 99"),
          "and not migrated: %s", st2 ? "opened" : err);
  store_close (st2);
  pg_sql (c, "UPDATE meta SET value = '6' WHERE key = 'schema_version'");

  /* A statement that fails inside a transaction aborts it: the commit
   * says so, and no transaction is left open. */
  r = row ("pgtx:0:a", "pgtx", 0, "a", "email", "pending");
  store_begin (st);
  tap_ok (store_outbox_insert (st, &r) == 0, "an insert in a transaction");
  r = row ("pgtx:0:\xff", "pgtx", 0, "\xff", "email", "pending");
  tap_ok (store_outbox_insert (st, &r) == -1 && strstr (store_error (st),
                                                        "outbox row"),
          "a key that is not UTF-8 is refused (TEXT): %s", store_error (st));
  tap_ok (store_commit (st) == -1
          && strstr (store_error (st), "rolled back"),
          "the commit fails: %s", store_error (st));
  tap_ok (store_outbox_get (st, "pgtx:0:a", &got) == 0 && !got,
          "the transaction's insert is gone");
  tap_ok (store_begin (st) == 0 && store_rollback (st) == 0,
          "no transaction was left open");

  /* The server ends the connection (a restart, a fail-over): outside a
   * transaction the next call reconnects; inside one it fails. */
  tap_ok (pg_kill_herald (c) == 0, "the server drops herald's connections");
  tap_ok (store_customer_count (st) >= 0,
          "outside a transaction, a call reconnects: %s", store_error (st));
  tap_ok (store_outbox_get (st, "c1:0:alice", &got) == 0 && got,
          "and prepares its statements again: %s", store_error (st));
  store_row_free (got);
  store_begin (st);
  pg_kill_herald (c);
  tap_ok (store_customer_count (st) == -1 && *store_error (st),
          "inside a transaction, the call fails: %s", store_error (st));
  tap_ok (store_rollback (st) == 0, "and the rollback is quiet");
  tap_ok (store_customer_count (st) >= 0, "then the store works again: %s",
          store_error (st));

  /* The server stays away: the call gives up after the retries (30 s,
   * shortened here) and says why. */
  setenv ("HERALD_PG_RETRY_MS", "700", 1);
  sql = xasprintf ("ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false", PQdb (c));
  pg_sql (other, sql);
  free (sql);
  pg_kill_herald (c);
  tap_ok (store_customer_count (st) == -1
          && strstr (store_error (st), "counting customers: the connection "
                     "to the server was lost, and reconnecting failed"),
          "a server that stays away: %s", store_error (st));
  sql = xasprintf ("ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", PQdb (c));
  pg_sql (other, sql);
  free (sql);
  tap_ok (store_customer_count (st) >= 0, "it is back: %s", store_error (st));
  unsetenv ("HERALD_PG_RETRY_MS");

  /* Messages name the store by its URL, never with its password. */
  st2 = store_open ("postgresql://herald:s3cret@/nosuchdb?host=/nonexistent"
                    "&password=s3cret&connect_timeout=2", err, sizeof err);
  tap_ok (!st2 && strstr (err, "postgresql://herald@/nosuchdb?host="
                          "/nonexistent&connect_timeout=2: cannot connect")
          && !strstr (err, "s3cret"),
          "a URL's password is left out of messages: %s", err);
  store_close (st2);
  st2 = store_open ("pg:host=/nonexistent dbname=x password='se cr\\'et' "
                    "connect_timeout=2", err, sizeof err);
  tap_ok (!st2 && strstr (err, "host=/nonexistent dbname=x connect_timeout=2: "
                          "cannot connect") && !strstr (err, "se cr"),
          "so does a keyword string's: %s", err);
  store_close (st2);
  {
    /* The test's URL as a keyword string: "pg:host=... dbname=...". */
    PQconninfoOption *o = PQconninfoParse (url, NULL), *i;
    struct strbuf kw = STRBUF_INIT;

    strbuf_adds (&kw, "pg:");
    for (i = o; i && i->keyword; i++)
      if (i->val && *i->val)
        strbuf_addf (&kw, "%s='%s' ", i->keyword, i->val);
    PQconninfoFree (o);
    st2 = store_open (kw.s, err, sizeof err);
    tap_ok (st2 && store_customer_exists (st2, "alice") == 1,
            "a store opens from a keyword string (%s): %s", kw.s,
            st2 ? "ok" : err);
    store_close (st2);
    strbuf_free (&kw);
  }
  bad = xasprintf ("%s&sslmode=bogus", url);
  st2 = store_open (bad, err, sizeof err);
  tap_ok (!st2 && strstr (err, "cannot connect to the store")
          && strstr (err, "sslmode"), "a bad parameter is named: %s", err);
  store_close (st2);
  free (bad);
  PQfinish (other);
  PQfinish (c);
}

int
main (void)
{
  struct store *st;
  char *p, *cmd;
  const char *pg = getenv ("HERALD_TEST_PG_URL");

  setenv ("HERALD_NOW", "1000000", 1);
  if (!mkdtemp (dir)) {
    printf ("Bail out! mkdtemp\n");
    return 1;
  }
  p = path_in ("herald.db");
  if (pg && *pg) {
    char err[512];

    pg_empty (pg);
    if (!(st = store_open_migrate (pg, err, sizeof err))) {
      printf ("Bail out! %s\n", err);
      return 1;
    }
    printf ("# PostgreSQL: %s\n", pg);
  }
  else {
    st = open_or_die (p);
    tap_ok (store_shared (st) == 0, "an SQLite store is not shared");
  }
  tap_ok (store_schema_version (st) == STORE_SCHEMA_VERSION,
          "a new store is at schema version %d", STORE_SCHEMA_VERSION);
  test_outbox (st);
  test_customers (st);
  test_events (st);
  test_machine_events (st);
  test_campaigns (st);
  test_transactions (st);
  test_journeys (st);
  test_links (st);
  test_pages (st);
  if (pg && *pg) {
    test_pg_workers (pg, st);
    test_pg (pg, st);
  }
  store_close (st);
  if (pg && *pg)
    printf ("# test_files skipped: SQLite files (versions, WAL, folders) "
            "only\n");
  else
    test_files ();
  free (p);
  cmd = xasprintf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    printf ("# could not remove %s\n", dir);
  free (cmd);
  return tap_done ();
}
