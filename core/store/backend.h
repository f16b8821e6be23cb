/* backend.h: how a store backend plugs in.  store.h is the interface the
 * rest of Herald calls; each of its functions but store_open,
 * store_state_valid and store_row_free is a call through the table of
 * functions below, chosen when the store is opened (store.c).  A backend
 * (sqlite.c, pg.c) keeps its own state in a struct whose first member is
 * the struct store, and fills every member of its table: store.h's
 * contract is each function's contract. */
#ifndef HERALD_STORE_BACKEND_H
#define HERALD_STORE_BACKEND_H
#include <stddef.h>
#include "../store.h"

/* How long a write waits for another process's lock before it fails
 * (SQLite's busy timeout, PostgreSQL's lock_timeout), in seconds. */
#define STORE_LOCK_WAIT 10
#define STORE_STR(x) STORE_STR_ (x)
#define STORE_STR_(x) #x

struct store_ops {
  void (*close) (struct store *st);
  const char *(*error) (const struct store *st);
  int (*schema_version) (struct store *st);
  const char *(*name) (const struct store *st);
  int (*campaign_lock) (struct store *st, const char *campaign, int lock);
  int (*begin) (struct store *st);
  int (*commit) (struct store *st);
  int (*rollback) (struct store *st);
  int (*customer_put) (struct store *st, const char *id, json_t *record);
  int (*customer_put_text) (struct store *st, const char *id, json_t *record,
                            const char *text);
  json_t *(*customer_get) (struct store *st, const char *id);
  int (*audience_next) (struct store *st, const char *campaign, int step,
                        const char *after_id, int limit,
                        int (*cb) (void *data, json_t *customer), void *data);
  int (*customer_exists) (struct store *st, const char *id);
  int (*bulk_customers) (struct store *st, int64_t expected);
  int (*customer_find) (struct store *st, const char *channel,
                        const char *address,
                        int (*cb) (void *data, const char *id), void *data);
  int64_t (*customer_count) (struct store *st);
  int (*consent_set) (struct store *st, const char *customer,
                      const char *channel, int granted, int64_t at,
                      const char *source);
  int (*consent_get) (struct store *st, const char *customer,
                      const char *channel);
  int (*suppress) (struct store *st, const char *channel, const char *address,
                   const char *reason);
  int (*is_suppressed) (struct store *st, const char *channel,
                        const char *address);
  int (*event_put) (struct store *st, const char *customer, const char *channel,
                    const char *type, int64_t at, const char *campaign,
                    const char *message_key, const char *detail_json);
  int (*event_record) (struct store *st, const struct store_event *ev);
  int (*message_events) (struct store *st, const char *key, const char *type,
                         int64_t from_ms, int64_t to_ms,
                         int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail, const char *machine),
                         void *data);
  int (*message_events_except) (struct store *st, const char *key,
                                const char *type, const char *except_detail,
                                int64_t from_ms, int64_t to_ms,
                                int (*cb) (void *data, int64_t id, int64_t at_ms, const char *detail, const char *machine),
                                void *data);
  int (*event_set_machine) (struct store *st, int64_t id, const char *reason);
  int (*customer_events) (struct store *st, const char *customer, int64_t since,
                          int (*cb) (void *data, const char *channel, const char *type, int64_t at),
                          void *data);
  int (*channel_stats) (struct store *st, int64_t since, json_t **stats_r);
  int (*outbox_insert) (struct store *st, const struct outbox_row *row);
  int (*outbox_update) (struct store *st, const char *key, const char *state,
                        int attempts, int64_t next_at, const char *provider_id,
                        const char *error, const char *detail);
  int (*outbox_update_reason) (struct store *st, const char *key,
                               const char *state, const char *reason,
                               int attempts, int64_t next_at,
                               const char *provider_id, const char *error,
                               const char *detail);
  int (*outbox_reroute) (struct store *st, const struct outbox_row *row);
  int (*outbox_get) (struct store *st, const char *key,
                     struct outbox_row **row_r);
  int (*outbox_by_provider) (struct store *st, const char *channel,
                             const char *provider_id,
                             struct outbox_row **row_r);
  int (*outbox_reroutes) (struct store *st, const char *campaign, int limit,
                          int (*cb) (void *data, const struct outbox_row *row),
                          void *data);
  int (*outbox_reroute_none) (struct store *st, const char *key);
  int (*outbox_due) (struct store *st, const char *campaign, int64_t now,
                     int limit,
                     int (*cb) (void *data, const struct outbox_row *row),
                     void *data);
  int (*outbox_recover) (struct store *st, const char *campaign,
                         int at_least_once, int max_attempts, int *n_r);
  int (*outbox_next_due) (struct store *st, const char *campaign,
                          int64_t *next_r);
  long (*instance_volume) (struct store *st, const char *instance,
                           int64_t since);
  int (*sent_count) (struct store *st, const char *customer,
                     const char *channel, int64_t since);
  int (*campaign_counts) (struct store *st, const char *campaign, json_t **r);
  int (*campaign_engagement) (struct store *st, const char *campaign,
                              json_t **r);
  int (*campaign_conversions) (struct store *st, const char *campaign,
                               json_t **r);
  int (*outbox_state_counts) (struct store *st, json_t **r);
  int (*event_counts) (struct store *st, json_t **r);
  int (*due_summary) (struct store *st, int64_t now, struct store_due *r);
  int (*campaign_start) (struct store *st, const char *id, const char *name,
                         int64_t now);
  int (*campaign_finish) (struct store *st, const char *id, const char *status,
                          int64_t now);
  int (*campaign_get) (struct store *st, const char *id, json_t **r);
  int (*timer_add) (struct store *st, const struct store_timer *t);
  int (*timers_due) (struct store *st, const char *campaign, int64_t now,
                     int limit,
                     int (*cb) (void *data, const struct store_timer *t),
                     void *data);
  int (*timer_done) (struct store *st, int64_t id, const char *state,
                     const char *reason);
  int (*timer_cancel) (struct store *st, const char *campaign,
                       const char *customer, int64_t at, const char *reason);
  int (*journey_last) (struct store *st, const char *campaign,
                       const char *customer, int64_t *instance_r,
                       int64_t *entered_r);
  int (*journey_event) (struct store *st, const char *campaign,
                        const char *customer, int64_t instance, char **event_r);
  int (*events_after) (struct store *st, int64_t after_id, int limit,
                       int (*cb) (void *data, const struct store_event_row *e),
                       void *data);
  int (*events_last_id) (struct store *st, int64_t *id_r);
  int (*meta_get_int) (struct store *st, const char *key, int64_t *v_r);
  int (*meta_set_int) (struct store *st, const char *key, int64_t v);
  int (*journey_engaged) (struct store *st, const char *campaign,
                          const char *customer, int64_t instance, int64_t since,
                          const char *const *types, char *type_r, size_t len);
  int (*timer_next) (struct store *st, const char *campaign, int64_t *due_r);
  int (*timer_stats) (struct store *st, int64_t now, int64_t *due_r,
                      int64_t *oldest_r);
  int (*step_funnel) (struct store *st, const char *campaign, json_t **r);
  int (*link_add) (struct store *st, const char *key, const char *url,
                   size_t len, int64_t *id_r);
  int (*link_get) (struct store *st, int64_t id, char **key_r, char **url_r,
                   size_t *len_r);
  /* Many workers (store.h's leases section). */
  int (*shared) (struct store *st);
  int (*set_worker) (struct store *st, const char *worker, int lease);
  int (*lease_renew) (struct store *st);
  int (*outbox_claim) (struct store *st, const char *campaign, int64_t now,
                       int limit,
                       int (*cb) (void *data, const struct outbox_row *row),
                       void *data);
  int (*work_held) (struct store *st, const char *campaign, int step,
                    int64_t now, int64_t *n_r, int64_t *until_r);
  int (*chunk_claim) (struct store *st, const char *campaign, int step,
                      int *chunk_r);
  int (*chunk_done) (struct store *st, const char *campaign, int step,
                     int chunk);
  /* CHUNK >= 0 only: store.c calls audience_next for -1. */
  int (*audience_chunk) (struct store *st, const char *campaign, int step,
                         int chunk, const char *after_id, int limit,
                         int (*cb) (void *data, json_t *customer),
                         void *data);
};

struct store {
  const struct store_ops *ops;
};

/* Fault injection (HERALD_STORE_FAULT, see store.c): a backend calls it
 * before each statement it runs, except a rollback.  Returns 0, or the
 * number of the statement that must fail as a failing disk's would. */
long store_fault_now (void);

/* What both backends share, with no SQL (store.c). */
/* O's string member K, or NULL. */
const char *store_jstr (json_t *o, const char *k);
/* STATS's member for CHANNEL (store_channel_stats), created with every
 * count at 0. */
json_t *store_stats_channel (json_t *stats, const char *channel);
/* STEPS's entry for STEP (store_step_funnel), created with zero counts
 * and kept in step order; and adding N to its count K. */
json_t *store_step_entry (json_t *steps, int step);
void store_step_add (json_t *e, const char *k, json_int_t n);
/* Suppress on CHANNEL each address of ADDR: a string, or a list of
 * strings, {"type", "value"} destinations (an outbox row's) or
 * {"platform", "token"} push tokens (a customer's). */
int store_suppress_json (struct store *st, const char *channel, json_t *addr,
                         const char *reason);

/* The backends' open functions: a store, or NULL with ERR set. */
struct store *sqlite_store_open (const char *path, char *err, size_t errlen);
/* URL is a libpq connection URI (postgresql://...).  MIGRATE: bring the
 * database's schema up to date (creating it in an empty database); else
 * a database whose schema is not this herald's is refused. */
struct store *pg_store_open (const char *url, int migrate, char *err,
                             size_t errlen);

#endif
