/* store: Herald's durable state, in one SQLite file (WAL mode) or in a
 * PostgreSQL database (core/store/: one interface, two backends).
 *
 * Customers, consent, suppressions, events, the outbox (one row per
 * message) and campaign state.  Every state change of the system goes
 * through these functions, so a backend can replace another without
 * touching the scheduler.
 *
 * Contract, for every function below unless it says otherwise:
 *  - Returns 0 on success and -1 on error; the error message (naming the
 *    store file, or its URL without a password, and what failed) is then
 *    available from store_error() until the next call.  The store never prints: the caller reports it once.
 *  - Strings and json_t arguments are borrowed: the store copies what it
 *    keeps.  Rows and records handed to a callback are lent for the
 *    duration of that call: json_incref / strdup what you keep.
 *  - A callback returning non-zero stops the iteration; the function then
 *    returns the count delivered so far (the stopping row included).
 *  - Callbacks may call other store functions (writes included): rows are
 *    read into memory a page at a time before the first callback runs.
 *  - Outside store_begin/store_commit each call is its own transaction.
 *  - One struct store is used by one thread at a time.
 *
 * Durability: the file runs with journal_mode=WAL and synchronous=FULL,
 * PostgreSQL with synchronous_commit on (at least), so a committed state
 * change survives a power loss.  The scheduler's rule
 * ("a row is committed as sending before the plugin is called; a message
 * counts as sent only after its state is committed") relies on that.
 */
#ifndef HERALD_STORE_H
#define HERALD_STORE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>

struct store;

/* The schema version this build writes; store_open migrates older files
 * and refuses newer ones (PostgreSQL: see store_open).  One numbering for
 * both backends: a version's PostgreSQL schema has the same tables and
 * columns (and may have more: the leases of shared stores). */
#define STORE_SCHEMA_VERSION 6

/* Open the store at LOCATION: a PostgreSQL connection URI
 * (postgresql://... or postgres://..., see libpq's "Connection URIs") or
 * "pg:" and a libpq keyword=value string, or else the path of an SQLite
 * file.  A file is created when missing (its
 * folder must exist: the error then names it) and migrated.  A
 * PostgreSQL database must already be at this herald's schema version
 * (an empty or older one is refused with a hint to run 'herald store
 * migrate'; a newer one too): many herald processes share it, and only
 * store_open_migrate changes its schema.  Returns a store to pass to
 * store_close, or NULL with a message in ERR. */
struct store *store_open (const char *location, char *err, size_t errlen);
/* The same, also creating or migrating a PostgreSQL database's schema
 * (one transaction, under a lock: two herald migrating at once is
 * harmless).  For a file, the same as store_open. */
struct store *store_open_migrate (const char *location, char *err,
                                  size_t errlen);
/* 1 when LOCATION names a PostgreSQL store (a postgresql:// or
 * postgres:// URL, or "pg:" and a libpq keyword=value string), not an
 * SQLite file: then no file or folder of that name is made.  Inline: the
 * configuration reads it in programs that do not link the store. */
static inline int
store_location_is_url (const char *location)
{
  return strncmp (location, "postgresql://", 13) == 0
         || strncmp (location, "postgres://", 11) == 0
         || strncmp (location, "pg:", 3) == 0;
}

/* Close and free; store_close (NULL) is a no-op.  An open transaction is
 * rolled back. */
void store_close (struct store *st);
/* The last error message (owned by the store, valid until the next call). */
const char *store_error (const struct store *st);
/* The schema version of the open store (after migrations). */
int store_schema_version (struct store *st);
/* The store's name for messages: the SQLite file, or the PostgreSQL URL
 * without its password.  Owned by the store. */
const char *store_name (const struct store *st);

/* Transactions.  Not nestable: store_begin inside a transaction is an
 * error.  After an error inside one, roll it back: on PostgreSQL a failed
 * statement aborts the transaction (a commit then fails too).
 * SQLite: BEGIN IMMEDIATE, the write lock is taken at once, so two
 * herald processes serialise instead of failing mid-transaction.
 * Readers never wait (WAL); a writer waits up to 10 s for another
 * process's write lock, then fails with "database is locked".  A bulk
 * import holds the lock for its whole file (about 25 s for a million
 * customers).
 * PostgreSQL: READ COMMITTED, row locks; writers of different rows do
 * not wait for each other.  Outside a transaction, a call that finds the
 * connection lost reconnects and runs again (for up to about 30 s);
 * inside one it fails, and the caller rolls back. */
int store_begin (struct store *st);
int store_commit (struct store *st);
int store_rollback (struct store *st);

/* ---- Customers ---------------------------------------------------- */

/* Upsert the customer ID with RECORD (borrowed), a validated customer
 * object as import builds it: id, email, phone, push, webhook, timezone,
 * locale, consent, preferred_channels, attributes (absent members are
 * fine).  The record replaces any earlier one.  Its "consent" object
 * is the customer's imported consent; an explicit store_consent_set always
 * wins over it (an SMS STOP wins over a later import). */
int store_customer_put (struct store *st, const char *id, json_t *record);

/* Same, with TEXT the record's JSON text when the caller has it (the
 * importer passes the line it parsed), saving an encode; NULL = encode. */
int store_customer_put_text (struct store *st, const char *id, json_t *record,
                             const char *text);

/* The customer's record as a new reference (caller json_decref's it), or
 * NULL when unknown (store_error is then "" ) or on error.  Its "consent"
 * member is the effective consent (imported, overridden by explicit
 * changes): the router may read it instead of calling store_consent_get. */
json_t *store_customer_get (struct store *st, const char *id);

/* Stream an audience without loading it: up to LIMIT customers with
 * id > AFTER_ID (NULL or "" = from the start) in id order who have no
 * outbox row for (CAMPAIGN, STEP) yet.  CB gets each record (as from
 * store_customer_get, lent).  Returns the number delivered (0 = done), or
 * -1.  Call again with the last id seen to continue. */
int store_audience_next (struct store *st, const char *campaign, int step,
                         const char *after_id, int limit,
                         int (*cb) (void *data, json_t *customer), void *data);

/* 1 when the store has customer ID, 0 when not, -1 error. */
int store_customer_exists (struct store *st, const char *id);

/* Inside a transaction, before a large import: EXPECTED is about how many
 * customers will be put.  When that is large (and at least the number
 * already stored) the customers' secondary indexes are dropped, and
 * store_commit rebuilds them before committing (a rollback restores them),
 * which makes a million-customer import several times faster.  Readers
 * on other connections keep seeing the old snapshot (WAL).  Returns 1 when
 * bulk mode is on, 0 when not worth it, -1 error. */
int store_bulk_customers (struct store *st, int64_t expected);

/* The customers whose CHANNEL address ("email", "sms" = phone, "webhook")
 * is ADDRESS, in id order, for inbound messages (an SMS STOP names a
 * phone number).  CB gets each id (lent).  Returns the count delivered or
 * -1 (also for "push": tokens are not indexed). */
int store_customer_find (struct store *st, const char *channel,
                         const char *address,
                         int (*cb) (void *data, const char *id), void *data);

/* Number of customers in the store, or -1. */
int64_t store_customer_count (struct store *st);

/* ---- Consent and suppressions ------------------------------------- */

/* Record an explicit consent change for (CUSTOMER, CHANNEL) at AT (unix
 * seconds) from SOURCE ("sms STOP", "unsubscribe link", "event import").
 * A change older than the one recorded is ignored (events may arrive out
 * of order). */
int store_consent_set (struct store *st, const char *customer,
                       const char *channel, int granted, int64_t at,
                       const char *source);
/* 1 granted, 0 denied, -1 unknown (no record, or the lookup failed:
 * store_error is non-empty only then). */
int store_consent_get (struct store *st, const char *customer,
                       const char *channel);

/* Never send CHANNEL messages to ADDRESS again (an email address, an E.164
 * number, a push token, a webhook URL).  Re-suppressing keeps the first
 * reason. */
int store_suppress (struct store *st, const char *channel, const char *address,
                    const char *reason);
/* 1 suppressed, 0 not, -1 error. */
int store_is_suppressed (struct store *st, const char *channel,
                         const char *address);

/* ---- Events ------------------------------------------------------- */

/* Record one event.  CAMPAIGN, MESSAGE_KEY and DETAIL_JSON may be NULL.
 * Side effects, so that import, tracking server and plugins' inbound
 * callbacks behave alike:
 *  - "unsubscribed" withdraws consent for CHANNEL (store_consent_set, at AT);
 *  - "bounced" and "complained" suppress the address: the message's
 *    address when MESSAGE_KEY names an outbox row, else DETAIL_JSON's
 *    "address", else the customer's address(es) for CHANNEL.
 * Returns 0 recorded, 1 when the same event (customer, type, at,
 * channel, campaign, message key) is already recorded (nothing changes:
 * re-importing a file or a provider's retried callback is harmless), -1
 * error.  Wrap many calls in store_begin/commit for speed. */
int store_event_put (struct store *st, const char *customer,
                     const char *channel, const char *type, int64_t at,
                     const char *campaign, const char *message_key,
                     const char *detail_json);

/* One event, for store_event_record: store_event_put's arguments, plus
 * what the tracking server knows of its own events. */
struct store_event {
  const char *customer;
  const char *channel;       /* may be NULL, as the three below */
  const char *type;
  int64_t at;                /* unix seconds */
  const char *campaign;
  const char *message_key;
  const char *detail_json;
  int64_t at_ms;             /* unix milliseconds, or 0 when not known to
                                the millisecond (imports, callbacks) */
  const char *machine;       /* NULL: a person did it; else why it was a
                                machine ("head", "agent", "fast", ...) */
};

/* store_event_put with EV's fields (borrowed).  An event with at_ms is
 * one request to the tracking server, never taken for a repeat.  Returns
 * 0, 1 (already recorded: only without at_ms) or -1. */
int store_event_record (struct store *st, const struct store_event *ev);

/* The events of TYPE about message KEY with FROM_MS <= at_ms <= TO_MS,
 * oldest first: CB gets each one's id, at_ms, detail (or NULL) and
 * machine reason (or NULL), lent.  Returns the count delivered or -1. */
int store_message_events (struct store *st, const char *key, const char *type,
                          int64_t from_ms, int64_t to_ms,
                          int (*cb) (void *data, int64_t id, int64_t at_ms,
                                     const char *detail, const char *machine),
                          void *data);

/* The same, leaving out the events whose detail is EXCEPT_DETAIL (the
 * same text; NULL leaves out nothing): a click's other links. */
int store_message_events_except (struct store *st, const char *key,
                                 const char *type, const char *except_detail,
                                 int64_t from_ms, int64_t to_ms,
                                 int (*cb) (void *data, int64_t id,
                                            int64_t at_ms, const char *detail,
                                            const char *machine),
                                 void *data);

/* Mark event ID as a machine's, for REASON, unless it already is.
 * Returns 0, 1 when no such event is a person's, -1 error. */
int store_event_set_machine (struct store *st, int64_t id, const char *reason);

/* The customer's history with at >= SINCE, oldest first (strings lent):
 * the events, and every message Herald sent to the customer (any
 * campaign) as type "sent" at its sent_at.  Events flagged as a machine's
 * (store_event_record) are left out: they say nothing of the customer.
 * Returns the count delivered or -1. */
int store_customer_events (struct store *st, const char *customer,
                           int64_t since,
                           int (*cb) (void *data, const char *channel,
                                      const char *type, int64_t at),
                           void *data);

/* Population rates, for smoothing engagement scores.  *STATS_R (new
 * reference) becomes {"email": {"sent": N, "delivered": N, "opened": N,
 * "clicked": N, "replied": N, "converted": N, "bounced": N,
 * "complained": N, "unsubscribed": N}, ...}: messages sent since SINCE
 * and events since SINCE, per channel (every channel that has any); not
 * the machines' events. */
int store_channel_stats (struct store *st, int64_t since, json_t **stats_r);

/* ---- Outbox ------------------------------------------------------- */

/* One message.  All strings may be NULL except key, campaign, customer,
 * state.  address is JSON text (a list of destinations), parts JSON text
 * (an object part name -> rendered text), detail JSON text or NULL.
 * Rows the store hands out are lent (see the contract above). */
struct outbox_row {
  const char *key;          /* "campaign:step:customer" */
  const char *campaign;
  int step;
  const char *customer;
  const char *channel;      /* the kind: email, sms, push, webhook */
  const char *instance;     /* the [channel.NAME] instance */
  const char *variant;
  const char *state;        /* pending sending sent retry failed dead
                               skipped held_out deferred reroute */
  const char *reason;       /* why skipped/held_out/failed/deferred */
  int attempts;
  int64_t next_at;          /* when a pending/retry/deferred row is due */
  int64_t created, updated, sent_at;   /* set by the store; 0 = unset */
  const char *provider_id;
  const char *error;
  const char *detail;
  const char *address;
  const char *parts;
  const char *trace;        /* the router's trace */
  int64_t journey;          /* the journey instance of a triggered
                               campaign's message, else 0 */
};

/* Allowed values of outbox_row.state. */
int store_state_valid (const char *state);

/* Insert ROW (borrowed; created is ROW->created when set, else now;
 * updated and sent_at are set from now_seconds, sent_at only for state
 * "sent").  Returns 0 inserted, 1 when the key
 * already exists (nothing changed: the message was planned by an earlier
 * run), -1 error. */
int store_outbox_insert (struct store *st, const struct outbox_row *row);

/* Change a row's state.  ATTEMPTS, NEXT_AT, PROVIDER_ID, ERROR and DETAIL
 * replace the stored values (NULL clears).  Sets updated, and sent_at when
 * STATE is "sent".  When STATE is "sent" or "dead" the rendered parts are
 * dropped (NULL): they are kept until then so a resend after a crash sends
 * the same bytes.  Returns 0, 1 when no row has KEY, -1 error. */
int store_outbox_update (struct store *st, const char *key, const char *state,
                         int attempts, int64_t next_at,
                         const char *provider_id, const char *error,
                         const char *detail);
/* Same, also setting the reason column (skipped/failed/deferred why). */
int store_outbox_update_reason (struct store *st, const char *key,
                                const char *state, const char *reason,
                                int attempts, int64_t next_at,
                                const char *provider_id, const char *error,
                                const char *detail);

/* Re-route an existing row (fallback after a permanent failure): replaces
 * channel, instance, variant, state, reason, next_at, address, parts and
 * trace from ROW (borrowed, matched by ROW->key); attempts, provider_id and
 * error are reset.  Returns 0, 1 when no row has the key, -1 error. */
int store_outbox_reroute (struct store *st, const struct outbox_row *row);

/* The row with KEY into *ROW_R (caller frees with store_row_free), or
 * *ROW_R = NULL when none.  Returns 0 or -1. */
int store_outbox_get (struct store *st, const char *key,
                      struct outbox_row **row_r);
/* Free a row from store_outbox_get; NULL is a no-op. */
void store_row_free (struct outbox_row *row);

/* The message the provider knows as PROVIDER_ID on CHANNEL (a kind, or
 * NULL for any) into *ROW_R (free with store_row_free), or NULL when
 * none; the latest if the provider reused an id.  0 or -1. */
int store_outbox_by_provider (struct store *st, const char *channel,
                              const char *provider_id,
                              struct outbox_row **row_r);

/* Rows of CAMPAIGN in state "reroute" (a permanent failure that the
 * planning pass re-routes), at most LIMIT, as store_outbox_due hands
 * them.  Returns the count handed, or -1. */
int store_outbox_reroutes (struct store *st, const char *campaign, int limit,
                           int (*cb) (void *data,
                                      const struct outbox_row *row),
                           void *data);

/* A "reroute" row with no usable channel left becomes "failed" ("dead"
 * when its retries were exhausted), keeping the reason and error of its
 * failure.  0, 1 when KEY is not in
 * "reroute", -1. */
int store_outbox_reroute_none (struct store *st, const char *key);

/* Due rows of CAMPAIGN: state pending, retry or deferred with
 * next_at <= NOW, oldest next_at first, at most LIMIT.  Returns the count
 * delivered to CB or -1.  Call again until it returns 0 (rows whose state
 * the callback changed are not returned again). */
int store_outbox_due (struct store *st, const char *campaign, int64_t now,
                      int limit,
                      int (*cb) (void *data, const struct outbox_row *row),
                      void *data);

/* After a crash: rows of CAMPAIGN (NULL = all) left in "sending" become
 * "pending" with reason "recovered" (AT_LEAST_ONCE: they will be sent
 * again, possibly twice; one at a time) or "failed" with reason "in flight
 * at crash" (at most once; a row still marked "claimed" was never handed
 * to a plugin, and goes back to "pending" instead, not counted).  At
 * least once, a row whose attempts reached MAX_ATTEMPTS (0: no limit)
 * becomes "dead" with reason "crashed_in_flight" instead: the message
 * that crashes its plugin is not sent forever.  *N_R (may be NULL) gets the number of rows changed.
 * A shared store takes back only the rows no live worker holds: without a
 * lease, or with one that expired before now (store_lease_renew). */
int store_outbox_recover (struct store *st, const char *campaign,
                          int at_least_once, int max_attempts, int *n_r);

/* Earliest next_at among CAMPAIGN's retry and deferred rows into *NEXT_R;
 * returns 1 when there is one, 0 when none (*NEXT_R = 0), -1 error. */
int store_outbox_next_due (struct store *st, const char *campaign,
                           int64_t *next_r);

/* Messages to CUSTOMER on CHANNEL (NULL = all channels), any campaign,
 * for frequency caps: sent at or after SINCE, or committed to be sent
 * (pending, sending, retry) and recorded at or after SINCE.  Returns the
 * count or -1.  In a transaction on a shared store, the customer is
 * locked until it ends (a planning page): workers planning one customer
 * for two campaigns at once take turns, and the second counts the first's
 * message. */
int store_sent_count (struct store *st, const char *customer,
                      const char *channel, int64_t since);

/* Messages handed to channel INSTANCE ([channel.NAME]), any campaign, at
 * or after SINCE: sent then, or attempted then (in flight, to retry,
 * failed or dead after an attempt).  For the channel's warm-up volume.
 * The count, or -1. */
long store_instance_volume (struct store *st, const char *instance,
                            int64_t since);

/* Counts of CAMPAIGN's rows.  *R (new reference) becomes
 *   {"total": N,
 *    "states": {"sent": N, ...},
 *    "rows": [{"channel": "email"|null, "variant": "A"|null,
 *              "state": "skipped", "reason": "no consent"|null,
 *              "count": N}, ...]}
 * (rows grouped by channel, variant, state, reason, sorted). */
int store_campaign_counts (struct store *st, const char *campaign, json_t **r);

/* Engagement with CAMPAIGN's messages: events carrying the campaign id or
 * a message key of one of its rows.  An event without a message key is
 * attributed to the customer's latest row of the campaign on that channel
 * (for its variant).  *R (new reference) becomes
 *   [{"channel": "email", "variant": "A"|null, "type": "opened",
 *     "count": N (events), "messages": N (distinct messages),
 *     "machine": false}, ...]
 * sorted by channel, variant, type, the machines' events (machine: true)
 * counted apart from the people's. */
int store_campaign_engagement (struct store *st, const char *campaign,
                               json_t **r);

/* The experiment's raw numbers: customers of CAMPAIGN messaged (state
 * sent) per variant, and held out, with how many of them have a
 * "converted" event at or after their row was recorded.  *R (new
 * reference) becomes [{"variant": "A"|null, "held_out": false,
 * "customers": N, "converted": N}, ...], the holdout first. */
int store_campaign_conversions (struct store *st, const char *campaign,
                                json_t **r);

/* ---- Monitoring ---------------------------------------------------- */

/* What herald serve's /metrics reads on every scrape.  Each is one query,
 * over the whole table: the cost of a scrape grows with the store.  Their
 * strings are the stored bytes, not checked as UTF-8 (json_dumps would
 * refuse one that is not). */

/* The outbox's rows counted by campaign, channel (null for a row that
 * has none, skipped before a channel was chosen) and state.  *R (new
 * reference) becomes [{"campaign": "c", "channel": "email"|null,
 * "state": "sent", "count": N}, ...], sorted by those three. */
int store_outbox_state_counts (struct store *st, json_t **r);

/* The events counted by type and by whether a machine did them (the
 * machine column, see store_event_record).  *R (new reference) becomes
 * [{"type": "opened", "machine": false, "count": N}, ...], sorted.  The
 * burst rule marks an earlier click as a machine's after the fact
 * (store_event_set_machine): a count with "machine": false can drop. */
int store_event_counts (struct store *st, json_t **r);

/* The work that is due but not done at NOW.  Only ever grows by
 * appending members (a timer queue's depth would go here). */
struct store_due {
  int64_t messages;          /* outbox rows in state pending, retry or
                                deferred with next_at <= NOW */
  int64_t oldest_next_at;    /* the smallest next_at of those; 0: none */
  int64_t steps;             /* journey steps waiting in the timer queue
                                and due at NOW */
  int64_t oldest_step_due;   /* the smallest due of those; 0: none */
  int64_t steps_waiting;     /* every waiting step, due or not */
};

/* Fill *R (zeroed first) for NOW (unix seconds).  0 or -1. */
int store_due_summary (struct store *st, int64_t now, struct store_due *r);

/* ---- Campaign state ----------------------------------------------- */

/* A run of campaign ID starts: creates its row (first_started = NOW) or
 * bumps runs; status becomes "running". */
int store_campaign_start (struct store *st, const char *id, const char *name,
                          int64_t now);
/* The run ends with STATUS ("done", "scheduled" when retries/deferrals
 * remain, "failed", "interrupted"). */
int store_campaign_finish (struct store *st, const char *id,
                           const char *status, int64_t now);
/* The campaign's state into *R (new reference): {"id", "name",
 * "status", "runs", "first_started", "last_started", "finished"}.
 * Returns 0, 1 when the store has never seen ID (*R = NULL), -1 error. */
int store_campaign_get (struct store *st, const char *id, json_t **r);

/* ---- Journeys: the timer queue (herald serve) -------------------- */

/* One due step of a journey: a triggered campaign's entry (step 1) or a
 * follow-up (step 2, 3, ...).  INSTANCE numbers a customer's entries
 * into a triggered campaign from 1; it is 0 for herald run's campaigns. */
struct store_timer {
  int64_t id;                /* set by the store */
  const char *campaign;
  const char *customer;
  int64_t instance;
  int step;
  int64_t due;               /* unix seconds */
  int64_t entered;           /* when the journey began (the trigger event's
                                time, or step 1's send) */
  const char *event;         /* the trigger event as JSON (event.* of the
                                templates), or NULL */
};

/* Queue T (borrowed), state "waiting".  With T->entered 0 and T->event
 * NULL, a follow-up takes both from the journey's step 1 (else entered is
 * now).  0, 1 when that step of that journey was queued already (nothing
 * changed), -1. */
int store_timer_add (struct store *st, const struct store_timer *t);

/* The waiting steps of CAMPAIGN due at NOW, oldest first, at most LIMIT:
 * CB gets each (lent; it may write to the store).  Returns the count, or
 * -1 (a store error, or CB returned -1). */
int store_timers_due (struct store *st, const char *campaign, int64_t now,
                      int limit,
                      int (*cb) (void *data, const struct store_timer *t),
                      void *data);

/* A waiting step done: STATE "fired", "exited" (an unless event) or
 * "cancelled", with REASON.  0, 1 when it was no longer waiting, -1. */
int store_timer_done (struct store *st, int64_t id, const char *state,
                      const char *reason);

/* Cancel every waiting step of CUSTOMER's journeys in CAMPAIGN entered
 * at or before AT.  Returns how many, or -1. */
int store_timer_cancel (struct store *st, const char *campaign,
                        const char *customer, int64_t at, const char *reason);

/* The customer's latest entry into CAMPAIGN: 1 with its instance and
 * time, 0 when never, -1. */
int store_journey_last (struct store *st, const char *campaign,
                        const char *customer, int64_t *instance_r,
                        int64_t *entered_r);

/* The trigger event (JSON, malloc'ed into *EVENT_R, or NULL when the
 * journey has none) of journey INSTANCE of CUSTOMER in CAMPAIGN.  0, -1. */
int store_journey_event (struct store *st, const char *campaign,
                         const char *customer, int64_t instance,
                         char **event_r);

/* An event as read back by store_events_after (strings lent). */
struct store_event_row {
  int64_t id;
  char *customer, *channel, *type;
  int64_t at;
  char *campaign, *message_key, *detail, *machine;
};

/* The events recorded after id AFTER_ID, in order, at most LIMIT: CB gets
 * each (it may write to the store).  Returns the count, or -1. */
int store_events_after (struct store *st, int64_t after_id, int limit,
                        int (*cb) (void *data,
                                   const struct store_event_row *e),
                        void *data);

/* The id of the latest event recorded (0 when none).  0 or -1. */
int store_events_last_id (struct store *st, int64_t *id_r);

/* An integer in the meta table: 1 found, 0 not, -1; and setting one. */
int store_meta_get_int (struct store *st, const char *key, int64_t *v_r);
int store_meta_set_int (struct store *st, const char *key, int64_t v);

/* Whether the customer did one of TYPES (NULL-terminated, at most 4) at
 * or after SINCE, as a person (not a machine's), on a message of journey
 * INSTANCE of CAMPAIGN or naming CAMPAIGN without a message: 1 with the
 * type in TYPE_R, 0, -1. */
int store_journey_engaged (struct store *st, const char *campaign,
                           const char *customer, int64_t instance,
                           int64_t since, const char *const *types,
                           char *type_r, size_t len);

/* The earliest waiting step of CAMPAIGN: 1 with *DUE_R, 0 none, -1. */
int store_timer_next (struct store *st, const char *campaign,
                      int64_t *due_r);

/* Waiting steps due at NOW (all campaigns): how many and the oldest due
 * time (0 when none).  0 or -1. */
int store_timer_stats (struct store *st, int64_t now, int64_t *due_r,
                       int64_t *oldest_r);

/* A campaign's funnel by step: *R (new reference) becomes, in step order,
 * [{"step": N, "entered": N, "messages": N, "sent": N, "engaged": N,
 *   "waiting": N, "fired": N, "exited": N, "cancelled": N}, ...]:
 * entered counts the step's timers (journeys that reached it), or its
 * outbox rows for a step without any (herald run's step 1); messages and
 * sent its outbox rows; engaged its messages a person opened, clicked,
 * replied to or converted on; waiting, fired, exited (by unless) and
 * cancelled its timers by state. */
int store_step_funnel (struct store *st, const char *campaign, json_t **r);

/* ---- Short links (SMS) ------------------------------------------- */

/* Record URL[0..LEN) (any bytes but NUL) as a link of message KEY; *ID_R
 * gets its id (>= 1), which the short token names (token.h).  Call it in
 * the transaction that records the message, so that a rolled-back
 * message leaves no link behind.  Links are never deleted, so an id is
 * given once, except that of a rolled-back link (a dry run's, a
 * preview's): its token names another message's key and URL than the
 * link that later gets the id, and is refused. */
int store_link_add (struct store *st, const char *key, const char *url,
                    size_t len, int64_t *id_r);

/* The message key and URL of link ID: 0 with *KEY_R and *URL_R (malloc'ed,
 * NUL-terminated; the caller frees both) and the URL's length in *LEN_R;
 * 1 when no link has ID (all NULL); -1 error. */
int store_link_get (struct store *st, int64_t id, char **key_r, char **url_r,
                    size_t *len_r);

/* ---- Copying a store (herald store copy) ------------------------- */

/* The tables store_copy copies, in its order: customers, consent,
 * suppressions, events, outbox, campaigns, timers, links, and meta (the
 * journeys' cursors: every key but the schema version). */
#define STORE_COPY_TABLES 9

struct store_copy_table {
  const char *table;         /* static */
  int64_t rows;              /* counted on both sides */
  char checksum[65];         /* SHA-256 of the rows, hex (both sides') */
};

/* Copy the SQLite store in the file FROM (which must exist; opened with
 * store_open first, so migrated) into the PostgreSQL store TO, which must
 * be at this herald's schema version (herald store migrate) and empty:
 * no rows in any table, meta aside from its schema version.  Every row of
 * the tables above, ids kept (new events, timers and links get ids after
 * the largest copied), in one PostgreSQL transaction that other writers
 * wait for (up to 10 s, then the copy fails).  FROM is read in one
 * snapshot and never written.  Before the commit, each table's rows are
 * counted on both sides and checksummed: a SHA-256 over each row's values
 * in key order, from SQLite's rows and from PostgreSQL's read back.
 * Returns 0 with TABLES_R (STORE_COPY_TABLES entries, in that order)
 * filled; or -1 with a message in ERR naming the store (TO without its
 * password) and the table, and nothing copied: a value PostgreSQL cannot
 * keep (text that is not UTF-8 or holds a NUL) is named by table, key and
 * column, and a table that differs after the copy by its counts and
 * checksums.  (When the connection is lost during the commit itself, ERR
 * says so: the copy is then all there or not at all.) */
int store_copy (const char *from, const char *to,
                struct store_copy_table tables_r[STORE_COPY_TABLES],
                char *err, size_t errlen);

/* ---- Many workers: leases ---------------------------------------- */

/* Several herald processes, on one machine or many, may share a store
 * that says so (PostgreSQL): they split a campaign's work by claiming it,
 * each claim a lease that its worker renews while it lives.  A worker that
 * dies stops renewing, and once its leases expire the others take its
 * work back (store_outbox_recover).  SQLite is never shared: one herald
 * run per campaign holds a lock beside the file, and leases are kept in
 * memory only. */

/* 1 when other workers may share this store (PostgreSQL), 0 if not. */
int store_shared (struct store *st);

/* This process is worker WORKER (copied; e.g. "host:pid:random"): the rows
 * it claims or plans as "sending" and the chunks it claims are its own
 * until now + LEASE seconds, and store_lease_renew pushes that on. */
int store_set_worker (struct store *st, const char *worker, int lease);

/* Push the lease of this worker's "sending" rows and plan chunks to
 * now + lease.  Returns how many were renewed, or -1. */
int store_lease_renew (struct store *st);

/* A shared store: take (LOCK 1, without waiting) or give back (LOCK 0)
 * this process's turn at CAMPAIGN, for herald serve: one replica at a
 * time reads a campaign's events, fires its steps and sends its due
 * messages.  The turn is the connection's: it ends with it.  1 taken (or
 * given back), 0 another process has it (or this one had not), -1. */
int store_campaign_lock (struct store *st, const char *campaign, int lock);

/* Claim up to LIMIT due rows of CAMPAIGN (as store_outbox_due chooses
 * them), skipping rows another worker holds: in one transaction they
 * become "sending" with reason "claimed", leased to this worker, their
 * attempts unchanged (the caller counts an attempt, and gives the row its
 * own reason back, when it hands the row to a plugin, so a crash counts
 * against the rows in flight only).  CB then gets each one (lent)
 * as it was before the claim; it cannot stop the iteration: every claimed
 * row is handed.  Returns the count claimed, or -1 (nothing claimed). */
int store_outbox_claim (struct store *st, const char *campaign, int64_t now,
                        int limit,
                        int (*cb) (void *data, const struct outbox_row *row),
                        void *data);

/* The work of CAMPAIGN that other workers hold at NOW, leases not
 * expired: its rows in "sending" and the chunks of STEP they are
 * planning.  How many into *N_R, and the earliest expiry into *UNTIL_R (0
 * when none).  A worker done with its own share waits for these: their
 * worker finishes them, or they are taken back at expiry.  0 or -1.
 * SQLite: always none. */
int store_work_held (struct store *st, const char *campaign, int step,
                     int64_t now, int64_t *n_r, int64_t *until_r);

/* Planning a campaign step by chunks of its audience (a shared store
 * only): the customers fall in STORE_CHUNKS chunks by a hash of their id.
 * Claim a chunk of (CAMPAIGN, STEP) that is not done and not leased to a
 * live worker: 1 with its number in *CHUNK_R, 0 when none is left, -1.
 * When every chunk is done (an earlier run planned them), the first claim
 * (this store's first for CAMPAIGN and STEP) opens them all again:
 * customers imported since are planned, and the ones planned already are
 * skipped by their message key.  A worker's later claims never reopen
 * them (waiting for the others, it claims again and again). */
#define STORE_CHUNKS 64
int store_chunk_claim (struct store *st, const char *campaign, int step,
                       int *chunk_r);
/* Chunk CHUNK of (CAMPAIGN, STEP) is planned.  0 or -1. */
int store_chunk_done (struct store *st, const char *campaign, int step,
                      int chunk);

/* store_audience_next within chunk CHUNK (0 .. STORE_CHUNKS - 1) of the
 * customers; CHUNK -1 is every customer (store_audience_next). */
int store_audience_chunk (struct store *st, const char *campaign, int step,
                          int chunk, const char *after_id, int limit,
                          int (*cb) (void *data, json_t *customer),
                          void *data);

#endif
