/* store.c: the store interface (store.h) over its backends: opening
 * picks one, and every other call goes through its table of functions
 * (backend.h).  What needs no SQL lives here, once for both. */
#include <config.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store.h"
#include "backend.h"

struct store *
store_open (const char *location, char *err, size_t errlen)
{
  if (store_location_is_url (location))
    return pg_store_open (location, 0, err, errlen);
  return sqlite_store_open (location, err, errlen);
}

struct store *
store_open_migrate (const char *location, char *err, size_t errlen)
{
  if (store_location_is_url (location))
    return pg_store_open (location, 1, err, errlen);
  return sqlite_store_open (location, err, errlen);
}

/* Fault injection for the tests: with HERALD_STORE_FAULT=N, the Nth
 * statement this process asks for (over all its stores, counting from 1)
 * fails as a statement of a failing disk would, with "injected fault";
 * and with HERALD_STORE_FAULT=N+ every statement from the Nth on.  With
 * HERALD_STORE_FAULT=count nothing fails, and the process says at exit
 * how many statements it asked for (the range of N to sweep).
 * Rollbacks never fail: a failing store must still be able to undo.
 * tests/core/faults.py sweeps N over whole runs.  Unset, it costs one
 * branch. */
static long fault_at = -1;           /* -1: not read yet; 0: off */
static int fault_sticky, fault_count;
static long fault_calls;

static void
fault_report (void)
{
  fprintf (stderr, "herald: store statements: %ld\n", fault_calls);
}

long
store_fault_now (void)
{
  if (fault_at < 0) {
    const char *e = getenv ("HERALD_STORE_FAULT");
    char *end = NULL;
    long v = e ? strtol (e, &end, 10) : 0;
    fault_at = v > 0 ? v : 0;
    fault_sticky = fault_at && end && *end == '+';
    if (e && strcmp (e, "count") == 0) {
      fault_count = 1;
      fault_at = LONG_MAX;
      atexit (fault_report);
    }
  }
  if (!fault_at)
    return 0;
  {
    long n = __atomic_add_fetch (&fault_calls, 1, __ATOMIC_RELAXED);
    return !fault_count && (n == fault_at || (fault_sticky && n > fault_at))
           ? n : 0;
  }
}

static const char *const states[] = {
  "pending", "sending", "sent", "retry", "failed", "dead", "skipped",
  "held_out", "deferred", "reroute", NULL
};

int
store_state_valid (const char *state)
{
  int i;
  for (i = 0; state && states[i]; i++)
    if (strcmp (state, states[i]) == 0)
      return 1;
  return 0;
}

void
store_row_free (struct outbox_row *r)
{
  if (!r)
    return;
  free ((char *) r->key);
  free ((char *) r->campaign);
  free ((char *) r->customer);
  free ((char *) r->channel);
  free ((char *) r->instance);
  free ((char *) r->variant);
  free ((char *) r->state);
  free ((char *) r->reason);
  free ((char *) r->provider_id);
  free ((char *) r->error);
  free ((char *) r->detail);
  free ((char *) r->address);
  free ((char *) r->parts);
  free ((char *) r->trace);
  free (r);
}

/* ---- what both backends share: no SQL ----------------------------- */

const char *
store_jstr (json_t *o, const char *k)
{
  return json_string_value (json_object_get (o, k));
}

static const char *const event_types[] = {
  "delivered", "opened", "clicked", "replied", "converted", "bounced",
  "complained", "unsubscribed", NULL
};

json_t *
store_stats_channel (json_t *stats, const char *channel)
{
  json_t *c = json_object_get (stats, channel);
  int i;
  if (!c) {
    c = json_object ();
    json_object_set_new (c, "sent", json_integer (0));
    for (i = 0; event_types[i]; i++)
      json_object_set_new (c, event_types[i], json_integer (0));
    json_object_set_new (stats, channel, c);
  }
  return c;
}

void
store_step_add (json_t *e, const char *k, json_int_t n)
{
  json_object_set_new (e, k, json_integer (json_integer_value
                                           (json_object_get (e, k)) + n));
}

json_t *
store_step_entry (json_t *steps, int step)
{
  static const char *const keys[] = { "entered", "messages", "sent",
                                      "engaged", "waiting", "fired",
                                      "exited", "cancelled", NULL };
  json_t *v;
  size_t i;

  json_array_foreach (steps, i, v)
    if (json_integer_value (json_object_get (v, "step")) == step)
      return v;
  v = json_pack ("{s:i}", "step", step);
  for (i = 0; keys[i]; i++)
    json_object_set_new (v, keys[i], json_integer (0));
  /* Kept in step order. */
  for (i = 0; i < json_array_size (steps); i++)
    if (json_integer_value (json_object_get (json_array_get (steps, i),
                                             "step")) > step)
      break;
  json_array_insert_new (steps, i, v);
  return v;
}

int
store_suppress_json (struct store *st, const char *channel, json_t *addr,
                     const char *reason)
{
  size_t i;
  json_t *v;

  if (json_is_string (addr))
    return store_suppress (st, channel, json_string_value (addr), reason);
  json_array_foreach (addr, i, v) {
    const char *a = json_string_value (v);
    /* An outbox row's destinations are {"type", "value"} objects (plan.c);
     * a customer's push tokens {"platform", "token"} ones. */
    if (!a && json_is_object (v) && !(a = store_jstr (v, "value")))
      a = store_jstr (v, "token");
    if (a && store_suppress (st, channel, a, reason) < 0)
      return -1;
  }
  return 0;
}

/* ---- the rest: through the backend's table ------------------------ */

void
store_close (struct store *st)
{
  if (st)
    st->ops->close (st);
}

const char *
store_error (const struct store *st)
{
  return st ? st->ops->error (st) : "no store";
}

const char *
store_name (const struct store *st)
{
  return st->ops->name (st);
}

int
store_schema_version (struct store *st)
{
  return st->ops->schema_version (st);
}

int
store_begin (struct store *st)
{
  return st->ops->begin (st);
}

int
store_commit (struct store *st)
{
  return st->ops->commit (st);
}

int
store_rollback (struct store *st)
{
  return st->ops->rollback (st);
}

int
store_customer_put (struct store *st, const char *id, json_t *record)
{
  return st->ops->customer_put (st, id, record);
}

int
store_customer_put_text (struct store *st, const char *id, json_t *record,
                         const char *text)
{
  return st->ops->customer_put_text (st, id, record, text);
}

json_t *
store_customer_get (struct store *st, const char *id)
{
  return st->ops->customer_get (st, id);
}

int
store_audience_next (struct store *st, const char *campaign, int step,
                     const char *after_id, int limit,
                     int (*cb) (void *data, json_t *customer), void *data)
{
  return st->ops->audience_next (st, campaign, step, after_id, limit, cb, data);
}

int
store_customer_exists (struct store *st, const char *id)
{
  return st->ops->customer_exists (st, id);
}

int
store_bulk_customers (struct store *st, int64_t expected)
{
  return st->ops->bulk_customers (st, expected);
}

int
store_customer_find (struct store *st, const char *channel, const char *address,
                     int (*cb) (void *data, const char *id), void *data)
{
  return st->ops->customer_find (st, channel, address, cb, data);
}

int64_t
store_customer_count (struct store *st)
{
  return st->ops->customer_count (st);
}

int
store_consent_set (struct store *st, const char *customer, const char *channel,
                   int granted, int64_t at, const char *source)
{
  return st->ops->consent_set (st, customer, channel, granted, at, source);
}

int
store_consent_get (struct store *st, const char *customer, const char *channel)
{
  return st->ops->consent_get (st, customer, channel);
}

int
store_suppress (struct store *st, const char *channel, const char *address,
                const char *reason)
{
  return st->ops->suppress (st, channel, address, reason);
}

int
store_is_suppressed (struct store *st, const char *channel, const char *address)
{
  return st->ops->is_suppressed (st, channel, address);
}

int
store_event_put (struct store *st, const char *customer, const char *channel,
                 const char *type, int64_t at, const char *campaign,
                 const char *message_key, const char *detail_json)
{
  return st->ops->event_put (st, customer, channel, type, at, campaign,
                             message_key, detail_json);
}

int
store_event_record (struct store *st, const struct store_event *ev)
{
  return st->ops->event_record (st, ev);
}

int
store_message_events (struct store *st, const char *key, const char *type,
                      int64_t from_ms, int64_t to_ms,
                      int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail, const char *machine),
                      void *data)
{
  return st->ops->message_events (st, key, type, from_ms, to_ms, cb, data);
}

int
store_message_events_except (struct store *st, const char *key,
                             const char *type, const char *except_detail,
                             int64_t from_ms, int64_t to_ms,
                             int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail, const char *machine),
                             void *data)
{
  return st->ops->message_events_except (st, key, type, except_detail, from_ms,
                                         to_ms, cb, data);
}

int
store_event_set_machine (struct store *st, int64_t id, const char *reason)
{
  return st->ops->event_set_machine (st, id, reason);
}

int
store_customer_events (struct store *st, const char *customer, int64_t since,
                       int (*cb) (void *data, const char *channel, const char *type, int64_t at),
                       void *data)
{
  return st->ops->customer_events (st, customer, since, cb, data);
}

int
store_channel_stats (struct store *st, int64_t since, json_t **stats_r)
{
  return st->ops->channel_stats (st, since, stats_r);
}

int
store_outbox_insert (struct store *st, const struct outbox_row *row)
{
  return st->ops->outbox_insert (st, row);
}

int
store_outbox_update (struct store *st, const char *key, const char *state,
                     int attempts, int64_t next_at, const char *provider_id,
                     const char *error, const char *detail)
{
  return st->ops->outbox_update (st, key, state, attempts, next_at, provider_id,
                                 error, detail);
}

int
store_outbox_update_reason (struct store *st, const char *key,
                            const char *state, const char *reason, int attempts,
                            int64_t next_at, const char *provider_id,
                            const char *error, const char *detail)
{
  return st->ops->outbox_update_reason (st, key, state, reason, attempts,
                                        next_at, provider_id, error, detail);
}

int
store_outbox_reroute (struct store *st, const struct outbox_row *row)
{
  return st->ops->outbox_reroute (st, row);
}

int
store_outbox_get (struct store *st, const char *key, struct outbox_row **row_r)
{
  return st->ops->outbox_get (st, key, row_r);
}

int
store_outbox_by_provider (struct store *st, const char *channel,
                          const char *provider_id, struct outbox_row **row_r)
{
  return st->ops->outbox_by_provider (st, channel, provider_id, row_r);
}

int
store_outbox_reroutes (struct store *st, const char *campaign, int limit,
                       int (*cb) (void *data, const struct outbox_row *row),
                       void *data)
{
  return st->ops->outbox_reroutes (st, campaign, limit, cb, data);
}

int
store_outbox_reroute_none (struct store *st, const char *key)
{
  return st->ops->outbox_reroute_none (st, key);
}

int
store_outbox_due (struct store *st, const char *campaign, int64_t now,
                  int limit,
                  int (*cb) (void *data, const struct outbox_row *row),
                  void *data)
{
  return st->ops->outbox_due (st, campaign, now, limit, cb, data);
}

int
store_outbox_recover (struct store *st, const char *campaign, int at_least_once,
                      int max_attempts, int *n_r)
{
  return st->ops->outbox_recover (st, campaign, at_least_once, max_attempts,
                                  n_r);
}

int
store_outbox_next_due (struct store *st, const char *campaign, int64_t *next_r)
{
  return st->ops->outbox_next_due (st, campaign, next_r);
}

long
store_instance_volume (struct store *st, const char *instance, int64_t since)
{
  return st->ops->instance_volume (st, instance, since);
}

int
store_sent_count (struct store *st, const char *customer, const char *channel,
                  int64_t since)
{
  return st->ops->sent_count (st, customer, channel, since);
}

int
store_campaign_counts (struct store *st, const char *campaign, json_t **r)
{
  return st->ops->campaign_counts (st, campaign, r);
}

int
store_campaign_engagement (struct store *st, const char *campaign, json_t **r)
{
  return st->ops->campaign_engagement (st, campaign, r);
}

int
store_campaign_conversions (struct store *st, const char *campaign, json_t **r)
{
  return st->ops->campaign_conversions (st, campaign, r);
}

int
store_outbox_state_counts (struct store *st, json_t **r)
{
  return st->ops->outbox_state_counts (st, r);
}

int
store_event_counts (struct store *st, json_t **r)
{
  return st->ops->event_counts (st, r);
}

int
store_due_summary (struct store *st, int64_t now, struct store_due *r)
{
  return st->ops->due_summary (st, now, r);
}

int
store_campaign_start (struct store *st, const char *id, const char *name,
                      int64_t now)
{
  return st->ops->campaign_start (st, id, name, now);
}

int
store_campaign_finish (struct store *st, const char *id, const char *status,
                       int64_t now)
{
  return st->ops->campaign_finish (st, id, status, now);
}

int
store_campaign_get (struct store *st, const char *id, json_t **r)
{
  return st->ops->campaign_get (st, id, r);
}

int
store_timer_add (struct store *st, const struct store_timer *t)
{
  return st->ops->timer_add (st, t);
}

int
store_timers_due (struct store *st, const char *campaign, int64_t now,
                  int limit,
                  int (*cb) (void *data, const struct store_timer *t),
                  void *data)
{
  return st->ops->timers_due (st, campaign, now, limit, cb, data);
}

int
store_timer_done (struct store *st, int64_t id, const char *state,
                  const char *reason)
{
  return st->ops->timer_done (st, id, state, reason);
}

int
store_timer_cancel (struct store *st, const char *campaign,
                    const char *customer, int64_t at, const char *reason)
{
  return st->ops->timer_cancel (st, campaign, customer, at, reason);
}

int
store_journey_last (struct store *st, const char *campaign,
                    const char *customer, int64_t *instance_r,
                    int64_t *entered_r)
{
  return st->ops->journey_last (st, campaign, customer, instance_r, entered_r);
}

int
store_journey_event (struct store *st, const char *campaign,
                     const char *customer, int64_t instance, char **event_r)
{
  return st->ops->journey_event (st, campaign, customer, instance, event_r);
}

int
store_events_after (struct store *st, int64_t after_id, int limit,
                    int (*cb) (void *data, const struct store_event_row *e),
                    void *data)
{
  return st->ops->events_after (st, after_id, limit, cb, data);
}

int
store_events_last_id (struct store *st, int64_t *id_r)
{
  return st->ops->events_last_id (st, id_r);
}

int
store_meta_get_int (struct store *st, const char *key, int64_t *v_r)
{
  return st->ops->meta_get_int (st, key, v_r);
}

int
store_meta_set_int (struct store *st, const char *key, int64_t v)
{
  return st->ops->meta_set_int (st, key, v);
}

int
store_journey_engaged (struct store *st, const char *campaign,
                       const char *customer, int64_t instance, int64_t since,
                       const char *const *types, char *type_r, size_t len)
{
  return st->ops->journey_engaged (st, campaign, customer, instance, since,
                                   types, type_r, len);
}

int
store_timer_next (struct store *st, const char *campaign, int64_t *due_r)
{
  return st->ops->timer_next (st, campaign, due_r);
}

int
store_timer_stats (struct store *st, int64_t now, int64_t *due_r,
                   int64_t *oldest_r)
{
  return st->ops->timer_stats (st, now, due_r, oldest_r);
}

int
store_step_funnel (struct store *st, const char *campaign, json_t **r)
{
  return st->ops->step_funnel (st, campaign, r);
}

int
store_link_add (struct store *st, const char *key, const char *url, size_t len,
                int64_t *id_r)
{
  return st->ops->link_add (st, key, url, len, id_r);
}

int
store_link_get (struct store *st, int64_t id, char **key_r, char **url_r,
                size_t *len_r)
{
  return st->ops->link_get (st, id, key_r, url_r, len_r);
}

/* ---- many workers ------------------------------------------------- */

int
store_shared (struct store *st)
{
  return st->ops->shared (st);
}

int
store_campaign_lock (struct store *st, const char *campaign, int lock)
{
  return st->ops->campaign_lock (st, campaign, lock);
}

int
store_set_worker (struct store *st, const char *worker, int lease)
{
  return st->ops->set_worker (st, worker, lease);
}

int
store_lease_renew (struct store *st)
{
  return st->ops->lease_renew (st);
}

int
store_outbox_claim (struct store *st, const char *campaign, int64_t now,
                    int limit,
                    int (*cb) (void *data, const struct outbox_row *row),
                    void *data)
{
  return st->ops->outbox_claim (st, campaign, now, limit, cb, data);
}

int
store_work_held (struct store *st, const char *campaign, int step,
                 int64_t now, int64_t *n_r, int64_t *until_r)
{
  return st->ops->work_held (st, campaign, step, now, n_r, until_r);
}

int
store_chunk_claim (struct store *st, const char *campaign, int step,
                   int *chunk_r)
{
  return st->ops->chunk_claim (st, campaign, step, chunk_r);
}

int
store_chunk_done (struct store *st, const char *campaign, int step, int chunk)
{
  return st->ops->chunk_done (st, campaign, step, chunk);
}

int
store_audience_chunk (struct store *st, const char *campaign, int step,
                      int chunk, const char *after_id, int limit,
                      int (*cb) (void *data, json_t *customer), void *data)
{
  if (chunk < 0)
    return st->ops->audience_next (st, campaign, step, after_id, limit, cb,
                                   data);
  return st->ops->audience_chunk (st, campaign, step, chunk, after_id, limit,
                                  cb, data);
}
