/* sqlite.c: the embedded store, Herald's state in one SQLite file (the
 * contract is store.h's; backend.h says how a backend plugs in).
 * Every durable state change of the system is one of these functions; this
 * file must never print, never decide policy (who gets what), and never
 * leave a transaction open after returning an error from a call it began. */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "../store.h"
#include "backend.h"
#include "../../lib/jsoncheck.h"
#include "../util.h"

/* Prepared statements, prepared on first use and kept for the life of the
 * store (SQLITE_PREPARE_PERSISTENT): the import loop runs the same few
 * statements a million times. */
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
  Q_LINK_ADD, Q_LINK_GET,
  Q_N
};

#define OUTBOX_COLS \
  "key, campaign, step, customer, channel, instance, variant, state, reason, " \
  "attempts, next_at, created, updated, sent_at, provider_id, error, detail, " \
  "address, parts, trace, journey"

static const char *const sql_text[Q_N] = {
  [Q_BEGIN] = "BEGIN IMMEDIATE",
  [Q_COMMIT] = "COMMIT",
  [Q_ROLLBACK] = "ROLLBACK",
  [Q_CUST_PUT] =
    "INSERT INTO customers (id, email, phone, timezone, locale, webhook, "
    "record, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
    "ON CONFLICT (id) DO UPDATE SET email = ?2, phone = ?3, timezone = ?4, "
    "locale = ?5, webhook = ?6, record = ?7, updated = ?8",
  [Q_CUST_GET] = "SELECT record FROM customers WHERE id = ?1",
  [Q_CUST_EXISTS] = "SELECT 1 FROM customers WHERE id = ?1",
  [Q_FIND_EMAIL] = "SELECT id FROM customers WHERE email = ?1 ORDER BY id",
  [Q_FIND_PHONE] = "SELECT id FROM customers WHERE phone = ?1 ORDER BY id",
  [Q_FIND_WEBHOOK] =
    "SELECT id FROM customers WHERE webhook = ?1 ORDER BY id",
  [Q_CUST_COUNT] = "SELECT count(*) FROM customers",
  [Q_CUST_ADDR] = "SELECT email, phone, webhook, record FROM customers "
                  "WHERE id = ?1",
  /* Out-of-order events: an older change loses to a newer one. */
  [Q_CONSENT_SET] =
    "INSERT INTO consent (customer, channel, granted, at, source) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (customer, channel) DO UPDATE SET granted = excluded.granted, "
    "at = excluded.at, source = excluded.source "
    "WHERE excluded.at >= consent.at",
  [Q_CONSENT_GET] =
    "SELECT granted FROM consent WHERE customer = ?1 AND channel = ?2",
  [Q_CONSENT_ALL] =
    "SELECT channel, granted FROM consent WHERE customer = ?1 ORDER BY channel",
  [Q_SUPPRESS] =
    "INSERT INTO suppressions (channel, address, reason, at) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (channel, address) DO NOTHING",
  [Q_IS_SUPPRESSED] =
    "SELECT 1 FROM suppressions WHERE channel = ?1 AND address = ?2",
  [Q_EVENT_PUT] =
    "INSERT OR IGNORE INTO events (customer, channel, type, at, campaign, message_key, "
    "detail, at_ms, machine) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
  [Q_MSG_EVENTS] =
    "SELECT id, at_ms, detail, machine FROM events WHERE message_key = ?1 "
    "AND type = ?2 AND at_ms BETWEEN ?3 AND ?4 "
    "AND (?5 IS NULL OR detail IS NOT ?5) "
    "ORDER BY at_ms, id",
  [Q_EVENT_MACHINE] =
    "UPDATE events SET machine = ?2 WHERE id = ?1 AND machine IS NULL",
  /* A customer's history for the router: events, and the messages Herald
   * sent (from the outbox, type "sent"), oldest first. */
  /* Customers messaged (sent) or held out, per variant, and how many of
   * them converted after their row was recorded: the experiment's raw
   * numbers (events_customer index: one probe per customer). */
  [Q_CAMP_CONVERSIONS] =
    "SELECT o.variant, o.state = 'held_out', count(*), "
    "sum(EXISTS (SELECT 1 FROM events e WHERE e.customer = o.customer "
    "AND e.type = 'converted' AND e.at >= o.created)) "
    "FROM outbox o WHERE o.campaign = ?1 AND o.state IN ('sent', 'held_out') "
    "GROUP BY 1, 2 ORDER BY 2 DESC, 1",
  [Q_CUST_EVENTS] =
    "SELECT channel, type, at FROM ("
    " SELECT channel, type, at, id FROM events WHERE customer = ?1 AND at >= ?2"
    " AND machine IS NULL"
    " UNION ALL"
    " SELECT channel, 'sent', sent_at, 0 FROM outbox WHERE customer = ?1"
    " AND sent_at >= ?2 AND state = 'sent' AND channel IS NOT NULL"
    ") ORDER BY at, id",
  [Q_STATS_SENT] =
    "SELECT channel, count(*) FROM outbox WHERE state = 'sent' "
    "AND sent_at >= ?1 AND channel IS NOT NULL GROUP BY channel",
  /* "sent" comes from the outbox; a "sent" event (none are recorded by
   * Herald itself) is not counted twice. */
  [Q_STATS_EVENTS] =
    "SELECT channel, type, count(*) FROM events WHERE at >= ?1 "
    "AND channel IS NOT NULL AND type <> 'sent' AND machine IS NULL "
    "GROUP BY channel, type",
  /* The key lookup hits the outbox primary key: one probe per customer,
   * whatever the size of the outbox. */
  [Q_AUDIENCE] =
    "SELECT c.id, c.record FROM customers c WHERE c.id > ?1 "
    "AND NOT EXISTS (SELECT 1 FROM outbox o "
    "WHERE o.key = ?2 || ':' || ?3 || ':' || c.id) ORDER BY c.id LIMIT ?4",
  [Q_OB_INSERT] =
    "INSERT INTO outbox (" OUTBOX_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
    "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) "
    "ON CONFLICT (key) DO NOTHING",
  /* Rendered parts are kept while a row may still be sent, so a resend
   * after a crash sends the same bytes; once sent (or dead) they are
   * dropped: a million HTML emails would otherwise keep gigabytes. */
  [Q_OB_UPDATE] =
    "UPDATE outbox SET state = ?2, attempts = ?3, next_at = ?4, "
    "provider_id = ?5, error = ?6, detail = ?7, updated = ?8, "
    "sent_at = CASE WHEN ?2 = 'sent' THEN ?8 ELSE sent_at END, "
    "parts = CASE WHEN ?2 IN ('sent', 'dead') THEN NULL ELSE parts END "
    "WHERE key = ?1",
  [Q_OB_UPDATE_REASON] =
    "UPDATE outbox SET state = ?2, attempts = ?3, next_at = ?4, "
    "provider_id = ?5, error = ?6, detail = ?7, updated = ?8, reason = ?9, "
    "sent_at = CASE WHEN ?2 = 'sent' THEN ?8 ELSE sent_at END, "
    "parts = CASE WHEN ?2 IN ('sent', 'dead') THEN NULL ELSE parts END "
    "WHERE key = ?1",
  [Q_OB_REROUTE] =
    "UPDATE outbox SET channel = ?2, instance = ?3, variant = ?4, state = ?5, "
    "reason = ?6, next_at = ?7, address = ?8, parts = ?9, trace = ?10, "
    "updated = ?11, attempts = 0, provider_id = NULL, error = NULL, "
    "sent_at = CASE WHEN ?5 = 'sent' THEN ?11 ELSE NULL END WHERE key = ?1",
  [Q_OB_GET] = "SELECT " OUTBOX_COLS " FROM outbox WHERE key = ?1",
  [Q_OB_DUE] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE campaign = ?1 "
    "AND state IN ('pending', 'retry', 'deferred') AND next_at <= ?2 "
    "ORDER BY next_at, key LIMIT ?3",
  /* A row in flight at as many crashes as it may have attempts is taken
   * for the message that crashes its plugin (a poison message): dead.
   * The others go back to pending, marked "recovered" so that dispatch
   * sends them one at a time and a poison among them dies alone. */
  [Q_OB_RECOVER_PENDING] =
    "UPDATE outbox SET updated = ?2, "
    "state = CASE WHEN attempts >= ?3 THEN 'dead' ELSE 'pending' END, "
    "reason = CASE WHEN attempts >= ?3 THEN 'crashed_in_flight' "
    "ELSE 'recovered' END, "
    "error = CASE WHEN attempts >= ?3 THEN 'in flight at ' || attempts || "
    "' crashes of herald (attempts); taken for a message that crashes its "
    "plugin' ELSE error END "
    "WHERE state = 'sending' AND (?1 IS NULL OR campaign = ?1)",
  [Q_OB_RECOVER_FAILED] =
    "UPDATE outbox SET state = 'failed', reason = 'in flight at crash', "
    "updated = ?2 WHERE state = 'sending' AND (?1 IS NULL OR campaign = ?1)",
  /* Claimed and never handed to a plugin (store_outbox_claim). */
  [Q_OB_RECOVER_CLAIMED] =
    "UPDATE outbox SET state = 'pending', reason = NULL, updated = ?2 "
    "WHERE state = 'sending' AND reason = 'claimed' "
    "AND (?1 IS NULL OR campaign = ?1)",
  [Q_OB_NEXT_DUE] =
    "SELECT min(next_at) FROM outbox WHERE campaign = ?1 "
    "AND state IN ('retry', 'deferred')",
  [Q_OB_ADDRESS] = "SELECT address FROM outbox WHERE key = ?1",
  [Q_OB_BY_PROVIDER] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE provider_id = ?1 "
    "AND provider_id IS NOT NULL AND (?2 IS NULL OR channel = ?2) "
    "ORDER BY updated DESC LIMIT 1",
  /* Permanent failures waiting for the planning pass to re-route them. */
  [Q_OB_REROUTES] =
    "SELECT " OUTBOX_COLS " FROM outbox WHERE campaign = ?1 "
    "AND state = 'reroute' ORDER BY key LIMIT ?2",
  [Q_OB_REROUTE_NONE] =
    "UPDATE outbox SET state = CASE WHEN reason = 'retries_exhausted' "
    "THEN 'dead' ELSE 'failed' END, updated = ?2 "
    "WHERE key = ?1 AND state = 'reroute'",
  /* What counts against a cap: messages sent in the period, and those
   * committed to be sent (planned, in flight, waiting for a retry) since
   * it began: two campaigns planning one customer see each other's. */
  [Q_SENT_COUNT] =
    "SELECT count(*) FROM outbox WHERE customer = ?1 "
    "AND (?3 IS NULL OR channel = ?3) "
    "AND ((state = 'sent' AND sent_at >= ?2) "
    "OR (state IN ('pending', 'sending', 'retry') AND created >= ?2))",
  [Q_INSTANCE_VOLUME] =
    "SELECT count(*) FROM outbox WHERE instance = ?1 "
    "AND ((state = 'sent' AND sent_at >= ?2) "
    "OR (state IN ('sending', 'retry', 'failed', 'dead', 'reroute') "
    "AND attempts > 0 AND updated >= ?2))",
  [Q_CAMP_COUNTS] =
    "SELECT channel, variant, state, reason, count(*) FROM outbox "
    "WHERE campaign = ?1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
  [Q_CAMP_ENGAGEMENT] =
    "WITH ev AS ("
    " SELECT e.type AS type, e.channel AS echannel, e.customer AS customer,"
    "  e.machine IS NOT NULL AS machine,"
    "  COALESCE(o1.key, (SELECT o2.key FROM outbox o2 WHERE o2.campaign = ?1"
    "   AND o2.customer = e.customer"
    "   AND (e.channel IS NULL OR o2.channel = e.channel)"
    "   ORDER BY o2.step DESC LIMIT 1)) AS okey"
    " FROM events e LEFT JOIN outbox o1"
    "  ON o1.key = e.message_key AND o1.campaign = ?1"
    " WHERE e.campaign = ?1 OR o1.key IS NOT NULL) "
    "SELECT COALESCE(o.channel, ev.echannel), o.variant, ev.type, count(*),"
    " count(DISTINCT COALESCE(ev.okey, ev.customer)), ev.machine"
    " FROM ev LEFT JOIN outbox o ON o.key = ev.okey"
    " GROUP BY 1, 2, 3, 6 ORDER BY 1, 2, 3, 6",
  /* For /metrics, on every scrape: one pass over the table, as no index
   * has campaign, channel and state.  Left to itself SQLite walks
   * outbox_due for the campaign order and looks every row up for its
   * channel: 2.5 s for a million rows, against 1.2 s for the table in
   * its own order and a sort of the groups. */
  [Q_OB_STATES] =
    "SELECT campaign, channel, state, count(*) FROM outbox NOT INDEXED "
    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
  /* outbox_due (campaign, state, next_at) covers it: a scan of the index,
   * not of the table. */
  [Q_OB_DUE_SUMMARY] =
    "SELECT count(*), min(next_at) FROM outbox "
    "WHERE state IN ('pending', 'retry', 'deferred') AND next_at <= ?1",
  [Q_EVENT_COUNTS] =
    "SELECT type, machine IS NOT NULL, count(*) FROM events "
    "GROUP BY 1, 2 ORDER BY 1, 2",
  [Q_CAMP_START] =
    "INSERT INTO campaigns (id, name, status, runs, first_started, "
    "last_started) VALUES (?1, ?2, 'running', 1, ?3, ?3) "
    "ON CONFLICT (id) DO UPDATE SET name = COALESCE(?2, name), "
    "status = 'running', runs = runs + 1, last_started = ?3, finished = NULL",
  [Q_CAMP_FINISH] =
    "UPDATE campaigns SET status = ?2, finished = ?3 WHERE id = ?1",
  [Q_CAMP_GET] =
    "SELECT id, name, status, runs, first_started, last_started, finished "
    "FROM campaigns WHERE id = ?1",
  /* The timer queue: one row per (journey, step), so a step is queued and
   * fired once whatever repeats the event or a restart. */
  [Q_TIMER_ADD] =
    "INSERT INTO timers (campaign, customer, instance, step, due, state, "
    "entered, event, created, updated) SELECT ?1, ?2, ?3, ?4, ?5, 'waiting', "
    "coalesce (?6, (SELECT entered FROM timers WHERE campaign = ?1 "
    "AND customer = ?2 AND instance = ?3 AND step = 1), ?8), "
    "coalesce (?7, (SELECT event FROM timers WHERE campaign = ?1 "
    "AND customer = ?2 AND instance = ?3 AND step = 1)), ?8, ?8 WHERE 1 "
    "ON CONFLICT (campaign, customer, instance, step) DO NOTHING",
  [Q_EVENTS_LAST] = "SELECT coalesce (max (id), 0) FROM events",
  [Q_JOURNEY_EVENT] =
    "SELECT event FROM timers WHERE campaign = ?1 AND customer = ?2 "
    "AND instance = ?3 AND step = 1",
  [Q_TIMERS_DUE] =
    "SELECT id, campaign, customer, instance, step, due, entered, event "
    "FROM timers WHERE state = 'waiting' AND due <= ?2 AND campaign = ?1 "
    "ORDER BY due, id LIMIT ?3",
  [Q_TIMER_DONE] =
    "UPDATE timers SET state = ?2, reason = ?3, updated = ?4 "
    "WHERE id = ?1 AND state = 'waiting'",
  [Q_TIMER_CANCEL] =
    "UPDATE timers SET state = 'cancelled', reason = ?4, updated = ?5 "
    "WHERE campaign = ?1 AND customer = ?2 AND state = 'waiting' "
    "AND entered <= ?3",
  [Q_JOURNEY_LAST] =
    "SELECT instance, entered FROM timers WHERE campaign = ?1 "
    "AND customer = ?2 AND step = 1 ORDER BY instance DESC LIMIT 1",
  [Q_EVENTS_AFTER] =
    "SELECT id, customer, channel, type, at, campaign, message_key, detail, "
    "machine FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
  [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
  [Q_META_SET] =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  /* A person's event of one of the types ?4.. on a message of this
   * journey (or naming the campaign without a message) since ?5. */
  [Q_JOURNEY_ENGAGED] =
    "SELECT type FROM events WHERE customer = ?2 AND at >= ?5 "
    "AND machine IS NULL AND type IN (?6, ?7, ?8, ?9) "
    "AND (message_key IN (SELECT key FROM outbox WHERE customer = ?2 "
    "AND campaign = ?1 AND coalesce(journey, 0) = ?3) "
    "OR (message_key IS NULL AND campaign = ?1)) ORDER BY at, id LIMIT 1",
  [Q_TIMER_NEXT] =
    "SELECT min(due) FROM timers WHERE state = 'waiting' AND campaign = ?1",
  [Q_TIMER_STATS] =
    "SELECT count(*), min(due) FROM timers WHERE state = 'waiting' "
    "AND due <= ?1",
  [Q_STEP_FUNNEL] =
    "SELECT step, state, count(*) FROM timers "
    "WHERE campaign = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
  [Q_STEP_OUTBOX] =
    "SELECT step, count(*), sum(state = 'sent') FROM outbox "
    "WHERE campaign = ?1 GROUP BY 1 ORDER BY 1",
  /* Messages of each step that a person (not a machine) engaged with. */
  [Q_STEP_ENGAGED] =
    "SELECT o.step, count(DISTINCT o.key) FROM outbox o JOIN events e "
    "ON e.message_key = o.key WHERE o.campaign = ?1 AND e.machine IS NULL "
    "AND e.type IN ('opened', 'clicked', 'replied', 'converted') "
    "GROUP BY 1 ORDER BY 1",
  [Q_LINK_ADD] = "INSERT INTO links (message_key, url) VALUES (?1, ?2)",
  [Q_LINK_GET] = "SELECT message_key, url FROM links WHERE id = ?1",
};

/* The customers table's secondary indexes.  A bulk import drops and
 * rebuilds them (store_bulk_customers): building an index once by sorting
 * is much cheaper than a million random insertions into five b-trees.
 * When a migration changes these, change this list with it. */
#define CUSTOMER_INDEXES \
  "CREATE INDEX customers_email ON customers (email);" \
  "CREATE INDEX customers_phone ON customers (phone);" \
  "CREATE INDEX customers_timezone ON customers (timezone);" \
  "CREATE INDEX customers_locale ON customers (locale);" \
  "CREATE INDEX customers_webhook ON customers (webhook);"
#define DROP_CUSTOMER_INDEXES \
  "DROP INDEX customers_email; DROP INDEX customers_phone;" \
  "DROP INDEX customers_timezone; DROP INDEX customers_locale;" \
  "DROP INDEX customers_webhook;"

/* Migrations: MIGRATIONS[i] takes a file from version i to i + 1.  Only
 * ever append; never edit a migration that has shipped. */
static const char *const migrations[] = {
  /* 0 -> 1: the first schema. */
  /* A rowid table, not WITHOUT ROWID: records are a few hundred bytes,
   * and keeping them in the id b-tree made a 200k import 40% slower
   * (random-order page splits moving whole records). */
  "CREATE TABLE customers ("
  " id TEXT UNIQUE NOT NULL, email TEXT, phone TEXT, timezone TEXT,"
  " locale TEXT, webhook TEXT,"
  " record TEXT NOT NULL,"      /* the whole normalised record, JSON */
  " updated INTEGER NOT NULL);"
  CUSTOMER_INDEXES
  /* Explicit consent changes only (unsubscribes, SMS STOP, opt-ins): the
   * imported consent stays in the customer's record, and a row here wins
   * over it.  Keeping imported consent out of this table halves the rows
   * a million-customer import writes. */
  "CREATE TABLE consent ("
  " customer TEXT NOT NULL, channel TEXT NOT NULL, granted INTEGER NOT NULL,"
  " at INTEGER NOT NULL, source TEXT,"
  " PRIMARY KEY (customer, channel)) WITHOUT ROWID;"
  "CREATE TABLE suppressions ("
  " channel TEXT NOT NULL, address TEXT NOT NULL, reason TEXT,"
  " at INTEGER NOT NULL, PRIMARY KEY (channel, address)) WITHOUT ROWID;"
  "CREATE TABLE events ("
  " id INTEGER PRIMARY KEY, customer TEXT NOT NULL, channel TEXT,"
  " type TEXT NOT NULL, at INTEGER NOT NULL, campaign TEXT,"
  " message_key TEXT, detail TEXT);"
  "CREATE INDEX events_customer ON events (customer, at);"
  "CREATE INDEX events_campaign ON events (campaign);"
  "CREATE INDEX events_message ON events (message_key);"
  "CREATE INDEX events_at ON events (at);"
  /* The same event twice (a file imported again, a provider retrying its
   * callback) is recorded once. */
  "CREATE UNIQUE INDEX events_once ON events (customer, type, at,"
  " coalesce(channel, ''), coalesce(campaign, ''),"
  " coalesce(message_key, ''));"
  "CREATE TABLE outbox ("
  " key TEXT PRIMARY KEY NOT NULL, campaign TEXT NOT NULL,"
  " step INTEGER NOT NULL, customer TEXT NOT NULL, channel TEXT,"
  " instance TEXT, variant TEXT, state TEXT NOT NULL, reason TEXT,"
  " attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,"
  " created INTEGER NOT NULL, updated INTEGER NOT NULL, sent_at INTEGER,"
  " provider_id TEXT, error TEXT, detail TEXT, address TEXT, parts TEXT,"
  " trace TEXT);"
  "CREATE INDEX outbox_due ON outbox (campaign, state, next_at);"
  "CREATE INDEX outbox_customer ON outbox (customer, sent_at);"
  "CREATE TABLE campaigns ("
  " id TEXT PRIMARY KEY NOT NULL, name TEXT, status TEXT NOT NULL,"
  " runs INTEGER NOT NULL, first_started INTEGER, last_started INTEGER,"
  " finished INTEGER);",
  /* 1 -> 2: outbox_customer on customer alone.  With sent_at in it, every
   * message's "sent" update moved its entry (a delete and an insert in
   * that b-tree, 20% of the update); a customer has a handful of rows, so
   * the caps and history queries lose nothing by filtering sent_at in the
   * table. */
  "DROP INDEX outbox_customer;"
  "CREATE INDEX outbox_customer ON outbox (customer);",
  /* 2 -> 3: opens and clicks recorded by the tracking server.  machine:
   * why a request was taken for a mail scanner's or a prefetching proxy's
   * (NULL: a person's); the router and the rates leave those out.  at_ms:
   * when, to the millisecond, for the rule "several links of one message
   * within a second".  Such an event is one request, never a repeat: the
   * once-only index covers the others alone (imports, callbacks), or a
   * scanner's clicks on two links in one millisecond would be one. */
  "ALTER TABLE events ADD COLUMN machine TEXT;"
  "ALTER TABLE events ADD COLUMN at_ms INTEGER;"
  "DROP INDEX events_once;"
  "CREATE UNIQUE INDEX events_once ON events (customer, type, at,"
  " coalesce(channel, ''), coalesce(campaign, ''),"
  " coalesce(message_key, '')) WHERE at_ms IS NULL;",
  /* 3 -> 4: journeys.  The timer queue of herald serve: a triggered
   * campaign's entries (step 1, due the event's time plus the delay) and
   * every campaign's follow-up steps (due after the previous step was
   * sent).  One row per (campaign, customer, instance, step): instance
   * numbers a customer's entries into a triggered campaign (0 for a
   * campaign that herald run sends).  outbox.journey: the instance of a
   * message, NULL for herald run's. */
  "CREATE TABLE timers ("
  " id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, customer TEXT NOT NULL,"
  " instance INTEGER NOT NULL, step INTEGER NOT NULL, due INTEGER NOT NULL,"
  " state TEXT NOT NULL, reason TEXT, entered INTEGER NOT NULL,"
  " event TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
  " UNIQUE (campaign, customer, instance, step));"
  "CREATE INDEX timers_due ON timers (campaign, state, due);"
  "ALTER TABLE outbox ADD COLUMN journey INTEGER;",
  /* 4 -> 5: the short links of SMS ([channel.NAME] track_links, see
   * token.h).  The token names a link by its id alone; the message key
   * and the original URL are kept here, because the outbox row holds the
   * rewritten body, and only until it is sent.  id is an INTEGER PRIMARY
   * KEY, so VACUUM keeps it (the outbox's implicit rowid it may
   * renumber).  No index on message_key: the server reads by id only. */
  "CREATE TABLE links ("
  " id INTEGER PRIMARY KEY, message_key TEXT NOT NULL, url TEXT NOT NULL);"
  /* And the tracking server's reads of one message's recent clicks (the
   * burst rule, on every click): by message, type and millisecond, not
   * every click the message ever had (a hot link's cost grew with its
   * history: 377 clicks/s on one link in bench/serve/clicks.sh). */
  "CREATE INDEX events_message_ms ON events (message_key, type, at_ms);",
  /* 5 -> 6: a provider's callback names the message by the provider's id
   * (Twilio's MessageSid, a push service's id): found by it, the event is
   * the message's, with its campaign and key, not only the address's. */
  "CREATE INDEX outbox_provider ON outbox (provider_id) "
  "WHERE provider_id IS NOT NULL;",
};
#define N_MIGRATIONS ((int) (sizeof migrations / sizeof migrations[0]))
_Static_assert (sizeof migrations / sizeof migrations[0]
                == STORE_SCHEMA_VERSION,
                "one migration per schema version: bump STORE_SCHEMA_VERSION");

struct sqlite_store {
  struct store base;         /* first: the interface (backend.h) */
  sqlite3 *db;
  char *path;
  char *wal_path;            /* PATH-wal, which sq_files_check looks for */
  int in_tx;                 /* inside store_begin .. commit/rollback */
  int bulk;                  /* customer indexes dropped in this tx */
  sqlite3_stmt *q[Q_N];
  char err[512];
};

static void sq_close (struct store *st);
static const char *sq_error (const struct store *st);
static int sq_schema_version (struct store *st);
static const struct store_ops sqlite_ops;
static int sq_begin (struct store *st);
static int sq_commit (struct store *st);
static int sq_rollback (struct store *st);
static int sq_customer_put (struct store *st, const char *id, json_t *record);
static int sq_customer_put_text (struct store *st, const char *id, json_t *record, const char *text);
static json_t *sq_customer_get (struct store *st, const char *id);
static int sq_audience_next (struct store *st, const char *campaign, int step, const char *after_id, int limit, int (*cb) (void *data, json_t *customer), void *data);
static int sq_customer_exists (struct store *st, const char *id);
static int sq_bulk_customers (struct store *st, int64_t expected);
static int sq_customer_find (struct store *st, const char *channel, const char *address, int (*cb) (void *data, const char *id), void *data);
static int64_t sq_customer_count (struct store *st);
static int sq_consent_set (struct store *st, const char *customer, const char *channel, int granted, int64_t at, const char *source);
static int sq_consent_get (struct store *st, const char *customer, const char *channel);
static int sq_suppress (struct store *st, const char *channel, const char *address, const char *reason);
static int sq_is_suppressed (struct store *st, const char *channel, const char *address);
static int sq_event_put (struct store *st, const char *customer, const char *channel, const char *type, int64_t at, const char *campaign, const char *message_key, const char *detail_json);
static int sq_event_record (struct store *st, const struct store_event *ev);
static int sq_message_events (struct store *st, const char *key, const char *type, int64_t from_ms, int64_t to_ms, int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail, const char *machine), void *data);
static int sq_message_events_except (struct store *st, const char *key, const char *type, const char *except_detail, int64_t from_ms, int64_t to_ms, int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail, const char *machine), void *data);
static int sq_event_set_machine (struct store *st, int64_t id, const char *reason);
static int sq_customer_events (struct store *st, const char *customer, int64_t since, int (*cb) (void *data, const char *channel, const char *type, int64_t at), void *data);
static int sq_channel_stats (struct store *st, int64_t since, json_t **stats_r);
static int sq_outbox_insert (struct store *st, const struct outbox_row *row);
static int sq_outbox_update (struct store *st, const char *key, const char *state, int attempts, int64_t next_at, const char *provider_id, const char *error, const char *detail);
static int sq_outbox_update_reason (struct store *st, const char *key, const char *state, const char *reason, int attempts, int64_t next_at, const char *provider_id, const char *error, const char *detail);
static int sq_outbox_reroute (struct store *st, const struct outbox_row *row);
static int sq_outbox_get (struct store *st, const char *key, struct outbox_row **row_r);
static int sq_outbox_by_provider (struct store *st, const char *channel, const char *provider_id, struct outbox_row **row_r);
static int sq_outbox_reroutes (struct store *st, const char *campaign, int limit, int (*cb) (void *data, const struct outbox_row *row), void *data);
static int sq_outbox_reroute_none (struct store *st, const char *key);
static int sq_outbox_due (struct store *st, const char *campaign, int64_t now, int limit, int (*cb) (void *data, const struct outbox_row *row), void *data);
static int sq_outbox_recover (struct store *st, const char *campaign, int at_least_once, int max_attempts, int *n_r);
static int sq_outbox_next_due (struct store *st, const char *campaign, int64_t *next_r);
static int sq_sent_count (struct store *st, const char *customer, const char *channel, int64_t since);
static int sq_campaign_counts (struct store *st, const char *campaign, json_t **r);
static int sq_campaign_engagement (struct store *st, const char *campaign, json_t **r);
static int sq_campaign_conversions (struct store *st, const char *campaign, json_t **r);
static int sq_outbox_state_counts (struct store *st, json_t **r);
static int sq_event_counts (struct store *st, json_t **r);
static int sq_due_summary (struct store *st, int64_t now, struct store_due *r);
static int sq_campaign_start (struct store *st, const char *id, const char *name, int64_t now);
static int sq_campaign_finish (struct store *st, const char *id, const char *status, int64_t now);
static int sq_campaign_get (struct store *st, const char *id, json_t **r);
static int sq_timer_add (struct store *st, const struct store_timer *t);
static int sq_timers_due (struct store *st, const char *campaign, int64_t now, int limit, int (*cb) (void *data, const struct store_timer *t), void *data);
static int sq_timer_done (struct store *st, int64_t id, const char *state, const char *reason);
static int sq_timer_cancel (struct store *st, const char *campaign, const char *customer, int64_t at, const char *reason);
static int sq_journey_last (struct store *st, const char *campaign, const char *customer, int64_t *instance_r, int64_t *entered_r);
static int sq_journey_event (struct store *st, const char *campaign, const char *customer, int64_t instance, char **event_r);
static int sq_events_after (struct store *st, int64_t after_id, int limit, int (*cb) (void *data, const struct store_event_row *e), void *data);
static int sq_events_last_id (struct store *st, int64_t *id_r);
static int sq_meta_get_int (struct store *st, const char *key, int64_t *v_r);
static int sq_meta_set_int (struct store *st, const char *key, int64_t v);
static int sq_journey_engaged (struct store *st, const char *campaign, const char *customer, int64_t instance, int64_t since, const char *const *types, char *type_r, size_t len);
static int sq_timer_next (struct store *st, const char *campaign, int64_t *due_r);
static int sq_timer_stats (struct store *st, int64_t now, int64_t *due_r, int64_t *oldest_r);
static int sq_step_funnel (struct store *st, const char *campaign, json_t **r);
static int sq_link_add (struct store *st, const char *key, const char *url, size_t len, int64_t *id_r);
static int sq_link_get (struct store *st, int64_t id, char **key_r, char **url_r, size_t *len_r);

/* ---- errors ------------------------------------------------------- */

static void __attribute__ ((format (printf, 2, 3)))
set_err (struct sqlite_store *st, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (st->err, sizeof st->err, fmt, ap);
  va_end (ap);
}

/* Record an SQLite failure while doing WHAT. */
static int
db_fail (struct sqlite_store *st, const char *what)
{
  int code = sqlite3_errcode (st->db) & 0xff;

  /* What the user can do about it, for the failures that are theirs. */
  set_err (st, "%s: %s: %s%s", st->path, what, sqlite3_errmsg (st->db),
           code == SQLITE_READONLY
           ? " (the store file, its -wal and -shm files and their folder "
             "must be writable by the user running herald)"
           : code == SQLITE_FULL ? " (the disk is full: nothing of this "
             "transaction was recorded; free some space and run again)"
           : "");
  return -1;
}

static const char *
sq_error (const struct store *st_)
{
  const struct sqlite_store *st = (const struct sqlite_store *) st_;
  return st ? st->err : "no store";
}

/* ---- statements --------------------------------------------------- */

/* The cached statement ID, reset and unbound, or NULL (error set). */
static sqlite3_stmt *
q (struct sqlite_store *st, int id)
{
  sqlite3_stmt *s = st->q[id];

  long fault;

  st->err[0] = '\0';
  if (id != Q_ROLLBACK && (fault = store_fault_now ())) {
    set_err (st, "%s: injected fault (HERALD_STORE_FAULT, statement %ld)",
             st->path, fault);
    return NULL;
  }
  if (!s) {
    if (sqlite3_prepare_v3 (st->db, sql_text[id], -1,
                            SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
      db_fail (st, "preparing a statement");
      return NULL;
    }
    st->q[id] = s;
  }
  sqlite3_reset (s);
  sqlite3_clear_bindings (s);
  return s;
}

static void
bind_text (sqlite3_stmt *s, int i, const char *v)
{
  if (v)
    sqlite3_bind_text (s, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null (s, i);
}

/* Run a statement that returns no rows.  0 or -1. */
static int
run (struct sqlite_store *st, sqlite3_stmt *s, const char *what)
{
  int rc = sqlite3_step (s);
  if (rc != SQLITE_DONE) {
    db_fail (st, what);
    sqlite3_reset (s);
    return -1;
  }
  sqlite3_reset (s);
  return 0;
}

static char *
col_strdup (sqlite3_stmt *s, int i)
{
  const unsigned char *t = sqlite3_column_text (s, i);
  return t ? xstrdup ((const char *) t) : NULL;
}

/* Read a page, then hand it out: step S (bound, from q) until it is done
 * or LIMIT rows are read (0: no limit), COPY each row into an element of
 * SIZE bytes, reset S; then give the elements in order to EACH (0: go on,
 * 1: stop here, -1: fail), and DROP (which frees what COPY allocated, not
 * the element) and free them all.  Copying first lets EACH write to the
 * store: SQLite leaves undefined whether a running SELECT sees rows
 * written under it, and a statement of q is reused by the next call.
 * Returns the number of elements handed to EACH (the one that stopped
 * included), or -1 after a read error (store_error names WHAT; EACH is
 * never called) or when EACH failed. */
static int
page_each (struct sqlite_store *st, sqlite3_stmt *s, int limit, size_t size,
           void (*copy) (sqlite3_stmt *s, void *elem),
           void (*drop) (void *elem),
           int (*each) (void *ctx, void *elem), void *ctx, const char *what)
{
  char *rows = NULL;
  size_t n = 0, cap = 0, i;
  int rc = SQLITE_DONE, r = 0;

  while ((limit <= 0 || n < (size_t) limit)
         && (rc = sqlite3_step (s)) == SQLITE_ROW) {
    if (n == cap)
      rows = xrealloc (rows, (cap = cap ? 2 * cap : 8) * size);
    memset (rows + n * size, 0, size);
    copy (s, rows + n * size);
    n++;
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    r = db_fail (st, what);
  for (i = 0; r >= 0 && i < n; i++) {
    int e = each (ctx, rows + i * size);

    if (e < 0)
      r = -1;
    else {
      r++;
      if (e > 0)
        break;
    }
  }
  for (i = 0; i < n; i++)
    drop (rows + i * size);
  free (rows);
  return r;
}

/* A page of one string column (column 0): copy and drop for page_each. */
static void
copy_str0 (sqlite3_stmt *s, void *elem)
{
  *(char **) elem = col_strdup (s, 0);
}

static void
drop_str (void *elem)
{
  free (*(char **) elem);
}

/* ---- transactions ------------------------------------------------- */

static int
sq_begin (struct store *st_)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;
  if (st->in_tx) {
    set_err (st, "%s: a transaction is already open", st->path);
    return -1;
  }
  if (!(s = q (st, Q_BEGIN)) || run (st, s, "starting a transaction") < 0)
    return -1;
  st->in_tx = 1;
  return 0;
}

/* After a commit: the files this process writes are still the store's.
 * Removed, renamed or replaced (the store file), or deleted (its
 * write-ahead log), what is committed from then on would be lost when
 * herald exits, or never seen by another herald: stop.  0, or -1 with the
 * error set.  One stat each, once a transaction. */
static int
sq_files_check (struct sqlite_store *st)
{
  int moved = 0;
  struct stat sb;

  if (sqlite3_file_control (st->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved)
      == SQLITE_OK && moved) {
    set_err (st, "%s: the store file was removed, renamed or replaced while "
             "herald was using it: stopping, so that nothing more is "
             "recorded where no later run would find it (put the file back, "
             "then run again)", st->path);
    return -1;
  }
  if (stat (st->wal_path, &sb) < 0 && errno == ENOENT) {
    set_err (st, "%s: its write-ahead log %s was deleted while herald was "
             "using it: stopping; what was committed is copied into the "
             "store file as herald closes it (never delete -wal or -shm "
             "files of a store in use)", st->path, st->wal_path);
    return -1;
  }
  return 0;
}

static int
sq_commit (struct store *st_)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;
  if (!st->in_tx) {
    set_err (st, "%s: commit without a transaction", st->path);
    return -1;
  }
  if (st->bulk) {
    st->bulk = 0;
    if (sqlite3_exec (st->db, CUSTOMER_INDEXES, NULL, NULL, NULL)
        != SQLITE_OK) {
      db_fail (st, "rebuilding the customer indexes");
      sqlite3_exec (st->db, "ROLLBACK", NULL, NULL, NULL);
      st->in_tx = 0;
      return -1;
    }
  }
  if (!(s = q (st, Q_COMMIT)) || run (st, s, "committing") < 0) {
    /* A failed COMMIT (SQLITE_BUSY, disk full) may leave the transaction
     * open; roll it back so the caller's view matches the file. */
    if (!sqlite3_get_autocommit (st->db)) {
      char saved[sizeof st->err];
      memcpy (saved, st->err, sizeof saved);
      sqlite3_exec (st->db, "ROLLBACK", NULL, NULL, NULL);
      memcpy (st->err, saved, sizeof saved);
    }
    st->in_tx = 0;
    return -1;
  }
  st->in_tx = 0;
  if (sq_files_check (st) < 0)
    return -1;
  return 0;
}

static int
sq_rollback (struct store *st_)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  int r = 0;
  if (!sqlite3_get_autocommit (st->db)) {
    sqlite3_stmt *s = q (st, Q_ROLLBACK);
    r = s ? run (st, s, "rolling back") : -1;
  }
  st->in_tx = 0;
  st->bulk = 0;          /* the rollback restored the indexes */
  return r;
}

/* For a function that makes several changes: start a transaction unless
 * the caller has one.  Returns 1 when it started one (pass to tx_leave),
 * 0 when the caller's is used, -1 on error. */
static int
tx_enter (struct sqlite_store *st)
{
  if (st->in_tx)
    return 0;
  return sq_begin (&st->base) < 0 ? -1 : 1;
}

/* Finish what tx_enter started: commit when R >= 0, else roll back
 * (keeping the first error).  Returns R, or -1 when the commit fails. */
static int
tx_leave (struct sqlite_store *st, int owned, int r)
{
  if (owned != 1)
    return r;
  if (r < 0) {
    char saved[sizeof st->err];
    memcpy (saved, st->err, sizeof saved);
    sq_rollback (&st->base);
    memcpy (st->err, saved, sizeof saved);
    return r;
  }
  return sq_commit (&st->base) < 0 ? -1 : r;
}

/* ---- open / close / migrate --------------------------------------- */

static int
read_version (struct sqlite_store *st, int *v_r)
{
  sqlite3_stmt *s = NULL;
  int rc;

  *v_r = 0;
  /* No meta table yet: a new (or pre-versioning) file, version 0. */
  if (sqlite3_prepare_v2 (st->db,
                          "SELECT value FROM meta WHERE key = 'schema_version' "
                          "AND EXISTS (SELECT 1 FROM sqlite_schema "
                          "WHERE type = 'table' AND name = 'meta')",
                          -1, &s, NULL) != SQLITE_OK) {
    if (sqlite3_prepare_v2 (st->db, "SELECT 1 FROM sqlite_schema WHERE "
                            "type = 'table' AND name = 'meta'", -1, &s, NULL)
        != SQLITE_OK)
      return db_fail (st, "reading the schema version");
    rc = sqlite3_step (s);
    sqlite3_finalize (s);
    if (rc == SQLITE_DONE)
      return 0;
    if (rc == SQLITE_ROW)
      return db_fail (st, "reading the schema version");
    return db_fail (st, "reading the schema");
  }
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    *v_r = sqlite3_column_int (s, 0);
  else if (rc != SQLITE_DONE) {
    sqlite3_finalize (s);
    return db_fail (st, "reading the schema version");
  }
  sqlite3_finalize (s);
  return 0;
}

/* Bring the file to N_MIGRATIONS.  A file already there is only read: a
 * report or a second herald must open the store while an import holds
 * the write lock (WAL lets readers through), so the lock is taken only
 * when there is something to migrate. */
static int
migrate (struct sqlite_store *st)
{
  int v, r = -1;
  char *sql;

  if (read_version (st, &v) < 0)
    return -1;
  if (v == N_MIGRATIONS)
    return 0;
  if (v > N_MIGRATIONS) {
    set_err (st, "%s: schema version %d is newer than this herald's (%d): "
             "upgrade herald", st->path, v, N_MIGRATIONS);
    return -1;
  }
  if (sqlite3_exec (st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return db_fail (st, "locking the store to migrate its schema");
  if (sqlite3_exec (st->db,
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                    "value TEXT)", NULL, NULL, NULL) != SQLITE_OK) {
    db_fail (st, "creating the meta table");
    goto out;
  }
  /* Another herald may have migrated it while we waited for the lock. */
  if (read_version (st, &v) < 0)
    goto out;
  if (v > N_MIGRATIONS) {
    set_err (st, "%s: schema version %d is newer than this herald's (%d): "
             "upgrade herald", st->path, v, N_MIGRATIONS);
    goto out;
  }
  for (; v < N_MIGRATIONS; v++) {
    if (sqlite3_exec (st->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
      char what[64];
      snprintf (what, sizeof what, "migrating from schema %d to %d", v, v + 1);
      db_fail (st, what);
      goto out;
    }
    sql = xasprintf ("INSERT INTO meta (key, value) VALUES "
                     "('schema_version', %d) ON CONFLICT (key) DO UPDATE "
                     "SET value = excluded.value", v + 1);
    if (sqlite3_exec (st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
      free (sql);
      db_fail (st, "recording the schema version");
      goto out;
    }
    free (sql);
  }
  r = 0;
out:
  if (r == 0 && sqlite3_exec (st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    r = db_fail (st, "committing the schema");
  if (r < 0)
    sqlite3_exec (st->db, "ROLLBACK", NULL, NULL, NULL);
  return r;
}

struct store *
sqlite_store_open (const char *path, char *err, size_t errlen)
{
  struct sqlite_store *st = xcalloc (1, sizeof *st);
  char *mode = NULL;
  sqlite3_stmt *s = NULL;
  struct stat sb;

  st->base.ops = &sqlite_ops;

  st->path = xstrdup (path);
  st->wal_path = xasprintf ("%s-wal", path);
  /* SQLite's own message for a missing folder is "unable to open database
   * file": say which file and why. */
  {
    char *dir = xstrdup (path), *slash = strrchr (dir, '/');
    if (slash) {
      *(slash == dir ? slash + 1 : slash) = '\0';
      if (stat (dir, &sb) < 0 || !S_ISDIR (sb.st_mode)) {
        snprintf (err, errlen, "%s: cannot create the store: folder '%s' "
                  "does not exist", path, dir);
        free (dir);
        goto fail;
      }
    }
    free (dir);
  }
  /* The store holds every customer: only its owner may read it.  SQLite
   * would create a new file 0644 (less the umask), and it gives the -wal,
   * -shm and -journal files it creates the main file's mode; so the main
   * file is created here, 0600, and SQLite takes the empty file for a new
   * database.  A store that exists is not touched here (nor its mode). */
  {
    int fd = open_private (path, O_RDWR | O_EXCL | O_CLOEXEC);
    if (fd >= 0)
      close (fd);
    else if (errno != EEXIST) {
      snprintf (err, errlen, "%s: cannot create the store: %s", path,
                strerror (errno));
      goto fail;
    }
  }
  if (sqlite3_open_v2 (path, &st->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                       | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf (err, errlen, "%s: cannot open the store: %s", path,
              st->db ? sqlite3_errmsg (st->db) : "out of memory");
    goto fail;
  }
  sqlite3_extended_result_codes (st->db, 1);
  /* Another herald (the tracking server, a second run) may hold the write
   * lock for a moment: wait rather than fail. */
  sqlite3_busy_timeout (st->db, STORE_LOCK_WAIT * 1000);

  /* WAL: readers (report, serve) never block the writer.  The mode is
   * persistent in the file; check it took (it cannot on some network file
   * systems, and then durability assumptions differ). */
  if (sqlite3_prepare_v2 (st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL)
      != SQLITE_OK || sqlite3_step (s) != SQLITE_ROW) {
    snprintf (err, errlen, "%s: not a usable SQLite store: %s", path,
              sqlite3_errmsg (st->db));
    goto fail;
  }
  mode = col_strdup (s, 0);
  sqlite3_finalize (s);
  s = NULL;
  if (!mode || strcmp (mode, "wal") != 0) {
    snprintf (err, errlen, "%s: cannot switch the store to WAL mode (got '%s')",
              path, mode ? mode : "?");
    goto fail;
  }
  /* synchronous=FULL: in WAL mode, NORMAL may lose the last commits on
   * power loss.  The outbox's rule is "committed as sending before the
   * plugin is called"; a lost 'sending' commit after the provider accepted
   * the message would mean a duplicate (at-most-once campaigns would break).
   * FULL costs one fsync per commit, and commits are batched.
   * A 32 MB page cache: a million-customer import measured 30.7 s with it,
   * 36 s with 8 MB (the id index spills), and no faster with 64 MB.
   * temp_store stays FILE: with MEMORY, rebuilding the indexes after a
   * million-customer import peaked at 121 MB RSS instead of 78 MB, for no
   * measurable gain. */
  if (sqlite3_exec (st->db, "PRAGMA synchronous = FULL; "
                    "PRAGMA foreign_keys = OFF; "
                    "PRAGMA cache_size = -32768",
                    NULL, NULL, NULL) != SQLITE_OK) {
    snprintf (err, errlen, "%s: %s", path, sqlite3_errmsg (st->db));
    goto fail;
  }
  if (migrate (st) < 0) {
    snprintf (err, errlen, "%s", st->err);
    goto fail;
  }
  free (mode);
  st->err[0] = '\0';
  return &st->base;

fail:
  if (s)
    sqlite3_finalize (s);
  free (mode);
  sq_close (&st->base);
  return NULL;
}

static void
sq_close (struct store *st_)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  int i;
  if (!st)
    return;
  if (st->db && !sqlite3_get_autocommit (st->db))
    sqlite3_exec (st->db, "ROLLBACK", NULL, NULL, NULL);
  for (i = 0; i < Q_N; i++)
    sqlite3_finalize (st->q[i]);
  /* sqlite3_close checkpoints the write-ahead log into the store file and
   * says nothing when that fails: ask first, so a failing disk is said
   * (what was committed stays in the log, which the next open reads). */
  if (st->db) {
    int rc = sqlite3_wal_checkpoint_v2 (st->db, NULL,
                                        SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED
        && rc != SQLITE_READONLY)
      fprintf (stderr, "herald: warning: %s: could not copy the write-ahead "
               "log into the store file (%s): what was committed stays in "
               "%s-wal, which the next herald reads; check the disk\n",
               st->path, sqlite3_errstr (rc), st->path);
    sqlite3_close (st->db);
  }
  free (st->path);
  free (st->wal_path);
  free (st);
}

static const char *
sq_name (const struct store *st_)
{
  return ((const struct sqlite_store *) st_)->path;
}

static int
sq_schema_version (struct store *st_)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  int v;
  return read_version (st, &v) < 0 ? -1 : v;
}

/* ---- customers ---------------------------------------------------- */


static int
sq_customer_put (struct store *st_, const char *id, json_t *record)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  return sq_customer_put_text (&st->base, id, record, NULL);
}

static int
sq_customer_put_text (struct store *st_, const char *id, json_t *record,
                         const char *text)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;
  char *dumped = NULL;
  int r = -1;

  if (!json_is_object (record)) {
    set_err (st, "%s: customer '%s': record is not an object", st->path, id);
    return -1;
  }
  /* Encoding costs about as much as the insert itself: the importer
   * passes the line it parsed when that is already the record. */
  if (!text && !(text = dumped = json_dumps (record, JSON_COMPACT))) {
    set_err (st, "%s: customer '%s': cannot encode the record", st->path, id);
    return -1;
  }
  if (!(s = q (st, Q_CUST_PUT)))
    goto out;
  bind_text (s, 1, id);
  bind_text (s, 2, store_jstr (record, "email"));
  bind_text (s, 3, store_jstr (record, "phone"));
  bind_text (s, 4, store_jstr (record, "timezone"));
  bind_text (s, 5, store_jstr (record, "locale"));
  bind_text (s, 6, store_jstr (record, "webhook"));
  bind_text (s, 7, text);
  sqlite3_bind_int64 (s, 8, now_seconds ());
  r = run (st, s, "writing a customer");
out:
  free (dumped);
  return r;
}

static int
sq_bulk_customers (struct store *st_, int64_t expected)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  int64_t have = 0;

  if (!st->in_tx) {
    set_err (st, "%s: a bulk import needs a transaction", st->path);
    return -1;
  }
  if (st->bulk)
    return 1;
  /* Rebuilding costs a sort of the whole table: worth it only when the
   * import is large and at least as big as what is already there. */
  if (expected < 20000 || (have = sq_customer_count (&st->base)) < 0
      || expected < have)
    return have < 0 ? -1 : 0;
  if (sqlite3_exec (st->db, DROP_CUSTOMER_INDEXES, NULL, NULL, NULL)
      != SQLITE_OK)
    return db_fail (st, "dropping the customer indexes for a bulk import");
  st->bulk = 1;
  return 1;
}

/* Overlay ID's explicit consent changes on RECORD's "consent" (which
 * becomes an object when absent): the effective consent. */
static int
merge_consent (struct sqlite_store *st, const char *id, json_t *record)
{
  sqlite3_stmt *s = q (st, Q_CONSENT_ALL);
  json_t *c;
  int rc;

  if (!s)
    return -1;
  c = json_object_get (record, "consent");
  if (!json_is_object (c)) {
    c = json_object ();
    json_object_set_new (record, "consent", c);
  }
  bind_text (s, 1, id);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    json_object_set_new (c, (const char *) sqlite3_column_text (s, 0),
                         json_boolean (sqlite3_column_int (s, 1)));
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return db_fail (st, "reading consent");
  return 0;
}

static json_t *
load_record (struct sqlite_store *st, const char *id, const char *text)
{
  const char *why;
  size_t off;
  json_t *rec = jsoncheck_load (text, strlen (text), 0, &why, &off);

  if (!json_is_object (rec)) {
    json_decref (rec);
    set_err (st, "%s: customer '%s': stored record is not a JSON object",
             st->path, id);
    return NULL;
  }
  if (merge_consent (st, id, rec) < 0) {
    json_decref (rec);
    return NULL;
  }
  return rec;
}

static json_t *
sq_customer_get (struct store *st_, const char *id)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CUST_GET);
  char *text;
  json_t *rec;
  int rc;

  if (!s)
    return NULL;
  bind_text (s, 1, id);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset (s);
    return NULL;
  }
  if (rc != SQLITE_ROW) {
    db_fail (st, "reading a customer");
    sqlite3_reset (s);
    return NULL;
  }
  text = col_strdup (s, 0);
  sqlite3_reset (s);
  rec = load_record (st, id, text ? text : "");
  free (text);
  return rec;
}

static int
sq_customer_exists (struct store *st_, const char *id)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CUST_EXISTS);
  int rc;

  if (!s)
    return -1;
  bind_text (s, 1, id);
  rc = sqlite3_step (s);
  sqlite3_reset (s);
  if (rc == SQLITE_ROW)
    return 1;
  if (rc == SQLITE_DONE)
    return 0;
  return db_fail (st, "looking up a customer");
}

struct find_ctx {
  int (*cb) (void *data, const char *id);
  void *data;
};

static int
find_each (void *ctx, void *elem)
{
  struct find_ctx *c = ctx;
  return c->cb (c->data, *(char **) elem) ? 1 : 0;
}

static int
sq_customer_find (struct store *st_, const char *channel,
                     const char *address,
                     int (*cb) (void *data, const char *id), void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  struct find_ctx c = { cb, data };
  sqlite3_stmt *s;
  int id;

  if (strcmp (channel, "email") == 0)
    id = Q_FIND_EMAIL;
  else if (strcmp (channel, "sms") == 0)
    id = Q_FIND_PHONE;
  else if (strcmp (channel, "webhook") == 0)
    id = Q_FIND_WEBHOOK;
  else {
    set_err (st, "%s: customers cannot be looked up by a %s address",
             st->path, channel);
    return -1;
  }
  if (!(s = q (st, id)))
    return -1;
  bind_text (s, 1, address);
  /* Read all first: the callback (an SMS STOP) writes consent. */
  return page_each (st, s, 0, sizeof (char *), copy_str0, drop_str,
                    find_each, &c, "looking up customers by address");
}

static int64_t
sq_customer_count (struct store *st_)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CUST_COUNT);
  int64_t n;

  if (!s)
    return -1;
  if (sqlite3_step (s) != SQLITE_ROW) {
    db_fail (st, "counting customers");
    sqlite3_reset (s);
    return -1;
  }
  n = sqlite3_column_int64 (s, 0);
  sqlite3_reset (s);
  return n;
}

struct audience_row {
  char *id, *text;
};

static void
audience_copy (sqlite3_stmt *s, void *elem)
{
  struct audience_row *a = elem;
  a->id = col_strdup (s, 0);
  a->text = col_strdup (s, 1);
}

static void
audience_drop (void *elem)
{
  struct audience_row *a = elem;
  free (a->id);
  free (a->text);
}

struct audience_ctx {
  struct sqlite_store *st;
  int (*cb) (void *data, json_t *customer);
  void *data;
};

static int
audience_each (void *ctx, void *elem)
{
  struct audience_ctx *c = ctx;
  struct audience_row *a = elem;
  json_t *rec = load_record (c->st, a->id, a->text ? a->text : "");
  int stop;

  if (!rec)
    return -1;
  stop = c->cb (c->data, rec);
  json_decref (rec);
  return stop ? 1 : 0;
}

static int
sq_audience_next (struct store *st_, const char *campaign, int step,
                     const char *after_id, int limit,
                     int (*cb) (void *data, json_t *customer), void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_AUDIENCE);
  struct audience_ctx c = { st, cb, data };

  if (!s)
    return -1;
  if (limit <= 0)
    limit = 1000;
  bind_text (s, 1, after_id ? after_id : "");
  bind_text (s, 2, campaign);
  sqlite3_bind_int (s, 3, step);
  sqlite3_bind_int (s, 4, limit);
  /* Read the page first: the callback will write outbox rows. */
  return page_each (st, s, limit, sizeof (struct audience_row), audience_copy,
                    audience_drop, audience_each, &c, "reading the audience");
}

/* ---- consent and suppressions ------------------------------------- */

static int
sq_consent_set (struct store *st_, const char *customer, const char *channel,
                   int granted, int64_t at, const char *source)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CONSENT_SET);
  if (!s)
    return -1;
  bind_text (s, 1, customer);
  bind_text (s, 2, channel);
  sqlite3_bind_int (s, 3, granted ? 1 : 0);
  sqlite3_bind_int64 (s, 4, at);
  bind_text (s, 5, source);
  return run (st, s, "recording a consent change");
}

static int
sq_consent_get (struct store *st_, const char *customer, const char *channel)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CONSENT_GET);
  json_t *rec, *v;
  int rc, r = -1;

  if (!s)
    return -1;
  bind_text (s, 1, customer);
  bind_text (s, 2, channel);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    r = sqlite3_column_int (s, 0) ? 1 : 0;
  else if (rc != SQLITE_DONE)
    db_fail (st, "reading consent");
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return r;
  /* No explicit change: what the imported record says. */
  if (!(rec = sq_customer_get (&st->base, customer)))
    return -1;
  v = json_object_get (json_object_get (rec, "consent"), channel);
  if (json_is_boolean (v))
    r = json_is_true (v);
  json_decref (rec);
  return r;
}

static int
sq_suppress (struct store *st_, const char *channel, const char *address,
                const char *reason)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_SUPPRESS);
  if (!s)
    return -1;
  bind_text (s, 1, channel);
  bind_text (s, 2, address);
  bind_text (s, 3, reason);
  sqlite3_bind_int64 (s, 4, now_seconds ());
  return run (st, s, "suppressing an address");
}

static int
sq_is_suppressed (struct store *st_, const char *channel,
                     const char *address)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_IS_SUPPRESSED);
  int rc;

  if (!s)
    return -1;
  bind_text (s, 1, channel);
  bind_text (s, 2, address);
  rc = sqlite3_step (s);
  sqlite3_reset (s);
  if (rc == SQLITE_ROW)
    return 1;
  if (rc == SQLITE_DONE)
    return 0;
  return db_fail (st, "reading suppressions");
}

/* ---- events ------------------------------------------------------- */


/* A bounce or complaint: suppress the address the message went to, else
 * the one the event names, else the customer's current address(es) on
 * CHANNEL.  Nothing to suppress is not an error (an event about a
 * customer the store does not know). */
static int
suppress_for_event (struct sqlite_store *st, const char *customer,
                    const char *channel, const char *type,
                    const char *message_key, const char *detail_json)
{
  sqlite3_stmt *s;
  json_t *j = NULL, *a;
  char *text = NULL;
  int r = 0, rc;

  if (!channel)
    return 0;
  if (message_key) {
    if (!(s = q (st, Q_OB_ADDRESS)))
      return -1;
    bind_text (s, 1, message_key);
    rc = sqlite3_step (s);
    if (rc == SQLITE_ROW)
      text = col_strdup (s, 0);
    else if (rc != SQLITE_DONE) {
      sqlite3_reset (s);
      return db_fail (st, "reading a message's address");
    }
    sqlite3_reset (s);
    if (text && (j = json_loads (text, JSON_DECODE_ANY, NULL))
        && (json_is_string (j) || json_array_size (j) > 0)) {
      r = store_suppress_json (&st->base, channel, j, type);
      goto out;
    }
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

  if (!(s = q (st, Q_CUST_ADDR)))
    return -1;
  bind_text (s, 1, customer);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset (s);
    return 0;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_reset (s);
    return db_fail (st, "reading a customer's address");
  }
  if (strcmp (channel, "email") == 0 && sqlite3_column_text (s, 0))
    j = json_string ((const char *) sqlite3_column_text (s, 0));
  else if (strcmp (channel, "sms") == 0 && sqlite3_column_text (s, 1))
    j = json_string ((const char *) sqlite3_column_text (s, 1));
  else if (strcmp (channel, "webhook") == 0 && sqlite3_column_text (s, 2))
    j = json_string ((const char *) sqlite3_column_text (s, 2));
  else if (strcmp (channel, "push") == 0 && sqlite3_column_text (s, 3)) {
    json_t *rec = json_loads ((const char *) sqlite3_column_text (s, 3), 0,
                              NULL);
    j = json_incref (json_object_get (rec, "push"));
    json_decref (rec);
  }
  sqlite3_reset (s);
  if (j && !(json_is_string (j) && !*json_string_value (j)))
    r = store_suppress_json (&st->base, channel, j, type);
out:
  json_decref (j);
  free (text);
  return r;
}

static int
sq_event_put (struct store *st_, const char *customer, const char *channel,
                 const char *type, int64_t at, const char *campaign,
                 const char *message_key, const char *detail_json)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  struct store_event ev;

  memset (&ev, 0, sizeof ev);
  ev.customer = customer;
  ev.channel = channel;
  ev.type = type;
  ev.at = at;
  ev.campaign = campaign;
  ev.message_key = message_key;
  ev.detail_json = detail_json;
  return sq_event_record (&st->base, &ev);
}

static int
sq_event_record (struct store *st_, const struct store_event *ev)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  const char *customer = ev->customer, *channel = ev->channel;
  const char *type = ev->type, *message_key = ev->message_key;
  const char *detail_json = ev->detail_json;
  int64_t at = ev->at;
  sqlite3_stmt *s;
  int owned, r = -1;

  if ((owned = tx_enter (st)) < 0)
    return -1;
  if (!(s = q (st, Q_EVENT_PUT)))
    goto out;
  bind_text (s, 1, customer);
  bind_text (s, 2, channel);
  bind_text (s, 3, type);
  sqlite3_bind_int64 (s, 4, at);
  bind_text (s, 5, ev->campaign);
  bind_text (s, 6, message_key);
  bind_text (s, 7, detail_json);
  if (ev->at_ms)
    sqlite3_bind_int64 (s, 8, ev->at_ms);
  else
    sqlite3_bind_null (s, 8);
  bind_text (s, 9, ev->machine);
  if (run (st, s, "recording an event") < 0)
    goto out;
  if (sqlite3_changes (st->db) == 0) {
    r = 1;                      /* already recorded, effects applied */
    goto out;
  }
  /* An unsubscribe is an explicit withdrawal of consent for that channel:
   * it wins over the imported consent (and over older explicit grants). */
  if (strcmp (type, "unsubscribed") == 0 && channel
      && sq_consent_set (&st->base, customer, channel, 0, at, "unsubscribed event")
         < 0)
    goto out;
  /* A hard bounce or a spam complaint: sending again to that address hurts
   * the sender's reputation, so the address (not the customer) is
   * suppressed on that channel. */
  if ((strcmp (type, "bounced") == 0 || strcmp (type, "complained") == 0)
      && suppress_for_event (st, customer, channel, type, message_key,
                             detail_json) < 0)
    goto out;
  r = 0;
out:
  return tx_leave (st, owned, r);
}

struct msg_event {
  int64_t id, at_ms;
  char *detail, *machine;
};

static void
msg_event_copy (sqlite3_stmt *s, void *elem)
{
  struct msg_event *e = elem;
  e->id = sqlite3_column_int64 (s, 0);
  e->at_ms = sqlite3_column_int64 (s, 1);
  e->detail = col_strdup (s, 2);
  e->machine = col_strdup (s, 3);
}

static void
msg_event_drop (void *elem)
{
  struct msg_event *e = elem;
  free (e->detail);
  free (e->machine);
}

struct msg_events_ctx {
  int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail,
             const char *machine);
  void *data;
};

static int
msg_events_each (void *ctx, void *elem)
{
  struct msg_events_ctx *c = ctx;
  struct msg_event *e = elem;
  return c->cb (c->data, e->id, e->at_ms, e->detail, e->machine) ? 1 : 0;
}

static int
sq_message_events (struct store *st_, const char *key, const char *type,
                      int64_t from_ms, int64_t to_ms,
                      int (*cb) (void *data, int64_t id, int64_t at_ms,
                                 const char *detail, const char *machine),
                      void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  return sq_message_events_except (&st->base, key, type, NULL, from_ms, to_ms, cb,
                                      data);
}

static int
sq_message_events_except (struct store *st_, const char *key,
                             const char *type, const char *except_detail,
                             int64_t from_ms, int64_t to_ms,
                             int (*cb) (void *data, int64_t id, int64_t at_ms,
                                        const char *detail,
                                        const char *machine),
                             void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_MSG_EVENTS);
  struct msg_events_ctx c = { cb, data };

  if (!s)
    return -1;
  bind_text (s, 1, key);
  bind_text (s, 2, type);
  sqlite3_bind_int64 (s, 3, from_ms);
  sqlite3_bind_int64 (s, 4, to_ms);
  bind_text (s, 5, except_detail);
  /* Read all first: the callback may flag them (store_event_set_machine). */
  return page_each (st, s, 0, sizeof (struct msg_event), msg_event_copy,
                    msg_event_drop, msg_events_each, &c,
                    "reading a message's events");
}

static int
sq_event_set_machine (struct store *st_, int64_t id, const char *reason)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_EVENT_MACHINE);

  if (!s)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  bind_text (s, 2, reason);
  if (run (st, s, "flagging an event as a machine's") < 0)
    return -1;
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

static int
sq_customer_events (struct store *st_, const char *customer, int64_t since,
                       int (*cb) (void *data, const char *channel,
                                  const char *type, int64_t at),
                       void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CUST_EVENTS);
  int rc, n = 0;

  if (!s)
    return -1;
  bind_text (s, 1, customer);
  sqlite3_bind_int64 (s, 2, since);
  /* A customer's events are few: the callback (the router) only reads, so
   * it runs on the live statement. */
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    n++;
    if (cb (data, (const char *) sqlite3_column_text (s, 0),
            (const char *) sqlite3_column_text (s, 1),
            sqlite3_column_int64 (s, 2))) {
      sqlite3_reset (s);
      return n;
    }
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return db_fail (st, "reading a customer's events");
  return n;
}


static int
sq_channel_stats (struct store *st_, int64_t since, json_t **stats_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;
  json_t *stats = json_object ();
  int rc;

  *stats_r = NULL;
  if (!(s = q (st, Q_STATS_SENT)))
    goto fail;
  sqlite3_bind_int64 (s, 1, since);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    json_object_set_new (store_stats_channel (stats,
                                        (const char *) sqlite3_column_text (s, 0)),
                         "sent", json_integer (sqlite3_column_int64 (s, 1)));
  sqlite3_reset (s);
  if (rc != SQLITE_DONE) {
    db_fail (st, "counting sent messages");
    goto fail;
  }
  if (!(s = q (st, Q_STATS_EVENTS)))
    goto fail;
  sqlite3_bind_int64 (s, 1, since);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    json_object_set_new (store_stats_channel (stats,
                                        (const char *) sqlite3_column_text (s, 0)),
                         (const char *) sqlite3_column_text (s, 1),
                         json_integer (sqlite3_column_int64 (s, 2)));
  sqlite3_reset (s);
  if (rc != SQLITE_DONE) {
    db_fail (st, "counting events");
    goto fail;
  }
  *stats_r = stats;
  return 0;
fail:
  json_decref (stats);
  return -1;
}

/* ---- outbox ------------------------------------------------------- */


static int
sq_outbox_insert (struct store *st_, const struct outbox_row *row)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;
  int64_t now = now_seconds ();

  if (!row->key || !row->campaign || !row->customer
      || !store_state_valid (row->state)) {
    set_err (st, "%s: outbox row '%s': missing key, campaign or customer, "
             "or unknown state '%s'", st->path, row->key ? row->key : "",
             row->state ? row->state : "");
    return -1;
  }
  if (!(s = q (st, Q_OB_INSERT)))
    return -1;
  bind_text (s, 1, row->key);
  bind_text (s, 2, row->campaign);
  sqlite3_bind_int (s, 3, row->step);
  bind_text (s, 4, row->customer);
  bind_text (s, 5, row->channel);
  bind_text (s, 6, row->instance);
  bind_text (s, 7, row->variant);
  bind_text (s, 8, row->state);
  bind_text (s, 9, row->reason);
  sqlite3_bind_int (s, 10, row->attempts);
  sqlite3_bind_int64 (s, 11, row->next_at);
  sqlite3_bind_int64 (s, 12, row->created ? row->created : now);
  sqlite3_bind_int64 (s, 13, now);
  if (strcmp (row->state, "sent") == 0)
    sqlite3_bind_int64 (s, 14, row->sent_at ? row->sent_at : now);
  else
    sqlite3_bind_null (s, 14);
  bind_text (s, 15, row->provider_id);
  bind_text (s, 16, row->error);
  bind_text (s, 17, row->detail);
  bind_text (s, 18, row->address);
  bind_text (s, 19, row->parts);
  bind_text (s, 20, row->trace);
  if (row->journey)
    sqlite3_bind_int64 (s, 21, row->journey);
  else
    sqlite3_bind_null (s, 21);
  if (run (st, s, "inserting an outbox row") < 0)
    return -1;
  /* ON CONFLICT DO NOTHING: no change means the key was already there. */
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

static int
outbox_update (struct sqlite_store *st, int id, const char *key, const char *state,
               const char *reason, int attempts, int64_t next_at,
               const char *provider_id, const char *error, const char *detail)
{
  sqlite3_stmt *s;

  if (!store_state_valid (state)) {
    set_err (st, "%s: outbox row '%s': unknown state '%s'", st->path, key,
             state ? state : "");
    return -1;
  }
  if (!(s = q (st, id)))
    return -1;
  bind_text (s, 1, key);
  bind_text (s, 2, state);
  sqlite3_bind_int (s, 3, attempts);
  sqlite3_bind_int64 (s, 4, next_at);
  bind_text (s, 5, provider_id);
  bind_text (s, 6, error);
  bind_text (s, 7, detail);
  sqlite3_bind_int64 (s, 8, now_seconds ());
  if (id == Q_OB_UPDATE_REASON)
    bind_text (s, 9, reason);
  if (run (st, s, "updating an outbox row") < 0)
    return -1;
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

static int
sq_outbox_update (struct store *st_, const char *key, const char *state,
                     int attempts, int64_t next_at, const char *provider_id,
                     const char *error, const char *detail)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  return outbox_update (st, Q_OB_UPDATE, key, state, NULL, attempts, next_at,
                        provider_id, error, detail);
}

static int
sq_outbox_update_reason (struct store *st_, const char *key,
                            const char *state, const char *reason,
                            int attempts, int64_t next_at,
                            const char *provider_id, const char *error,
                            const char *detail)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  return outbox_update (st, Q_OB_UPDATE_REASON, key, state, reason, attempts,
                        next_at, provider_id, error, detail);
}

static int
sq_outbox_reroute (struct store *st_, const struct outbox_row *row)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;

  if (!row->key || !store_state_valid (row->state)) {
    set_err (st, "%s: outbox row '%s': missing key or unknown state '%s'",
             st->path, row->key ? row->key : "", row->state ? row->state : "");
    return -1;
  }
  if (!(s = q (st, Q_OB_REROUTE)))
    return -1;
  bind_text (s, 1, row->key);
  bind_text (s, 2, row->channel);
  bind_text (s, 3, row->instance);
  bind_text (s, 4, row->variant);
  bind_text (s, 5, row->state);
  bind_text (s, 6, row->reason);
  sqlite3_bind_int64 (s, 7, row->next_at);
  bind_text (s, 8, row->address);
  bind_text (s, 9, row->parts);
  bind_text (s, 10, row->trace);
  sqlite3_bind_int64 (s, 11, now_seconds ());
  if (run (st, s, "re-routing an outbox row") < 0)
    return -1;
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

/* A row read from a statement selecting OUTBOX_COLS; every string owned
 * (freed by store_row_free). */
static struct outbox_row *
row_from (sqlite3_stmt *s)
{
  struct outbox_row *r = xcalloc (1, sizeof *r);
  r->key = col_strdup (s, 0);
  r->campaign = col_strdup (s, 1);
  r->step = sqlite3_column_int (s, 2);
  r->customer = col_strdup (s, 3);
  r->channel = col_strdup (s, 4);
  r->instance = col_strdup (s, 5);
  r->variant = col_strdup (s, 6);
  r->state = col_strdup (s, 7);
  r->reason = col_strdup (s, 8);
  r->attempts = sqlite3_column_int (s, 9);
  r->next_at = sqlite3_column_int64 (s, 10);
  r->created = sqlite3_column_int64 (s, 11);
  r->updated = sqlite3_column_int64 (s, 12);
  r->sent_at = sqlite3_column_int64 (s, 13);
  r->provider_id = col_strdup (s, 14);
  r->error = col_strdup (s, 15);
  r->detail = col_strdup (s, 16);
  r->address = col_strdup (s, 17);
  r->parts = col_strdup (s, 18);
  r->trace = col_strdup (s, 19);
  r->journey = sqlite3_column_int64 (s, 20);
  return r;
}


static int
sq_outbox_get (struct store *st_, const char *key, struct outbox_row **row_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_GET);
  int rc;

  *row_r = NULL;
  if (!s)
    return -1;
  bind_text (s, 1, key);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    *row_r = row_from (s);
  sqlite3_reset (s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_fail (st, "reading an outbox row");
  return 0;
}

static int outbox_page (struct sqlite_store *st, sqlite3_stmt *s, int limit,
                        int (*cb) (void *data, const struct outbox_row *row),
                        void *data);

static int
sq_outbox_reroutes (struct store *st_, const char *campaign, int limit,
                       int (*cb) (void *data, const struct outbox_row *row),
                       void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_REROUTES);

  if (!s)
    return -1;
  if (limit <= 0)
    limit = 1000;
  bind_text (s, 1, campaign);
  sqlite3_bind_int (s, 2, limit);
  return outbox_page (st, s, limit, cb, data);
}

static int
sq_outbox_reroute_none (struct store *st_, const char *key)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_REROUTE_NONE);

  if (!s)
    return -1;
  bind_text (s, 1, key);
  sqlite3_bind_int64 (s, 2, now_seconds ());
  if (run (st, s, "failing a message with no channel left") < 0)
    return -1;
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

static void
due_copy (sqlite3_stmt *s, void *elem)
{
  *(struct outbox_row **) elem = row_from (s);
}

static void
due_drop (void *elem)
{
  store_row_free (*(struct outbox_row **) elem);
}

struct due_ctx {
  int (*cb) (void *data, const struct outbox_row *row);
  void *data;
};

static int
due_each (void *ctx, void *elem)
{
  struct due_ctx *c = ctx;
  return c->cb (c->data, *(struct outbox_row **) elem) ? 1 : 0;
}

static int
sq_outbox_due (struct store *st_, const char *campaign, int64_t now,
                  int limit,
                  int (*cb) (void *data, const struct outbox_row *row),
                  void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_DUE);

  if (!s)
    return -1;
  if (limit <= 0)
    limit = 1000;
  bind_text (s, 1, campaign);
  sqlite3_bind_int64 (s, 2, now);
  sqlite3_bind_int (s, 3, limit);
  return outbox_page (st, s, limit, cb, data);
}

/* Up to LIMIT rows of the bound statement S (selecting OUTBOX_COLS), read
 * into memory first (the callback updates these rows), then handed to CB
 * until it returns non-zero.  The count handed, or -1. */
static int
outbox_page (struct sqlite_store *st, sqlite3_stmt *s, int limit,
             int (*cb) (void *data, const struct outbox_row *row),
             void *data)
{
  struct due_ctx c = { cb, data };

  return page_each (st, s, limit, sizeof (struct outbox_row *), due_copy,
                    due_drop, due_each, &c, "reading outbox rows");
}

static int
sq_outbox_recover (struct store *st_, const char *campaign,
                      int at_least_once, int max_attempts, int *n_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, at_least_once ? Q_OB_RECOVER_PENDING
                                         : Q_OB_RECOVER_FAILED);
  if (n_r)
    *n_r = 0;
  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  sqlite3_bind_int64 (s, 2, now_seconds ());
  if (at_least_once)
    sqlite3_bind_int (s, 3, max_attempts > 0 ? max_attempts : INT_MAX);
  else {
    /* At most once fails what a plugin may have had, never what it did
     * not: rows only claimed go back to pending first. */
    sqlite3_stmt *u = q (st, Q_OB_RECOVER_CLAIMED);
    if (!u)
      return -1;
    bind_text (u, 1, campaign);
    sqlite3_bind_int64 (u, 2, now_seconds ());
    if (run (st, u, "recovering rows left in flight") < 0)
      return -1;
  }
  if (run (st, s, "recovering rows left in flight") < 0)
    return -1;
  if (n_r)
    *n_r = sqlite3_changes (st->db);
  return 0;
}

static int
sq_outbox_next_due (struct store *st_, const char *campaign, int64_t *next_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_NEXT_DUE);
  int rc, r = 0;

  *next_r = 0;
  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW && sqlite3_column_type (s, 0) != SQLITE_NULL) {
    *next_r = sqlite3_column_int64 (s, 0);
    r = 1;
  }
  else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    r = db_fail (st, "reading the next due time");
  sqlite3_reset (s);
  return r;
}

static int
sq_sent_count (struct store *st_, const char *customer, const char *channel,
                  int64_t since)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_SENT_COUNT);
  int n = -1;

  if (!s)
    return -1;
  bind_text (s, 1, customer);
  sqlite3_bind_int64 (s, 2, since);
  bind_text (s, 3, channel);
  if (sqlite3_step (s) == SQLITE_ROW)
    n = sqlite3_column_int (s, 0);
  else
    db_fail (st, "counting sent messages");
  sqlite3_reset (s);
  return n;
}

static long
sq_instance_volume (struct store *st_, const char *instance, int64_t since)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_INSTANCE_VOLUME);
  long n = -1;

  if (!s)
    return -1;
  bind_text (s, 1, instance);
  sqlite3_bind_int64 (s, 2, since);
  if (sqlite3_step (s) == SQLITE_ROW)
    n = (long) sqlite3_column_int64 (s, 0);
  else
    db_fail (st, "counting a channel's messages of the day");
  sqlite3_reset (s);
  return n;
}

static json_t *
col_json_str (sqlite3_stmt *s, int i)
{
  const unsigned char *t = sqlite3_column_text (s, i);
  return t ? json_string ((const char *) t) : json_null ();
}

/* The column as it is: json_string would drop a value that is not UTF-8
 * (and the caller would take it for null). */
static json_t *
col_json_raw (sqlite3_stmt *s, int i)
{
  const unsigned char *t = sqlite3_column_text (s, i);
  return t ? json_string_nocheck ((const char *) t) : json_null ();
}

static int
sq_campaign_counts (struct store *st_, const char *campaign, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CAMP_COUNTS);
  json_t *o, *rows, *bystate;
  json_int_t total = 0;
  int rc;

  *r = NULL;
  if (!s)
    return -1;
  o = json_object ();
  rows = json_array ();
  bystate = json_object ();
  bind_text (s, 1, campaign);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    json_t *row = json_object ();
    const char *state = (const char *) sqlite3_column_text (s, 2);
    json_int_t c = sqlite3_column_int64 (s, 4);
    json_int_t prev = json_integer_value (json_object_get (bystate, state));

    json_object_set_new (row, "channel", col_json_str (s, 0));
    json_object_set_new (row, "variant", col_json_str (s, 1));
    json_object_set_new (row, "state", json_string (state));
    json_object_set_new (row, "reason", col_json_str (s, 3));
    json_object_set_new (row, "count", json_integer (c));
    json_array_append_new (rows, row);
    json_object_set_new (bystate, state, json_integer (prev + c));
    total += c;
  }
  sqlite3_reset (s);
  json_object_set_new (o, "total", json_integer (total));
  json_object_set_new (o, "states", bystate);
  json_object_set_new (o, "rows", rows);
  if (rc != SQLITE_DONE) {
    json_decref (o);
    return db_fail (st, "counting a campaign's messages");
  }
  *r = o;
  return 0;
}

/* Run the campaign query ID (one parameter: CAMPAIGN; NULL for a query
 * that takes none) and turn its rows into a JSON list of objects: column
 * i is named NAMES[i] and typed by TYPES[i] ('s' text or null, 'r' the
 * same with the bytes as they are, even when not UTF-8, 'i' integer, 'b'
 * boolean). */
static int
campaign_rows (struct sqlite_store *st, int id, const char *campaign,
               const char *const *names, const char *types, const char *what,
               json_t **r)
{
  sqlite3_stmt *s = q (st, id);
  json_t *a;
  int rc, i;

  *r = NULL;
  if (!s)
    return -1;
  a = json_array ();
  if (campaign)
    bind_text (s, 1, campaign);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    json_t *row = json_object ();
    for (i = 0; names[i]; i++)
      json_object_set_new (row, names[i],
                           types[i] == 's' ? col_json_str (s, i)
                           : types[i] == 'r' ? col_json_raw (s, i)
                           : types[i] == 'b'
                           ? json_boolean (sqlite3_column_int (s, i))
                           : json_integer (sqlite3_column_int64 (s, i)));
    json_array_append_new (a, row);
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE) {
    json_decref (a);
    return db_fail (st, what);
  }
  *r = a;
  return 0;
}

static int
sq_campaign_conversions (struct store *st_, const char *campaign, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  static const char *const names[] = { "variant", "held_out", "customers",
                                       "converted", NULL };
  return campaign_rows (st, Q_CAMP_CONVERSIONS, campaign, names, "sbii",
                        "counting a campaign's conversions", r);
}

static int
sq_campaign_engagement (struct store *st_, const char *campaign, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  static const char *const names[] = { "channel", "variant", "type", "count",
                                       "messages", "machine", NULL };
  return campaign_rows (st, Q_CAMP_ENGAGEMENT, campaign, names, "sssiib",
                        "counting a campaign's engagement", r);
}

/* ---- monitoring -------------------------------------------------- */

static int
sq_outbox_state_counts (struct store *st_, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  static const char *const names[] = { "campaign", "channel", "state",
                                       "count", NULL };
  return campaign_rows (st, Q_OB_STATES, NULL, names, "rrri",
                        "counting the outbox's messages", r);
}

static int
sq_event_counts (struct store *st_, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  static const char *const names[] = { "type", "machine", "count", NULL };
  return campaign_rows (st, Q_EVENT_COUNTS, NULL, names, "rbi",
                        "counting the events", r);
}

static int
sq_due_summary (struct store *st_, int64_t now, struct store_due *r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_DUE_SUMMARY);
  int rc;

  memset (r, 0, sizeof *r);
  if (!s)
    return -1;
  sqlite3_bind_int64 (s, 1, now);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW) {
    r->messages = sqlite3_column_int64 (s, 0);
    r->oldest_next_at = sqlite3_column_int64 (s, 1);   /* NULL: 0 */
  }
  sqlite3_reset (s);
  if (rc != SQLITE_ROW)
    return db_fail (st, "counting the due messages");
  /* The timer queue: the steps due, and all that wait. */
  if (sq_timer_stats (&st->base, now, &r->steps, &r->oldest_step_due) < 0
      || sq_timer_stats (&st->base, INT64_MAX, &r->steps_waiting, &(int64_t) { 0 })
         < 0)
    return -1;
  return 0;
}

/* ---- campaign state ----------------------------------------------- */

static int
sq_campaign_start (struct store *st_, const char *id, const char *name,
                      int64_t now)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CAMP_START);
  if (!s)
    return -1;
  bind_text (s, 1, id);
  bind_text (s, 2, name);
  sqlite3_bind_int64 (s, 3, now);
  return run (st, s, "recording a campaign start");
}

static int
sq_campaign_finish (struct store *st_, const char *id, const char *status,
                       int64_t now)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CAMP_FINISH);
  if (!s)
    return -1;
  bind_text (s, 1, id);
  bind_text (s, 2, status);
  sqlite3_bind_int64 (s, 3, now);
  return run (st, s, "recording a campaign end");
}

static int
sq_campaign_get (struct store *st_, const char *id, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_CAMP_GET);
  json_t *o;
  int rc;

  *r = NULL;
  if (!s)
    return -1;
  bind_text (s, 1, id);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset (s);
    return 1;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_reset (s);
    return db_fail (st, "reading a campaign");
  }
  o = json_object ();
  json_object_set_new (o, "id", col_json_str (s, 0));
  json_object_set_new (o, "name", col_json_str (s, 1));
  json_object_set_new (o, "status", col_json_str (s, 2));
  json_object_set_new (o, "runs", json_integer (sqlite3_column_int64 (s, 3)));
#define INT_OR_NULL(i) (sqlite3_column_type (s, i) == SQLITE_NULL \
                        ? json_null () : json_integer (sqlite3_column_int64 (s, i)))
  json_object_set_new (o, "first_started", INT_OR_NULL (4));
  json_object_set_new (o, "last_started", INT_OR_NULL (5));
  json_object_set_new (o, "finished", INT_OR_NULL (6));
#undef INT_OR_NULL
  sqlite3_reset (s);
  *r = o;
  return 0;
}

/* ---- journeys: the timer queue ------------------------------------ */

static int
sq_timer_add (struct store *st_, const struct store_timer *t)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_TIMER_ADD);

  if (!s)
    return -1;
  bind_text (s, 1, t->campaign);
  bind_text (s, 2, t->customer);
  sqlite3_bind_int64 (s, 3, t->instance);
  sqlite3_bind_int (s, 4, t->step);
  sqlite3_bind_int64 (s, 5, t->due);
  if (t->entered)
    sqlite3_bind_int64 (s, 6, t->entered);
  bind_text (s, 7, t->event);
  sqlite3_bind_int64 (s, 8, now_seconds ());
  if (run (st, s, "queueing a journey step") < 0)
    return -1;
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

static void
timer_copy (sqlite3_stmt *s, void *elem)
{
  struct store_timer *t = elem;
  t->id = sqlite3_column_int64 (s, 0);
  t->campaign = col_strdup (s, 1);
  t->customer = col_strdup (s, 2);
  t->instance = sqlite3_column_int64 (s, 3);
  t->step = sqlite3_column_int (s, 4);
  t->due = sqlite3_column_int64 (s, 5);
  t->entered = sqlite3_column_int64 (s, 6);
  t->event = col_strdup (s, 7);
}

static void
timer_drop (void *elem)
{
  struct store_timer *t = elem;
  free ((char *) t->campaign);
  free ((char *) t->customer);
  free ((char *) t->event);
}

struct timers_ctx {
  int (*cb) (void *data, const struct store_timer *t);
  void *data;
};

/* Only -1 from the callback stops (an error); any other value goes on. */
static int
timers_each (void *ctx, void *elem)
{
  struct timers_ctx *c = ctx;
  return c->cb (c->data, elem) < 0 ? -1 : 0;
}

static int
sq_timers_due (struct store *st_, const char *campaign, int64_t now,
                  int limit,
                  int (*cb) (void *data, const struct store_timer *t),
                  void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_TIMERS_DUE);
  struct timers_ctx c = { cb, data };

  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  sqlite3_bind_int64 (s, 2, now);
  sqlite3_bind_int (s, 3, limit);
  /* Copied out first: the callback may write to the store.  LIMIT is the
   * query's. */
  return page_each (st, s, 0, sizeof (struct store_timer), timer_copy,
                    timer_drop, timers_each, &c,
                    "reading the due journey steps");
}

static int
sq_timer_done (struct store *st_, int64_t id, const char *state,
                  const char *reason)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_TIMER_DONE);

  if (!s)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  bind_text (s, 2, state);
  bind_text (s, 3, reason);
  sqlite3_bind_int64 (s, 4, now_seconds ());
  if (run (st, s, "recording a journey step") < 0)
    return -1;
  return sqlite3_changes (st->db) == 0 ? 1 : 0;
}

static int
sq_timer_cancel (struct store *st_, const char *campaign,
                    const char *customer, int64_t at, const char *reason)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_TIMER_CANCEL);

  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  bind_text (s, 2, customer);
  sqlite3_bind_int64 (s, 3, at);
  bind_text (s, 4, reason);
  sqlite3_bind_int64 (s, 5, now_seconds ());
  if (run (st, s, "cancelling a journey") < 0)
    return -1;
  return sqlite3_changes (st->db);
}

static int
sq_journey_last (struct store *st_, const char *campaign,
                    const char *customer, int64_t *instance_r,
                    int64_t *entered_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_JOURNEY_LAST);
  int rc;

  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  bind_text (s, 2, customer);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW) {
    *instance_r = sqlite3_column_int64 (s, 0);
    *entered_r = sqlite3_column_int64 (s, 1);
    sqlite3_reset (s);
    return 1;
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return db_fail (st, "reading a customer's journeys");
  return 0;
}

static void
event_row_copy (sqlite3_stmt *s, void *elem)
{
  struct store_event_row *e = elem;
  e->id = sqlite3_column_int64 (s, 0);
  e->customer = col_strdup (s, 1);
  e->channel = col_strdup (s, 2);
  e->type = col_strdup (s, 3);
  e->at = sqlite3_column_int64 (s, 4);
  e->campaign = col_strdup (s, 5);
  e->message_key = col_strdup (s, 6);
  e->detail = col_strdup (s, 7);
  e->machine = col_strdup (s, 8);
}

static void
event_row_drop (void *elem)
{
  struct store_event_row *e = elem;
  free (e->customer);
  free (e->channel);
  free (e->type);
  free (e->campaign);
  free (e->message_key);
  free (e->detail);
  free (e->machine);
}

struct events_after_ctx {
  int (*cb) (void *data, const struct store_event_row *e);
  void *data;
};

/* Only -1 from the callback stops (an error); any other value goes on. */
static int
events_after_each (void *ctx, void *elem)
{
  struct events_after_ctx *c = ctx;
  return c->cb (c->data, elem) < 0 ? -1 : 0;
}

static int
sq_events_after (struct store *st_, int64_t after_id, int limit,
                    int (*cb) (void *data, const struct store_event_row *e),
                    void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_EVENTS_AFTER);
  struct events_after_ctx c = { cb, data };

  if (!s)
    return -1;
  sqlite3_bind_int64 (s, 1, after_id);
  sqlite3_bind_int (s, 2, limit);
  /* LIMIT is the query's. */
  return page_each (st, s, 0, sizeof (struct store_event_row), event_row_copy,
                    event_row_drop, events_after_each, &c,
                    "reading new events");
}

static int
sq_meta_get_int (struct store *st_, const char *key, int64_t *v_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_META_GET);
  int rc;

  if (!s)
    return -1;
  bind_text (s, 1, key);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW) {
    *v_r = sqlite3_column_int64 (s, 0);
    sqlite3_reset (s);
    return 1;
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return db_fail (st, "reading the meta table");
  return 0;
}

static int
sq_meta_set_int (struct store *st_, const char *key, int64_t v)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_META_SET);

  if (!s)
    return -1;
  bind_text (s, 1, key);
  sqlite3_bind_int64 (s, 2, v);
  return run (st, s, "writing the meta table");
}

static int
sq_journey_engaged (struct store *st_, const char *campaign,
                       const char *customer, int64_t instance, int64_t since,
                       const char *const *types, char *type_r, size_t len)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_JOURNEY_ENGAGED);
  int rc, i;

  if (!s)
    return -1;
  if (!types || !types[0])
    return 0;
  bind_text (s, 1, campaign);
  bind_text (s, 2, customer);
  sqlite3_bind_int64 (s, 3, instance);
  sqlite3_bind_int64 (s, 5, since);
  /* Four slots; the list may be shorter (its NULL ends it): the rest
   * repeat the first. */
  for (i = 0; i < 4 && types[i]; i++)
    bind_text (s, 6 + i, types[i]);
  for (; i < 4; i++)
    bind_text (s, 6 + i, types[0]);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW) {
    strlcpy_ (type_r, (const char *) sqlite3_column_text (s, 0), len);
    sqlite3_reset (s);
    return 1;
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return db_fail (st, "reading a journey's engagement");
  return 0;
}

static int
sq_timer_next (struct store *st_, const char *campaign, int64_t *due_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_TIMER_NEXT);
  int rc, r = 0;

  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW && sqlite3_column_type (s, 0) != SQLITE_NULL) {
    *due_r = sqlite3_column_int64 (s, 0);
    r = 1;
  }
  else if (rc != SQLITE_ROW)
    r = db_fail (st, "reading the timer queue");
  sqlite3_reset (s);
  return r;
}

static int
sq_timer_stats (struct store *st_, int64_t now, int64_t *due_r,
                   int64_t *oldest_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_TIMER_STATS);
  int rc;

  if (!s)
    return -1;
  sqlite3_bind_int64 (s, 1, now);
  rc = sqlite3_step (s);
  if (rc != SQLITE_ROW) {
    sqlite3_reset (s);
    return db_fail (st, "reading the timer queue");
  }
  *due_r = sqlite3_column_int64 (s, 0);
  *oldest_r = sqlite3_column_type (s, 1) == SQLITE_NULL
              ? 0 : sqlite3_column_int64 (s, 1);
  sqlite3_reset (s);
  return 0;
}



static int
sq_step_funnel (struct store *st_, const char *campaign, json_t **r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  json_t *steps = json_array ();
  sqlite3_stmt *s;
  int rc;
  size_t i;
  json_t *v;

  /* The timer queue: each step's journeys by state. */
  if (!(s = q (st, Q_STEP_FUNNEL)))
    goto fail;
  bind_text (s, 1, campaign);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    json_t *e = store_step_entry (steps, sqlite3_column_int (s, 0));
    const char *state = (const char *) sqlite3_column_text (s, 1);
    json_int_t n = sqlite3_column_int64 (s, 2);
    store_step_add (e, "entered", n);
    if (strcmp (state, "waiting") == 0 || strcmp (state, "fired") == 0
        || strcmp (state, "exited") == 0 || strcmp (state, "cancelled") == 0)
      store_step_add (e, state, n);
    json_object_set_new (e, "_timers", json_true ());
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    goto db;
  /* The outbox: each step's messages, and those sent. */
  if (!(s = q (st, Q_STEP_OUTBOX)))
    goto fail;
  bind_text (s, 1, campaign);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    json_t *e = store_step_entry (steps, sqlite3_column_int (s, 0));
    store_step_add (e, "messages", sqlite3_column_int64 (s, 1));
    store_step_add (e, "sent", sqlite3_column_int64 (s, 2));
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    goto db;
  if (!(s = q (st, Q_STEP_ENGAGED)))
    goto fail;
  bind_text (s, 1, campaign);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    store_step_add (store_step_entry (steps, sqlite3_column_int (s, 0)), "engaged",
              sqlite3_column_int64 (s, 1));
  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    goto db;
  /* A step without timers (step 1 of a campaign herald run sends) was
   * entered by every customer planned for it. */
  json_array_foreach (steps, i, v) {
    if (!json_object_get (v, "_timers"))
      json_object_set (v, "entered", json_object_get (v, "messages"));
    json_object_del (v, "_timers");
  }
  *r = steps;
  return 0;

db:
  db_fail (st, "reading a campaign's steps");
fail:
  json_decref (steps);
  return -1;
}

static int
sq_journey_event (struct store *st_, const char *campaign,
                     const char *customer, int64_t instance, char **event_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_JOURNEY_EVENT);
  int rc;

  *event_r = NULL;
  if (!s)
    return -1;
  bind_text (s, 1, campaign);
  bind_text (s, 2, customer);
  sqlite3_bind_int64 (s, 3, instance);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    *event_r = col_strdup (s, 0);
  sqlite3_reset (s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_fail (st, "reading a journey's trigger event");
  return 0;
}

static int
sq_events_last_id (struct store *st_, int64_t *id_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_EVENTS_LAST);
  int rc;

  if (!s)
    return -1;
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    *id_r = sqlite3_column_int64 (s, 0);
  sqlite3_reset (s);
  return rc == SQLITE_ROW ? 0 : db_fail (st, "reading the events");
}

/* ---- short links -------------------------------------------------- */

static int
sq_link_add (struct store *st_, const char *key, const char *url,
                size_t len, int64_t *id_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_LINK_ADD);

  *id_r = 0;
  if (!s)
    return -1;
  bind_text (s, 1, key);
  sqlite3_bind_text (s, 2, url, (int) len, SQLITE_STATIC);
  if (run (st, s, "recording a short link") < 0)
    return -1;
  *id_r = sqlite3_last_insert_rowid (st->db);
  return 0;
}

static int
sq_link_get (struct store *st_, int64_t id, char **key_r, char **url_r,
                size_t *len_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_LINK_GET);
  int rc;

  *key_r = *url_r = NULL;
  *len_r = 0;
  if (!s)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW) {
    const char *u = (const char *) sqlite3_column_text (s, 1);
    size_t n = (size_t) sqlite3_column_bytes (s, 1);
    *key_r = col_strdup (s, 0);
    *url_r = xmalloc (n + 1);
    memcpy (*url_r, u ? u : "", n);
    (*url_r)[n] = '\0';
    *len_r = n;
  }
  sqlite3_reset (s);
  if (rc == SQLITE_DONE)
    return 1;
  if (rc != SQLITE_ROW) {
    free (*key_r);
    free (*url_r);
    *key_r = *url_r = NULL;
    return db_fail (st, "reading a short link");
  }
  if (!*key_r) {
    free (*url_r);
    *url_r = NULL;
    set_err (st, "%s: short link %lld has no message key", st->path,
             (long long) id);
    return -1;
  }
  return 0;
}

static int
sq_outbox_by_provider (struct store *st_, const char *channel,
                          const char *provider_id, struct outbox_row **row_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s = q (st, Q_OB_BY_PROVIDER);
  int rc;

  *row_r = NULL;
  if (!s)
    return -1;
  bind_text (s, 1, provider_id);
  bind_text (s, 2, channel);
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    *row_r = row_from (s);
  sqlite3_reset (s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_fail (st, "finding a message by its provider id");
  return 0;
}

/* ---- many workers -------------------------------------------------- */

/* SQLite is one machine's file, and herald run holds a lock per campaign
 * beside it: never shared, so no leases to keep. */
static int
sq_shared (struct store *st_)
{
  (void) st_;
  return 0;
}

static int
sq_set_worker (struct store *st_, const char *worker, int lease)
{
  (void) st_;
  (void) worker;
  (void) lease;
  return 0;
}

static int
sq_lease_renew (struct store *st_)
{
  (void) st_;
  return 0;
}

/* Due rows, then each made "sending" in the same transaction (the run's
 * lock keeps other processes out, BEGIN IMMEDIATE other writers). */
static int
sq_outbox_claim (struct store *st_, const char *campaign, int64_t now,
                 int limit,
                 int (*cb) (void *data, const struct outbox_row *row),
                 void *data)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  sqlite3_stmt *s;
  struct outbox_row **rows = NULL;
  size_t n = 0, cap = 0, i;
  int owned, rc, r = -1;

  if (limit <= 0)
    limit = 1000;
  if ((owned = tx_enter (st)) < 0)
    return -1;
  if (!(s = q (st, Q_OB_DUE)))
    goto out;
  bind_text (s, 1, campaign);
  sqlite3_bind_int64 (s, 2, now);
  sqlite3_bind_int (s, 3, limit);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    if (n == cap)
      rows = xrealloc (rows, (cap = cap ? 2 * cap : 16) * sizeof *rows);
    rows[n++] = row_from (s);
  }
  sqlite3_reset (s);
  if (rc != SQLITE_DONE) {
    db_fail (st, "reading due rows");
    goto out;
  }
  for (i = 0; i < n; i++)
    if (outbox_update (st, Q_OB_UPDATE_REASON, rows[i]->key, "sending",
                       "claimed", rows[i]->attempts, 0, NULL, NULL,
                       NULL) < 0)
      goto out;
  r = (int) n;
out:
  r = tx_leave (st, owned, r);
  for (i = 0; i < n; i++) {
    if (r >= 0)
      cb (data, rows[i]);
    store_row_free (rows[i]);
  }
  free (rows);
  return r;
}

static int
sq_work_held (struct store *st_, const char *campaign, int step,
              int64_t now, int64_t *n_r, int64_t *until_r)
{
  (void) st_;
  (void) campaign;
  (void) step;
  (void) now;
  *n_r = 0;
  *until_r = 0;
  return 0;
}

static int
sq_chunk_claim (struct store *st_, const char *campaign, int step,
                int *chunk_r)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  (void) campaign;
  (void) step;
  *chunk_r = -1;
  set_err (st, "%s: an SQLite store is planned whole, not by chunks",
           st->path);
  return -1;
}

static int
sq_chunk_done (struct store *st_, const char *campaign, int step, int chunk)
{
  return sq_chunk_claim (st_, campaign, step, &chunk);
}

static int
sq_audience_chunk (struct store *st_, const char *campaign, int step,
                   int chunk, const char *after_id, int limit,
                   int (*cb) (void *data, json_t *customer), void *data)
{
  (void) after_id;
  (void) limit;
  (void) cb;
  (void) data;
  return sq_chunk_claim (st_, campaign, step, &chunk);
}

/* herald serve and run take an SQLite campaign's lock beside the file
 * (core/cmd_run.c), not here. */
static int
sq_campaign_lock (struct store *st_, const char *campaign, int lock)
{
  struct sqlite_store *st = (struct sqlite_store *) st_;
  (void) lock;
  set_err (st, "%s: campaign %s: an SQLite store's campaigns are locked "
           "beside its file", st->path, campaign);
  return -1;
}

static const struct store_ops sqlite_ops = {
  .close = sq_close,
  .error = sq_error,
  .schema_version = sq_schema_version,
  .campaign_lock = sq_campaign_lock,
  .name = sq_name,
  .begin = sq_begin,
  .commit = sq_commit,
  .rollback = sq_rollback,
  .customer_put = sq_customer_put,
  .customer_put_text = sq_customer_put_text,
  .customer_get = sq_customer_get,
  .audience_next = sq_audience_next,
  .customer_exists = sq_customer_exists,
  .bulk_customers = sq_bulk_customers,
  .customer_find = sq_customer_find,
  .customer_count = sq_customer_count,
  .consent_set = sq_consent_set,
  .consent_get = sq_consent_get,
  .suppress = sq_suppress,
  .is_suppressed = sq_is_suppressed,
  .event_put = sq_event_put,
  .event_record = sq_event_record,
  .message_events = sq_message_events,
  .message_events_except = sq_message_events_except,
  .event_set_machine = sq_event_set_machine,
  .customer_events = sq_customer_events,
  .channel_stats = sq_channel_stats,
  .outbox_insert = sq_outbox_insert,
  .outbox_update = sq_outbox_update,
  .outbox_update_reason = sq_outbox_update_reason,
  .outbox_reroute = sq_outbox_reroute,
  .outbox_get = sq_outbox_get,
  .outbox_by_provider = sq_outbox_by_provider,
  .outbox_reroutes = sq_outbox_reroutes,
  .outbox_reroute_none = sq_outbox_reroute_none,
  .outbox_due = sq_outbox_due,
  .outbox_recover = sq_outbox_recover,
  .outbox_next_due = sq_outbox_next_due,
  .sent_count = sq_sent_count,
  .instance_volume = sq_instance_volume,
  .campaign_counts = sq_campaign_counts,
  .campaign_engagement = sq_campaign_engagement,
  .campaign_conversions = sq_campaign_conversions,
  .outbox_state_counts = sq_outbox_state_counts,
  .event_counts = sq_event_counts,
  .due_summary = sq_due_summary,
  .campaign_start = sq_campaign_start,
  .campaign_finish = sq_campaign_finish,
  .campaign_get = sq_campaign_get,
  .timer_add = sq_timer_add,
  .timers_due = sq_timers_due,
  .timer_done = sq_timer_done,
  .timer_cancel = sq_timer_cancel,
  .journey_last = sq_journey_last,
  .journey_event = sq_journey_event,
  .events_after = sq_events_after,
  .events_last_id = sq_events_last_id,
  .meta_get_int = sq_meta_get_int,
  .meta_set_int = sq_meta_set_int,
  .journey_engaged = sq_journey_engaged,
  .timer_next = sq_timer_next,
  .timer_stats = sq_timer_stats,
  .step_funnel = sq_step_funnel,
  .link_add = sq_link_add,
  .link_get = sq_link_get,
  .shared = sq_shared,
  .set_worker = sq_set_worker,
  .lease_renew = sq_lease_renew,
  .outbox_claim = sq_outbox_claim,
  .work_held = sq_work_held,
  .chunk_claim = sq_chunk_claim,
  .chunk_done = sq_chunk_done,
  .audience_chunk = sq_audience_chunk,
};
