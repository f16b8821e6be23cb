/* The scheduler behind herald run, herald preview and herald serve's
 * journeys.
 *
 * For each customer of the audience: segment, routing decision, rendering,
 * then an outbox row committed before any plugin sees the message; then
 * dispatch of the due rows to the channel plugins in batches, with the
 * result of each committed before the next batch.  It never sends a
 * message that is not recorded, and never records as sent a message the
 * plugin did not accept.  A message found in "sending" after a crash is
 * sent again (at-least-once, the default) or failed (at-most-once).
 *
 * By stage, along the data flow: plan.c (the audience, the router's
 * input, the decision and its record), compose.c (the message: render
 * context, parts, unsubscribe and tracking links), dispatch.c (due rows,
 * batches, results, re-routing), lane.c (the sender threads), fire.c
 * (herald serve's journey steps), cmd_run.c (the commands).
 *
 * run/internal.h: what the stages of the scheduler share (core/plan.c,
 * core/compose.c, core/dispatch.c, core/lane.c, core/fire.c,
 * core/cmd_run.c): the run's state, the due rows, the batches and the
 * lanes.  Not installed, not for other modules (they use run.h). */
#ifndef HERALD_RUN_INTERNAL_H
#define HERALD_RUN_INTERNAL_H
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "../campaign.h"
#include "../herald/plugin.h"
#include "../loader.h"
#include "../router.h"
#include "../store.h"
#include "../token.h"
#include "../util.h"
#include "../liquid/liquid.h"

#define PAGE 500             /* customers planned per transaction */

#define BATCH 500            /* messages per plugin call: one page; each
                                batch costs two commits (sending, results) */

/* Counters of one run, per channel kind index (n_channels) + totals. */
struct counts {
  long planned, sent, retry, failed, dead, held_out, deferred, fallback;
  long skipped;
  long shifted;
};

struct reason_count {
  char *reason;
  long n;
};

/* A due outbox row, copied out of the store's callback. */
struct due {
  char *key, *customer, *instance, *channel, *variant, *address, *parts;
  char *reason;                /* a "reroute" row's: why it failed */
  int attempts;
  int step;                    /* 1: the campaign; 2, ...: [step.N] */
  int64_t journey;             /* the journey instance, 0 for herald run */
  int64_t created;
  json_t *addr_j, *parts_j;
};

struct due_list {
  struct due *d;
  size_t n, cap;
};

/* One plugin call's worth of messages: its rows (moved in, owned), the
 * messages built from them, and the results the plugin writes. */
struct batch {
  int cidx, lane;
  struct due *rows;
  size_t n;
  struct herald_message *m;
  struct herald_result *res;
  const struct herald_message **mp;   /* &m[i], as send takes them */
  struct herald_result **rp;          /* &res[i] */
  struct herald_address **to;         /* per message: its addresses */
  const struct herald_address ***top; /* per message: pointers to them */
  struct herald_part **parts;
  const struct herald_part ***pp;
  unsigned char **inv;
  int call;                    /* what send returned */
};

/* One plugin instance of a channel ([channel.NAME] lanes = N opens N),
 * and the batch it may have in flight on its own thread. */
struct lane {
  struct channel *ch;
  struct batch flight;
  pthread_t thread;
  int flying;
  int64_t timeout;             /* [channel.NAME] send_timeout, seconds */
  struct timespec deadline;    /* CLOCK_REALTIME: when the send is given up */
  int stuck;                   /* its send outlasted the timeout: the lane,
                                  its state and its batch are never touched
                                  again (the thread is still in the plugin) */
};

struct run {
  struct gateway *gw;
  struct campaign *c;
  struct store *st;
  struct lane *lanes[ROUTER_MAX_CHANNELS];   /* parallel to c->channels */
  int n_lanes[ROUTER_MAX_CHANNELS];
  unsigned next_lane[ROUTER_MAX_CHANNELS];
  int dry_run;
  int verbose_progress;
  int64_t now;
  json_t *pop;                 /* population stats per channel kind */
  struct liquid_buf buf;
  struct counts per[ROUTER_MAX_CHANNELS];
  struct counts total;
  json_t *retried;             /* message key -> channel index, for the
                                  messages counted in retry by this run */
  struct reason_count *reasons;
  size_t n_reasons;
  json_t *variants;            /* dry-run: variant -> count */
  json_t *campaign_j;          /* templates' campaign.* */
  int64_t deferred_until_min, deferred_until_max;
  long scheduled;              /* of the deferred: to the campaign's start */
  long unplanned;              /* customers a store error left unplanned */
  long rerouting;              /* failures recorded for reroute_due; its
                                  pass reads the store only when non-zero */
  /* Warm-up ([channel.NAME] warmup): what is left of the UTC day's
   * volume per channel, as of warm_day (0: not read yet). */
  long warm_left[ROUTER_MAX_CHANNELS];
  int64_t warm_day[ROUTER_MAX_CHANNELS];
  long warm_moved[ROUTER_MAX_CHANNELS];   /* past the volume: to
                                             another channel or the next
                                             day, this run */
  long warm_deferred;          /* of those, deferred to the next day */
  int channel_error;           /* a channel reported a configuration error */
  char channel_error_msg[1024];
  int store_error;
  int lock_fd;                 /* the campaign's run lock, or -1 */
  int chunk;                   /* the audience chunk being planned (a
                                  shared store), -1: all of it */
  char worker[300];            /* this worker's name in a shared store's
                                  leases, "" when not shared */
  int64_t renewed;             /* when its leases were last renewed */
  struct token_key unsub_key;  /* [tracking] secret, for unsubscribe links */
  int unsub_key_ready;
  struct token_key track_key;  /* derived from it: click and open links */
  int track_key_ready;
  /* What is being planned: herald run plans step 1 of journey 0; herald
   * serve sets these for each due journey step (run_fire). */
  int step;
  int64_t journey;
  json_t *event;               /* the templates' event.*, or NULL */
  int serve;                   /* in herald serve: the plugins stay loaded */
};

/* plan_customer's (and render_parts') return when a store read or write
 * failed: nothing decided, the customer not messaged (fail closed). */
#define PLAN_STORE_ERROR (-2)

/* The first store failure met while planning one customer: its text is
 * kept at once (the store's next statement clears it). */
struct plan_fail {
  int failed;
  char msg[512];
};

/* What planning one customer produced. */
struct plan {
  struct router_decision d;
  int in_segment;
  int cidx;                    /* index of the chosen channel, or -1 */
  json_t *parts;               /* part name -> text, new reference */
  json_t *address;             /* [{type, value}], new reference */
  char *render_error;          /* "file:line:col: message" */
  int scheduled;               /* deferred to the campaign's start */
  char key[512];
};

/* SIGTERM or SIGINT arrived: finish the batch in flight and stop. */
extern volatile sig_atomic_t run_stop;


/* compose.c */

/* Where render_parts records the short links of an SMS (a channel with
 * track_links): compose never touches the store itself.  RECORD keeps
 * URL[0..LEN) (not NUL-terminated) as a link of message KEY and sets
 * *ID_R to its id, the id the short token names (token.h); it returns 0,
 * or -1 after writing why into ERR (ERRLEN bytes, NUL-terminated).  A
 * failure makes render_parts return PLAN_STORE_ERROR.  plan.c's sink
 * writes the store's links table in the caller's transaction. */
struct link_sink {
  int (*record) (void *data, const char *key, const char *url, size_t len,
                 int64_t *id_r, char *err, size_t errlen);
  void *data;
};

const char *jstr (json_t *o, const char *k);
json_t *str_object (const char *k1, const char *v1, const char *k2, const char *v2,
            const char *k3, const char *v3);
char *unsubscribe_url (struct run *r, const char *customer, const char *kind);
json_t *render_context (struct run *r, json_t *cust);
const char *customer_zone (struct run *r, json_t *cust);
int render_parts (struct run *r, json_t *cust, const char *kind,
              const char *variant, const char *key,
              const struct link_sink *links, struct plan *p);
char *dupn (const char *s);
char *dumps (json_t *j);

/* plan.c */
void message_key (const struct run *r, int step, const char *customer,
                  int64_t journey, char *buf, size_t len);
void plan_clear (struct plan *p);
void count_reason (struct run *r, const char *reason);
int plan_customer (struct run *r, json_t *cust, const int *failed, struct plan *p);
int record_plan (struct run *r, json_t *cust, struct plan *p, int fresh);
void count_plan (struct run *r, struct plan *p);
/* A shared store's leases: renewed when a quarter of the lease has gone
 * by since the last time.  0, or -1 (store error said, r->store_error). */
int lease_tick (struct run *r);
int plan_page (struct run *r, char *after, size_t afterlen, int limit,
           struct due_list *fresh_r);
int journey_enter (struct run *r, const char *customer, int step, int64_t journey);
void journey_leave (struct run *r);

/* dispatch.c */
void due_add_plan (struct due_list *l, struct run *r, const char *customer,
              struct plan *p);
void due_free (struct due_list *l);
int channel_index (struct run *r, const char *instance);
int fallback (struct run *r, struct due *d, int cidx);
void batch_free (struct batch *b);
int batch_record (struct run *r, struct batch *b);
void send_fresh (struct run *r, struct due_list *l);
int reroute_due (struct run *r);
long dispatch_due (struct run *r);

/* lane.c */
int lane_wait (struct run *r, struct lane *l, struct batch *b);
int lane_takeoff (struct lane *l, struct batch *b);
void batch_land (struct run *r, struct batch *b);
void land_all (struct run *r);
int batch_channel_error (const struct batch *b);
int batch_send_here (struct run *r, struct batch *b);

/* fire.c */
void step_channels (struct run *r, const struct campaign_step *cs,
               const struct outbox_row *prev, int *failed);

/* cmd_run.c */
int open_run (struct run *r, const char *campaign_path, int open_channels);
void close_run (struct run *r);

#endif
