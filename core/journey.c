/* journey: the timer queue that herald serve works.  For each campaign it
 * serves, a tick
 *   1. reads the events recorded since its cursor (POST /events, events
 *      import, provider callbacks, clicks: every way in ends in the events
 *      table), and queues step 1 of a journey for each trigger event, or
 *      cancels the customer's waiting steps for a cancel_on event;
 *   2. fires the steps that are due (run_fire: the same planning, outbox,
 *      lanes and plugins as herald run);
 *   3. sends the campaign's due rows (retries, quiet hours).
 * The cursor moves in the transaction that queues, so an event is taken
 * exactly once across restarts and kill -9; a step is marked fired in the
 * transaction that records its message. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "campaign.h"
#include "journey.h"
#include "run.h"
#include "store.h"
#include "util.h"

/* An event whose send time (its time plus the delay) is over a day past
 * does not enter: importing last year's events must not message anyone
 * about them now. */
#define JOURNEY_STALE (24 * 3600)
/* How long a campaign waits after a channel or store error. */
#define JOURNEY_PAUSE 60
/* Events read, and steps fired, per statement. */
#define JOURNEY_PAGE 500

struct jcampaign {
  struct run *r;
  const struct campaign *c;
  struct store *st;
  char *cursor_key;            /* meta key of the events cursor */
  int64_t cursor;
  int busy_said;               /* said that a herald run holds it */
  int recovered;               /* its rows in flight at a crash, done */
  int64_t plan_until;          /* a campaign with a start: plan its new
                                  customers until then */
  int64_t planned_at;          /* when it last planned */
  int64_t pause_until;         /* a channel or store error: the campaign
                                  waits until then (not 5 tries a second) */
  long entered, cancelled, stale;
};

struct journeys {
  struct jcampaign *c;
  size_t n;
};

/* ---- queueing: events to steps ------------------------------------ */

/* The templates' event.*: its properties, then type and at (RFC 3339). */
static char *
event_json (const struct store_event_row *e)
{
  json_t *ev = json_object (), *d = NULL;
  json_error_t jerr;
  char at[32], *s;

  if (e->detail && (d = json_loads (e->detail, 0, &jerr))
      && json_is_object (json_object_get (d, "properties")))
    json_object_update (ev, json_object_get (d, "properties"));
  json_decref (d);
  format_utc (e->at, at, sizeof at);
  json_object_set_new (ev, "type", json_string (e->type));
  json_object_set_new (ev, "at", json_string (at));
  s = json_dumps (ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (ev);
  return s;
}

/* A trigger event E: queue step 1 of a new journey, unless the customer
 * may not enter again yet. */
static int
enter (struct jcampaign *jc, const struct store_event_row *e)
{
  const struct campaign_trigger *tr = &jc->c->trigger;
  struct store_timer t;
  int64_t last = 0, entered = 0;
  int g, rc;

  if (e->at + tr->delay < now_seconds () - JOURNEY_STALE) {
    jc->stale++;
    return 0;
  }
  g = store_journey_last (jc->st, jc->c->id, e->customer, &last, &entered);
  if (g < 0)
    return -1;
  if (g == 1 && (tr->reenter < 0 || e->at - entered < tr->reenter))
    return 0;               /* entered before: reenter = no, or too soon */
  memset (&t, 0, sizeof t);
  t.campaign = jc->c->id;
  t.customer = e->customer;
  t.instance = last + 1;
  t.step = 1;
  t.due = e->at + tr->delay;
  t.entered = e->at;
  t.event = event_json (e);
  rc = store_timer_add (jc->st, &t);
  free ((char *) t.event);
  if (rc == 0)
    jc->entered++;
  return rc < 0 ? -1 : 0;
}

static int
on_event (void *data, const struct store_event_row *e)
{
  struct jcampaign *jc = data;
  int n;

  jc->cursor = e->id;
  /* Machines' opens and clicks say nothing of the customer. */
  if (e->machine)
    return 0;
  if (strcmp (e->type, jc->c->trigger.event) == 0)
    return enter (jc, e);
  if (campaign_cancels (jc->c, e->type)) {
    char why[128];
    snprintf (why, sizeof why, "cancel_on: %s", e->type);
    n = store_timer_cancel (jc->st, jc->c->id, e->customer, e->at, why);
    if (n < 0)
      return -1;
    jc->cancelled += n;
  }
  return 0;
}

/* Read the events past the cursor into the queue.  0 or -1. */
static int
ingest (struct jcampaign *jc)
{
  int n;

  do {
    if (store_begin (jc->st) < 0)
      return -1;
    n = store_events_after (jc->st, jc->cursor, JOURNEY_PAGE, on_event, jc);
    if (n < 0 || (n > 0 && store_meta_set_int (jc->st, jc->cursor_key,
                                                jc->cursor) < 0)) {
      store_rollback (jc->st);
      /* Read the cursor again: the rollback undid its moves. */
      store_meta_get_int (jc->st, jc->cursor_key, &jc->cursor);
      return -1;
    }
    if (store_commit (jc->st) < 0) {
      store_meta_get_int (jc->st, jc->cursor_key, &jc->cursor);
      return -1;
    }
  } while (n == JOURNEY_PAGE);
  return 0;
}

/* ---- firing ------------------------------------------------------- */

/* The due steps of one statement, copied out (the store lends them). */
struct due_steps {
  struct store_timer *t;
  size_t n;
};

static int
on_due (void *data, const struct store_timer *t)
{
  struct due_steps *ds = data;
  struct store_timer *c;

  ds->t = xrealloc (ds->t, (ds->n + 1) * sizeof *ds->t);
  c = &ds->t[ds->n++];
  *c = *t;
  c->campaign = xstrdup (t->campaign);
  c->customer = xstrdup (t->customer);
  c->event = t->event ? xstrdup (t->event) : NULL;
  return 0;
}

static void
report_step (void *data, const struct store_timer *t, const char *what)
{
  struct jcampaign *jc = data;

  printf ("herald serve: campaign %s: step %d for %s (entry %lld): %s\n",
          jc->c->id, t->step, t->customer, (long long) t->instance, what);
}

/* Fire what is due, a page at a time.  0 or -1. */
static int
fire_due (struct jcampaign *jc)
{
  for (;;) {
    struct due_steps ds = { NULL, 0 };
    size_t i;
    int n = store_timers_due (jc->st, jc->c->id, now_seconds (), JOURNEY_PAGE,
                              on_due, &ds), rc = 0;

    if (n > 0 && run_fire (jc->r, ds.t, ds.n, report_step, jc) < 0)
      rc = -1;
    for (i = 0; i < ds.n; i++) {
      free ((char *) ds.t[i].campaign);
      free ((char *) ds.t[i].customer);
      free ((char *) ds.t[i].event);
    }
    free (ds.t);
    if (n < 0 || rc < 0)
      return -1;
    if (n < JOURNEY_PAGE)
      return 0;
  }
}

static void
tick_one (struct jcampaign *jc)
{
  char err[1024];
  int lk;

  if (jc->pause_until && now_seconds () < jc->pause_until)
    return;
  lk = run_serve_lock (jc->r);

  if (lk == 0 && run_serve_shared (jc->r))
    return;                    /* another replica's turn: nothing to say */
  if (lk <= 0) {
    if (!jc->busy_said)
      fprintf (stderr, "herald serve: campaign %s: %s; its steps wait\n",
               jc->c->id, lk == 0 ? "a herald run is sending it"
                                  : "cannot take its lock");
    jc->busy_said = 1;
    return;
  }
  jc->busy_said = 0;
  /* Under the lock (a herald run's rows in flight are its own): what an
   * earlier serve or run left in flight goes again, once. */
  if (!jc->recovered) {
    int n = 0;
    if (store_outbox_recover (jc->st, jc->c->id, jc->c->at_least_once,
                              jc->c->max_attempts, &n) < 0) {
      fprintf (stderr, "herald serve: campaign %s: %s\n", jc->c->id,
               store_error (jc->st));
      run_serve_unlock (jc->r);
      return;
    }
    if (n)
      fprintf (stderr, "herald serve: campaign %s: %d message(s) were in "
               "flight when herald stopped: %s\n", jc->c->id, n,
               jc->c->at_least_once ? "sending them again"
                                    : "marked failed (at-most-once)");
    jc->recovered = 1;
  }
  /* A scheduled campaign: its audience planned (deferred to the start in
   * each customer's zone) at once, and its new customers every minute
   * until the start is past everywhere. */
  if (jc->c->start && (!jc->planned_at || (now_seconds () < jc->plan_until
                                           && now_seconds ()
                                              - jc->planned_at >= 60))) {
    long planned = run_serve_plan (jc->r);
    jc->planned_at = now_seconds ();
    if (planned > 0)
      printf ("herald serve: campaign %s: %ld customer%s planned for its "
              "start\n", jc->c->id, planned, planned == 1 ? "" : "s");
  }
  if (jc->c->trigger.event && ingest (jc) < 0)
    fprintf (stderr, "herald serve: campaign %s: %s\n", jc->c->id,
             store_error (jc->st));
  if (fire_due (jc) < 0)
    fprintf (stderr, "herald serve: campaign %s: %s\n", jc->c->id,
             store_error (jc->st));
  if (run_serve_dispatch (jc->r, err, sizeof err) < 0 || *err) {
    /* A misconfigured channel or a failing store does not mend itself
     * in 200 ms: say it, and leave the campaign (its messages kept) for
     * a minute instead of calling the plugin five times a second. */
    jc->pause_until = now_seconds () + JOURNEY_PAUSE;
    fprintf (stderr, "herald serve: campaign %s: %s; trying again in %d s "
             "(the messages wait)\n", jc->c->id,
             *err ? err : "sending stopped", JOURNEY_PAUSE);
  }
  fflush (stdout);
  run_serve_unlock (jc->r);
}

/* ---- the set of campaigns ----------------------------------------- */

struct journeys *
journeys_open (char **paths, int n)
{
  struct journeys *j = xcalloc (1, sizeof *j);
  int i;
  size_t k;

  j->c = xcalloc ((size_t) n + 1, sizeof *j->c);
  for (i = 0; i < n; i++) {
    struct jcampaign *jc = &j->c[j->n];
    int g;

    jc->r = run_serve_open (paths[i]);
    if (!jc->r)
      goto fail;
    j->n++;
    jc->c = run_serve_campaign (jc->r);
    jc->st = run_serve_store (jc->r);
    for (k = 0; k + 1 < j->n; k++)
      if (strcmp (j->c[k].c->id, jc->c->id) == 0) {
        fprintf (stderr, "herald serve: %s: campaign %s is listed twice\n",
                 paths[i], jc->c->id);
        goto fail;
      }
    jc->cursor_key = xasprintf ("journey_cursor:%s", jc->c->id);
    g = store_meta_get_int (jc->st, jc->cursor_key, &jc->cursor);
    if (g < 0) {
      fprintf (stderr, "herald serve: %s\n", store_error (jc->st));
      goto fail;
    }
    /* First served: the events from now on trigger it, not its past. */
    if (g == 0 && jc->c->trigger.event
        && (store_events_last_id (jc->st, &jc->cursor) < 0
            || store_meta_set_int (jc->st, jc->cursor_key, jc->cursor) < 0)) {
      fprintf (stderr, "herald serve: %s\n", store_error (jc->st));
      goto fail;
    }
    /* Wall-clock starts are reached in every zone by UTC-14 at the
     * latest. */
    jc->plan_until = jc->c->start + (jc->c->start_local ? 14 * 3600 : 0);
    if (jc->c->start)
      printf ("herald serve: campaign %s: sends from its start%s\n",
              jc->c->id, jc->c->start_local ? " in each customer's zone" : "");
    else if (jc->c->trigger.event)
      printf ("herald serve: campaign %s: each '%s' event starts it, %lld s "
              "later%s\n", jc->c->id, jc->c->trigger.event,
              (long long) jc->c->trigger.delay,
              jc->c->n_steps ? ", with its follow-up steps" : "");
    else if (jc->c->n_steps)
      printf ("herald serve: campaign %s: its follow-up steps (%zu), and its "
              "messages as they fall due\n", jc->c->id, jc->c->n_steps);
    else
      printf ("herald serve: campaign %s: its messages as they fall due "
              "(retries, quiet hours)\n", jc->c->id);
  }
  return j;

fail:
  journeys_close (j);
  return NULL;
}

void
journeys_tick (struct journeys *j)
{
  size_t i;

  for (i = 0; j && i < j->n; i++)
    tick_one (&j->c[i]);
}

void
journeys_close (struct journeys *j)
{
  size_t i;

  if (!j)
    return;
  for (i = 0; i < j->n; i++) {
    run_serve_close (j->c[i].r);
    free (j->c[i].cursor_key);
  }
  free (j->c);
  free (j);
}
