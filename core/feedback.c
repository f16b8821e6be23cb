/* feedback: the effects of a bounce or a complaint on the store, shared
 * by `herald bounces import` and the inbound sink of `herald serve` so
 * that a webhook-reported bounce does exactly what an imported one does
 * (feedback.h).  It must never decide which message a report is about:
 * its callers match, and hand it the customer, message and address. */
#include <config.h>

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "feedback.h"
#include "util.h"

const char *
feedback_type (enum feedback_kind kind)
{
  switch (kind) {
  case FEEDBACK_HARD:
    return "bounced";
  case FEEDBACK_SOFT:
    return "soft_bounced";
  default:
    return "complained";
  }
}

/* Suppress the addresses of ADDRESS_JSON (a list of {"type", "value"}
 * destinations, or of strings, or one string) on CHANNEL for REASON.
 * Returns how many were not suppressed before, or -1.  Suppressing twice
 * keeps the first reason. */
static int
suppress_addresses (struct store *st, const char *channel,
                    const char *address_json, const char *reason)
{
  json_t *addr, *v;
  size_t i;
  int n = 0;

  if (!address_json
      || !(addr = json_loads (address_json, JSON_DECODE_ANY, NULL)))
    return 0;
  if (!json_is_array (addr)) {
    json_t *a = json_array ();
    json_array_append_new (a, addr);
    addr = a;
  }
  json_array_foreach (addr, i, v) {
    const char *a = json_is_string (v) ? json_string_value (v)
                    : json_string_value (json_object_get (v, "value"));
    int sup;
    if (!a || !*a)
      continue;
    if ((sup = store_is_suppressed (st, channel, a)) < 0
        || (sup == 0 && store_suppress (st, channel, a, reason) < 0)) {
      n = -1;
      break;
    }
    n += sup == 0;
  }
  json_decref (addr);
  return n;
}

struct soft_times {
  const char *channel;
  int64_t *t;
  size_t n, cap;
  int64_t hi;
};

static int
soft_each (void *data, const char *channel, const char *type, int64_t at)
{
  struct soft_times *s = data;

  if (!channel || strcmp (channel, s->channel) != 0
      || strcmp (type, "soft_bounced") != 0 || at > s->hi)
    return 0;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->t = xrealloc (s->t, s->cap * sizeof *s->t);
  }
  s->t[s->n++] = at;
  return 0;
}

static int
cmp_time (const void *a, const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
  return x < y ? -1 : x > y;
}

/* After a new soft bounce F: when soft_limit of the customer's soft
 * bounces fall within one soft_window (any window holding F's time, so
 * that the order in which reports arrive does not matter), suppress F's
 * address.  Returns the number of addresses newly suppressed, or -1. */
static int
soft_check (struct store *st, const struct feedback_policy *p,
            const struct feedback *f)
{
  struct soft_times s = { f->channel, NULL, 0, 0, f->at + p->soft_window };
  size_t i, n = (size_t) p->soft_limit;
  int hit = 0, r = -1;

  if (p->soft_limit <= 0)
    return 0;
  if (store_customer_events (st, f->customer, f->at - p->soft_window,
                             soft_each, &s) < 0)
    goto out;
  qsort (s.t, s.n, sizeof *s.t, cmp_time);
  for (i = 0; !hit && s.n >= n && i + n <= s.n; i++)
    hit = s.t[i + n - 1] - s.t[i] <= p->soft_window;
  r = hit ? suppress_addresses (st, f->channel, f->address_json,
                                "soft_bounced")
          : 0;
out:
  free (s.t);
  return r;
}

int
feedback_record (struct store *st, const struct feedback_policy *policy,
                 const struct feedback *f, int *soft_suppressed_r)
{
  const char *type = feedback_type (f->kind);
  int r, k;

  if (soft_suppressed_r)
    *soft_suppressed_r = 0;
  r = store_event_put (st, f->customer, f->channel, type, f->at, f->campaign,
                       f->message_key, f->detail);
  if (r != 0)
    return r;                   /* -1, or 1: already recorded, applied */
  /* store_event_put suppresses for "bounced" and "complained" too (the
   * message's address, else the customer's); the address the report
   * names is suppressed here as well, whatever the store found. */
  if (f->kind != FEEDBACK_SOFT
      && suppress_addresses (st, f->channel, f->address_json, type) < 0)
    return -1;
  /* RFC 5965 section 1: a complaint is the recipient saying they did not
   * want this mail: their consent goes, as an unsubscribe's would. */
  if (f->kind == FEEDBACK_COMPLAINT
      && store_consent_set (st, f->customer, f->channel, 0, f->at,
                            "complaint") < 0)
    return -1;
  if (f->kind == FEEDBACK_SOFT) {
    if ((k = soft_check (st, policy, f)) < 0)
      return -1;
    if (soft_suppressed_r)
      *soft_suppressed_r = k;
  }
  return 0;
}
