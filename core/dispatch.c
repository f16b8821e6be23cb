/* dispatch.c: due rows, batches, results, backoff, fallback. */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "run/internal.h"
#include "campaign.h"
#include "jsonw.h"
#include "linkrewrite.h"
#include "../lib/jsoncheck.h"
#include "loader.h"
#include "main.h"
#include "run.h"
#include "store.h"
#include "token.h"
#include "tz.h"


/* A new zeroed row at the end of L. */
static struct due *
due_new (struct due_list *l)
{
  struct due *d;

  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->d = xrealloc (l->d, l->cap * sizeof *l->d);
  }
  d = &l->d[l->n++];
  memset (d, 0, sizeof *d);
  return d;
}

static int
due_add (void *data, const struct outbox_row *row)
{
  struct due *d = due_new (data);

  d->key = dupn (row->key);
  d->customer = dupn (row->customer);
  d->instance = dupn (row->instance);
  d->channel = dupn (row->channel);
  d->variant = dupn (row->variant);
  d->address = dupn (row->address);
  d->parts = dupn (row->parts);
  d->reason = dupn (row->reason);
  d->attempts = row->attempts;
  d->created = row->created;
  d->step = row->step;
  d->journey = row->journey;
  return 0;
}

/* Append a freshly planned message (its row committed as "sending"). */
void
due_add_plan (struct due_list *l, struct run *r, const char *customer,
              struct plan *p)
{
  struct due *d = due_new (l);

  d->key = xstrdup (p->key);
  d->customer = xstrdup (customer);
  d->instance = xstrdup (r->c->channels[p->cidx].conf->name);
  d->channel = xstrdup (r->c->channels[p->cidx].kind);
  d->variant = dupn (p->d.variant);
  d->attempts = 0;
  d->created = r->now;
  d->step = r->step;
  d->journey = r->journey;
  d->addr_j = json_incref (p->address);
  d->parts_j = json_incref (p->parts);
}

static void
due_clear (struct due *d)
{
  free (d->key);
  free (d->customer);
  free (d->instance);
  free (d->channel);
  free (d->variant);
  free (d->address);
  free (d->parts);
  free (d->reason);
  json_decref (d->addr_j);
  json_decref (d->parts_j);
  memset (d, 0, sizeof *d);
}

void
due_free (struct due_list *l)
{
  size_t i;

  for (i = 0; i < l->n; i++)
    due_clear (&l->d[i]);
  free (l->d);
  memset (l, 0, sizeof *l);
}

/* Exponential backoff with jitter: 30 s, 60 s, 120 s ... capped at 1 h,
 * each +-20%, never shorter than what the provider asked for. */
static int64_t
backoff (int attempt, int64_t retry_after_ms)
{
  double base = 30.0 * pow (2.0, attempt > 1 ? attempt - 1 : 0);
  double jitter;
  int64_t s;

  if (base > 3600)
    base = 3600;
  jitter = 0.8 + 0.4 * ((double) rand () / RAND_MAX);
  s = (int64_t) (base * jitter);
  if (retry_after_ms > 0 && (retry_after_ms + 999) / 1000 > s)
    s = (retry_after_ms + 999) / 1000;
  return s;
}

int
channel_index (struct run *r, const char *instance)
{
  size_t i;

  for (i = 0; instance && i < r->c->n_channels; i++)
    if (strcmp (r->c->channels[i].conf->name, instance) == 0)
      return (int) i;
  return -1;
}

/* A message D of step N was sent: queue step N + 1, if the campaign has
 * one, after its delay.  In the transaction that records the send, so a
 * crash never loses the follow-up nor queues it twice. */
static int
queue_next_step (struct run *r, const struct due *d)
{
  const struct campaign_step *next = campaign_step (r->c, d->step + 1);
  struct store_timer t;

  if (!next)
    return 0;
  memset (&t, 0, sizeof t);
  t.campaign = r->c->id;
  t.customer = d->customer;
  t.instance = d->journey;
  t.step = d->step + 1;
  t.due = r->now + next->after;
  return store_timer_add (r->st, &t) < 0 ? -1 : 0;
}

/* After a permanent failure on channel CIDX: route the same message to the
 * next best usable channel (one message per customer and step, never two:
 * the row is re-routed, not duplicated).  Returns 1 when re-routed, 0
 * when there is no usable channel left, -1 on a store error. */
int
fallback (struct run *r, struct due *d, int cidx)
{
  json_t *cust = store_customer_get (r->st, d->customer);
  int failed[ROUTER_MAX_CHANNELS] = { 0 };
  struct outbox_row row;
  struct plan p;
  json_t *prev;
  char *addr = NULL, *parts = NULL;
  int rc = 0;

  if (!cust)
    return *store_error (r->st) ? -1 : 0;
  /* Channels this message already failed on are kept in the row's parts
   * under "_failed", so a second fallback does not go back. */
  prev = d->parts_j ? json_object_get (d->parts_j, "_failed") : NULL;
  if (json_is_array (prev)) {
    size_t i;
    json_t *v;
    json_array_foreach (prev, i, v) {
      int k = channel_index (r, json_string_value (v));
      if (k >= 0)
        failed[k] = 1;
    }
  }
  failed[cidx] = 1;
  /* A follow-up keeps its step's channel rule (same, next) on the way to
   * another channel: the rule leaves channels out as it did at first. */
  if (d->step > 1) {
    const struct campaign_step *cs = campaign_step (r->c, d->step);
    struct outbox_row *prev_row = NULL;
    int rule[ROUTER_MAX_CHANNELS] = { 0 };
    char key[512];
    size_t k;

    if (cs) {
      message_key (r, d->step - 1, d->customer, d->journey, key, sizeof key);
      if (store_outbox_get (r->st, key, &prev_row) < 0) {
        json_decref (cust);
        return -1;
      }
      step_channels (r, cs, prev_row, rule);
      store_row_free (prev_row);
      for (k = 0; k < r->c->n_channels; k++)
        if (rule[k] && !failed[k])
          failed[k] = rule[k];
    }
  }
  if (journey_enter (r, d->customer, d->step, d->journey) < 0) {
    json_decref (cust);
    return 0;
  }
  rc = plan_customer (r, cust, failed, &p);
  journey_leave (r);
  if (rc == PLAN_STORE_ERROR) {
    plan_clear (&p);
    json_decref (cust);
    return -1;
  }
  if (rc < 0 || p.d.outcome != ROUTER_SEND || p.cidx < 0 || p.render_error) {
    plan_clear (&p);
    json_decref (cust);
    return 0;
  }
  rc = 0;
  {
    json_t *fl = json_array ();
    size_t i;
    /* The channels it failed on (1), not those its step's rule left out
     * (2): those are left out again from the step. */
    for (i = 0; i < r->c->n_channels; i++)
      if (failed[i] == 1)
        json_array_append_new (fl, json_string (r->c->channels[i].conf->name));
    json_object_set_new (p.parts, "_failed", fl);
  }
  memset (&row, 0, sizeof row);
  row.key = d->key;
  row.campaign = r->c->id;
  row.step = d->step;
  row.journey = d->journey;
  row.customer = d->customer;
  row.channel = r->c->channels[p.cidx].kind;
  row.instance = r->c->channels[p.cidx].conf->name;
  row.variant = p.d.variant;
  row.state = "pending";
  row.reason = "fallback";
  row.next_at = r->now;
  addr = dumps (p.address);
  parts = dumps (p.parts);
  row.address = addr;
  row.parts = parts;
  row.trace = p.d.trace;
  switch (store_outbox_reroute (r->st, &row)) {
  case 0: rc = 1; break;
  case 1: rc = 0; break;       /* no such row: nothing to re-route */
  default: rc = -1; break;     /* a store error is no "no fallback" */
  }
  free (addr);
  free (parts);
  plan_clear (&p);
  json_decref (cust);
  return rc;
}

/* 1 when the plugin's detail JSON has "NAME": true. */
static int
detail_flag (const char *detail, const char *name)
{
  json_t *j = json_loads (detail, 0, NULL);
  int yes = json_is_true (json_object_get (j, name));

  json_decref (j);
  return yes;
}

void
batch_free (struct batch *b)
{
  size_t i;

  for (i = 0; i < b->n; i++) {
    due_clear (&b->rows[i]);
    free (b->to[i]);
    free (b->top[i]);
    free (b->parts[i]);
    free (b->pp[i]);
    free (b->inv[i]);
  }
  free (b->rows);
  free (b->to);
  free (b->top);
  free (b->parts);
  free (b->pp);
  free (b->mp);
  free (b->rp);
  free (b->inv);
  free (b->m);
  free (b->res);
  memset (b, 0, sizeof *b);
}

/* Move the rows DS[0..N) (all for channel CIDX; each left empty) into B
 * and build their messages from the recorded rows: the same bytes after
 * a crash as before it. */
static void
batch_prepare (struct run *r, int cidx, struct due **ds, size_t n,
               struct batch *b)
{
  size_t i, k;

  memset (b, 0, sizeof *b);
  b->cidx = cidx;
  b->n = n;
  b->rows = xcalloc (n ? n : 1, sizeof *b->rows);
  b->m = xcalloc (n ? n : 1, sizeof *b->m);
  b->res = xcalloc (n ? n : 1, sizeof *b->res);
  b->mp = xcalloc (n ? n : 1, sizeof *b->mp);
  b->rp = xcalloc (n ? n : 1, sizeof *b->rp);
  b->to = xcalloc (n ? n : 1, sizeof *b->to);
  b->top = xcalloc (n ? n : 1, sizeof *b->top);
  b->parts = xcalloc (n ? n : 1, sizeof *b->parts);
  b->pp = xcalloc (n ? n : 1, sizeof *b->pp);
  b->inv = xcalloc (n ? n : 1, sizeof *b->inv);
  /* Zero is HERALD_SENT: a result the plugin does not fill must not read
   * as sent. */
  for (i = 0; i < n; i++) {
    b->res[i].struct_size = sizeof b->res[i];
    b->res[i].status = HERALD_NO_RESULT;
    b->mp[i] = &b->m[i];
    b->rp[i] = &b->res[i];
  }
  for (i = 0; i < n; i++) {
    struct due *d = &b->rows[i];
    struct herald_message *m = &b->m[i];
    json_t *v;
    const char *pk;
    size_t na, np = 0;

    *d = *ds[i];
    memset (ds[i], 0, sizeof *ds[i]);
    na = json_array_size (d->addr_j);
    b->to[i] = xcalloc (na ? na : 1, sizeof **b->to);
    b->top[i] = xcalloc (na ? na : 1, sizeof **b->top);
    json_array_foreach (d->addr_j, k, v) {
      b->to[i][k].struct_size = sizeof b->to[i][k];
      b->to[i][k].type = jstr (v, "type") ? jstr (v, "type") : d->channel;
      b->to[i][k].value = jstr (v, "value") ? jstr (v, "value") : "";
      b->top[i][k] = &b->to[i][k];
    }
    b->inv[i] = xcalloc (na ? na : 1, 1);
    b->parts[i] = xcalloc (json_object_size (d->parts_j) + 1, sizeof **b->parts);
    b->pp[i] = xcalloc (json_object_size (d->parts_j) + 1, sizeof **b->pp);
    json_object_foreach (d->parts_j, pk, v) {
      if (pk[0] == '_')
        continue;
      b->parts[i][np].struct_size = sizeof b->parts[i][np];
      b->parts[i][np].name = pk;
      b->parts[i][np].data = json_string_value (v);
      b->parts[i][np].len = json_string_length (v);
      b->pp[i][np] = &b->parts[i][np];
      np++;
    }
    m->struct_size = sizeof *m;
    m->key = d->key;
    m->campaign = r->c->id;
    m->customer = d->customer;
    m->channel = d->channel;
    m->variant = d->variant ? d->variant : "";
    m->to = b->top[i];
    m->n_to = na;
    m->to_name = jstr (d->parts_j, "_to_name");
    m->parts = b->pp[i];
    m->n_parts = np;
    m->unsubscribe_url = jstr (d->parts_j, "_unsubscribe_url");
    m->unsubscribe_mailto = r->gw->unsubscribe_mailto;
    m->created = d->created;
    m->attempt = (unsigned) d->attempts + 1;
    b->res[i].to_invalid = b->inv[i];
  }
}

/* The summary counts messages, not attempts: a message waiting for a
 * retry is counted once in "retry", and leaves it when this run attempts
 * it again (whatever comes of that attempt: sent, failed, dead, or in
 * "retry" again, once).  Five messages tried three times while their
 * server was down are "retry 5", not 15.  So the keys counted in retry
 * are kept, with the channel they were counted on: as many as there are
 * messages waiting, for this run.  herald serve prints no summary and
 * keeps none. */
static void
retry_uncount (struct run *r, const char *key)
{
  json_t *was;

  if (!r->retried || !(was = json_object_get (r->retried, key)))
    return;
  r->per[(int) json_integer_value (was)].retry--;
  r->total.retry--;
  json_object_del (r->retried, key);
}

static void
retry_count (struct run *r, const char *key, int cidx)
{
  r->per[cidx].retry++;
  r->total.retry++;
  if (r->retried)
    json_object_set_new_nocheck (r->retried, key, json_integer (cidx));
}

/* Record every result of B in one transaction.  0, or -1 on a store
 * failure (then r->store_error is set). */
int
batch_record (struct run *r, struct batch *b)
{
  struct channel *ch = r->lanes[b->cidx][b->lane].ch;
  int cidx = b->cidx;
  size_t i, k;

  r->now = now_seconds ();
  if (store_begin (r->st) < 0)
    goto store_fail;
  for (i = 0; i < b->n; i++) {
    struct due *d = &b->rows[i];
    struct herald_result *x = &b->res[i];
    unsigned char *inv = b->inv[i];
    const struct herald_address *to = b->to[i];
    size_t n_to = b->m[i].n_to;
    int attempts = d->attempts + 1;
    int status;
    const char *detail;

    /* The plugin's strings end within their buffers, whatever it wrote. */
    x->provider_id[sizeof x->provider_id - 1] = '\0';
    x->error[sizeof x->error - 1] = '\0';
    x->detail[sizeof x->detail - 1] = '\0';
    status = b->call < 0 ? HERALD_RETRY : x->status;
    detail = x->detail[0] ? x->detail : NULL;

    for (k = 0; k < n_to; k++)
      if (inv[k]
          && store_suppress (r->st, d->channel, to[k].value,
                             x->error[0] ? x->error : "invalid address") < 0)
        goto store_fail;
    retry_uncount (r, d->key);
    switch (status) {
    case HERALD_SENT:
      /* The router sees this send through store_customer_events. */
      if (store_outbox_update (r->st, d->key, "sent", attempts, 0,
                               x->provider_id, NULL, detail) < 0
          || queue_next_step (r, d) < 0)
        goto store_fail;
      r->per[cidx].sent++;
      r->total.sent++;
      break;
    case HERALD_CHANNEL_ERROR:
      /* The channel is misconfigured: not this message's fault.  Put it
       * back, uncounted, and stop using the channel. */
      if (store_outbox_update (r->st, d->key, "pending", d->attempts, r->now,
                               NULL, x->error, NULL) < 0)
        goto store_fail;
      if (!r->channel_error) {
        r->channel_error = 1;
        snprintf (r->channel_error_msg, sizeof r->channel_error_msg,
                  "channel %s: %s", ch->name, x->error);
      }
      ch->broken = 1;
      break;
    case HERALD_REJECTED:
    case HERALD_INVALID_ADDRESS:
      if (status == HERALD_INVALID_ADDRESS && n_to == 1 && !inv[0]
          && store_suppress (r->st, d->channel, to[0].value,
                             x->error[0] ? x->error : "invalid address") < 0)
        goto store_fail;
      /* The recipient opted out at the provider (Twilio 21610, a STOP
       * reply): that is a consent change, not only a dead address, so a
       * later START can lift it.  ABI 2 says so in opt_out; a version 1
       * plugin said it with "opt_out": true in its detail. */
      if ((x->opt_out
           || (ch->plugin->p.abi_version < 2 && detail
               && detail_flag (detail, "opt_out")))
          && store_consent_set (r->st, d->customer, d->channel, 0, r->now,
                                "provider opt-out") < 0)
        goto store_fail;
      /* With another channel in the campaign, the failure is recorded
       * for the planning pass to re-route (reroute_due): this
       * transaction records results, it does not plan. */
      if (r->c->n_channels > 1 && r->c->fallback) {
        if (store_outbox_update_reason (r->st, d->key, "reroute",
                                        status == HERALD_REJECTED
                                        ? "rejected" : "invalid_address",
                                        attempts, 0, NULL, x->error,
                                        detail) < 0)
          goto store_fail;
        r->rerouting++;
        break;
      }
      if (store_outbox_update_reason (r->st, d->key, "failed",
                                      status == HERALD_REJECTED ? "rejected"
                                                                : "invalid_address",
                                      attempts, 0, NULL, x->error, detail) < 0)
        goto store_fail;
      r->per[cidx].failed++;
      r->total.failed++;
      break;
    case HERALD_NO_RESULT:
      /* The plugin returned without a word on this message: it may or
       * may not have gone, so it is tried again (at least once). */
      if (!x->error[0])
        snprintf (x->error, sizeof x->error, "the plugin gave no result for "
                  "this message");
      /* fall through */
    default:   /* HERALD_RETRY and anything unknown */
      if (attempts >= r->c->max_attempts) {
        /* Retries exhausted on this channel: the next usable one, as for
         * a rejection (reroute_due), "dead" when there is none. */
        if (store_outbox_update_reason (r->st, d->key,
                                        r->c->n_channels > 1
                                        && r->c->fallback ? "reroute"
                                                          : "dead",
                                        "retries_exhausted", attempts, 0, NULL,
                                        x->error[0] ? x->error
                                                    : "temporary failure",
                                        detail) < 0)
          goto store_fail;
        if (r->c->n_channels > 1 && r->c->fallback)
          r->rerouting++;
        else {
          r->per[cidx].dead++;
          r->total.dead++;
        }
      }
      else {
        if (store_outbox_update (r->st, d->key, "retry", attempts,
                                 r->now + backoff (attempts, x->retry_after_ms),
                                 NULL, x->error[0] ? x->error
                                                   : "temporary failure",
                                 detail) < 0)
          goto store_fail;
        retry_count (r, d->key, cidx);
      }
      break;
    }
  }
  if (store_commit (r->st) < 0)
    goto store_fail;
  if (r->verbose_progress) {
    fprintf (stderr, "\rherald: %ld sent, %ld to retry, %ld failed   ",
             r->total.sent, r->total.retry, r->total.failed);
    __atomic_store_n (&loader_progress, 1, __ATOMIC_RELAXED);
  }
  return 0;

store_fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  store_rollback (r->st);
  r->store_error = 1;
  return -1;
}

/* A row's reason as it was before store_outbox_claim marked it
 * "claimed" (a mark read back from a row put back by an older herald is
 * not its own). */
static const char *
own_reason (const struct due *d)
{
  return d->reason && strcmp (d->reason, "claimed") != 0 ? d->reason : NULL;
}

/* Rows committed as "sending" that will not be handed to a plugin now
 * (the run stops): back to "pending", this attempt not counted. */
static void
unclaim (struct run *r, const struct batch *b)
{
  size_t j;

  /* After a store failure they stay "sending": the next run's recovery
   * takes them back (at least once) or fails them (at most once). */
  if (r->store_error)
    return;
  if (store_begin (r->st) < 0)
    goto fail;
  for (j = 0; j < b->n; j++)
    if (store_outbox_update_reason (r->st, b->rows[j].key, "pending",
                                    own_reason (&b->rows[j]),
                                    b->rows[j].attempts, r->now, NULL, NULL,
                                    NULL) < 0)
      goto fail;
  if (store_commit (r->st) < 0)
    goto fail;
  return;

fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  store_rollback (r->st);
  r->store_error = 1;
}

/* The claimed rows of B, about to go to their plugin: "sending" with
 * this attempt counted and their own reason back, in one transaction.
 * 0, or -1 (a store failure, said; they stay claimed). */
static int
hand_over (struct run *r, const struct batch *b)
{
  size_t j;

  if (store_begin (r->st) < 0)
    goto fail;
  for (j = 0; j < b->n; j++)
    if (store_outbox_update_reason (r->st, b->rows[j].key, "sending",
                                    own_reason (&b->rows[j]),
                                    b->rows[j].attempts + 1, 0, NULL, NULL,
                                    NULL) < 0)
      goto fail;
  if (store_commit (r->st) < 0)
    goto fail;
  return 0;

fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  store_rollback (r->st);
  r->store_error = 1;
  return -1;
}

/* Send rows DS[0..N) (all for channel CIDX, committed as "sending": by
 * plan_page, or claimed by dispatch_due; moved out) on the channel's next
 * lane.  Fresh rows are the batch in flight, sent even after SIGTERM;
 * claimed ones (CLAIMED) go back to "pending" instead when the run is
 * stopping, as do both after a channel or store failure.  1 when handed
 * to the plugin. */
static int
send_claimed (struct run *r, int cidx, struct due **ds, size_t n, int claimed)
{
  struct batch next, landed;
  struct lane *l;
  int had;

  batch_prepare (r, cidx, ds, n, &next);
  next.lane = (int) (r->next_lane[cidx]++ % (unsigned) r->n_lanes[cidx]);
  l = &r->lanes[cidx][next.lane];
  had = lane_wait (r, l, &landed);
  if (l->stuck || r->channel_error || r->store_error || (claimed && run_stop)
      || (had && batch_channel_error (&landed))) {
    /* The run stops, or this channel is broken: these stay unsent. */
    if (had)
      batch_land (r, &landed);
    unclaim (r, &next);
    batch_free (&next);
    return 0;
  }
  /* Claimed rows count their attempt, and lose their "claimed" mark,
   * only now that the lane is free and they go to the plugin at once: a
   * row still marked at a crash was never handed over, and at most once
   * puts it back rather than failing it (store_outbox_recover). */
  if (claimed && hand_over (r, &next) < 0) {
    if (had)
      batch_land (r, &landed);
    batch_free (&next);
    return 0;
  }
  if (lane_takeoff (l, &next) < 0) {
    if (had)
      batch_land (r, &landed);
    return batch_send_here (r, &next) == 0;
  }
  if (had)
    batch_land (r, &landed);
  return 1;
}

/* Send rows DS[0..N) that dispatch_due claimed (all for channel CIDX;
 * moved out): their attempt counted when the lane takes them
 * (send_claimed).  1 when handed to the plugin. */
static int
send_due (struct run *r, int cidx, struct due **ds, size_t n)
{
  return send_claimed (r, cidx, ds, n, 1);
}

/* How many of the N rows of channel CIDX (DS, CLAIMED as for
 * send_by_channel) the channel's warm-up lets go today; the others are
 * recorded "reroute" (reason "warmup", this attempt not counted) in one
 * transaction, for reroute_due to move to the next usable channel, or to
 * the next day when there is none.  The day's volume is read from the
 * store (what every process handed to the channel today) whenever some
 * is left, so the count is exact across runs and workers but for the
 * batches they have in flight at that moment. */
static size_t
warmup_allow (struct run *r, int cidx, struct due **ds, size_t n, int claimed)
{
  const struct channel_conf *cc = r->c->channels[cidx].conf;
  int64_t now = now_seconds (), day = now - now % 86400;
  size_t allow, i;
  char why[256];

  if (cc->warmup_n <= 0 || n == 0)
    return n;
  if (r->warm_day[cidx] != day || r->warm_left[cidx] > 0) {
    long used = store_instance_volume (r->st, cc->name, day);
    long cap = config_warmup_cap (cc, now);

    if (used < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r->st));
      r->store_error = 1;
      return n;                /* send_claimed puts them back */
    }
    /* Fresh rows are in the store as "sending" already: not yet sent. */
    if (!claimed)
      used = used > (long) n ? used - (long) n : 0;
    r->warm_left[cidx] = cap > used ? cap - used : 0;
    r->warm_day[cidx] = day;
  }
  allow = (size_t) r->warm_left[cidx] < n ? (size_t) r->warm_left[cidx] : n;
  r->warm_left[cidx] -= (long) allow;
  if (allow == n)
    return n;
  snprintf (why, sizeof why, "warm-up: channel %s reached its volume of the "
            "day (%ld, warmup = %s)", cc->name, config_warmup_cap (cc, now),
            cc->warmup_spec);
  if (store_begin (r->st) < 0)
    goto store_fail;
  for (i = allow; i < n; i++) {
    if (store_outbox_update_reason (r->st, ds[i]->key, "reroute", "warmup",
                                    ds[i]->attempts, 0, NULL, why, NULL) < 0)
      goto store_fail;
  }
  if (store_commit (r->st) < 0)
    goto store_fail;
  r->warm_moved[cidx] += (long) (n - allow);
  r->rerouting += (long) (n - allow);
  for (i = allow; i < n; i++)
    due_clear (ds[i]);
  return allow;

store_fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  store_rollback (r->st);
  r->store_error = 1;
  return n;
}

/* Send DS[0..N) (committed as "sending"; CLAIMED: by dispatch_due, else
 * fresh from plan_page) in batches, grouped by channel, on the channels'
 * lanes (send_claimed).  Returns the number of rows handed to a plugin. */
static long
send_by_channel (struct run *r, struct due **ds, size_t n, int claimed)
{
  struct due **by[ROUTER_MAX_CHANNELS];
  size_t nby[ROUTER_MAX_CHANNELS] = { 0 };
  size_t i, k, off;
  long handled = 0;

  for (k = 0; k < r->c->n_channels; k++)
    by[k] = xcalloc (n ? n : 1, sizeof **by);
  for (i = 0; i < n; i++) {
    int cidx = channel_index (r, ds[i]->instance);
    if (cidx >= 0)
      by[cidx][nby[cidx]++] = ds[i];
  }
  /* Rows in flight at a crash ("recovered") first, one a batch: if one of
   * them crashes its plugin, it crashes alone, and its attempts reach
   * max_attempts without taking the others with it. */
  for (k = 0; k < r->c->n_channels; k++) {
    size_t nrec = 0;
    for (i = 0; i < nby[k]; i++)
      if (by[k][i]->reason && strcmp (by[k][i]->reason, "recovered") == 0) {
        struct due *t = by[k][nrec];
        by[k][nrec++] = by[k][i];
        by[k][i] = t;
      }
    for (i = 0; i < nrec; i++) {
      /* Alone: whatever went before it is landed and recorded first, or
       * a crash on this one would take the message before it (sent, not
       * yet recorded) along, and send it again at every crash. */
      land_all (r);
      if (claimed ? send_due (r, (int) k, by[k] + i, 1)
                  : send_claimed (r, (int) k, by[k] + i, 1, 0))
        handled++;
    }
    memmove (by[k], by[k] + nrec, (nby[k] - nrec) * sizeof *by[k]);
    nby[k] -= nrec;
  }
  /* A channel warming up takes its day's volume; the rest goes on. */
  for (k = 0; k < r->c->n_channels; k++)
    nby[k] = warmup_allow (r, (int) k, by[k], nby[k], claimed);
  /* send_claimed waits for its lane's batch in flight (a plugin state is
   * never used by two threads at once) and stops at a channel error its
   * results report. */
  for (k = 0; k < r->c->n_channels; k++)
    for (off = 0; off < nby[k]; off += BATCH) {
      size_t cnt = nby[k] - off < BATCH ? nby[k] - off : BATCH;

      if (claimed ? send_due (r, (int) k, by[k] + off, cnt)
                  : send_claimed (r, (int) k, by[k] + off, cnt, 0))
        handled += (long) cnt;
    }
  for (k = 0; k < r->c->n_channels; k++)
    free (by[k]);
  return handled;
}

/* Send the messages plan_page just committed as "sending", from memory
 * (moved into their batches). */
void
send_fresh (struct run *r, struct due_list *l)
{
  struct due **ds;
  size_t i;

  if (l->n == 0)
    return;
  ds = xcalloc (l->n, sizeof *ds);
  for (i = 0; i < l->n; i++)
    ds[i] = &l->d[i];
  send_by_channel (r, ds, l->n, 0);
  free (ds);
}

/* The permanent failures batch_record left in "reroute": planned again
 * here, in a transaction of their own, onto the next usable channel of
 * the campaign under the same key ("pending" for dispatch_due), or
 * "failed" with their own reason when none is left.  0, or -1 on a store
 * failure (r->store_error set). */
int
reroute_due (struct run *r)
{
  for (;;) {
    struct due_list l = { 0 };
    size_t i;
    int n;

    if (!r->rerouting)
      return 0;                /* none recorded by this process */
    r->now = now_seconds ();
    n = store_outbox_reroutes (r->st, r->c->id, BATCH, due_add, &l);
    if (n <= 0) {
      due_free (&l);
      if (n == 0) {
        r->rerouting = 0;
        return 0;
      }
      goto fail;
    }
    if (store_begin (r->st) < 0) {
      due_free (&l);
      goto fail;
    }
    for (i = 0; i < l.n; i++) {
      struct due *d = &l.d[i];
      int cidx = channel_index (r, d->instance), f;
      json_error_t jerr;

      d->parts_j = d->parts ? json_loads (d->parts, 0, &jerr) : NULL;
      f = cidx < 0 ? 0 : fallback (r, d, cidx);
      if (f == 0 && cidx >= 0 && d->reason && strcmp (d->reason, "warmup") == 0) {
        /* No other channel: the next UTC day, on this one. */
        int64_t next = r->now - r->now % 86400 + 86400;
        char why[256];
        snprintf (why, sizeof why, "warm-up: channel %s reached its volume "
                  "of the day, and no other channel of the campaign can "
                  "take it: deferred to the next day",
                  r->c->channels[cidx].conf->name);
        if (store_outbox_update (r->st, d->key, "pending", d->attempts, next,
                                 NULL, why, NULL) < 0) {
          store_rollback (r->st);
          due_free (&l);
          goto fail;
        }
        r->warm_deferred++;
        continue;
      }
      if (f < 0 || (f == 0 && store_outbox_reroute_none (r->st, d->key) < 0)) {
        store_rollback (r->st);
        due_free (&l);
        goto fail;
      }
      if (f == 1) {
        r->per[cidx].fallback++;
        r->total.fallback++;
      }
      else if (d->reason && strcmp (d->reason, "retries_exhausted") == 0) {
        if (cidx >= 0)
          r->per[cidx].dead++;
        r->total.dead++;
      }
      else {
        if (cidx >= 0)
          r->per[cidx].failed++;
        r->total.failed++;
      }
    }
    if (store_commit (r->st) < 0) {
      due_free (&l);
      goto fail;
    }
    due_free (&l);
    if (n < BATCH)
      r->rerouting = 0;
  }

fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  r->store_error = 1;
  return -1;
}

int
lease_tick (struct run *r)
{
  int64_t now;

  if (!r->worker[0])
    return 0;
  now = now_seconds ();
  if (now - r->renewed < r->gw->store_lease / 4)
    return 0;
  if (store_lease_renew (r->st) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r->st));
    r->store_error = 1;
    return -1;
  }
  r->renewed = now;
  return 0;
}

/* Dispatch every row due now.  Returns the number of rows handled, or -1
 * when the run must stop (store failure, channel error, signal). */
long
dispatch_due (struct run *r)
{
  long handled = 0;

  for (;;) {
    struct due_list l = { 0 };
    struct due **ok;
    size_t i, nok = 0;
    int n;

    if (run_stop || r->channel_error || r->store_error)
      return -1;
    /* Failures recorded since the last look become due rows here (those
     * of batches still in flight, at a later look: the run's last one
     * comes after every batch has landed). */
    if (reroute_due (r) < 0)
      return -1;
    r->now = now_seconds ();
    if (lease_tick (r) < 0)
      return -1;
    /* Claimed: "sending" and leased to this worker before anything is
     * sent, so two workers of a shared store never send one row twice. */
    n = store_outbox_claim (r->st, r->c->id, r->now, BATCH * 4, due_add, &l);
    if (n < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r->st));
      r->store_error = 1;
      return -1;
    }
    if (n == 0) {
      due_free (&l);
      return handled;
    }
    ok = xcalloc (l.n, sizeof *ok);
    for (i = 0; i < l.n; i++) {
      struct due *d = &l.d[i];
      int cidx = channel_index (r, d->instance);
      json_error_t jerr;

      d->addr_j = d->address ? json_loads (d->address, 0, &jerr) : NULL;
      d->parts_j = d->parts ? json_loads (d->parts, 0, &jerr) : NULL;
      if (cidx < 0 || !json_is_array (d->addr_j) || !json_is_object (d->parts_j)) {
        const char *why = cidx < 0 ? "channel no longer in the campaign"
                                   : "outbox row has no message content";
        if (store_outbox_update_reason (r->st, d->key, "failed", "unroutable",
                                        d->attempts, 0, NULL, why, NULL) < 0) {
          r->store_error = 1;
          break;
        }
        r->total.failed++;
        count_reason (r, "unroutable");
        continue;
      }
      ok[nok++] = d;
    }
    if (!r->store_error)
      handled += send_by_channel (r, ok, nok, 1);
    free (ok);
    due_free (&l);
    if (run_stop || r->channel_error || r->store_error)
      return -1;
  }
}
