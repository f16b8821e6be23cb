/* plan.c: deciding for each customer of the audience (segment, consent,
 * caps, history, routing), recording the decision, counting it. */
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


static void
plan_failed (struct plan_fail *f, struct run *r)
{
  if (f->failed++)
    return;
  snprintf (f->msg, sizeof f->msg, "%s", store_error (r->st));
}

/* render_parts' link_sink: the short links go to the store's links table,
 * in the transaction of whoever is planning (plan_page, batch_record). */
static int
plan_link_record (void *data, const char *key, const char *url, size_t len,
                  int64_t *id_r, char *err, size_t errlen)
{
  struct store *st = data;

  if (store_link_add (st, key, url, len, id_r) < 0) {
    snprintf (err, errlen, "%s", store_error (st));
    return -1;
  }
  return 0;
}

void
plan_clear (struct plan *p)
{
  json_decref (p->parts);
  json_decref (p->address);
  free (p->render_error);
  memset (p, 0, sizeof *p);
}

void
count_reason (struct run *r, const char *reason)
{
  size_t i;

  for (i = 0; i < r->n_reasons; i++)
    if (strcmp (r->reasons[i].reason, reason) == 0) {
      r->reasons[i].n++;
      return;
    }
  r->reasons = xrealloc (r->reasons, (r->n_reasons + 1) * sizeof *r->reasons);
  r->reasons[r->n_reasons].reason = xstrdup (reason);
  r->reasons[r->n_reasons].n = 1;
  r->n_reasons++;
}

/* The customer's destinations for KIND as a JSON list of {type, value},
 * without suppressed ones.  *SUPPRESSED_R is 1 when the customer had
 * addresses but every one is suppressed. */
static json_t *
customer_addresses (struct run *r, json_t *cust, const struct campaign_channel *cc,
                    int *suppressed_r, struct plan_fail *fail)
{
  json_t *list = json_array ();
  const char *kind = cc->kind;
  int had = 0, sup;

  *suppressed_r = 0;
  if (strcmp (kind, "push") == 0) {
    json_t *tokens = json_object_get (cust, "push"), *t;
    size_t i;
    json_array_foreach (tokens, i, t) {
      const char *tok = jstr (t, "token");
      const char *plat = jstr (t, "platform");
      if (!tok)
        continue;
      had = 1;
      /* A store error is no answer: the address is not taken as free. */
      if ((sup = store_is_suppressed (r->st, "push", tok)) != 0) {
        if (sup < 0)
          plan_failed (fail, r);
        continue;
      }
      json_array_append_new (list, str_object ("type", plat ? plat : "unknown",
                                                "value", tok, NULL, NULL));
    }
  }
  else if (config_kind_find (kind)) {
    /* A plugin's kind: addresses.FIELD, else attributes.FIELD. */
    const char *field = config_kind_find (kind)->address_field;
    json_t *v = json_object_get (json_object_get (cust, "addresses"), field);
    char num[32];
    const char *s = NULL;

    if (!v)
      v = json_object_get (json_object_get (cust, "attributes"), field);
    if (json_is_string (v) && *json_string_value (v))
      s = json_string_value (v);
    else if (json_is_integer (v)) {
      /* A chat id is often a number in the provider's API. */
      snprintf (num, sizeof num, "%" JSON_INTEGER_FORMAT,
                json_integer_value (v));
      s = num;
    }
    if (s) {
      had = 1;
      if ((sup = store_is_suppressed (r->st, kind, s)) == 0)
        json_array_append_new (list, str_object ("type", kind, "value", s,
                                                  NULL, NULL));
      else if (sup < 0)
        plan_failed (fail, r);
    }
  }
  else {
    const char *field = strcmp (kind, "email") == 0 ? "email"
                        : strcmp (kind, "sms") == 0 ? "phone" : "webhook";
    const char *v = jstr (cust, field);
    /* A webhook channel with a fixed url needs no customer address. */
    if (!v && strcmp (kind, "webhook") == 0 && ini_get (cc->conf->sec, "url"))
      v = ini_get (cc->conf->sec, "url");
    if (v) {
      had = 1;
      if ((sup = store_is_suppressed (r->st, kind, v)) == 0)
        json_array_append_new (list, str_object ("type", kind, "value", v,
                                                  NULL, NULL));
      else if (sup < 0)
        plan_failed (fail, r);
    }
  }
  if (had && json_array_size (list) == 0)
    *suppressed_r = 1;
  return list;
}

/* When [campaign] start is for this customer: the instant itself, or the
 * wall-clock start in the customer's zone (the campaign's [quiet_hours]
 * timezone for a customer without one, else UTC).  0 without a start. */
static int64_t
start_for (struct run *r, json_t *cust)
{
  const char *zone = customer_zone (r, cust);
  int64_t wall = r->c->start, t[2], best = 0;
  int off = 0, i;

  if (!r->c->start || !r->c->start_local || !zone)
    return wall;
  /* Two candidates: the wall time less the offset found at it read as
   * UTC, and less the offset at that first guess.  A valid one maps back
   * to the wall time; of two (a time that comes twice in the autumn) the
   * first; of none (a time that a spring change skips) the later, which
   * is the wall time with the offset from before the change, as
   * Python's zoneinfo and most calendars read it. */
  if (tz_offset (zone, wall, &off) < 0)
    return wall;
  t[0] = wall - off;
  if (tz_offset (zone, t[0], &off) < 0)
    return t[0];
  t[1] = wall - off;
  for (i = 0; i < 2; i++) {
    int o;
    if (tz_offset (zone, t[i], &o) == 0 && t[i] + o == wall
        && (!best || t[i] < best))
      best = t[i];
  }
  if (!best)
    best = t[0] > t[1] ? t[0] : t[1];
  return best;
}

struct ev_collect {
  struct router_event *ev;
  size_t n, cap;
  char **strs;
  size_t n_strs;
};

static int
collect_event (void *data, const char *channel, const char *type, int64_t at)
{
  struct ev_collect *ec = data;
  char *ch, *ty;

  if (ec->n == ec->cap) {
    ec->cap = ec->cap ? ec->cap * 2 : 16;
    ec->ev = xrealloc (ec->ev, ec->cap * sizeof *ec->ev);
    ec->strs = xrealloc (ec->strs, ec->cap * 2 * sizeof *ec->strs);
  }
  ch = xstrdup (channel ? channel : "");
  ty = xstrdup (type ? type : "");
  ec->strs[ec->n_strs++] = ch;
  ec->strs[ec->n_strs++] = ty;
  ec->ev[ec->n].channel = ch;
  ec->ev[ec->n].type = ty;
  ec->ev[ec->n].at = at;
  ec->ev[ec->n].herald_message = 0;
  ec->n++;
  return 0;
}

static void
ev_collect_free (struct ev_collect *ec)
{
  size_t i;

  for (i = 0; i < ec->n_strs; i++)
    free (ec->strs[i]);
  free (ec->strs);
  free (ec->ev);
}

static double
population_rate (struct run *r, const char *kind)
{
  json_t *s = json_object_get (r->pop, kind);
  long sent, deliv;

  if (!s)
    return -1;
  sent = (long) json_integer_value (json_object_get (s, "sent"));
  deliv = (long) json_integer_value (json_object_get (s, "delivered"));
  return router_population_rate (r->c->policy, sent + deliv,
                                 (long) json_integer_value (json_object_get (s, "opened")),
                                 (long) json_integer_value (json_object_get (s, "clicked")),
                                 (long) json_integer_value (json_object_get (s, "replied")),
                                 (long) json_integer_value (json_object_get (s, "converted")));
}

/* The key of step STEP of CUSTOMER's message in journey JOURNEY (0: a
 * campaign herald run sends) into BUF: campaign:step:customer, with
 * :instance for a journey. */
void
message_key (const struct run *r, int step, const char *customer,
             int64_t journey, char *buf, size_t len)
{
  if (journey)
    snprintf (buf, len, "%s:%d:%s:%lld", r->c->id, step, customer,
              (long long) journey);
  else
    snprintf (buf, len, "%s:%d:%s", r->c->id, step, customer);
}

/* Decide (and render) for one customer.  FAILED lists channel indexes that
 * already failed permanently for this message (fallback), or NULL.
 * Returns 0; -1 when the customer cannot be planned (no id, a router
 * error: p->render_error says why); PLAN_STORE_ERROR when a store read
 * failed (a suppression, a cap's count, the history), or an SMS short
 * link could not be recorded: then nothing was decided and the customer
 * must not be messaged (fail closed). */
int
plan_customer (struct run *r, json_t *cust, const int *failed, struct plan *p)
{
  struct router_channel rc[ROUTER_MAX_CHANNELS];
  json_t *addrs[ROUTER_MAX_CHANNELS];
  struct router_input in;
  struct ev_collect ec = { 0 };
  json_t *consent = json_object_get (cust, "consent");
  const char *id = jstr (cust, "id");
  size_t i;
  long capn;
  int64_t period;
  int rcode = 0;
  struct plan_fail fail = { 0, "" };

  memset (p, 0, sizeof *p);
  memset (rc, 0, sizeof rc);
  memset (addrs, 0, sizeof addrs);
  p->cidx = -1;
  if (!id)
    return -1;
  message_key (r, r->step, id, r->journey, p->key, sizeof p->key);

  if (r->c->segment_expr) {
    struct liquid_error lerr;
    json_t *ctx = render_context (r, cust);
    int yes = 0;
    memset (&lerr, 0, sizeof lerr);
    if (liquid_condition_eval (r->c->segment_expr, ctx, &yes, &lerr) < 0) {
      char msg[1024];
      liquid_error_format (&lerr, msg, sizeof msg);
      p->render_error = xasprintf ("segment: %s", msg);
      yes = 0;
    }
    json_decref (ctx);
    if (!yes)
      return 0;
  }
  p->in_segment = 1;

  for (i = 0; i < r->c->n_channels; i++) {
    const struct campaign_channel *cc = &r->c->channels[i];
    json_t *cv = json_object_get (consent, cc->kind);
    int supp = 0;

    addrs[i] = customer_addresses (r, cust, cc, &supp, &fail);
    rc[i].name = cc->kind;
    rc[i].templates = 1;       /* campaign_load checked the base set */
    rc[i].has_address = json_array_size (addrs[i]) > 0 || supp;
    rc[i].consent = json_is_true (cv) ? 1 : json_is_false (cv) ? 0 : -1;
    rc[i].suppressed = supp;
    rc[i].failed = failed ? failed[i] : 0;
    if (policy_cap (r->c->policy, cc->kind, &capn, &period)
        && (rc[i].sent = store_sent_count (r->st, id, cc->kind,
                                           r->now - period)) < 0)
      plan_failed (&fail, r);
    rc[i].population_rate = population_rate (r, cc->kind);
  }
  memset (&in, 0, sizeof in);
  in.campaign_id = r->c->id;
  in.customer_id = id;
  in.customer = cust;
  in.timezone = customer_zone (r, cust);
  in.channels = rc;
  in.n_channels = r->c->n_channels;
  if (policy_cap (r->c->policy, NULL, &capn, &period)
      && (in.sent_all = store_sent_count (r->st, id, NULL,
                                          r->now - period)) < 0)
    plan_failed (&fail, r);
  if (r->c->policy->kind == POLICY_ENGAGEMENT) {
    if (store_customer_events (r->st, id, r->now - r->c->policy->window,
                               collect_event, &ec) < 0)
      plan_failed (&fail, r);
    in.events = ec.ev;
    in.n_events = ec.n;
  }
  /* Fail closed: a suppression, cap or history that could not be read
   * decides nothing. */
  if (fail.failed) {
    p->render_error = xasprintf ("%s", fail.msg);
    rcode = PLAN_STORE_ERROR;
    goto out;
  }
  {
    /* Before the campaign's start, decide as at the start (quiet hours
     * then) and defer the message to it. */
    int64_t start = r->step == 1 ? start_for (r, cust) : 0;
    int later = start > r->now;

    if (router_decide (r->c->policy, &in, later ? start : r->now, &p->d) < 0) {
      p->render_error = xasprintf ("router: %s", p->d.trace);
      rcode = -1;
      goto out;
    }
    if (later && p->d.outcome == ROUTER_SEND) {
      p->d.outcome = ROUTER_DEFER;
      p->d.until = start;
      p->scheduled = 1;
    }
  }
  if (p->d.channel)
    for (i = 0; i < r->c->n_channels; i++)
      if (strcmp (r->c->channels[i].kind, p->d.channel) == 0)
        p->cidx = (int) i;
  if ((p->d.outcome == ROUTER_SEND || p->d.outcome == ROUTER_DEFER)
      && p->cidx >= 0) {
    struct link_sink links = { plan_link_record, r->st };
    int rp;

    p->address = json_incref (addrs[p->cidx]);
    rp = render_parts (r, cust, p->d.channel, p->d.variant, p->key, &links,
                       p);
    if (rp == PLAN_STORE_ERROR)
      rcode = PLAN_STORE_ERROR;
    /* Else a render error is recorded as failed, with its text. */
  }
out:
  for (i = 0; i < r->c->n_channels; i++)
    json_decref (addrs[i]);
  ev_collect_free (&ec);
  return rcode;
}

/* Insert the outbox row of a plan.  Returns 0, 1 if it existed, -1. */
int
record_plan (struct run *r, json_t *cust, struct plan *p, int fresh)
{
  struct outbox_row row;
  char *addr = NULL, *parts = NULL;
  const char *id = jstr (cust, "id");
  int rc;

  memset (&row, 0, sizeof row);
  row.key = p->key;
  row.campaign = r->c->id;
  row.step = r->step;
  row.journey = r->journey;
  row.customer = id;
  row.variant = p->d.variant;
  row.trace = p->d.trace;
  if (p->cidx >= 0) {
    row.channel = r->c->channels[p->cidx].kind;
    row.instance = r->c->channels[p->cidx].conf->name;
  }
  switch (p->d.outcome) {
  case ROUTER_SKIP:
    row.state = "skipped";
    row.reason = p->d.reason;
    break;
  case ROUTER_HOLD:
    row.state = "held_out";
    row.reason = ROUTER_HELD_OUT;
    break;
  case ROUTER_DEFER:
    row.state = "deferred";
    row.reason = p->scheduled ? "scheduled" : "quiet_hours";
    row.next_at = p->d.until;
    break;
  case ROUTER_SEND:
    /* At-least-once: a fresh message is committed straight as "sending"
     * and handed to its plugin from memory right after the commit (see
     * plan_page); a crash in between leaves it "sending", which recovery
     * turns back into "pending": never lost, never sent twice.  At most
     * once it waits as "pending" and goes through dispatch_due, which
     * marks it "sending" only just before the plugin sees it. */
    row.state = fresh ? "sending" : "pending";
    row.attempts = fresh ? 1 : 0;
    row.next_at = r->now;
    break;
  }
  row.created = r->now;
  if (p->render_error && (p->d.outcome == ROUTER_SEND || p->d.outcome == ROUTER_DEFER)) {
    row.state = "failed";
    row.attempts = 0;
    row.reason = "render_error";
    row.error = p->render_error;
  }
  addr = dumps (p->address);
  parts = dumps (p->parts);
  row.address = addr;
  row.parts = parts;
  rc = store_outbox_insert (r->st, &row);
  free (addr);
  free (parts);
  return rc;
}

void
count_plan (struct run *r, struct plan *p)
{
  struct counts *c = p->cidx >= 0 ? &r->per[p->cidx] : NULL;

  r->total.planned++;
  switch (p->d.outcome) {
  case ROUTER_SKIP:
    r->total.skipped++;
    count_reason (r, p->d.reason ? p->d.reason : "unknown");
    break;
  case ROUTER_HOLD:
    r->total.held_out++;
    break;
  case ROUTER_DEFER:
    r->total.deferred++;
    if (p->scheduled)
      r->scheduled++;
    if (c)
      c->deferred++;
    if (!r->deferred_until_min || p->d.until < r->deferred_until_min)
      r->deferred_until_min = p->d.until;
    if (p->d.until > r->deferred_until_max)
      r->deferred_until_max = p->d.until;
    break;
  case ROUTER_SEND:
    if (c)
      c->planned++;
    break;
  }
  if (p->d.shifted_from) {
    r->total.shifted++;
    if (c)
      c->shifted++;
  }
  if (p->render_error && p->in_segment
      && (p->d.outcome == ROUTER_SEND || p->d.outcome == ROUTER_DEFER)) {
    r->total.failed++;
    if (c)
      c->failed++;
    count_reason (r, "render_error");
  }
  if (r->variants && (p->d.outcome == ROUTER_SEND || p->d.outcome == ROUTER_DEFER)) {
    const char *v = p->d.variant ? p->d.variant : "(none)";
    json_t *n = json_object_get (r->variants, v);
    json_object_set_new (r->variants, v,
                         json_integer (n ? json_integer_value (n) + 1 : 1));
  }
}

struct page {
  json_t **cust;
  size_t n;
  char last_id[1024];
};

static int
page_add (void *data, json_t *customer)
{
  struct page *pg = data;
  const char *id = jstr (customer, "id");

  pg->cust[pg->n++] = json_incref (customer);
  if (id)
    strlcpy_ (pg->last_id, id, sizeof pg->last_id);
  return 0;
}

/* Plan up to LIMIT customers after *AFTER; returns how many were seen (0
 * = the audience is exhausted), -1 on a store error.  The messages
 * committed as "sending" are appended to FRESH_R, for send_fresh. */
int
plan_page (struct run *r, char *after, size_t afterlen, int limit,
           struct due_list *fresh_r)
{
  struct page pg;
  size_t i;
  int n, rc = 0;

  memset (&pg, 0, sizeof pg);
  pg.cust = xcalloc ((size_t) limit, sizeof *pg.cust);
  /* One transaction per page, in a dry run too (then rolled back): outside
   * one, SQLite takes and drops its locks around every single query. */
  if (store_begin (r->st) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r->st));
    free (pg.cust);
    return -1;
  }
  n = store_audience_chunk (r->st, r->c->id, r->c->step, r->chunk, after,
                            limit, page_add, &pg);
  if (n <= 0) {
    if (n < 0)
      fprintf (stderr, "herald: %s\n", store_error (r->st));
    store_rollback (r->st);
    free (pg.cust);
    return n;
  }
  for (i = 0; i < pg.n; i++) {
    struct plan p;

    int pc = plan_customer (r, pg.cust[i], NULL, &p);

    if (pc < 0) {
      /* Not planned, so not messaged: no row, and the next run plans the
       * customer again.  A store error also fails the run (exit 1). */
      fprintf (stderr, "herald: customer %s: %s%s\n",
               jstr (pg.cust[i], "id") ? jstr (pg.cust[i], "id") : "?",
               p.render_error ? p.render_error : "cannot plan",
               pc == PLAN_STORE_ERROR ? " (not planned: run again)" : "");
      if (pc == PLAN_STORE_ERROR)
        r->unplanned++;
      plan_clear (&p);
      continue;
    }
    if (p.in_segment) {
      int fresh = !r->dry_run && r->c->at_least_once
                  && p.d.outcome == ROUTER_SEND && p.cidx >= 0
                  && !p.render_error;
      int ins = r->dry_run ? 0 : record_plan (r, pg.cust[i], &p, fresh);

      if (ins < 0) {
        plan_clear (&p);
        goto store_fail;
      }
      if (fresh && ins == 0)
        due_add_plan (fresh_r, r, jstr (pg.cust[i], "id"), &p);
      count_plan (r, &p);
    }
    plan_clear (&p);
  }
  if (r->dry_run ? store_rollback (r->st) < 0 : store_commit (r->st) < 0)
    goto store_fail;
  strlcpy_ (after, pg.last_id, afterlen);
  rc = n;
  goto out;

store_fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  store_rollback (r->st);
  rc = -1;
out:
  for (i = 0; i < pg.n; i++)
    json_decref (pg.cust[i]);
  free (pg.cust);
  return rc;
}

/* Plan step STEP of journey JOURNEY of CUSTOMER: the key, the step's
 * templates and the trigger event (from the journey's step 1 timer) for
 * plan_customer.  0, or -1 on a store error.  Undo with journey_leave. */
int
journey_enter (struct run *r, const char *customer, int step, int64_t journey)
{
  char *ev = NULL;

  r->step = step;
  r->journey = journey;
  json_decref (r->event);
  r->event = NULL;
  if (journey || step > 1) {
    int g = store_journey_event (r->st, r->c->id, customer, journey, &ev);
    if (g < 0)
      return -1;
    if (ev) {
      json_error_t jerr;
      r->event = json_loads (ev, 0, &jerr);
      free (ev);
    }
  }
  return 0;
}

void
journey_leave (struct run *r)
{
  r->step = 1;
  r->journey = 0;
  json_decref (r->event);
  r->event = NULL;
}
