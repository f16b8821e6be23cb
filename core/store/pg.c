/* pg.c: the shared store, Herald's state in a PostgreSQL database through
 * libpq (the contract is store.h's; backend.h says how a backend plugs
 * in; sqlite.c's statements are the reference for what each one means).
 * Many herald processes on many machines may use one database at once.
 * This file must never print (libpq's notices are silenced), never decide
 * policy, never leave a transaction open after returning an error from a
 * call it began, and never change a schema unless asked to migrate. */
#include <config.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

#include "../store.h"
#include "backend.h"
#include "../../lib/jsoncheck.h"
#include "../util.h"

/* Prepared statements, prepared on a connection's first use of each (named
 * "h0", "h1", ... by their number here) and kept for the life of the
 * connection: the import loop runs the same statement a million times.
 * Parameters go as text; where PostgreSQL cannot infer a parameter's type
 * from its use (a parameter only compared with NULL, concatenated, or
 * selected) the SQL casts it. */
enum {
  Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
  Q_CUST_PUT, Q_CUST_GET, Q_CUST_EXISTS, Q_CUST_COUNT,
  Q_FIND_EMAIL, Q_FIND_PHONE, Q_FIND_WEBHOOK, Q_CUST_ADDR,
  Q_CONSENT_SET,
  Q_CONSENT_GET, Q_CONSENT_ALL,
  Q_SUPPRESS, Q_IS_SUPPRESSED,
  Q_EVENT_PUT, Q_CUST_EVENTS, Q_STATS_SENT, Q_STATS_EVENTS,
  Q_MSG_EVENTS, Q_EVENT_MACHINE,
  Q_AUDIENCE,
  Q_OB_INSERT, Q_OB_UPDATE, Q_OB_UPDATE_REASON, Q_OB_REROUTE, Q_OB_GET,
  Q_OB_DUE, Q_OB_RECOVER_PENDING, Q_OB_RECOVER_FAILED, Q_OB_RECOVER_CLAIMED,
  Q_OB_NEXT_DUE,
  Q_OB_ADDRESS, Q_SENT_COUNT, Q_INSTANCE_VOLUME, Q_CAMP_COUNTS, Q_CAMP_ENGAGEMENT,
  Q_CAMP_CONVERSIONS, Q_OB_STATES, Q_OB_DUE_SUMMARY, Q_EVENT_COUNTS,
  Q_CAMP_START, Q_CAMP_FINISH, Q_CAMP_GET,
  Q_TIMER_ADD, Q_TIMERS_DUE, Q_TIMER_DONE, Q_TIMER_CANCEL, Q_JOURNEY_LAST,
  Q_EVENTS_AFTER, Q_META_GET, Q_META_SET, Q_JOURNEY_ENGAGED, Q_TIMER_NEXT,
  Q_TIMER_STATS, Q_STEP_FUNNEL, Q_STEP_OUTBOX, Q_STEP_ENGAGED,
  Q_JOURNEY_EVENT, Q_EVENTS_LAST, Q_OB_REROUTES, Q_OB_REROUTE_NONE,
  Q_OB_BY_PROVIDER,
  Q_LINK_ADD, Q_LINK_GET, Q_CUST_LOCK, Q_EVENTS_LOCK, Q_CAMP_LOCK,
  Q_CAMP_UNLOCK,
  Q_LEASE_ROWS, Q_LEASE_CHUNKS, Q_OB_CLAIM, Q_WORK_HELD, Q_CHUNK_INIT,
  Q_CHUNK_CLAIM, Q_CHUNK_LEFT, Q_CHUNK_REOPEN, Q_CHUNK_DONE, Q_AUDIENCE_CHUNK,
  Q_N
};

#define OUTBOX_COLS \
  "key, campaign, step, customer, channel, instance, variant, state, reason, " \
  "attempts, next_at, created, updated, sent_at, provider_id, error, detail, " \
  "address, parts, trace, journey"

/* Ordering: SQLite puts NULLs first in ascending order, PostgreSQL last;
 * the reports' rows (a null channel or variant) keep SQLite's order with
 * NULLS FIRST.  Text compares byte by byte (the columns are COLLATE "C",
 * see the schema), as in SQLite. */
static const char *const sql_text[Q_N] = {
  [Q_BEGIN] = "BEGIN ISOLATION LEVEL READ COMMITTED",
  [Q_COMMIT] = "COMMIT",
  [Q_ROLLBACK] = "ROLLBACK",
  [Q_CUST_PUT] =
    "INSERT INTO customers (id, email, phone, timezone, locale, webhook, "
    "record, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (id) DO UPDATE SET email = excluded.email, "
    "phone = excluded.phone, timezone = excluded.timezone, "
    "locale = excluded.locale, webhook = excluded.webhook, "
    "record = excluded.record, updated = excluded.updated",
  [Q_CUST_GET] = "SELECT record FROM customers WHERE id = $1",
  [Q_CUST_EXISTS] = "SELECT 1 FROM customers WHERE id = $1",
  [Q_FIND_EMAIL] = "SELECT id FROM customers WHERE email = $1 ORDER BY id",
  [Q_FIND_PHONE] = "SELECT id FROM customers WHERE phone = $1 ORDER BY id",
  [Q_FIND_WEBHOOK] =
    "SELECT id FROM customers WHERE webhook = $1 ORDER BY id",
  [Q_CUST_COUNT] = "SELECT count(*) FROM customers",
  [Q_CUST_ADDR] = "SELECT email, phone, webhook, record FROM customers "
                  "WHERE id = $1",
  /* Out-of-order events: an older change loses to a newer one. */
  [Q_CONSENT_SET] =
    "INSERT INTO consent (customer, channel, granted, at, source) "
    "VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (customer, channel) DO UPDATE SET granted = excluded.granted, "
    "at = excluded.at, source = excluded.source "
    "WHERE excluded.at >= consent.at",
  [Q_CONSENT_GET] =
    "SELECT granted FROM consent WHERE customer = $1 AND channel = $2",
  [Q_CONSENT_ALL] =
    "SELECT channel, granted FROM consent WHERE customer = $1 ORDER BY channel",
  [Q_SUPPRESS] =
    "INSERT INTO suppressions (channel, address, reason, at) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (channel, address) DO NOTHING",
  [Q_IS_SUPPRESSED] =
    "SELECT 1 FROM suppressions WHERE channel = $1 AND address = $2",
  /* No conflict target: the once-only index (events_once) is the one a
   * repeat violates. */
  [Q_EVENT_PUT] =
    "INSERT INTO events (customer, channel, type, at, campaign, message_key, "
    "detail, at_ms, machine) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT DO NOTHING",
  [Q_MSG_EVENTS] =
    "SELECT id, at_ms, detail, machine FROM events WHERE message_key = $1 "
    "AND type = $2 AND at_ms BETWEEN $3 AND $4 "
    "AND ($5::text IS NULL OR detail IS DISTINCT FROM $5::text) "
    "ORDER BY at_ms, id",
  [Q_EVENT_MACHINE] =
    "UPDATE events SET machine = $2 WHERE id = $1 AND machine IS NULL",
  /* Customers messaged (sent) or held out, per variant, and how many of
   * them converted after their row was recorded. */
  [Q_CAMP_CONVERSIONS] =
    "SELECT o.variant, o.state = 'held_out', count(*), "
    "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e "
    "WHERE e.customer = o.customer AND e.type = 'converted' "
    "AND e.at >= o.created)) "
    "FROM outbox o WHERE o.campaign = $1 AND o.state IN ('sent', 'held_out') "
    "GROUP BY 1, 2 ORDER BY 2 DESC, 1 NULLS FIRST",
  /* A customer's history for the router: events, and the messages Herald
   * sent (from the outbox, type "sent"), oldest first. */
  [Q_CUST_EVENTS] =
    "SELECT channel, type, at FROM ("
    " SELECT channel, type, at, id FROM events WHERE customer = $1 AND at >= $2"
    " AND machine IS NULL"
    " UNION ALL"
    " SELECT channel, 'sent', sent_at, 0 FROM outbox WHERE customer = $1"
    " AND sent_at >= $2 AND state = 'sent' AND channel IS NOT NULL"
    ") AS history ORDER BY at, id",
  [Q_STATS_SENT] =
    "SELECT channel, count(*) FROM outbox WHERE state = 'sent' "
    "AND sent_at >= $1 AND channel IS NOT NULL GROUP BY channel",
  /* "sent" comes from the outbox; a "sent" event is not counted twice. */
  [Q_STATS_EVENTS] =
    "SELECT channel, type, count(*) FROM events WHERE at >= $1 "
    "AND channel IS NOT NULL AND type <> 'sent' AND machine IS NULL "
    "GROUP BY channel, type",
  /* The key lookup hits the outbox primary key: one probe per customer. */
  [Q_AUDIENCE] =
    "SELECT c.id, c.record FROM customers c WHERE c.id > $1 "
    "AND NOT EXISTS (SELECT 1 FROM outbox o "
    "WHERE o.key = $2::text || ':' || $3::text || ':' || c.id) "
    "ORDER BY c.id LIMIT $4",
  /* A row written as "sending" by a worker is leased to it ($22, $23 and
   * the like below: NULL for any other state, or without a worker). */
  [Q_OB_INSERT] =
    "INSERT INTO outbox (" OUTBOX_COLS ", lease_owner, lease_until) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
    "$15, $16, $17, $18, $19, $20, $21, $22, $23) "
    "ON CONFLICT (key) DO NOTHING",
  /* Rendered parts are kept while a row may still be sent, so a resend
   * after a crash sends the same bytes; once sent (or dead) they are
   * dropped. */
  [Q_OB_UPDATE] =
    "UPDATE outbox SET state = $2::text, attempts = $3, next_at = $4, "
    "provider_id = $5, error = $6, detail = $7, updated = $8::bigint, "
    "sent_at = CASE WHEN $2::text = 'sent' THEN $8::bigint ELSE sent_at END, "
    "parts = CASE WHEN $2::text IN ('sent', 'dead') THEN NULL ELSE parts END, "
    "lease_owner = $9, lease_until = $10 "
    "WHERE key = $1",
  [Q_OB_UPDATE_REASON] =
    "UPDATE outbox SET state = $2::text, attempts = $3, next_at = $4, "
    "provider_id = $5, error = $6, detail = $7, updated = $8::bigint, "
    "reason = $9, "
    "sent_at = CASE WHEN $2::text = 'sent' THEN $8::bigint ELSE sent_at END, "
    "parts = CASE WHEN $2::text IN ('sent', 'dead') THEN NULL ELSE parts END, "
    "lease_owner = $10, lease_until = $11 "
    "WHERE key = $1",
  [Q_OB_REROUTE] =
    "UPDATE outbox SET channel = $2, instance = $3, variant = $4, "
    "state = $5::text, reason = $6, next_at = $7, address = $8, parts = $9, "
    "trace = $10, updated = $11::bigint, attempts = 0, provider_id = NULL, "
    "error = NULL, "
    "sent_at = CASE WHEN $5::text = 'sent' THEN $11::bigint ELSE NULL END, "
    "lease_owner = $12, lease_until = $13 "
    "WHERE key = $1",
  [Q_OB_GET] = "SELECT " OUTBOX_COLS " FROM outbox WHERE key = $1",
  [Q_OB_DUE] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE campaign = $1 "
    "AND state IN ('pending', 'retry', 'deferred') AND next_at <= $2 "
    "ORDER BY next_at, key LIMIT $3",
  /* A row in flight at as many crashes as it may have attempts is taken
   * for the message that crashes its plugin (a poison message): dead.
   * The others go back to pending, marked "recovered".  Only rows that no
   * live worker holds: without a lease (a process that was no worker) or
   * with one expired at $2 (its worker stopped renewing it). */
  [Q_OB_RECOVER_PENDING] =
    "UPDATE outbox SET updated = $2, lease_owner = NULL, lease_until = NULL, "
    "state = CASE WHEN attempts >= $3::int THEN 'dead' ELSE 'pending' END, "
    "reason = CASE WHEN attempts >= $3::int THEN 'crashed_in_flight' "
    "ELSE 'recovered' END, "
    "error = CASE WHEN attempts >= $3::int THEN 'in flight at ' || attempts "
    "|| ' crashes of herald (attempts); taken for a message that crashes its "
    "plugin' ELSE error END "
    "WHERE state = 'sending' AND ($1::text IS NULL OR campaign = $1::text) "
    "AND (lease_until IS NULL OR lease_until < $2)",
  [Q_OB_RECOVER_FAILED] =
    "UPDATE outbox SET state = 'failed', reason = 'in flight at crash', "
    "updated = $2, lease_owner = NULL, lease_until = NULL "
    "WHERE state = 'sending' AND ($1::text IS NULL OR campaign = $1::text) "
    "AND (lease_until IS NULL OR lease_until < $2)",
  /* Claimed and never handed to a plugin (store_outbox_claim). */
  [Q_OB_RECOVER_CLAIMED] =
    "UPDATE outbox SET state = 'pending', reason = NULL, updated = $2, "
    "lease_owner = NULL, lease_until = NULL "
    "WHERE state = 'sending' AND reason = 'claimed' "
    "AND ($1::text IS NULL OR campaign = $1::text) "
    "AND (lease_until IS NULL OR lease_until < $2)",
  [Q_OB_NEXT_DUE] =
    "SELECT min(next_at) FROM outbox WHERE campaign = $1 "
    "AND state IN ('retry', 'deferred')",
  [Q_OB_ADDRESS] = "SELECT address FROM outbox WHERE key = $1",
  [Q_OB_BY_PROVIDER] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE provider_id = $1 "
    "AND provider_id IS NOT NULL AND ($2::text IS NULL OR channel = $2::text) "
    "ORDER BY updated DESC LIMIT 1",
  /* Permanent failures waiting for the planning pass to re-route them. */
  [Q_OB_REROUTES] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE campaign = $1 "
    "AND state = 'reroute' ORDER BY key LIMIT $2",
  [Q_OB_REROUTE_NONE] =
    "UPDATE outbox SET state = CASE WHEN reason = 'retries_exhausted' "
    "THEN 'dead' ELSE 'failed' END, updated = $2 "
    "WHERE key = $1 AND state = 'reroute'",
  /* What counts against a cap: messages sent in the period, and those
   * committed to be sent (planned, in flight, waiting for a retry) since
   * it began: two campaigns planning one customer at the same time see
   * each other's message. */
  [Q_INSTANCE_VOLUME] =
    "SELECT count(*) FROM outbox WHERE instance = $1 "
    "AND ((state = 'sent' AND sent_at >= $2) "
    "OR (state IN ('sending', 'retry', 'failed', 'dead', 'reroute') "
    "AND attempts > 0 AND updated >= $2))",
  [Q_SENT_COUNT] =
    "SELECT count(*) FROM outbox WHERE customer = $1 "
    "AND ($3::text IS NULL OR channel = $3::text) "
    "AND ((state = 'sent' AND sent_at >= $2) "
    "OR (state IN ('pending', 'sending', 'retry') AND created >= $2))",
  /* Held to the end of the planning transaction: workers planning one
   * customer for two campaigns take turns (key 1213352004: "HRLD"). */
  [Q_CUST_LOCK] =
    "SELECT 1 FROM pg_advisory_xact_lock (1213352004, hashtext ($1))",
  /* Event writers take turns, from before an event's id is drawn until
   * their commit: ids then become visible in their order, and a reader
   * following them with a cursor (store_events_after: herald serve's
   * journeys) never passes an id that commits later. */
  [Q_EVENTS_LOCK] = "SELECT 1 FROM pg_advisory_xact_lock (1213352005)",
  /* herald serve's turn at a campaign (store_campaign_lock): one replica
   * at a time reads its events, fires its steps and sends. */
  [Q_CAMP_LOCK] =
    "SELECT pg_try_advisory_lock (1213352006, hashtext ($1))::int",
  [Q_CAMP_UNLOCK] =
    "SELECT pg_advisory_unlock (1213352006, hashtext ($1))::int",
  [Q_CAMP_COUNTS] =
    "SELECT channel, variant, state, reason, count(*) FROM outbox "
    "WHERE campaign = $1 GROUP BY 1, 2, 3, 4 "
    "ORDER BY 1 NULLS FIRST, 2 NULLS FIRST, 3, 4 NULLS FIRST",
  [Q_CAMP_ENGAGEMENT] =
    "WITH ev AS ("
    " SELECT e.type AS type, e.channel AS echannel, e.customer AS customer,"
    "  e.machine IS NOT NULL AS machine,"
    "  COALESCE(o1.key, (SELECT o2.key FROM outbox o2 WHERE o2.campaign = $1"
    "   AND o2.customer = e.customer"
    "   AND (e.channel IS NULL OR o2.channel = e.channel)"
    "   ORDER BY o2.step DESC LIMIT 1)) AS okey"
    " FROM events e LEFT JOIN outbox o1"
    "  ON o1.key = e.message_key AND o1.campaign = $1"
    " WHERE e.campaign = $1 OR o1.key IS NOT NULL) "
    "SELECT COALESCE(o.channel, ev.echannel), o.variant, ev.type, count(*),"
    " count(DISTINCT COALESCE(ev.okey, ev.customer)), ev.machine"
    " FROM ev LEFT JOIN outbox o ON o.key = ev.okey"
    " GROUP BY 1, 2, 3, 6 ORDER BY 1 NULLS FIRST, 2 NULLS FIRST, 3, 6",
  /* For /metrics, on every scrape: one pass over the table. */
  [Q_OB_STATES] =
    "SELECT campaign, channel, state, count(*) FROM outbox "
    "GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3",
  [Q_OB_DUE_SUMMARY] =
    "SELECT count(*), min(next_at) FROM outbox "
    "WHERE state IN ('pending', 'retry', 'deferred') AND next_at <= $1",
  [Q_EVENT_COUNTS] =
    "SELECT type, machine IS NOT NULL, count(*) FROM events "
    "GROUP BY 1, 2 ORDER BY 1, 2",
  [Q_CAMP_START] =
    "INSERT INTO campaigns (id, name, status, runs, first_started, "
    "last_started) VALUES ($1, $2, 'running', 1, $3, $3) "
    "ON CONFLICT (id) DO UPDATE SET "
    "name = COALESCE(excluded.name, campaigns.name), status = 'running', "
    "runs = campaigns.runs + 1, last_started = excluded.last_started, "
    "finished = NULL",
  [Q_CAMP_FINISH] =
    "UPDATE campaigns SET status = $2, finished = $3 WHERE id = $1",
  [Q_CAMP_GET] =
    "SELECT id, name, status, runs, first_started, last_started, finished "
    "FROM campaigns WHERE id = $1",
  /* The timer queue: one row per (journey, step), so a step is queued and
   * fired once whatever repeats the event or a restart. */
  [Q_TIMER_ADD] =
    "INSERT INTO timers (campaign, customer, instance, step, due, state, "
    "entered, event, created, updated) SELECT $1::text, $2::text, "
    "$3::bigint, $4::int, $5::bigint, 'waiting', "
    "coalesce ($6::bigint, (SELECT entered FROM timers WHERE campaign = $1 "
    "AND customer = $2 AND instance = $3 AND step = 1), $8::bigint), "
    "coalesce ($7::text, (SELECT event FROM timers WHERE campaign = $1 "
    "AND customer = $2 AND instance = $3 AND step = 1)), $8, $8 "
    "ON CONFLICT (campaign, customer, instance, step) DO NOTHING",
  [Q_EVENTS_LAST] = "SELECT coalesce (max (id), 0) FROM events",
  [Q_JOURNEY_EVENT] =
    "SELECT event FROM timers WHERE campaign = $1 AND customer = $2 "
    "AND instance = $3 AND step = 1",
  [Q_TIMERS_DUE] =
    "SELECT id, campaign, customer, instance, step, due, entered, event "
    "FROM timers WHERE state = 'waiting' AND due <= $2 AND campaign = $1 "
    "ORDER BY due, id LIMIT $3",
  [Q_TIMER_DONE] =
    "UPDATE timers SET state = $2, reason = $3, updated = $4 "
    "WHERE id = $1 AND state = 'waiting'",
  [Q_TIMER_CANCEL] =
    "UPDATE timers SET state = 'cancelled', reason = $4, updated = $5 "
    "WHERE campaign = $1 AND customer = $2 AND state = 'waiting' "
    "AND entered <= $3",
  [Q_JOURNEY_LAST] =
    "SELECT instance, entered FROM timers WHERE campaign = $1 "
    "AND customer = $2 AND step = 1 ORDER BY instance DESC LIMIT 1",
  [Q_EVENTS_AFTER] =
    "SELECT id, customer, channel, type, at, campaign, message_key, detail, "
    "machine FROM events WHERE id > $1 ORDER BY id LIMIT $2",
  [Q_META_GET] = "SELECT value FROM meta WHERE key = $1",
  [Q_META_SET] =
    "INSERT INTO meta (key, value) VALUES ($1, $2) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  /* A person's event of one of the types $5.. on a message of this
   * journey (or naming the campaign without a message) since $4. */
  [Q_JOURNEY_ENGAGED] =
    "SELECT type FROM events WHERE customer = $2 AND at >= $4 "
    "AND machine IS NULL AND type IN ($5, $6, $7, $8) "
    "AND (message_key IN (SELECT key FROM outbox WHERE customer = $2 "
    "AND campaign = $1 AND coalesce(journey, 0) = $3) "
    "OR (message_key IS NULL AND campaign = $1)) ORDER BY at, id LIMIT 1",
  [Q_TIMER_NEXT] =
    "SELECT min(due) FROM timers WHERE state = 'waiting' AND campaign = $1",
  [Q_TIMER_STATS] =
    "SELECT count(*), min(due) FROM timers WHERE state = 'waiting' "
    "AND due <= $1",
  [Q_STEP_FUNNEL] =
    "SELECT step, state, count(*) FROM timers "
    "WHERE campaign = $1 GROUP BY 1, 2 ORDER BY 1, 2",
  [Q_STEP_OUTBOX] =
    "SELECT step, count(*), count(*) FILTER (WHERE state = 'sent') "
    "FROM outbox WHERE campaign = $1 GROUP BY 1 ORDER BY 1",
  /* Messages of each step that a person (not a machine) engaged with. */
  [Q_STEP_ENGAGED] =
    "SELECT o.step, count(DISTINCT o.key) FROM outbox o JOIN events e "
    "ON e.message_key = o.key WHERE o.campaign = $1 AND e.machine IS NULL "
    "AND e.type IN ('opened', 'clicked', 'replied', 'converted') "
    "GROUP BY 1 ORDER BY 1",
  /* The URL is bytes (bytea): it goes and comes back as hex, whatever
   * the server's bytea_output. */
  [Q_LINK_ADD] =
    "INSERT INTO links (message_key, url) VALUES ($1, decode ($2, 'hex')) "
    "RETURNING id",
  [Q_LINK_GET] =
    "SELECT message_key, encode (url, 'hex') FROM links WHERE id = $1",
  /* Many workers (store.h's leases).  $1 the worker, $2 the new expiry. */
  [Q_LEASE_ROWS] =
    "UPDATE outbox SET lease_until = $2 WHERE lease_owner = $1 "
    "AND state = 'sending'",
  [Q_LEASE_CHUNKS] =
    "UPDATE plan_chunks SET lease_until = $2 WHERE owner = $1 "
    "AND state = 'open'",
  /* Due rows as store_outbox_due picks them, less those another worker's
   * claim has locked this instant (SKIP LOCKED: no waiting; a row it
   * claimed is no longer due), made "sending" and leased in the same
   * statement, handed back as they were (due's columns), in due order. */
  [Q_OB_CLAIM] =
    "WITH due AS MATERIALIZED (SELECT " OUTBOX_COLS " FROM outbox "
    " WHERE campaign = $1"
    " AND state IN ('pending', 'retry', 'deferred') AND next_at <= $2"
    " ORDER BY next_at, key LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " claimed AS (UPDATE outbox o SET state = 'sending', reason = 'claimed',"
    " next_at = 0,"
    " provider_id = NULL, error = NULL, detail = NULL, updated = $4,"
    " lease_owner = $5, lease_until = $6 FROM due WHERE o.key = due.key"
    " RETURNING due.*) "
    "SELECT " OUTBOX_COLS " FROM claimed ORDER BY next_at, key",
  /* Other workers' live leases on the campaign: rows in flight, and the
   * step's chunks being planned.  A lease is live up to its second
   * (lease_until >= now) and expired after it (< now, what recovery and
   * chunk claims take): with > here, a worker polling in that very second
   * saw the work neither held nor recoverable, and left it behind. */
  [Q_WORK_HELD] =
    "SELECT count(*), min(lease_until) FROM ("
    " SELECT lease_until FROM outbox WHERE campaign = $1 AND state = 'sending'"
    " AND lease_until >= $3 AND lease_owner IS DISTINCT FROM $4::text"
    " UNION ALL"
    " SELECT lease_until FROM plan_chunks WHERE campaign = $1 AND step = $2"
    " AND state = 'open' AND owner IS NOT NULL AND lease_until >= $3"
    " AND owner IS DISTINCT FROM $4::text) AS held",
  [Q_CHUNK_INIT] =
    "INSERT INTO plan_chunks (campaign, step, chunk) SELECT $1::text, "
    "$2::int, g FROM generate_series (0, $3::int - 1) AS g "
    "ON CONFLICT DO NOTHING",
  /* The first chunk that is open and not leased to a live worker.  The
   * choice is a materialised CTE, made once: as a subquery in FROM, the
   * planner may rescan it for each row of the join, and each rescan
   * locks and picks another chunk (one claim took all 63 in the test). */
  [Q_CHUNK_CLAIM] =
    "WITH c AS MATERIALIZED (SELECT chunk FROM plan_chunks"
    " WHERE campaign = $1 AND step = $2 AND state = 'open'"
    " AND (owner IS NULL OR owner = $3 OR lease_until < $5)"
    " ORDER BY chunk LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "UPDATE plan_chunks p SET owner = $3, lease_until = $4 FROM c "
    "WHERE p.campaign = $1 AND p.step = $2 AND p.chunk = c.chunk "
    "RETURNING p.chunk",
  [Q_CHUNK_LEFT] =
    "SELECT count(*) FILTER (WHERE state <> 'done'), count(*) "
    "FROM plan_chunks WHERE campaign = $1 AND step = $2",
  [Q_CHUNK_REOPEN] =
    "UPDATE plan_chunks SET state = 'open', owner = NULL, lease_until = 0 "
    "WHERE campaign = $1 AND step = $2 AND state = 'done'",
  [Q_CHUNK_DONE] =
    "UPDATE plan_chunks SET state = 'done', lease_until = 0 "
    "WHERE campaign = $1 AND step = $2 AND chunk = $3",
  /* Q_AUDIENCE within a chunk: customers_bucket's expression, so that
   * index serves it (a chunk's ids in order). */
  [Q_AUDIENCE_CHUNK] =
    "SELECT c.id, c.record FROM customers c "
    "WHERE (hashtext (c.id) & 63) = $5 AND c.id > $1 "
    "AND NOT EXISTS (SELECT 1 FROM outbox o "
    "WHERE o.key = $2::text || ':' || $3::text || ':' || c.id) "
    "ORDER BY c.id LIMIT $4",
};

/* Migrations: each takes a database to VERSION, from the version of the
 * entry before it (the first from an empty database).  The versions are
 * store.h's (one numbering for both backends), so the first entry is the
 * whole schema of version 6, SQLite's schema with the same tables,
 * columns and indexes.  Only ever append; never edit an entry that has
 * shipped.
 *
 * Types: times and ids are BIGINT (unix seconds, milliseconds); ids that
 * the store assigns are identity columns.  JSON texts are TEXT, the same
 * bytes as SQLite keeps.  A short link's URL is BYTEA: it is kept byte
 * for byte, even when it is not UTF-8 (TEXT refuses that).  Names and
 * keys are COLLATE "C": compared and sorted byte by byte as SQLite does,
 * whatever the database's locale (the audience pages by id > last id, so
 * the order must not depend on it).
 *
 * Beyond SQLite's 6, for the many workers a shared store serves: an
 * outbox row's lease (lease_owner, lease_until), the plan's chunks
 * (plan_chunks), and customers_bucket, which splits the customers into
 * 64 buckets by a hash of the id.  The bucket is hashtext (id) & 63, not
 * abs (hashtext (id)) % 64: abs of hashtext's -2^31 is out of int's
 * range, and the insert of the one customer whose id hashes there would
 * fail. */
struct pg_migration {
  int version;
  const char *sql;
};

#define C " COLLATE \"C\""

static const struct pg_migration pg_migrations[] = {
  { 6,
    "CREATE TABLE customers ("
    " id TEXT" C " PRIMARY KEY, email TEXT" C ", phone TEXT" C ","
    " timezone TEXT" C ", locale TEXT" C ", webhook TEXT" C ","
    " record TEXT NOT NULL,"   /* the whole normalised record, JSON */
    " updated BIGINT NOT NULL);"
    "CREATE INDEX customers_email ON customers (email);"
    "CREATE INDEX customers_phone ON customers (phone);"
    "CREATE INDEX customers_timezone ON customers (timezone);"
    "CREATE INDEX customers_locale ON customers (locale);"
    "CREATE INDEX customers_webhook ON customers (webhook);"
    "CREATE INDEX customers_bucket ON customers ((hashtext (id) & 63), id);"
    /* Explicit consent changes only: the imported consent stays in the
     * customer's record, and a row here wins over it. */
    "CREATE TABLE consent ("
    " customer TEXT" C " NOT NULL, channel TEXT" C " NOT NULL,"
    " granted INTEGER NOT NULL, at BIGINT NOT NULL, source TEXT,"
    " PRIMARY KEY (customer, channel));"
    "CREATE TABLE suppressions ("
    " channel TEXT" C " NOT NULL, address TEXT" C " NOT NULL, reason TEXT,"
    " at BIGINT NOT NULL, PRIMARY KEY (channel, address));"
    /* machine: why a request was taken for a machine's (NULL: a
     * person's); at_ms: when, to the millisecond (the tracking server's
     * events, each one request, never a repeat). */
    "CREATE TABLE events ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " customer TEXT" C " NOT NULL, channel TEXT" C ","
    " type TEXT" C " NOT NULL, at BIGINT NOT NULL, campaign TEXT" C ","
    " message_key TEXT" C ", detail TEXT, machine TEXT, at_ms BIGINT);"
    "CREATE INDEX events_customer ON events (customer, at);"
    "CREATE INDEX events_campaign ON events (campaign);"
    "CREATE INDEX events_message ON events (message_key);"
    "CREATE INDEX events_at ON events (at);"
    "CREATE INDEX events_message_ms ON events (message_key, type, at_ms);"
    /* The same event twice (a file imported again, a provider retrying its
     * callback) is recorded once. */
    "CREATE UNIQUE INDEX events_once ON events (customer, type, at,"
    " coalesce (channel, ''), coalesce (campaign, ''),"
    " coalesce (message_key, '')) WHERE at_ms IS NULL;"
    "CREATE TABLE outbox ("
    " key TEXT" C " PRIMARY KEY, campaign TEXT" C " NOT NULL,"
    " step INTEGER NOT NULL, customer TEXT" C " NOT NULL, channel TEXT" C ","
    " instance TEXT" C ", variant TEXT" C ", state TEXT" C " NOT NULL,"
    " reason TEXT" C ", attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL,"
    " updated BIGINT NOT NULL, sent_at BIGINT, provider_id TEXT" C ","
    " error TEXT, detail TEXT, address TEXT, parts TEXT, trace TEXT,"
    " journey BIGINT,"
    " lease_owner TEXT, lease_until BIGINT);"
    "CREATE INDEX outbox_due ON outbox (campaign, state, next_at);"
    "CREATE INDEX outbox_customer ON outbox (customer);"
    "CREATE INDEX outbox_provider ON outbox (provider_id)"
    " WHERE provider_id IS NOT NULL;"
    /* A worker renews its rows' leases by owner. */
    "CREATE INDEX outbox_lease ON outbox (lease_owner)"
    " WHERE state = 'sending';"
    "CREATE TABLE campaigns ("
    " id TEXT" C " PRIMARY KEY, name TEXT, status TEXT NOT NULL,"
    " runs INTEGER NOT NULL, first_started BIGINT, last_started BIGINT,"
    " finished BIGINT);"
    /* The timer queue of journeys: one row per (campaign, customer,
     * instance, step). */
    "CREATE TABLE timers ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " campaign TEXT" C " NOT NULL, customer TEXT" C " NOT NULL,"
    " instance BIGINT NOT NULL, step INTEGER NOT NULL, due BIGINT NOT NULL,"
    " state TEXT" C " NOT NULL, reason TEXT, entered BIGINT NOT NULL,"
    " event TEXT, created BIGINT NOT NULL, updated BIGINT NOT NULL,"
    " UNIQUE (campaign, customer, instance, step));"
    "CREATE INDEX timers_due ON timers (campaign, state, due);"
    /* The short links of SMS. */
    "CREATE TABLE links ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " message_key TEXT" C " NOT NULL, url BYTEA NOT NULL);"
    /* The plan of a campaign step in chunks that workers lease. */
    "CREATE TABLE plan_chunks ("
    " campaign TEXT" C ", step INT, chunk INT,"
    " state TEXT NOT NULL DEFAULT 'open', owner TEXT,"
    " lease_until BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (campaign, step, chunk));" },
};
#undef C
#define N_PG_MIGRATIONS ((int) (sizeof pg_migrations / sizeof pg_migrations[0]))
_Static_assert (STORE_CHUNKS == 64,
                "customers_bucket and Q_AUDIENCE_CHUNK cut the customers in 64");
_Static_assert (STORE_SCHEMA_VERSION == 6,
                "a new schema version: append its PostgreSQL migration to "
                "pg_migrations and update this check");

/* The key of the advisory lock that migrations hold (in the database
 * migrated): "herald" in ASCII. */
#define MIGRATION_LOCK "104101114097108100"

/* How long a call outside a transaction keeps trying to reconnect after
 * losing the server (a restart, a fail-over), in milliseconds.  Tests
 * shorten it with HERALD_PG_RETRY_MS. */
#define RETRY_MS 30000

/* Statements a pipeline holds before its results are read (defer). */
#define PIPELINE_MAX 500

struct pg_store {
  struct store base;         /* first: the interface (backend.h) */
  PGconn *conn;
  char *name;                /* the URL without its password, for messages */
  int in_tx;                 /* inside store_begin .. commit/rollback */
  int events_locked;         /* this transaction holds Q_EVENTS_LOCK */
  char *caps_locked;         /* the customer whose Q_CUST_LOCK this
                                transaction took last, or NULL */
  char *worker;              /* store_set_worker's, or NULL */
  int lease;                 /* its lease, seconds */
  char *chunks_seen;         /* "campaign step" of the last chunk claim */
  unsigned char prepared[Q_N];   /* on this connection */
  /* Deferred writes (pipeline mode, see defer): sent, results not read. */
  int pipelined;             /* the connection is in pipeline mode */
  int pending;               /* statements sent and not yet read */
  char *pending_what[PIPELINE_MAX];  /* what each one did, for an error */
  char err[512];
};

static const struct store_ops pg_ops;
static void pg_close (struct store *st);
static int pg_rollback (struct store *st);
static int pg_suppress (struct store *st, const char *channel,
                        const char *address, const char *reason);
static int pg_consent_set (struct store *st, const char *customer,
                           const char *channel, int granted, int64_t at,
                           const char *source);
static int pg_timer_stats (struct store *st, int64_t now, int64_t *due_r,
                           int64_t *oldest_r);
static int pg_message_events_except (struct store *st, const char *key,
                                     const char *type,
                                     const char *except_detail,
                                     int64_t from_ms, int64_t to_ms,
                                     int (*cb) (void *data, int64_t id,
                                                int64_t at_ms,
                                                const char *detail,
                                                const char *machine),
                                     void *data);
static int pg_event_record (struct store *st, const struct store_event *ev);
static int64_t pg_customer_count (struct store *st);

/* ---- errors ------------------------------------------------------- */

static void __attribute__ ((format (printf, 2, 3)))
set_err (struct pg_store *st, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (st->err, sizeof st->err, fmt, ap);
  va_end (ap);
}

/* The first line of MSG (libpq's messages end in a newline, some go on
 * with a hint on the next lines). */
static int
first_line (const char *msg)
{
  size_t n = strcspn (msg, "\n");
  return n > INT_MAX ? INT_MAX : (int) n;
}

/* MSG without libpq's "FATAL:  " (the severity, which the server's
 * message fields leave out). */
static const char *
skip_severity (const char *msg)
{
  size_t n = strspn (msg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  return n > 0 && strncmp (msg + n, ":  ", 3) == 0 ? msg + n + 3 : msg;
}

/* Record a failure while doing WHAT: the server's message for RES (may be
 * NULL), else the connection's. */
static int
db_fail (struct pg_store *st, PGresult *res, const char *what)
{
  const char *m = res ? PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY)
                      : NULL;

  if (!m || !*m)
    m = PQerrorMessage (st->conn);
  if (!m || !*m)
    m = "unknown error";
  m = skip_severity (m);
  set_err (st, "%s: %s: %.*s", st->name, what, first_line (m), m);
  return -1;
}

static const char *
pg_error (const struct store *st_)
{
  const struct pg_store *st = (const struct pg_store *) st_;
  return st ? st->err : "no store";
}

/* A libpq keyword=value string without its password=... (a value may be
 * quoted, '...' with \' and \\ escapes).  Malloc'ed. */
static char *
redact_keywords (const char *s)
{
  struct strbuf b = STRBUF_INIT;

  for (;;) {
    const char *key, *v;
    size_t klen;

    s += strspn (s, " \t\n\r\f\v");
    if (!*s)
      break;
    key = s;
    klen = strcspn (s, "= \t\n\r\f\v");
    s += klen;
    s += strspn (s, " \t\n\r\f\v");
    if (*s == '=')
      s++;
    s += strspn (s, " \t\n\r\f\v");
    v = s;
    if (*s == '\'') {
      for (s++; *s && *s != '\''; s++)
        if (*s == '\\' && s[1])
          s++;
      if (*s)
        s++;
    }
    else
      s += strcspn (s, " \t\n\r\f\v");
    if (klen == 8 && strncmp (key, "password", 8) == 0)
      continue;
    if (b.len)
      strbuf_addc (&b, ' ');
    strbuf_add (&b, key, klen);
    strbuf_addc (&b, '=');
    strbuf_add (&b, v, (size_t) (s - v));
  }
  return b.s ? b.s : xstrdup ("");
}

/* URL without its password: the userinfo's ":password" and a
 * "password=" parameter; a keyword string without password=.
 * Malloc'ed. */
static char *
redact_url (const char *url)
{
  struct strbuf b = STRBUF_INIT;
  const char *p = strstr (url, "://"), *auth, *end, *at, *colon, *q;

  if (!p || strchr (url, ' ') || p != url + strcspn (url, ":"))
    return redact_keywords (url);
  auth = p + 3;
  end = auth + strcspn (auth, "/?#");
  strbuf_add (&b, url, (size_t) (auth - url));
  at = NULL;
  for (q = auth; q < end; q++)
    if (*q == '@')
      at = q;
  colon = at ? memchr (auth, ':', (size_t) (at - auth)) : NULL;
  if (colon) {
    strbuf_add (&b, auth, (size_t) (colon - auth));
    strbuf_add (&b, at, (size_t) (end - at));
  }
  else
    strbuf_add (&b, auth, (size_t) (end - auth));
  /* The path, then the parameters without password=. */
  q = end + strcspn (end, "?");
  strbuf_add (&b, end, (size_t) (q - end));
  if (*q == '?') {
    int first = 1;
    q++;
    while (*q) {
      size_t n = strcspn (q, "&");
      if (!(n >= 9 && strncmp (q, "password=", 9) == 0)) {
        strbuf_addc (&b, first ? '?' : '&');
        strbuf_add (&b, q, n);
        first = 0;
      }
      q += n;
      if (*q == '&')
        q++;
    }
  }
  return b.s ? b.s : xstrdup ("");
}

/* ---- statements --------------------------------------------------- */

/* Parameters, as text (NULL: SQL NULL).  Never copied: V points into
 * NUM. */
#define MAX_PARAMS 24
struct params {
  int n;
  const char *v[MAX_PARAMS];
  char num[MAX_PARAMS][24];
};

static void
p_text (struct params *p, const char *s)
{
  p->v[p->n++] = s;
}

static void
p_null (struct params *p)
{
  p->v[p->n++] = NULL;
}

static void
p_int (struct params *p, int64_t v)
{
  snprintf (p->num[p->n], sizeof p->num[0], "%lld", (long long) v);
  p->v[p->n] = p->num[p->n];
  p->n++;
}

/* An integer, or NULL for 0 (columns where 0 means unset). */
static void
p_int_or_null (struct params *p, int64_t v)
{
  if (v)
    p_int (p, v);
  else
    p_null (p);
}

/* The lease of a row written in STATE (two parameters: owner, expiry):
 * this worker's, until now + its lease, when STATE is "sending"; else
 * none. */
static void
p_lease (const struct pg_store *st, struct params *p, const char *state)
{
  if (st->worker && state && strcmp (state, "sending") == 0) {
    p_text (p, st->worker);
    p_int (p, now_seconds () + st->lease);
  }
  else {
    p_null (p);
    p_null (p);
  }
}

static void
quiet_notices (void *arg, const char *message)
{
  (void) arg;
  (void) message;
}


/* What every connection (and every reconnection) sets.  The outbox's
 * rule ("committed as sending before the plugin is called") needs a
 * commit to be durable when it returns: a server configured with
 * synchronous_commit = off could lose the last commits in a crash, so the
 * session turns it back on (as sqlite.c sets synchronous = FULL). */
static int
session_setup (struct pg_store *st)
{
  PGresult *res;
  int r = 0;

  PQsetNoticeProcessor (st->conn, quiet_notices, NULL);
  memset (st->prepared, 0, sizeof st->prepared);
  res = PQexec (st->conn, "SELECT current_setting ('synchronous_commit')");
  if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
    r = db_fail (st, res, "reading synchronous_commit");
  else if (strcmp (PQgetvalue (res, 0, 0), "off") == 0) {
    PQclear (res);
    res = PQexec (st->conn, "SET synchronous_commit = on");
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
      r = db_fail (st, res, "setting synchronous_commit");
  }
  PQclear (res);
  /* No wait for a lock lasts forever: a worker stopped (SIGSTOP, a frozen
   * machine whose connection the server has not yet dropped) in the
   * middle of a transaction holds its customers' caps locks.  After
   * STORE_LOCK_WAIT seconds the statement fails, the customer is not planned
   * (fail closed) and the run says so; the next run plans it. */
  if (r == 0) {
    res = PQexec (st->conn, "SET lock_timeout = '"
                  STORE_STR (STORE_LOCK_WAIT) "s'");
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
      r = db_fail (st, res, "setting lock_timeout");
    PQclear (res);
  }
  return r;
}

static int
retry_budget_ms (void)
{
  const char *e = getenv ("HERALD_PG_RETRY_MS");
  long v = e ? strtol (e, NULL, 10) : RETRY_MS;
  return v >= 0 && v <= RETRY_MS ? (int) v : RETRY_MS;
}

static void
sleep_ms (int ms)
{
  struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* The connection is lost, outside a transaction: reconnect at once, then
 * after 0.1 s, 0.2 s, 0.4 s... until *WAITED_MS (what this call already
 * waited) reaches the budget.  0 connected (the session set up again, no
 * statement prepared), -1 not. */
static int
reconnect (struct pg_store *st, int *waited_ms)
{
  int budget = retry_budget_ms (), delay = 100;

  for (;;) {
    PQreset (st->conn);
    if (PQstatus (st->conn) == CONNECTION_OK && session_setup (st) == 0)
      return 0;
    if (*waited_ms >= budget)
      return -1;
    if (delay > budget - *waited_ms)
      delay = budget - *waited_ms;
    sleep_ms (delay);
    *waited_ms += delay;
    delay *= 2;
  }
}

/* Whether the server ended the session with RES's error: a FATAL error
 * (an administrator's command, a shutdown) is the last message before it
 * closes the connection, which libpq may not have seen closed yet. */
static int
session_ended (const PGresult *res)
{
  const char *sev = PQresultErrorField (res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);

  return (sev && (strcmp (sev, "FATAL") == 0 || strcmp (sev, "PANIC") == 0))
         || (state && strncmp (state, "08", 2) == 0);
}

static int
prepare (struct pg_store *st, int id, const char *name)
{
  PGresult *res;

  if (st->prepared[id])
    return 0;
  res = PQprepare (st->conn, name, sql_text[id], 0, NULL);
  if (PQresultStatus (res) != PGRES_COMMAND_OK) {
    db_fail (st, res, "preparing a statement");
    PQclear (res);
    return -1;
  }
  PQclear (res);
  st->prepared[id] = 1;
  return 0;
}

/* Run statement ID with P's parameters (NULL: none).  Returns its result
 * (rows, or a command's: the caller PQclear's it), or NULL with the error
 * set, naming WHAT.  Outside a transaction a lost connection is
 * re-established and the statement run again (see reconnect): a statement
 * whose connection died after the server ran it may so run twice, which
 * every statement here survives (an insert then finds its row: 1 instead
 * of 0, "already recorded").  Inside a transaction the server has rolled
 * it back: the call fails. */
/* ---- deferred writes (libpq's pipeline mode) ---------------------- */

static PGresult *run (struct pg_store *st, int id, const struct params *p,
                      const char *what);

/* Read the results of the statements defer sent, and leave pipeline mode.
 * 0, or -1 with the first failure's message (naming what that statement
 * did): a failed statement fails the transaction, and the server skips
 * the rest of the pipeline. */
static int
flush (struct pg_store *st)
{
  PGresult *res;
  int i = 0, r = 0;

  if (!st->pipelined)
    return 0;
  if (PQpipelineSync (st->conn) != 1) {
    set_err (st, "%s: %s: %s", st->name, "sending a pipeline",
             PQerrorMessage (st->conn));
    r = -1;
  }
  /* Each statement's result and a NULL after it, then the sync's. */
  for (;;) {
    ExecStatusType s;

    if (!(res = PQgetResult (st->conn))) {
      if (PQstatus (st->conn) == CONNECTION_BAD)
        break;
      continue;
    }
    s = PQresultStatus (res);
    if (s == PGRES_PIPELINE_SYNC) {
      PQclear (res);
      break;
    }
    /* The first failure says why; the server skipped the rest
     * (PGRES_PIPELINE_ABORTED). */
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && r == 0) {
      db_fail (st, res, i < st->pending && st->pending_what[i]
                        ? st->pending_what[i] : "a deferred write");
      r = -1;
    }
    PQclear (res);
    i++;
  }
  if (PQstatus (st->conn) == CONNECTION_BAD && r == 0) {
    set_err (st, "%s: the connection to the server was lost with %d "
             "writes of a transaction in flight: %s", st->name,
             st->pending, PQerrorMessage (st->conn));
    r = -1;
  }
  PQexitPipelineMode (st->conn);
  for (i = 0; i < st->pending; i++) {
    free (st->pending_what[i]);
    st->pending_what[i] = NULL;
  }
  st->pending = 0;
  st->pipelined = 0;
  return r;
}

/* Inside a transaction, a write whose caller needs only to know that it
 * did not fail: sent without waiting for its result (pipeline mode), so
 * an import or a batch of results costs one round trip per
 * PIPELINE_MAX statements, not one each.  Its failure is reported by the
 * next statement, or at the latest by store_commit, which then fails (the
 * transaction is lost either way).  WHAT says what it did, for that
 * message.  Outside a transaction: run at once.  0 or -1. */
static int
defer (struct pg_store *st, int id, const struct params *p, char *what)
{
  char name[16];
  long fault;

  if (!st->in_tx) {
    PGresult *res = run (st, id, p, what);
    free (what);
    PQclear (res);
    return res ? 0 : -1;
  }
  if ((fault = store_fault_now ())) {
    set_err (st, "%s: injected fault (HERALD_STORE_FAULT, statement %ld)",
             st->name, fault);
    free (what);
    return -1;
  }
  snprintf (name, sizeof name, "h%d", id);
  if (!st->prepared[id]) {
    /* PQprepare waits for its answer: not in pipeline mode. */
    if ((st->pipelined && flush (st) < 0) || prepare (st, id, name) < 0) {
      free (what);
      return -1;
    }
  }
  if (!st->pipelined) {
    if (PQenterPipelineMode (st->conn) != 1) {
      set_err (st, "%s: %s: cannot enter pipeline mode: %s", st->name, what,
               PQerrorMessage (st->conn));
      free (what);
      return -1;
    }
    st->pipelined = 1;
  }
  if (PQsendQueryPrepared (st->conn, name, p ? p->n : 0, p ? p->v : NULL,
                           NULL, NULL, 0) != 1) {
    set_err (st, "%s: %s: %s", st->name, what, PQerrorMessage (st->conn));
    free (what);
    flush (st);
    return -1;
  }
  st->pending_what[st->pending++] = what;
  if (st->pending == PIPELINE_MAX)
    return flush (st);
  return 0;
}

static PGresult *
run (struct pg_store *st, int id, const struct params *p, const char *what)
{
  char name[16];
  long fault;
  int waited_ms = 0, lost = 0;

  /* Whatever waits in the pipeline goes first: its results, and its
   * errors, before this statement's.  A rollback goes whatever they say. */
  if (st->pipelined && flush (st) < 0 && id != Q_ROLLBACK)
    return NULL;
  st->err[0] = '\0';
  if (id != Q_ROLLBACK && (fault = store_fault_now ())) {
    set_err (st, "%s: injected fault (HERALD_STORE_FAULT, statement %ld)",
             st->name, fault);
    return NULL;
  }
  snprintf (name, sizeof name, "h%d", id);
  for (;;) {
    if (prepare (st, id, name) == 0) {
      PGresult *res = PQexecPrepared (st->conn, name, p ? p->n : 0,
                                      p ? p->v : NULL, NULL, NULL, 0);
      ExecStatusType s = PQresultStatus (res);

      if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        st->err[0] = '\0';     /* a retry's success */
        return res;
      }
      db_fail (st, res, what);
      lost = session_ended (res);
      PQclear (res);
    }
    if (!(lost || PQstatus (st->conn) == CONNECTION_BAD))
      return NULL;
    if (st->in_tx) {
      const char *m = skip_severity (PQerrorMessage (st->conn));
      set_err (st, "%s: %s: the connection to the server was lost in a "
               "transaction: %.*s", st->name, what, first_line (m), m);
      return NULL;
    }
    if (reconnect (st, &waited_ms) < 0) {
      const char *m = PQerrorMessage (st->conn);
      set_err (st, "%s: %s: the connection to the server was lost, and "
               "reconnecting failed for %.1f s: %.*s", st->name, what,
               waited_ms / 1000.0, first_line (m), m);
      return NULL;
    }
  }
}

/* Run a statement that returns no rows: the number of rows it changed,
 * or -1. */
static int64_t
run_changes (struct pg_store *st, int id, const struct params *p,
             const char *what)
{
  PGresult *res = run (st, id, p, what);
  int64_t n;

  if (!res)
    return -1;
  n = strtoll (PQcmdTuples (res), NULL, 10);
  PQclear (res);
  return n;
}

/* Column COL of row ROW: its text, or NULL for SQL NULL. */
static const char *
val (const PGresult *r, int row, int col)
{
  return PQgetisnull (r, row, col) ? NULL : PQgetvalue (r, row, col);
}

/* An integer column; NULL reads 0. */
static int64_t
ival (const PGresult *r, int row, int col)
{
  return PQgetisnull (r, row, col)
         ? 0 : strtoll (PQgetvalue (r, row, col), NULL, 10);
}

/* A boolean (t/f) or integer column as 0 or 1. */
static int
bval (const PGresult *r, int row, int col)
{
  const char *v = val (r, row, col);
  return v && (*v == 't' || (*v >= '1' && *v <= '9'));
}

static char *
sdup (const PGresult *r, int row, int col)
{
  const char *v = val (r, row, col);
  return v ? xstrdup (v) : NULL;
}

/* ---- transactions ------------------------------------------------- */

static int
pg_begin (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;
  PGresult *res;

  if (st->in_tx) {
    set_err (st, "%s: a transaction is already open", st->name);
    return -1;
  }
  if (!(res = run (st, Q_BEGIN, NULL, "starting a transaction")))
    return -1;
  PQclear (res);
  st->in_tx = 1;
  st->events_locked = 0;
  free (st->caps_locked);
  st->caps_locked = NULL;
  return 0;
}

/* Roll back whatever is open on the connection, keeping the error. */
static void
rollback_quietly (struct pg_store *st)
{
  PGTransactionStatusType ts = PQtransactionStatus (st->conn);

  if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
    char saved[sizeof st->err];
    memcpy (saved, st->err, sizeof saved);
    PQclear (run (st, Q_ROLLBACK, NULL, "rolling back"));
    memcpy (st->err, saved, sizeof saved);
  }
}

static int
pg_commit (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;
  PGresult *res;
  int r = -1;

  if (!st->in_tx) {
    set_err (st, "%s: commit without a transaction", st->name);
    return -1;
  }
  /* A statement failed in the transaction: the server would answer
   * COMMIT by rolling back, and say so only in the command tag. */
  if (PQtransactionStatus (st->conn) == PQTRANS_INERROR)
    set_err (st, "%s: committing: a statement of the transaction failed, "
             "so it was rolled back", st->name);
  else if ((res = run (st, Q_COMMIT, NULL, "committing"))) {
    if (strcmp (PQcmdStatus (res), "COMMIT") == 0)
      r = 0;
    else
      set_err (st, "%s: committing: the server rolled the transaction "
               "back (%s)", st->name, PQcmdStatus (res));
    PQclear (res);
  }
  /* A failed COMMIT (an injected fault, a lost connection) may leave the
   * transaction open; roll it back so the caller's view matches the
   * database. */
  if (r < 0)
    rollback_quietly (st);
  st->in_tx = 0;
  st->events_locked = 0;
  free (st->caps_locked);
  st->caps_locked = NULL;
  return r;
}

static int
pg_rollback (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;
  PGTransactionStatusType ts = PQtransactionStatus (st->conn);
  int r = 0;

  /* A lost connection (PQTRANS_UNKNOWN) took the transaction with it. */
  if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
    PGresult *res = run (st, Q_ROLLBACK, NULL, "rolling back");
    r = res ? 0 : -1;
    PQclear (res);
  }
  else
    st->err[0] = '\0';
  st->in_tx = 0;
  st->events_locked = 0;
  free (st->caps_locked);
  st->caps_locked = NULL;
  return r;
}

/* For a function that makes several changes: start a transaction unless
 * the caller has one.  Returns 1 when it started one (pass to tx_leave),
 * 0 when the caller's is used, -1 on error. */
static int
tx_enter (struct pg_store *st)
{
  if (st->in_tx)
    return 0;
  return pg_begin (&st->base) < 0 ? -1 : 1;
}

/* Finish what tx_enter started: commit when R >= 0, else roll back
 * (keeping the first error).  Returns R, or -1 when the commit fails. */
static int
tx_leave (struct pg_store *st, int owned, int r)
{
  if (owned != 1)
    return r;
  if (r < 0) {
    char saved[sizeof st->err];
    memcpy (saved, st->err, sizeof saved);
    pg_rollback (&st->base);
    memcpy (st->err, saved, sizeof saved);
    return r;
  }
  return pg_commit (&st->base) < 0 ? -1 : r;
}

/* ---- open / close / migrate --------------------------------------- */

/* Run SQL (no parameters, perhaps several statements) at open time: not
 * counted by the fault injection, as sqlite.c's opening is not. */
static int
exec_sql (struct pg_store *st, const char *sql, const char *what)
{
  PGresult *res = PQexec (st->conn, sql);
  ExecStatusType s = PQresultStatus (res);
  int r = 0;

  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    r = db_fail (st, res, what);
  PQclear (res);
  return r;
}

/* The schema version recorded in the meta table into *V_R; 0 when there
 * is no meta table (an empty database). */
static int
read_version (struct pg_store *st, int *v_r)
{
  PGresult *res;
  int r = 0;

  *v_r = 0;
  res = PQexec (st->conn, "SELECT to_regclass ('meta') IS NOT NULL");
  if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1) {
    r = db_fail (st, res, "reading the schema");
    PQclear (res);
    return r;
  }
  if (!bval (res, 0, 0)) {
    PQclear (res);
    return 0;
  }
  PQclear (res);
  res = PQexec (st->conn,
                "SELECT value FROM meta WHERE key = 'schema_version'");
  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    r = db_fail (st, res, "reading the schema version");
  else if (PQntuples (res) == 1 && val (res, 0, 0))
    *v_r = (int) strtol (PQgetvalue (res, 0, 0), NULL, 10);
  PQclear (res);
  return r;
}

static int
newer_schema (struct pg_store *st, int v)
{
  set_err (st, "%s: the store is at schema version %d, newer than this "
           "herald's (%d): upgrade herald", st->name, v,
           STORE_SCHEMA_VERSION);
  return -1;
}

/* Refuse a database that is not at this herald's version. */
static int
check_version (struct pg_store *st)
{
  int v;

  if (read_version (st, &v) < 0)
    return -1;
  if (v > STORE_SCHEMA_VERSION)
    return newer_schema (st, v);
  if (v < STORE_SCHEMA_VERSION) {
    set_err (st, "%s: the store is at schema version %d, this herald needs "
             "%d: run 'herald store migrate'", st->name, v,
             STORE_SCHEMA_VERSION);
    return -1;
  }
  return 0;
}

/* Bring the database to the last migration's version, in one
 * transaction.  The advisory lock serialises herald processes migrating
 * at once: the second finds the work done when it gets the lock. */
static int
migrate (struct pg_store *st)
{
  int v, i, r = -1;

  if (exec_sql (st, "BEGIN ISOLATION LEVEL READ COMMITTED",
                "starting the schema migration") < 0)
    return -1;
  /* Another machine's migration may take longer than lock_timeout:
   * this one waits for it. */
  if (exec_sql (st, "SET LOCAL lock_timeout = 0",
                "waiting for another migration") < 0
      || exec_sql (st, "SELECT pg_advisory_xact_lock (" MIGRATION_LOCK ")",
                   "locking the schema to migrate it") < 0
      || exec_sql (st, "CREATE TABLE IF NOT EXISTS meta ("
                   "key TEXT COLLATE \"C\" PRIMARY KEY, value TEXT)",
                   "creating the meta table") < 0
      || read_version (st, &v) < 0)
    goto out;
  if (v > pg_migrations[N_PG_MIGRATIONS - 1].version) {
    newer_schema (st, v);
    goto out;
  }
  if (v != 0 && v < pg_migrations[0].version) {
    set_err (st, "%s: the store is at schema version %d, which no "
             "PostgreSQL store ever had", st->name, v);
    goto out;
  }
  for (i = 0; i < N_PG_MIGRATIONS; i++) {
    char what[64], *sql;
    int rc;

    if (pg_migrations[i].version <= v)
      continue;
    snprintf (what, sizeof what, "migrating from schema %d to %d", v,
              pg_migrations[i].version);
    if (exec_sql (st, pg_migrations[i].sql, what) < 0)
      goto out;
    v = pg_migrations[i].version;
    sql = xasprintf ("INSERT INTO meta (key, value) VALUES "
                     "('schema_version', '%d') ON CONFLICT (key) DO UPDATE "
                     "SET value = excluded.value", v);
    rc = exec_sql (st, sql, "recording the schema version");
    free (sql);
    if (rc < 0)
      goto out;
  }
  r = exec_sql (st, "COMMIT", "committing the schema");
out:
  if (r < 0 && PQtransactionStatus (st->conn) != PQTRANS_IDLE) {
    char saved[sizeof st->err];
    memcpy (saved, st->err, sizeof saved);
    PQclear (PQexec (st->conn, "ROLLBACK"));
    memcpy (st->err, saved, sizeof saved);
  }
  return r;
}

struct store *
pg_store_open (const char *url, int do_migrate, char *err, size_t errlen)
{
  static const char *const keys[] = {
    "dbname", "client_encoding", "fallback_application_name", NULL
  };
  const char *values[] = { url, "UTF8", "herald", NULL };
  struct pg_store *st = xcalloc (1, sizeof *st);

  /* "pg:" and a keyword string: the configuration's [store] url that is
   * not a URI.  libpq expands either from dbname. */
  if (strncmp (url, "pg:", 3) == 0)
    values[0] = url += 3;
  st->base.ops = &pg_ops;
  st->name = redact_url (url);
  /* expand_dbname: the URL is the whole connection string; the keys after
   * it add what it does not say. */
  st->conn = PQconnectdbParams (keys, values, 1);
  if (!st->conn) {
    snprintf (err, errlen, "%s: cannot connect to the store: out of memory",
              st->name);
    goto fail;
  }
  if (PQstatus (st->conn) != CONNECTION_OK) {
    const char *m = PQerrorMessage (st->conn);
    snprintf (err, errlen, "%s: cannot connect to the store: %.*s", st->name,
              first_line (m), m);
    goto fail;
  }
  if (session_setup (st) < 0
      || (do_migrate ? migrate (st) : check_version (st)) < 0) {
    snprintf (err, errlen, "%s", st->err);
    goto fail;
  }
  st->err[0] = '\0';
  return &st->base;

fail:
  pg_close (&st->base);
  return NULL;
}

static void
pg_close (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;

  if (!st)
    return;
  /* Closing the connection rolls an open transaction back. */
  if (st->conn)
    PQfinish (st->conn);
  free (st->name);
  free (st->worker);
  free (st->chunks_seen);
  free (st->caps_locked);
  free (st);
}

static const char *
pg_name (const struct store *st_)
{
  return ((const struct pg_store *) st_)->name;
}

static int
pg_schema_version (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;
  int v;

  st->err[0] = '\0';
  return read_version (st, &v) < 0 ? -1 : v;
}

/* ---- customers ---------------------------------------------------- */


static int
pg_customer_put_text (struct store *st_, const char *id, json_t *record,
                      const char *text)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  char *dumped = NULL;
  int r;

  if (!json_is_object (record)) {
    set_err (st, "%s: customer '%s': record is not an object", st->name, id);
    return -1;
  }
  if (!text && !(text = dumped = json_dumps (record, JSON_COMPACT))) {
    set_err (st, "%s: customer '%s': cannot encode the record", st->name, id);
    return -1;
  }
  p_text (&p, id);
  p_text (&p, store_jstr (record, "email"));
  p_text (&p, store_jstr (record, "phone"));
  p_text (&p, store_jstr (record, "timezone"));
  p_text (&p, store_jstr (record, "locale"));
  p_text (&p, store_jstr (record, "webhook"));
  p_text (&p, text);
  p_int (&p, now_seconds ());
  r = defer (st, Q_CUST_PUT, &p, xasprintf ("writing customer '%s'", id));
  free (dumped);
  return r;
}

static int
pg_customer_put (struct store *st, const char *id, json_t *record)
{
  return pg_customer_put_text (st, id, record, NULL);
}

/* Dropping and rebuilding indexes is SQLite's remedy for random b-tree
 * insertions; PostgreSQL takes a million customers in one transaction
 * without it, and dropping indexes would lock the table against every
 * other worker.  Never worth it here. */
static int
pg_bulk_customers (struct store *st_, int64_t expected)
{
  struct pg_store *st = (struct pg_store *) st_;

  (void) expected;
  if (!st->in_tx) {
    set_err (st, "%s: a bulk import needs a transaction", st->name);
    return -1;
  }
  st->err[0] = '\0';
  return 0;
}

/* Overlay ID's explicit consent changes on RECORD's "consent" (which
 * becomes an object when absent): the effective consent. */
static int
merge_consent (struct pg_store *st, const char *id, json_t *record)
{
  struct params p = { 0 };
  PGresult *res;
  json_t *c;
  int i;

  p_text (&p, id);
  if (!(res = run (st, Q_CONSENT_ALL, &p, "reading consent")))
    return -1;
  c = json_object_get (record, "consent");
  if (!json_is_object (c)) {
    c = json_object ();
    json_object_set_new (record, "consent", c);
  }
  for (i = 0; i < PQntuples (res); i++)
    json_object_set_new (c, PQgetvalue (res, i, 0),
                         json_boolean (bval (res, i, 1)));
  PQclear (res);
  return 0;
}

static json_t *
load_record (struct pg_store *st, const char *id, const char *text)
{
  const char *why;
  size_t off;
  json_t *rec = jsoncheck_load (text, strlen (text), 0, &why, &off);

  if (!json_is_object (rec)) {
    json_decref (rec);
    set_err (st, "%s: customer '%s': stored record is not a JSON object",
             st->name, id);
    return NULL;
  }
  if (merge_consent (st, id, rec) < 0) {
    json_decref (rec);
    return NULL;
  }
  return rec;
}

static json_t *
pg_customer_get (struct store *st_, const char *id)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  json_t *rec = NULL;

  p_text (&p, id);
  if (!(res = run (st, Q_CUST_GET, &p, "reading a customer")))
    return NULL;
  if (PQntuples (res) > 0) {
    const char *text = val (res, 0, 0);
    rec = load_record (st, id, text ? text : "");
  }
  PQclear (res);
  return rec;
}

/* 1 when the statement ID with one text parameter A (and B, when not
 * NULL) returns a row, 0 when none, -1 error. */
static int
exists (struct pg_store *st, int id, const char *a, const char *b,
        const char *what)
{
  struct params p = { 0 };
  PGresult *res;
  int r;

  p_text (&p, a);
  if (b)
    p_text (&p, b);
  if (!(res = run (st, id, &p, what)))
    return -1;
  r = PQntuples (res) > 0;
  PQclear (res);
  return r;
}

static int
pg_customer_exists (struct store *st_, const char *id)
{
  struct pg_store *st = (struct pg_store *) st_;
  return exists (st, Q_CUST_EXISTS, id, NULL, "looking up a customer");
}

static int
pg_customer_find (struct store *st_, const char *channel,
                  const char *address,
                  int (*cb) (void *data, const char *id), void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int id, i, n = 0;

  if (strcmp (channel, "email") == 0)
    id = Q_FIND_EMAIL;
  else if (strcmp (channel, "sms") == 0)
    id = Q_FIND_PHONE;
  else if (strcmp (channel, "webhook") == 0)
    id = Q_FIND_WEBHOOK;
  else {
    set_err (st, "%s: customers cannot be looked up by a %s address",
             st->name, channel);
    return -1;
  }
  p_text (&p, address);
  /* A result holds every row before the first callback (an SMS STOP
   * writes consent from it). */
  if (!(res = run (st, id, &p, "looking up customers by address")))
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    n++;
    if (cb (data, PQgetvalue (res, i, 0)))
      break;
  }
  PQclear (res);
  return n;
}

static int64_t
pg_customer_count (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;
  PGresult *res = run (st, Q_CUST_COUNT, NULL, "counting customers");
  int64_t n;

  if (!res)
    return -1;
  n = ival (res, 0, 0);
  PQclear (res);
  return n;
}

/* store_audience_next, of every customer (CHUNK -1) or of chunk CHUNK
 * (store_audience_chunk). */
static int
audience_page (struct pg_store *st, const char *campaign, int step,
               int chunk, const char *after_id, int limit,
               int (*cb) (void *data, json_t *customer), void *data)
{
  struct params p = { 0 };
  PGresult *res;
  int i, n = 0;

  if (limit <= 0)
    limit = 1000;
  p_text (&p, after_id ? after_id : "");
  p_text (&p, campaign);
  p_int (&p, step);
  p_int (&p, limit);
  if (chunk >= 0)
    p_int (&p, chunk);
  /* The page is in memory first: the callback will write outbox rows. */
  if (!(res = run (st, chunk >= 0 ? Q_AUDIENCE_CHUNK : Q_AUDIENCE, &p,
                   "reading the audience")))
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    const char *text = val (res, i, 1);
    json_t *rec = load_record (st, PQgetvalue (res, i, 0), text ? text : "");
    int stop;

    if (!rec) {
      n = -1;
      break;
    }
    n++;
    stop = cb (data, rec);
    json_decref (rec);
    if (stop)
      break;
  }
  PQclear (res);
  return n;
}

static int
pg_audience_next (struct store *st_, const char *campaign, int step,
                  const char *after_id, int limit,
                  int (*cb) (void *data, json_t *customer), void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  return audience_page (st, campaign, step, -1, after_id, limit, cb, data);
}

/* ---- consent and suppressions ------------------------------------- */

static int
pg_consent_set (struct store *st_, const char *customer, const char *channel,
                int granted, int64_t at, const char *source)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, customer);
  p_text (&p, channel);
  p_int (&p, granted ? 1 : 0);
  p_int (&p, at);
  p_text (&p, source);
  return run_changes (st, Q_CONSENT_SET, &p, "recording a consent change")
         < 0 ? -1 : 0;
}

static int
pg_consent_get (struct store *st_, const char *customer, const char *channel)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  json_t *rec, *v;
  int r = -1;

  p_text (&p, customer);
  p_text (&p, channel);
  if (!(res = run (st, Q_CONSENT_GET, &p, "reading consent")))
    return -1;
  if (PQntuples (res) > 0) {
    r = bval (res, 0, 0);
    PQclear (res);
    return r;
  }
  PQclear (res);
  /* No explicit change: what the imported record says. */
  if (!(rec = pg_customer_get (&st->base, customer)))
    return -1;
  v = json_object_get (json_object_get (rec, "consent"), channel);
  if (json_is_boolean (v))
    r = json_is_true (v);
  json_decref (rec);
  return r;
}

static int
pg_suppress (struct store *st_, const char *channel, const char *address,
             const char *reason)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, channel);
  p_text (&p, address);
  p_text (&p, reason);
  p_int (&p, now_seconds ());
  return run_changes (st, Q_SUPPRESS, &p, "suppressing an address") < 0
         ? -1 : 0;
}

static int
pg_is_suppressed (struct store *st_, const char *channel,
                  const char *address)
{
  struct pg_store *st = (struct pg_store *) st_;
  return exists (st, Q_IS_SUPPRESSED, channel, address,
                 "reading suppressions");
}

/* ---- events ------------------------------------------------------- */


/* A bounce or complaint: suppress the address the message went to, else
 * the one the event names, else the customer's current address(es) on
 * CHANNEL.  Nothing to suppress is not an error. */
static int
suppress_for_event (struct pg_store *st, const char *customer,
                    const char *channel, const char *type,
                    const char *message_key, const char *detail_json)
{
  struct params p = { 0 };
  PGresult *res;
  json_t *j = NULL, *a;
  int r = 0;

  if (!channel)
    return 0;
  if (message_key) {
    char *text = NULL;

    p_text (&p, message_key);
    if (!(res = run (st, Q_OB_ADDRESS, &p, "reading a message's address")))
      return -1;
    if (PQntuples (res) > 0)
      text = sdup (res, 0, 0);
    PQclear (res);
    if (text && (j = json_loads (text, JSON_DECODE_ANY, NULL))
        && (json_is_string (j) || json_array_size (j) > 0)) {
      free (text);
      r = store_suppress_json (&st->base, channel, j, type);
      goto out;
    }
    free (text);
    json_decref (j);
    j = NULL;
  }
  if (detail_json && (j = json_loads (detail_json, 0, NULL))
      && (a = json_object_get (j, "address"))) {
    r = store_suppress_json (&st->base, channel, a, type);
    goto out;
  }
  json_decref (j);
  j = NULL;

  p.n = 0;
  p_text (&p, customer);
  if (!(res = run (st, Q_CUST_ADDR, &p, "reading a customer's address")))
    return -1;
  if (PQntuples (res) == 0) {
    PQclear (res);
    return 0;
  }
  if (strcmp (channel, "email") == 0 && val (res, 0, 0))
    j = json_string (val (res, 0, 0));
  else if (strcmp (channel, "sms") == 0 && val (res, 0, 1))
    j = json_string (val (res, 0, 1));
  else if (strcmp (channel, "webhook") == 0 && val (res, 0, 2))
    j = json_string (val (res, 0, 2));
  else if (strcmp (channel, "push") == 0 && val (res, 0, 3)) {
    json_t *rec = json_loads (val (res, 0, 3), 0, NULL);
    j = json_incref (json_object_get (rec, "push"));
    json_decref (rec);
  }
  PQclear (res);
  if (j && !(json_is_string (j) && !*json_string_value (j)))
    r = store_suppress_json (&st->base, channel, j, type);
out:
  json_decref (j);
  return r;
}

static int
pg_event_put (struct store *st, const char *customer, const char *channel,
              const char *type, int64_t at, const char *campaign,
              const char *message_key, const char *detail_json)
{
  struct store_event ev;

  memset (&ev, 0, sizeof ev);
  ev.customer = customer;
  ev.channel = channel;
  ev.type = type;
  ev.at = at;
  ev.campaign = campaign;
  ev.message_key = message_key;
  ev.detail_json = detail_json;
  return pg_event_record (st, &ev);
}

static int one_int (struct pg_store *st, int id, const struct params *p,
                    int64_t *v_r, const char *what);

static int
pg_event_record (struct store *st_, const struct store_event *ev)
{
  struct pg_store *st = (struct pg_store *) st_;
  const char *customer = ev->customer, *channel = ev->channel;
  const char *type = ev->type;
  struct params p = { 0 };
  int64_t n;
  int owned, r = -1;

  if ((owned = tx_enter (st)) < 0)
    return -1;
  if (!st->events_locked) {
    if (one_int (st, Q_EVENTS_LOCK, &p, &n, "waiting for the events' turn")
        < 0)
      goto out;
    st->events_locked = 1;
  }
  p_text (&p, customer);
  p_text (&p, channel);
  p_text (&p, type);
  p_int (&p, ev->at);
  p_text (&p, ev->campaign);
  p_text (&p, ev->message_key);
  p_text (&p, ev->detail_json);
  p_int_or_null (&p, ev->at_ms);
  p_text (&p, ev->machine);
  if ((n = run_changes (st, Q_EVENT_PUT, &p, "recording an event")) < 0)
    goto out;
  if (n == 0) {
    r = 1;                      /* already recorded, effects applied */
    goto out;
  }
  /* An unsubscribe is an explicit withdrawal of consent for that channel:
   * it wins over the imported consent (and over older explicit grants). */
  if (strcmp (type, "unsubscribed") == 0 && channel
      && pg_consent_set (&st->base, customer, channel, 0, ev->at,
                         "unsubscribed event") < 0)
    goto out;
  /* A hard bounce or a spam complaint: the address (not the customer) is
   * suppressed on that channel. */
  if ((strcmp (type, "bounced") == 0 || strcmp (type, "complained") == 0)
      && suppress_for_event (st, customer, channel, type, ev->message_key,
                             ev->detail_json) < 0)
    goto out;
  r = 0;
out:
  return tx_leave (st, owned, r);
}

static int
pg_message_events (struct store *st, const char *key, const char *type,
                   int64_t from_ms, int64_t to_ms,
                   int (*cb) (void *data, int64_t id, int64_t at_ms,
                              const char *detail, const char *machine),
                   void *data)
{
  return pg_message_events_except (st, key, type, NULL, from_ms, to_ms, cb,
                                   data);
}

static int
pg_message_events_except (struct store *st_, const char *key,
                          const char *type, const char *except_detail,
                          int64_t from_ms, int64_t to_ms,
                          int (*cb) (void *data, int64_t id, int64_t at_ms,
                                     const char *detail, const char *machine),
                          void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int i, n = 0;

  p_text (&p, key);
  p_text (&p, type);
  p_int (&p, from_ms);
  p_int (&p, to_ms);
  p_text (&p, except_detail);
  /* All read first: the callback may flag them (store_event_set_machine). */
  if (!(res = run (st, Q_MSG_EVENTS, &p, "reading a message's events")))
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    n++;
    if (cb (data, ival (res, i, 0), ival (res, i, 1), val (res, i, 2),
            val (res, i, 3)))
      break;
  }
  PQclear (res);
  return n;
}

static int
pg_event_set_machine (struct store *st_, int64_t id, const char *reason)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  p_int (&p, id);
  p_text (&p, reason);
  if ((n = run_changes (st, Q_EVENT_MACHINE, &p,
                        "flagging an event as a machine's")) < 0)
    return -1;
  return n == 0 ? 1 : 0;
}

static int
pg_customer_events (struct store *st_, const char *customer, int64_t since,
                    int (*cb) (void *data, const char *channel,
                               const char *type, int64_t at),
                    void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int i, n = 0;

  p_text (&p, customer);
  p_int (&p, since);
  if (!(res = run (st, Q_CUST_EVENTS, &p, "reading a customer's events")))
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    n++;
    if (cb (data, val (res, i, 0), val (res, i, 1), ival (res, i, 2)))
      break;
  }
  PQclear (res);
  return n;
}


static int
pg_channel_stats (struct store *st_, int64_t since, json_t **stats_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  json_t *stats;
  int i;

  *stats_r = NULL;
  p_int (&p, since);
  if (!(res = run (st, Q_STATS_SENT, &p, "counting sent messages")))
    return -1;
  stats = json_object ();
  for (i = 0; i < PQntuples (res); i++)
    json_object_set_new (store_stats_channel (stats, PQgetvalue (res, i, 0)),
                         "sent", json_integer (ival (res, i, 1)));
  PQclear (res);
  if (!(res = run (st, Q_STATS_EVENTS, &p, "counting events"))) {
    json_decref (stats);
    return -1;
  }
  for (i = 0; i < PQntuples (res); i++)
    json_object_set_new (store_stats_channel (stats, PQgetvalue (res, i, 0)),
                         PQgetvalue (res, i, 1),
                         json_integer (ival (res, i, 2)));
  PQclear (res);
  *stats_r = stats;
  return 0;
}

/* ---- outbox ------------------------------------------------------- */

static int
pg_outbox_insert (struct store *st_, const struct outbox_row *row)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t now = now_seconds (), n;

  if (!row->key || !row->campaign || !row->customer
      || !store_state_valid (row->state)) {
    set_err (st, "%s: outbox row '%s': missing key, campaign or customer, "
             "or unknown state '%s'", st->name, row->key ? row->key : "",
             row->state ? row->state : "");
    return -1;
  }
  p_text (&p, row->key);
  p_text (&p, row->campaign);
  p_int (&p, row->step);
  p_text (&p, row->customer);
  p_text (&p, row->channel);
  p_text (&p, row->instance);
  p_text (&p, row->variant);
  p_text (&p, row->state);
  p_text (&p, row->reason);
  p_int (&p, row->attempts);
  p_int (&p, row->next_at);
  p_int (&p, row->created ? row->created : now);
  p_int (&p, now);
  if (strcmp (row->state, "sent") == 0)
    p_int (&p, row->sent_at ? row->sent_at : now);
  else
    p_null (&p);
  p_text (&p, row->provider_id);
  p_text (&p, row->error);
  p_text (&p, row->detail);
  p_text (&p, row->address);
  p_text (&p, row->parts);
  p_text (&p, row->trace);
  p_int_or_null (&p, row->journey);
  p_lease (st, &p, row->state);
  if ((n = run_changes (st, Q_OB_INSERT, &p, "inserting an outbox row")) < 0)
    return -1;
  /* ON CONFLICT DO NOTHING: no change means the key was already there. */
  return n == 0 ? 1 : 0;
}

static int
outbox_update (struct pg_store *st, int id, const char *key,
               const char *state, const char *reason, int attempts,
               int64_t next_at, const char *provider_id, const char *error,
               const char *detail)
{
  struct params p = { 0 };
  int64_t n;

  if (!store_state_valid (state)) {
    set_err (st, "%s: outbox row '%s': unknown state '%s'", st->name, key,
             state ? state : "");
    return -1;
  }
  p_text (&p, key);
  p_text (&p, state);
  p_int (&p, attempts);
  p_int (&p, next_at);
  p_text (&p, provider_id);
  p_text (&p, error);
  p_text (&p, detail);
  p_int (&p, now_seconds ());
  if (id == Q_OB_UPDATE_REASON)
    p_text (&p, reason);
  p_lease (st, &p, state);
  /* A batch's results, in its transaction: deferred (the caller needs no
   * "no such row" there). */
  if (st->in_tx)
    return defer (st, id, &p, xasprintf ("updating outbox row '%s'", key));
  if ((n = run_changes (st, id, &p, "updating an outbox row")) < 0)
    return -1;
  return n == 0 ? 1 : 0;
}

static int
pg_outbox_update (struct store *st_, const char *key, const char *state,
                  int attempts, int64_t next_at, const char *provider_id,
                  const char *error, const char *detail)
{
  struct pg_store *st = (struct pg_store *) st_;
  return outbox_update (st, Q_OB_UPDATE, key, state, NULL, attempts, next_at,
                        provider_id, error, detail);
}

static int
pg_outbox_update_reason (struct store *st_, const char *key,
                         const char *state, const char *reason, int attempts,
                         int64_t next_at, const char *provider_id,
                         const char *error, const char *detail)
{
  struct pg_store *st = (struct pg_store *) st_;
  return outbox_update (st, Q_OB_UPDATE_REASON, key, state, reason, attempts,
                        next_at, provider_id, error, detail);
}

static int
pg_outbox_reroute (struct store *st_, const struct outbox_row *row)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  if (!row->key || !store_state_valid (row->state)) {
    set_err (st, "%s: outbox row '%s': missing key or unknown state '%s'",
             st->name, row->key ? row->key : "",
             row->state ? row->state : "");
    return -1;
  }
  p_text (&p, row->key);
  p_text (&p, row->channel);
  p_text (&p, row->instance);
  p_text (&p, row->variant);
  p_text (&p, row->state);
  p_text (&p, row->reason);
  p_int (&p, row->next_at);
  p_text (&p, row->address);
  p_text (&p, row->parts);
  p_text (&p, row->trace);
  p_int (&p, now_seconds ());
  p_lease (st, &p, row->state);
  if ((n = run_changes (st, Q_OB_REROUTE, &p, "re-routing an outbox row"))
      < 0)
    return -1;
  return n == 0 ? 1 : 0;
}

/* Row I of a result selecting OUTBOX_COLS; every string owned (freed by
 * store_row_free). */
static struct outbox_row *
row_from (const PGresult *res, int i)
{
  struct outbox_row *r = xcalloc (1, sizeof *r);
  r->key = sdup (res, i, 0);
  r->campaign = sdup (res, i, 1);
  r->step = (int) ival (res, i, 2);
  r->customer = sdup (res, i, 3);
  r->channel = sdup (res, i, 4);
  r->instance = sdup (res, i, 5);
  r->variant = sdup (res, i, 6);
  r->state = sdup (res, i, 7);
  r->reason = sdup (res, i, 8);
  r->attempts = (int) ival (res, i, 9);
  r->next_at = ival (res, i, 10);
  r->created = ival (res, i, 11);
  r->updated = ival (res, i, 12);
  r->sent_at = ival (res, i, 13);
  r->provider_id = sdup (res, i, 14);
  r->error = sdup (res, i, 15);
  r->detail = sdup (res, i, 16);
  r->address = sdup (res, i, 17);
  r->parts = sdup (res, i, 18);
  r->trace = sdup (res, i, 19);
  r->journey = ival (res, i, 20);
  return r;
}

/* The first row of statement ID (one or two text parameters) into
 * *ROW_R, or NULL when none.  0 or -1. */
static int
outbox_one (struct pg_store *st, int id, const char *a, const char *b,
            int nparams, struct outbox_row **row_r, const char *what)
{
  struct params p = { 0 };
  PGresult *res;

  *row_r = NULL;
  p_text (&p, a);
  if (nparams > 1)
    p_text (&p, b);
  if (!(res = run (st, id, &p, what)))
    return -1;
  if (PQntuples (res) > 0)
    *row_r = row_from (res, 0);
  PQclear (res);
  return 0;
}

static int
pg_outbox_get (struct store *st_, const char *key, struct outbox_row **row_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  return outbox_one (st, Q_OB_GET, key, NULL, 1, row_r,
                     "reading an outbox row");
}

static int
pg_outbox_by_provider (struct store *st_, const char *channel,
                       const char *provider_id, struct outbox_row **row_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  return outbox_one (st, Q_OB_BY_PROVIDER, provider_id, channel, 2, row_r,
                     "finding a message by its provider id");
}

/* Statement ID's rows (selecting OUTBOX_COLS), all in memory before the
 * first callback (which updates these rows), handed to CB until it
 * returns non-zero.  The count handed, or -1. */
static int
outbox_page (struct pg_store *st, int id, const struct params *p,
             int (*cb) (void *data, const struct outbox_row *row),
             void *data)
{
  PGresult *res = run (st, id, p, "reading outbox rows");
  int i, n = 0;

  if (!res)
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    struct outbox_row *r = row_from (res, i);
    int stop = cb (data, r);

    store_row_free (r);
    n++;
    if (stop)
      break;
  }
  PQclear (res);
  return n;
}

static int
pg_outbox_reroutes (struct store *st_, const char *campaign, int limit,
                    int (*cb) (void *data, const struct outbox_row *row),
                    void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  if (limit <= 0)
    limit = 1000;
  p_text (&p, campaign);
  p_int (&p, limit);
  return outbox_page (st, Q_OB_REROUTES, &p, cb, data);
}

static int
pg_outbox_reroute_none (struct store *st_, const char *key)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  p_text (&p, key);
  p_int (&p, now_seconds ());
  if ((n = run_changes (st, Q_OB_REROUTE_NONE, &p,
                        "failing a message with no channel left")) < 0)
    return -1;
  return n == 0 ? 1 : 0;
}

static int
pg_outbox_due (struct store *st_, const char *campaign, int64_t now,
               int limit,
               int (*cb) (void *data, const struct outbox_row *row),
               void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  if (limit <= 0)
    limit = 1000;
  p_text (&p, campaign);
  p_int (&p, now);
  p_int (&p, limit);
  return outbox_page (st, Q_OB_DUE, &p, cb, data);
}

static int
pg_outbox_recover (struct store *st_, const char *campaign,
                   int at_least_once, int max_attempts, int *n_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  if (n_r)
    *n_r = 0;
  p_text (&p, campaign);
  p_int (&p, now_seconds ());
  if (at_least_once)
    p_int (&p, max_attempts > 0 ? max_attempts : INT_MAX);
  /* At most once fails what a plugin may have had, never what it did
   * not: rows only claimed go back to pending first. */
  else if (run_changes (st, Q_OB_RECOVER_CLAIMED, &p,
                        "recovering rows left in flight") < 0)
    return -1;
  n = run_changes (st, at_least_once ? Q_OB_RECOVER_PENDING
                                     : Q_OB_RECOVER_FAILED, &p,
                   "recovering rows left in flight");
  if (n < 0)
    return -1;
  if (n_r)
    *n_r = (int) n;
  return 0;
}

/* The one value of statement ID (parameters P) into *V_R: 1 when it is
 * not NULL, 0 when NULL or no row (*V_R = 0), -1 error. */
static int
one_int (struct pg_store *st, int id, const struct params *p, int64_t *v_r,
         const char *what)
{
  PGresult *res = run (st, id, p, what);
  int r = 0;

  *v_r = 0;
  if (!res)
    return -1;
  if (PQntuples (res) > 0 && !PQgetisnull (res, 0, 0)) {
    *v_r = ival (res, 0, 0);
    r = 1;
  }
  PQclear (res);
  return r;
}

static int
pg_outbox_next_due (struct store *st_, const char *campaign, int64_t *next_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, campaign);
  return one_int (st, Q_OB_NEXT_DUE, &p, next_r,
                  "reading the next due time");
}

static int
pg_sent_count (struct store *st_, const char *customer, const char *channel,
               int64_t since)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  p_text (&p, customer);
  /* Once a customer and transaction: planning asks for each capped
   * channel and for the total in turn. */
  if (st->in_tx
      && !(st->caps_locked && strcmp (st->caps_locked, customer) == 0)) {
    if (one_int (st, Q_CUST_LOCK, &p, &n, "locking a customer's caps") < 0)
      return -1;
    free (st->caps_locked);
    st->caps_locked = xstrdup (customer);
  }
  p_int (&p, since);
  p_text (&p, channel);
  if (one_int (st, Q_SENT_COUNT, &p, &n, "counting sent messages") < 0)
    return -1;
  return (int) n;
}

static long
pg_instance_volume (struct store *st_, const char *instance, int64_t since)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  p_text (&p, instance);
  p_int (&p, since);
  if (one_int (st, Q_INSTANCE_VOLUME, &p, &n,
               "counting a channel's messages of the day") < 0)
    return -1;
  return (long) n;
}

static json_t *
col_json_str (const PGresult *res, int i, int col)
{
  const char *t = val (res, i, col);
  return t ? json_string (t) : json_null ();
}

/* The column as it is: json_string would drop a value that is not UTF-8
 * (which TEXT does not hold; kept as sqlite.c for the same output). */
static json_t *
col_json_raw (const PGresult *res, int i, int col)
{
  const char *t = val (res, i, col);
  return t ? json_string_nocheck (t) : json_null ();
}

static int
pg_campaign_counts (struct store *st_, const char *campaign, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  json_t *o, *rows, *bystate;
  json_int_t total = 0;
  int i;

  *r = NULL;
  p_text (&p, campaign);
  if (!(res = run (st, Q_CAMP_COUNTS, &p,
                   "counting a campaign's messages")))
    return -1;
  o = json_object ();
  rows = json_array ();
  bystate = json_object ();
  for (i = 0; i < PQntuples (res); i++) {
    json_t *row = json_object ();
    const char *state = PQgetvalue (res, i, 2);
    json_int_t c = ival (res, i, 4);
    json_int_t prev = json_integer_value (json_object_get (bystate, state));

    json_object_set_new (row, "channel", col_json_str (res, i, 0));
    json_object_set_new (row, "variant", col_json_str (res, i, 1));
    json_object_set_new (row, "state", json_string (state));
    json_object_set_new (row, "reason", col_json_str (res, i, 3));
    json_object_set_new (row, "count", json_integer (c));
    json_array_append_new (rows, row);
    json_object_set_new (bystate, state, json_integer (prev + c));
    total += c;
  }
  PQclear (res);
  json_object_set_new (o, "total", json_integer (total));
  json_object_set_new (o, "states", bystate);
  json_object_set_new (o, "rows", rows);
  *r = o;
  return 0;
}

/* Run the campaign query ID (one parameter: CAMPAIGN; NULL for a query
 * that takes none) and turn its rows into a JSON list of objects: column
 * i is named NAMES[i] and typed by TYPES[i] ('s' text or null, 'r' the
 * same with the bytes as they are, 'i' integer, 'b' boolean). */
static int
campaign_rows (struct pg_store *st, int id, const char *campaign,
               const char *const *names, const char *types, const char *what,
               json_t **r)
{
  struct params p = { 0 };
  PGresult *res;
  json_t *a;
  int i, c;

  *r = NULL;
  if (campaign)
    p_text (&p, campaign);
  if (!(res = run (st, id, &p, what)))
    return -1;
  a = json_array ();
  for (i = 0; i < PQntuples (res); i++) {
    json_t *row = json_object ();
    for (c = 0; names[c]; c++)
      json_object_set_new (row, names[c],
                           types[c] == 's' ? col_json_str (res, i, c)
                           : types[c] == 'r' ? col_json_raw (res, i, c)
                           : types[c] == 'b' ? json_boolean (bval (res, i, c))
                           : json_integer (ival (res, i, c)));
    json_array_append_new (a, row);
  }
  PQclear (res);
  *r = a;
  return 0;
}

static int
pg_campaign_conversions (struct store *st_, const char *campaign, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  static const char *const names[] = { "variant", "held_out", "customers",
                                       "converted", NULL };
  return campaign_rows (st, Q_CAMP_CONVERSIONS, campaign, names, "sbii",
                        "counting a campaign's conversions", r);
}

static int
pg_campaign_engagement (struct store *st_, const char *campaign, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  static const char *const names[] = { "channel", "variant", "type", "count",
                                       "messages", "machine", NULL };
  return campaign_rows (st, Q_CAMP_ENGAGEMENT, campaign, names, "sssiib",
                        "counting a campaign's engagement", r);
}

/* ---- monitoring -------------------------------------------------- */

static int
pg_outbox_state_counts (struct store *st_, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  static const char *const names[] = { "campaign", "channel", "state",
                                       "count", NULL };
  return campaign_rows (st, Q_OB_STATES, NULL, names, "rrri",
                        "counting the outbox's messages", r);
}

static int
pg_event_counts (struct store *st_, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  static const char *const names[] = { "type", "machine", "count", NULL };
  return campaign_rows (st, Q_EVENT_COUNTS, NULL, names, "rbi",
                        "counting the events", r);
}

static int
pg_due_summary (struct store *st_, int64_t now, struct store_due *r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int64_t ignored;

  memset (r, 0, sizeof *r);
  p_int (&p, now);
  if (!(res = run (st, Q_OB_DUE_SUMMARY, &p, "counting the due messages")))
    return -1;
  r->messages = ival (res, 0, 0);
  r->oldest_next_at = ival (res, 0, 1);        /* NULL: 0 */
  PQclear (res);
  /* The timer queue: the steps due, and all that wait. */
  if (pg_timer_stats (&st->base, now, &r->steps, &r->oldest_step_due) < 0
      || pg_timer_stats (&st->base, INT64_MAX, &r->steps_waiting, &ignored)
         < 0)
    return -1;
  return 0;
}

/* ---- campaign state ----------------------------------------------- */

static int
pg_campaign_start (struct store *st_, const char *id, const char *name,
                   int64_t now)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, id);
  p_text (&p, name);
  p_int (&p, now);
  return run_changes (st, Q_CAMP_START, &p, "recording a campaign start") < 0
         ? -1 : 0;
}

static int
pg_campaign_finish (struct store *st_, const char *id, const char *status,
                    int64_t now)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, id);
  p_text (&p, status);
  p_int (&p, now);
  return run_changes (st, Q_CAMP_FINISH, &p, "recording a campaign end") < 0
         ? -1 : 0;
}

static json_t *
int_or_null (const PGresult *res, int i, int col)
{
  return PQgetisnull (res, i, col) ? json_null ()
                                   : json_integer (ival (res, i, col));
}

static int
pg_campaign_get (struct store *st_, const char *id, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  json_t *o;

  *r = NULL;
  p_text (&p, id);
  if (!(res = run (st, Q_CAMP_GET, &p, "reading a campaign")))
    return -1;
  if (PQntuples (res) == 0) {
    PQclear (res);
    return 1;
  }
  o = json_object ();
  json_object_set_new (o, "id", col_json_str (res, 0, 0));
  json_object_set_new (o, "name", col_json_str (res, 0, 1));
  json_object_set_new (o, "status", col_json_str (res, 0, 2));
  json_object_set_new (o, "runs", json_integer (ival (res, 0, 3)));
  json_object_set_new (o, "first_started", int_or_null (res, 0, 4));
  json_object_set_new (o, "last_started", int_or_null (res, 0, 5));
  json_object_set_new (o, "finished", int_or_null (res, 0, 6));
  PQclear (res);
  *r = o;
  return 0;
}

/* ---- journeys: the timer queue ------------------------------------ */

static int
pg_timer_add (struct store *st_, const struct store_timer *t)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  p_text (&p, t->campaign);
  p_text (&p, t->customer);
  p_int (&p, t->instance);
  p_int (&p, t->step);
  p_int (&p, t->due);
  p_int_or_null (&p, t->entered);
  p_text (&p, t->event);
  p_int (&p, now_seconds ());
  if ((n = run_changes (st, Q_TIMER_ADD, &p, "queueing a journey step")) < 0)
    return -1;
  return n == 0 ? 1 : 0;
}

static int
pg_timers_due (struct store *st_, const char *campaign, int64_t now,
               int limit,
               int (*cb) (void *data, const struct store_timer *t),
               void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int i, n = 0;

  p_text (&p, campaign);
  p_int (&p, now);
  /* SQLite takes a negative LIMIT for none; PostgreSQL refuses it. */
  if (limit >= 0)
    p_int (&p, limit);
  else
    p_null (&p);
  /* All read first: the callback may write to the store. */
  if (!(res = run (st, Q_TIMERS_DUE, &p, "reading the due journey steps")))
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    struct store_timer t;

    t.id = ival (res, i, 0);
    t.campaign = val (res, i, 1);
    t.customer = val (res, i, 2);
    t.instance = ival (res, i, 3);
    t.step = (int) ival (res, i, 4);
    t.due = ival (res, i, 5);
    t.entered = ival (res, i, 6);
    t.event = val (res, i, 7);
    /* Only -1 from the callback stops (an error); any other value goes
     * on. */
    if (cb (data, &t) < 0) {
      n = -1;
      break;
    }
    n++;
  }
  PQclear (res);
  return n;
}

static int
pg_timer_done (struct store *st_, int64_t id, const char *state,
               const char *reason)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t n;

  p_int (&p, id);
  p_text (&p, state);
  p_text (&p, reason);
  p_int (&p, now_seconds ());
  if ((n = run_changes (st, Q_TIMER_DONE, &p, "recording a journey step"))
      < 0)
    return -1;
  return n == 0 ? 1 : 0;
}

static int
pg_timer_cancel (struct store *st_, const char *campaign,
                 const char *customer, int64_t at, const char *reason)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, campaign);
  p_text (&p, customer);
  p_int (&p, at);
  p_text (&p, reason);
  p_int (&p, now_seconds ());
  return (int) run_changes (st, Q_TIMER_CANCEL, &p, "cancelling a journey");
}

static int
pg_journey_last (struct store *st_, const char *campaign,
                 const char *customer, int64_t *instance_r,
                 int64_t *entered_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int r = 0;

  p_text (&p, campaign);
  p_text (&p, customer);
  if (!(res = run (st, Q_JOURNEY_LAST, &p,
                   "reading a customer's journeys")))
    return -1;
  if (PQntuples (res) > 0) {
    *instance_r = ival (res, 0, 0);
    *entered_r = ival (res, 0, 1);
    r = 1;
  }
  PQclear (res);
  return r;
}

static int
pg_journey_event (struct store *st_, const char *campaign,
                  const char *customer, int64_t instance, char **event_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;

  *event_r = NULL;
  p_text (&p, campaign);
  p_text (&p, customer);
  p_int (&p, instance);
  if (!(res = run (st, Q_JOURNEY_EVENT, &p,
                   "reading a journey's trigger event")))
    return -1;
  if (PQntuples (res) > 0)
    *event_r = sdup (res, 0, 0);
  PQclear (res);
  return 0;
}

static int
pg_events_after (struct store *st_, int64_t after_id, int limit,
                 int (*cb) (void *data, const struct store_event_row *e),
                 void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int i, n = 0;

  p_int (&p, after_id);
  if (limit >= 0)
    p_int (&p, limit);
  else
    p_null (&p);
  if (!(res = run (st, Q_EVENTS_AFTER, &p, "reading new events")))
    return -1;
  for (i = 0; i < PQntuples (res); i++) {
    struct store_event_row e;

    /* The row's strings are the result's, lent (the struct's members
     * are not const: the callback must not write to them). */
    e.id = ival (res, i, 0);
    e.customer = (char *) val (res, i, 1);
    e.channel = (char *) val (res, i, 2);
    e.type = (char *) val (res, i, 3);
    e.at = ival (res, i, 4);
    e.campaign = (char *) val (res, i, 5);
    e.message_key = (char *) val (res, i, 6);
    e.detail = (char *) val (res, i, 7);
    e.machine = (char *) val (res, i, 8);
    /* Only -1 from the callback stops (an error). */
    if (cb (data, &e) < 0) {
      n = -1;
      break;
    }
    n++;
  }
  PQclear (res);
  return n;
}

static int
pg_events_last_id (struct store *st_, int64_t *id_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  return one_int (st, Q_EVENTS_LAST, NULL, id_r, "reading the events") < 0
         ? -1 : 0;
}

static int
pg_meta_get_int (struct store *st_, const char *key, int64_t *v_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int r = 0;

  p_text (&p, key);
  if (!(res = run (st, Q_META_GET, &p, "reading the meta table")))
    return -1;
  if (PQntuples (res) > 0) {
    *v_r = ival (res, 0, 0);
    r = 1;
  }
  PQclear (res);
  return r;
}

static int
pg_meta_set_int (struct store *st_, const char *key, int64_t v)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, key);
  p_int (&p, v);
  return run_changes (st, Q_META_SET, &p, "writing the meta table") < 0
         ? -1 : 0;
}

static int
pg_journey_engaged (struct store *st_, const char *campaign,
                    const char *customer, int64_t instance, int64_t since,
                    const char *const *types, char *type_r, size_t len)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int i, r = 0;

  if (!types || !types[0])
    return 0;
  p_text (&p, campaign);
  p_text (&p, customer);
  p_int (&p, instance);
  p_int (&p, since);
  /* Four slots; the list may be shorter (its NULL ends it): the rest
   * repeat the first. */
  for (i = 0; i < 4 && types[i]; i++)
    p_text (&p, types[i]);
  for (; i < 4; i++)
    p_text (&p, types[0]);
  if (!(res = run (st, Q_JOURNEY_ENGAGED, &p,
                   "reading a journey's engagement")))
    return -1;
  if (PQntuples (res) > 0) {
    strlcpy_ (type_r, PQgetvalue (res, 0, 0), len);
    r = 1;
  }
  PQclear (res);
  return r;
}

static int
pg_timer_next (struct store *st_, const char *campaign, int64_t *due_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t v;
  int r;

  p_text (&p, campaign);
  r = one_int (st, Q_TIMER_NEXT, &p, &v, "reading the timer queue");
  if (r == 1)
    *due_r = v;
  return r;
}

static int
pg_timer_stats (struct store *st_, int64_t now, int64_t *due_r,
                int64_t *oldest_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;

  p_int (&p, now);
  if (!(res = run (st, Q_TIMER_STATS, &p, "reading the timer queue")))
    return -1;
  *due_r = ival (res, 0, 0);
  *oldest_r = ival (res, 0, 1);                /* NULL: 0 */
  PQclear (res);
  return 0;
}



static int
pg_step_funnel (struct store *st_, const char *campaign, json_t **r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  json_t *steps = json_array (), *v;
  PGresult *res;
  int i;
  size_t k;

  p_text (&p, campaign);
  /* The timer queue: each step's journeys by state. */
  if (!(res = run (st, Q_STEP_FUNNEL, &p, "reading a campaign's steps")))
    goto fail;
  for (i = 0; i < PQntuples (res); i++) {
    json_t *e = store_step_entry (steps, (int) ival (res, i, 0));
    const char *state = PQgetvalue (res, i, 1);
    json_int_t n = ival (res, i, 2);
    store_step_add (e, "entered", n);
    if (strcmp (state, "waiting") == 0 || strcmp (state, "fired") == 0
        || strcmp (state, "exited") == 0 || strcmp (state, "cancelled") == 0)
      store_step_add (e, state, n);
    json_object_set_new (e, "_timers", json_true ());
  }
  PQclear (res);
  /* The outbox: each step's messages, and those sent. */
  if (!(res = run (st, Q_STEP_OUTBOX, &p, "reading a campaign's steps")))
    goto fail;
  for (i = 0; i < PQntuples (res); i++) {
    json_t *e = store_step_entry (steps, (int) ival (res, i, 0));
    store_step_add (e, "messages", ival (res, i, 1));
    store_step_add (e, "sent", ival (res, i, 2));
  }
  PQclear (res);
  if (!(res = run (st, Q_STEP_ENGAGED, &p, "reading a campaign's steps")))
    goto fail;
  for (i = 0; i < PQntuples (res); i++)
    store_step_add (store_step_entry (steps, (int) ival (res, i, 0)), "engaged",
              ival (res, i, 1));
  PQclear (res);
  /* A step without timers (step 1 of a campaign herald run sends) was
   * entered by every customer planned for it. */
  json_array_foreach (steps, k, v) {
    if (!json_object_get (v, "_timers"))
      json_object_set (v, "entered", json_object_get (v, "messages"));
    json_object_del (v, "_timers");
  }
  *r = steps;
  return 0;

fail:
  json_decref (steps);
  return -1;
}

/* ---- short links -------------------------------------------------- */

static int
hexval (char c)
{
  return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int
pg_link_add (struct store *st_, const char *key, const char *url,
             size_t len, int64_t *id_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  static const char digits[] = "0123456789abcdef";
  struct params p = { 0 };
  char *hex = xmalloc (2 * len + 1);
  size_t i;
  int r;

  for (i = 0; i < len; i++) {
    hex[2 * i] = digits[(unsigned char) url[i] >> 4];
    hex[2 * i + 1] = digits[(unsigned char) url[i] & 15];
  }
  hex[2 * len] = '\0';
  p_text (&p, key);
  p_text (&p, hex);
  r = one_int (st, Q_LINK_ADD, &p, id_r, "recording a short link");
  free (hex);
  return r < 0 ? -1 : 0;
}

static int
pg_link_get (struct store *st_, int64_t id, char **key_r, char **url_r,
             size_t *len_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  const char *hex;
  size_t n, i;

  *key_r = *url_r = NULL;
  *len_r = 0;
  p_int (&p, id);
  if (!(res = run (st, Q_LINK_GET, &p, "reading a short link")))
    return -1;
  if (PQntuples (res) == 0) {
    PQclear (res);
    return 1;
  }
  if (!val (res, 0, 0)) {
    PQclear (res);
    set_err (st, "%s: short link %lld has no message key", st->name,
             (long long) id);
    return -1;
  }
  hex = PQgetvalue (res, 0, 1);
  n = strlen (hex) / 2;
  *url_r = xmalloc (n + 1);
  for (i = 0; i < n; i++)
    (*url_r)[i] = (char) (hexval (hex[2 * i]) << 4 | hexval (hex[2 * i + 1]));
  (*url_r)[n] = '\0';
  *len_r = n;
  *key_r = xstrdup (PQgetvalue (res, 0, 0));
  PQclear (res);
  return 0;
}

/* ---- many workers ------------------------------------------------ */

/* Many herald processes on many machines may share one database. */
static int
pg_shared (struct store *st)
{
  (void) st;
  return 1;
}

/* This process is worker WORKER: the rows it writes as "sending" and the
 * chunks it claims are leased to it. */
static int
pg_set_worker (struct store *st_, const char *worker, int lease)
{
  struct pg_store *st = (struct pg_store *) st_;

  free (st->worker);
  st->worker = worker ? xstrdup (worker) : NULL;
  st->lease = lease > 0 ? lease : 60;
  st->err[0] = '\0';
  return 0;
}

static int
pg_lease_renew (struct store *st_)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t rows, chunks;

  st->err[0] = '\0';
  if (!st->worker)
    return 0;
  p_text (&p, st->worker);
  p_int (&p, now_seconds () + st->lease);
  if ((rows = run_changes (st, Q_LEASE_ROWS, &p,
                           "renewing the leases of messages in flight")) < 0
      || (chunks = run_changes (st, Q_LEASE_CHUNKS, &p,
                                "renewing the leases of plan chunks")) < 0)
    return -1;
  return (int) (rows + chunks);
}

static int
pg_outbox_claim (struct store *st_, const char *campaign, int64_t now,
                 int limit,
                 int (*cb) (void *data, const struct outbox_row *row),
                 void *data)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;
  int i, n;

  if (limit <= 0)
    limit = 1000;
  p_text (&p, campaign);
  p_int (&p, now);
  p_int (&p, limit);
  p_int (&p, now_seconds ());
  p_lease (st, &p, "sending");
  /* One statement: the rows are claimed, or none is. */
  if (!(res = run (st, Q_OB_CLAIM, &p, "claiming due messages")))
    return -1;
  n = PQntuples (res);
  for (i = 0; i < n; i++) {
    struct outbox_row *r = row_from (res, i);

    cb (data, r);               /* every claimed row is handed */
    store_row_free (r);
  }
  PQclear (res);
  return n;
}

static int
pg_work_held (struct store *st_, const char *campaign, int step, int64_t now,
              int64_t *n_r, int64_t *until_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  PGresult *res;

  *n_r = *until_r = 0;
  p_text (&p, campaign);
  p_int (&p, step);
  p_int (&p, now);
  p_text (&p, st->worker);
  if (!(res = run (st, Q_WORK_HELD, &p, "reading the other workers' leases")))
    return -1;
  *n_r = ival (res, 0, 0);
  *until_r = ival (res, 0, 1);                 /* NULL: 0 */
  PQclear (res);
  return 0;
}

/* Claim the first free chunk: 1 with *CHUNK_R, 0 none, -1. */
static int
chunk_claim_one (struct pg_store *st, const char *campaign, int step,
                 int *chunk_r)
{
  struct params p = { 0 };
  PGresult *res;
  int64_t now = now_seconds ();
  int r = 0;

  p_text (&p, campaign);
  p_int (&p, step);
  p_text (&p, st->worker);
  p_int (&p, now + st->lease);
  p_int (&p, now);
  if (!(res = run (st, Q_CHUNK_CLAIM, &p, "claiming a plan chunk")))
    return -1;
  if (PQntuples (res) > 0) {
    *chunk_r = (int) ival (res, 0, 0);
    r = 1;
  }
  PQclear (res);
  return r;
}

/* The chunks of (CAMPAIGN, STEP) are made (all open) on the first claim
 * of this store for them; that first claim also opens them all again
 * when all are done: an earlier run planned them, and customers imported
 * since must be planned.  Later claims of the same store never reopen:
 * a worker waiting for the others (which claims again every moment)
 * would plan the whole audience again and again. */
static int
pg_chunk_claim (struct store *st_, const char *campaign, int step,
                int *chunk_r)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  char *seen;
  int first, r;

  *chunk_r = -1;
  if (!st->worker) {
    set_err (st, "%s: claiming a plan chunk needs a worker "
             "(store_set_worker)", st->name);
    return -1;
  }
  seen = xasprintf ("%s\037%d", campaign, step);
  first = !st->chunks_seen || strcmp (st->chunks_seen, seen) != 0;
  p_text (&p, campaign);
  p_int (&p, step);
  if (first) {
    p_int (&p, STORE_CHUNKS);
    r = run_changes (st, Q_CHUNK_INIT, &p, "making the plan chunks") < 0
        ? -1 : 0;
    p.n = 2;
    if (r < 0)
      goto out;
  }
  r = chunk_claim_one (st, campaign, step, chunk_r);
  if (r == 0 && first) {
    PGresult *res = run (st, Q_CHUNK_LEFT, &p, "reading the plan chunks");

    if (!res)
      r = -1;
    else {
      int all_done = ival (res, 0, 0) == 0 && ival (res, 0, 1) > 0;

      PQclear (res);
      if (all_done)
        r = run_changes (st, Q_CHUNK_REOPEN, &p,
                         "opening the plan chunks again") < 0
            ? -1 : chunk_claim_one (st, campaign, step, chunk_r);
    }
  }
out:
  if (r >= 0 && first) {
    free (st->chunks_seen);
    st->chunks_seen = seen;
    seen = NULL;
  }
  free (seen);
  return r;
}

static int
pg_chunk_done (struct store *st_, const char *campaign, int step, int chunk)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };

  p_text (&p, campaign);
  p_int (&p, step);
  p_int (&p, chunk);
  return run_changes (st, Q_CHUNK_DONE, &p, "recording a planned chunk") < 0
         ? -1 : 0;
}

static int
pg_audience_chunk (struct store *st_, const char *campaign, int step,
                   int chunk, const char *after_id, int limit,
                   int (*cb) (void *data, json_t *customer), void *data)
{
  struct pg_store *st = (struct pg_store *) st_;

  if (chunk < 0 || chunk >= STORE_CHUNKS) {
    set_err (st, "%s: no plan chunk %d (0 to %d)", st->name, chunk,
             STORE_CHUNKS - 1);
    return -1;
  }
  return audience_page (st, campaign, step, chunk, after_id, limit, cb, data);
}

/* ---- herald serve's turn at a campaign ---------------------------- */

static int
pg_campaign_lock (struct store *st_, const char *campaign, int lock)
{
  struct pg_store *st = (struct pg_store *) st_;
  struct params p = { 0 };
  int64_t got = 0;

  p_text (&p, campaign);
  if (one_int (st, lock ? Q_CAMP_LOCK : Q_CAMP_UNLOCK, &p, &got,
               lock ? "taking a campaign's turn" : "ending a campaign's turn")
      < 0)
    return -1;
  return got ? 1 : 0;
}

static const struct store_ops pg_ops = {
  .close = pg_close,
  .error = pg_error,
  .schema_version = pg_schema_version,
  .campaign_lock = pg_campaign_lock,
  .name = pg_name,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .customer_put = pg_customer_put,
  .customer_put_text = pg_customer_put_text,
  .customer_get = pg_customer_get,
  .audience_next = pg_audience_next,
  .customer_exists = pg_customer_exists,
  .bulk_customers = pg_bulk_customers,
  .customer_find = pg_customer_find,
  .customer_count = pg_customer_count,
  .consent_set = pg_consent_set,
  .consent_get = pg_consent_get,
  .suppress = pg_suppress,
  .is_suppressed = pg_is_suppressed,
  .event_put = pg_event_put,
  .event_record = pg_event_record,
  .message_events = pg_message_events,
  .message_events_except = pg_message_events_except,
  .event_set_machine = pg_event_set_machine,
  .customer_events = pg_customer_events,
  .channel_stats = pg_channel_stats,
  .outbox_insert = pg_outbox_insert,
  .outbox_update = pg_outbox_update,
  .outbox_update_reason = pg_outbox_update_reason,
  .outbox_reroute = pg_outbox_reroute,
  .outbox_get = pg_outbox_get,
  .outbox_by_provider = pg_outbox_by_provider,
  .outbox_reroutes = pg_outbox_reroutes,
  .outbox_reroute_none = pg_outbox_reroute_none,
  .outbox_due = pg_outbox_due,
  .outbox_recover = pg_outbox_recover,
  .outbox_next_due = pg_outbox_next_due,
  .sent_count = pg_sent_count,
  .instance_volume = pg_instance_volume,
  .campaign_counts = pg_campaign_counts,
  .campaign_engagement = pg_campaign_engagement,
  .campaign_conversions = pg_campaign_conversions,
  .outbox_state_counts = pg_outbox_state_counts,
  .event_counts = pg_event_counts,
  .due_summary = pg_due_summary,
  .campaign_start = pg_campaign_start,
  .campaign_finish = pg_campaign_finish,
  .campaign_get = pg_campaign_get,
  .timer_add = pg_timer_add,
  .timers_due = pg_timers_due,
  .timer_done = pg_timer_done,
  .timer_cancel = pg_timer_cancel,
  .journey_last = pg_journey_last,
  .journey_event = pg_journey_event,
  .events_after = pg_events_after,
  .events_last_id = pg_events_last_id,
  .meta_get_int = pg_meta_get_int,
  .meta_set_int = pg_meta_set_int,
  .journey_engaged = pg_journey_engaged,
  .timer_next = pg_timer_next,
  .timer_stats = pg_timer_stats,
  .step_funnel = pg_step_funnel,
  .link_add = pg_link_add,
  .link_get = pg_link_get,
  .shared = pg_shared,
  .set_worker = pg_set_worker,
  .lease_renew = pg_lease_renew,
  .outbox_claim = pg_outbox_claim,
  .work_held = pg_work_held,
  .chunk_claim = pg_chunk_claim,
  .chunk_done = pg_chunk_done,
  .audience_chunk = pg_audience_chunk,
};
