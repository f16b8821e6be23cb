/* fire.c: herald serve's side: journey steps through the same planning. */
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


struct run *
run_serve_open (const char *campaign_path)
{
  struct run *r = xcalloc (1, sizeof *r);

  r->lock_fd = -1;
  r->serve = 1;
  if (open_run (r, campaign_path, 2) < 0) {
    close_run (r);
    free (r);
    return NULL;
  }
  return r;
}

void
run_serve_close (struct run *r)
{
  if (!r)
    return;
  close_run (r);
  free (r);
}

int
run_serve_shared (const struct run *r)
{
  return r->worker[0] != '\0';
}

const struct campaign *
run_serve_campaign (const struct run *r)
{
  return r->c;
}

struct store *
run_serve_store (const struct run *r)
{
  return r->st;
}

int
run_serve_lock (struct run *r)
{
  /* A shared store: the replicas of herald serve take turns through it. */
  if (r->worker[0])
    return store_campaign_lock (r->st, r->c->id, 1);
  if (flock (r->lock_fd, LOCK_EX | LOCK_NB) == 0)
    return 1;
  return errno == EWOULDBLOCK ? 0 : -1;
}

void
run_serve_unlock (struct run *r)
{
  if (r->worker[0])
    store_campaign_lock (r->st, r->c->id, 0);
  else
    flock (r->lock_fd, LOCK_UN);
}

/* The channel mask of a follow-up: which channels the step must not use,
 * from the channel the previous step's message went on. */
void
step_channels (struct run *r, const struct campaign_step *cs,
               const struct outbox_row *prev, int *failed)
{
  int pidx = prev && prev->instance ? channel_index (r, prev->instance) : -1;
  size_t i;

  /* 2: left out by the step's rule (router.h), not a failure. */
  switch (cs->channel) {
  case STEP_SAME:
    for (i = 0; pidx >= 0 && i < r->c->n_channels; i++)
      failed[i] = (int) i != pidx ? 2 : 0;
    break;
  case STEP_NEXT:
    if (pidx >= 0)
      failed[pidx] = 2;
    break;
  case STEP_NAMED:
    for (i = 0; i < r->c->n_channels; i++)
      failed[i] = (int) i != cs->channel_idx ? 2 : 0;
    break;
  }
}

/* Fire T inside the caller's transaction: its message planned and
 * recorded (appended to FRESH when it goes now), or why not, and T marked
 * done.  WHAT gets a short account.  0, or -1 on a store error. */
static int
fire_one (struct run *r, const struct store_timer *t, struct due_list *fresh,
          char *what, size_t len)
{
  const struct campaign_step *cs = campaign_step (r->c, t->step);
  int failed[ROUTER_MAX_CHANNELS] = { 0 };
  struct outbox_row *first = NULL, *prev = NULL;
  const char *state = "fired";
  char reason[256] = "", key[512];
  json_t *cust = NULL;
  struct plan p;
  int rc = -1, planned = 0;

  memset (&p, 0, sizeof p);
  if (journey_enter (r, t->customer, t->step, t->instance) < 0)
    goto out;
  cust = store_customer_get (r->st, t->customer);
  if (!cust) {
    if (*store_error (r->st))
      goto out;
    snprintf (reason, sizeof reason, "no such customer");
    goto done;
  }
  if (cs) {
    char found[32];
    int64_t since;
    int e;

    message_key (r, 1, t->customer, t->instance, key, sizeof key);
    if (store_outbox_get (r->st, key, &first) < 0)
      goto out;
    message_key (r, t->step - 1, t->customer, t->instance, key, sizeof key);
    if (store_outbox_get (r->st, key, &prev) < 0)
      goto out;
    since = first && first->sent_at ? first->sent_at : t->entered;
    e = store_journey_engaged (r->st, r->c->id, t->customer, t->instance,
                               since, cs->unless, found, sizeof found);
    if (e < 0)
      goto out;
    if (e == 1) {
      state = "exited";
      snprintf (reason, sizeof reason, "unless: %s", found);
      goto done;
    }
    step_channels (r, cs, prev, failed);
  }
  {
    int pc = plan_customer (r, cust, failed, &p);

    if (pc == PLAN_STORE_ERROR)
      goto out;                /* the step stays waiting */
    if (pc < 0) {
      snprintf (reason, sizeof reason, "%s",
                p.render_error ? p.render_error : "cannot plan");
      goto done;
    }
  }
  if (!p.in_segment) {
    snprintf (reason, sizeof reason, "not in the segment");
    goto done;
  }
  {
    int fresh_row = r->c->at_least_once && p.d.outcome == ROUTER_SEND
                    && p.cidx >= 0 && !p.render_error;
    int ins = record_plan (r, cust, &p, fresh_row);

    if (ins < 0)
      goto out;
    if (fresh_row && ins == 0)
      due_add_plan (fresh, r, t->customer, &p);
    if (ins == 0)
      count_plan (r, &p);
    planned = 1;
  }
  snprintf (reason, sizeof reason, "%s",
            p.render_error ? "render_error"
            : p.d.outcome == ROUTER_SEND ? p.d.channel
            : p.d.outcome == ROUTER_DEFER ? "deferred (quiet hours)"
            : p.d.outcome == ROUTER_HOLD ? "held_out"
            : p.d.reason ? p.d.reason : "skipped");
done:
  if (store_timer_done (r->st, t->id, state, reason) < 0)
    goto out;
  snprintf (what, len, "%s%s%s", planned ? "" : state, planned ? "" : ": ",
            reason);
  rc = 0;
out:
  plan_clear (&p);
  journey_leave (r);
  json_decref (cust);
  store_row_free (first);
  store_row_free (prev);
  return rc;
}

int
run_fire (struct run *r, const struct store_timer *ts, size_t n,
          void (*report) (void *data, const struct store_timer *t,
                          const char *what),
          void *data)
{
  struct due_list fresh = { 0 };
  char **whats = xcalloc (n ? n : 1, sizeof *whats), what[512];
  size_t i;
  int rc = -1;

  /* One transaction for the lot (one fsync, not one a journey), then the
   * messages that go now in batches, as herald run sends a page. */
  r->now = now_seconds ();
  if (store_begin (r->st) < 0)
    goto out;
  for (i = 0; i < n; i++) {
    if (fire_one (r, &ts[i], &fresh, what, sizeof what) < 0) {
      store_rollback (r->st);
      due_free (&fresh);
      goto out;
    }
    whats[i] = xstrdup (what);
  }
  if (store_commit (r->st) < 0) {
    due_free (&fresh);
    goto out;
  }
  for (i = 0; report && i < n; i++)
    report (data, &ts[i], whats[i]);
  /* Committed as "sending": to their plugins now (at least once). */
  send_fresh (r, &fresh);
  due_free (&fresh);
  rc = 0;
out:
  for (i = 0; i < n; i++)
    free (whats[i]);
  free (whats);
  return rc;
}

long
run_serve_plan (struct run *r)
{
  char after[1024] = "";
  long total = 0;

  for (;;) {
    struct due_list fresh = { 0 };
    int n;

    r->now = now_seconds ();
    n = plan_page (r, after, sizeof after, PAGE, &fresh);
    if (n > 0)
      send_fresh (r, &fresh);
    due_free (&fresh);
    if (n <= 0)
      return n < 0 ? -1 : total;
    total += n;
  }
}

long
run_serve_dispatch (struct run *r, char *err, size_t len)
{
  long n = dispatch_due (r);

  land_all (r);
  *err = '\0';
  if (r->channel_error)
    snprintf (err, len, "%s", r->channel_error_msg);
  else if (r->store_error)
    snprintf (err, len, "%s", store_error (r->st));
  /* A long-running process: the next tick tries again (a broken channel
   * stays broken in this process). */
  r->channel_error = 0;
  r->store_error = 0;
  return n;
}
