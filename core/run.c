/* run: the scheduler behind herald run and herald preview.
 *
 * For each customer of the audience: segment, routing decision, rendering,
 * then an outbox row committed before any plugin sees the message; then
 * dispatch of the due rows to the channel plugins in batches, with the
 * result of each committed before the next batch.  It never sends a
 * message that is not recorded, and never records as sent a message the
 * plugin did not accept.  A message found in "sending" after a crash is
 * sent again (at-least-once, the default) or failed (at-most-once). */
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

#define PAGE 500             /* customers planned per transaction */
#define BATCH 500            /* messages per plugin call: one page; each
                                batch costs two commits (sending, results) */

static volatile sig_atomic_t run_stop;

static void
on_signal (int sig)
{
  (void) sig;
  run_stop = 1;
}

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
  struct herald_address **to;
  struct herald_part **parts;
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
  int channel_error;           /* a channel reported a configuration error */
  char channel_error_msg[1024];
  int store_error;
  int lock_fd;                 /* the campaign's run lock, or -1 */
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

static void
plan_failed (struct plan_fail *f, struct run *r)
{
  if (f->failed++)
    return;
  snprintf (f->msg, sizeof f->msg, "%s", store_error (r->st));
}

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

static void
plan_clear (struct plan *p)
{
  json_decref (p->parts);
  json_decref (p->address);
  free (p->render_error);
  memset (p, 0, sizeof *p);
}

static void
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

static const char *
jstr (json_t *o, const char *k)
{
  json_t *v = json_object_get (o, k);
  return json_is_string (v) && *json_string_value (v) ? json_string_value (v)
                                                      : NULL;
}

/* {K1: V1, K2: V2[, K3: V3]} of strings (a NULL value is ""; K3 NULL:
 * two members).  json_pack, without parsing a format per call. */
static json_t *
str_object (const char *k1, const char *v1, const char *k2, const char *v2,
            const char *k3, const char *v3)
{
  json_t *o = json_object ();

  json_object_set_new_nocheck (o, k1, json_string (v1 ? v1 : ""));
  json_object_set_new_nocheck (o, k2, json_string (v2 ? v2 : ""));
  if (k3)
    json_object_set_new_nocheck (o, k3, json_string (v3 ? v3 : ""));
  return o;
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

/* The unsubscribe link of (customer, campaign, channel): base_url/u/TOKEN,
 * TOKEN = base64url(customer \n campaign \n channel) "." base64url(first
 * 16 bytes of HMAC-SHA256(secret, that payload)).  Opaque to the reader,
 * unforgeable without the secret (RFC 8058 section 3.1). */
static char *
unsubscribe_url (struct run *r, const char *customer, const char *kind)
{
  struct strbuf payload = STRBUF_INIT;
  char *tok, *url = NULL;

  if (!r->gw->tracking_base_url || !r->gw->tracking_secret)
    return NULL;
  if (!r->unsub_key_ready) {
    if (token_key_init (&r->unsub_key, r->gw->tracking_secret) < 0)
      return NULL;
    r->unsub_key_ready = 1;
  }
  strbuf_adds (&payload, customer);
  strbuf_addc (&payload, '\n');
  strbuf_adds (&payload, r->c->id);
  strbuf_addc (&payload, '\n');
  strbuf_adds (&payload, kind);
  tok = token_make (&r->unsub_key, payload.s, payload.len);
  if (tok)
    url = xasprintf ("%s/u/%s", r->gw->tracking_base_url, tok);
  free (tok);
  strbuf_free (&payload);
  return url;
}

/* ---- tracking ------------------------------------------------------ */

/* The message whose links are being signed. */
struct track_msg {
  struct run *r;
  const char *key;
  int store_failed;            /* track_short_url: store_link_add failed */
};

/* linkrewrite's track function: base_url/c/TOKEN naming the message and
 * URL (token.h). */
static char *
track_click_url (void *data, const char *url, size_t len)
{
  struct track_msg *t = data;
  char *tok = token_click_make (&t->r->track_key, t->key, url, len), *u;

  if (!tok)
    return NULL;
  u = xasprintf ("%s/c/%s", t->r->gw->tracking_base_url, tok);
  free (tok);
  return u;
}

/* linkrewrite's track function of an SMS channel with track_links:
 * base_url/s/TOKEN, a short link (token.h).  The link is recorded in the
 * store's links table in the caller's transaction (plan_page's, or
 * batch_record's for a fallback), so it is kept exactly when the message
 * is; a dry run's and a preview's are rolled back with theirs. */
static char *
track_short_url (void *data, const char *url, size_t len)
{
  struct track_msg *t = data;
  int64_t id;
  char *tok, *u;

  if (store_link_add (t->r->st, t->key, url, len, &id) < 0) {
    t->store_failed = 1;
    return NULL;
  }
  tok = token_short_make (&t->r->track_key, id, t->key, url, len);
  if (!tok)
    return NULL;
  u = xasprintf ("%s/s/%s", t->r->gw->tracking_base_url, tok);
  free (tok);
  return u;
}

/* With [tracking] base_url (config.c insists on a secret with it), the
 * rendered PART of message KEY in r->buf rewritten into OUT: email.html
 * gets tracked links and, unless the campaign says track_opens = no, the
 * open pixel; email.text gets tracked links with [tracking] text_links;
 * sms.body gets short links when its channel says track_links
 * (SHORT_LINKS).
 * Returns 1 when OUT holds the part, 0 when the part is not tracked
 * (r->buf is it), -1 when the links could not be signed, -2 when the
 * short links could not be recorded (store_error says why). */
static int
track_part (struct run *r, const char *part, const char *key,
            const char *unsub, int short_links, struct strbuf *out)
{
  int html = strcmp (part, "email.html") == 0;
  int sms = short_links && strcmp (part, "sms.body") == 0;
  struct track_msg tm = { r, key, 0 };
  struct linkrewrite o;
  char *pixel = NULL, *tok;
  long n;

  if (!r->gw->tracking_base_url || !r->gw->tracking_secret
      || (!html && !sms && !(strcmp (part, "email.text") == 0
                             && r->gw->tracking_text_links)))
    return 0;
  if (!r->track_key_ready) {
    if (token_track_key_init (&r->track_key, r->gw->tracking_secret) < 0)
      return -1;
    r->track_key_ready = 1;
  }
  memset (&o, 0, sizeof o);
  o.base_url = r->gw->tracking_base_url;
  o.unsubscribe_url = unsub;
  o.track = sms ? track_short_url : track_click_url;
  o.data = &tm;
  if (html && r->c->track_opens) {
    if (!(tok = token_open_make (&r->track_key, key)))
      return -1;
    pixel = xasprintf ("%s/o/%s.gif", r->gw->tracking_base_url, tok);
    free (tok);
    o.pixel_url = pixel;
  }
  n = html ? linkrewrite_html (&o, r->buf.data, r->buf.len, out)
           : linkrewrite_text (&o, r->buf.data, r->buf.len, out);
  free (pixel);
  return n >= 0 ? 1 : tm.store_failed ? -2 : -1;
}

/* Templates see customer.* = the attributes plus id, email, phone,
 * timezone and locale; campaign.*; message.*; unsubscribe_url. */
static json_t *
render_context (struct run *r, json_t *cust)
{
  json_t *ctx = json_object (), *c = json_object ();
  json_t *attrs = json_object_get (cust, "attributes");
  static const char *const fields[] = { "id", "email", "phone", "timezone",
                                        "locale", NULL };
  size_t i;

  if (json_is_object (attrs))
    json_object_update (c, attrs);
  for (i = 0; fields[i]; i++) {
    json_t *v = json_object_get (cust, fields[i]);
    if (v)
      json_object_set (c, fields[i], v);
  }
  json_object_set_new (ctx, "customer", c);
  if (r->event)
    json_object_set (ctx, "event", r->event);
  if (!r->campaign_j)          /* the same for every customer: shared */
    r->campaign_j = str_object ("id", r->c->id, "name", r->c->name, NULL,
                                NULL);
  json_object_set (ctx, "campaign", r->campaign_j);
  return ctx;
}

static const char *
customer_zone (struct run *r, json_t *cust)
{
  const char *z = jstr (cust, "timezone");
  if (z && tz_valid (z))
    return z;
  return r->c->policy->timezone;
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

/* Render every part of KIND for the customer into p->parts. */
static int
render_parts (struct run *r, json_t *cust, const char *kind,
              const char *variant, const char *key, struct plan *p)
{
  static const char *const parts[] = {
    "email.subject", "email.html", "email.text", "sms.body", "push.title",
    "push.body", "push.data", "webhook.body", NULL
  };
  json_t *ctx = render_context (r, cust);
  struct liquid_render_options ro;
  char *unsub = NULL;
  size_t klen = strlen (kind), i;
  int rc = 0, want_unsub = strcmp (kind, "email") == 0;

  /* The e-mail plugin puts the link in List-Unsubscribe; other channels
   * only carry it if a template shows it. */
  for (i = 0; parts[i] && !want_unsub; i++) {
    const struct tmpl_part *tp;
    if (strncmp (parts[i], kind, klen) == 0 && parts[i][klen] == '.'
        && (tp = campaign_step_part (r->c, r->step, variant, parts[i]))
        && tp->may_unsubscribe)
      want_unsub = 1;
  }
  if (want_unsub)
    unsub = unsubscribe_url (r, json_string_value (json_object_get (cust, "id")),
                             kind);

  json_object_set_new (ctx, "message", str_object ("id", key, "channel", kind,
                                                    "variant", variant));
  json_object_set_new (ctx, "unsubscribe_url", json_string (unsub ? unsub : ""));
  memset (&ro, 0, sizeof ro);
  ro.timezone = customer_zone (r, cust);
  ro.has_now = 1;
  ro.fixed_now = r->now;
  p->parts = json_object ();
  for (i = 0; parts[i]; i++) {
    const struct tmpl_part *tp;
    struct liquid_error lerr;

    if (strncmp (parts[i], kind, klen) != 0 || parts[i][klen] != '.')
      continue;
    tp = campaign_step_part (r->c, r->step, variant, parts[i]);
    if (!tp)
      continue;
    liquid_buf_reset (&r->buf);
    memset (&lerr, 0, sizeof lerr);
    if (liquid_render_ex (tp->t, ctx, &ro, &r->buf, &lerr) < 0) {
      char msg[1024];
      liquid_error_format (&lerr, msg, sizeof msg);
      p->render_error = xstrdup (msg);
      rc = -1;
      break;
    }
    if (campaign_part_json (parts[i])) {
      const char *why;
      size_t off;
      int line, col;
      if (jsoncheck (r->buf.data, r->buf.len, &why, &off) < 0) {
        jsoncheck_position (r->buf.data, off, &line, &col);
        p->render_error = xasprintf ("%s: rendered text is not valid JSON "
                                     "(line %d, column %d: %s)", tp->path,
                                     line, col, why);
        rc = -1;
        break;
      }
    }
    {
      struct strbuf tracked = STRBUF_INIT;
      int t = track_part (r, parts[i], key, unsub,
                          p->cidx >= 0
                          && r->c->channels[p->cidx].conf->track_links,
                          &tracked);

      if (t < 0) {
        p->render_error = t == -2
          ? xasprintf ("%s: cannot record its short links: %s", tp->path,
                       store_error (r->st))
          : xasprintf ("%s: cannot sign its tracking links (OpenSSL "
                       "failed)", tp->path);
        strbuf_free (&tracked);
        rc = t == -2 ? PLAN_STORE_ERROR : -1;
        break;
      }
      json_object_set_new (p->parts, parts[i],
                           t ? json_stringn (tracked.s ? tracked.s : "",
                                             tracked.len)
                             : json_stringn (r->buf.data, r->buf.len));
      strbuf_free (&tracked);
    }
  }
  /* Underscored members travel with the message, not as parts. */
  if (unsub)
    json_object_set_new (p->parts, "_unsubscribe_url", json_string (unsub));
  {
    json_t *attrs = json_object_get (cust, "attributes");
    const char *name = jstr (attrs, "name");
    const char *first = jstr (attrs, "first_name"), *last = jstr (attrs, "last_name");
    if (name)
      json_object_set_new (p->parts, "_to_name", json_string (name));
    else if (first) {
      char *full = last ? xasprintf ("%s %s", first, last) : xstrdup (first);
      json_object_set_new (p->parts, "_to_name", json_string (full));
      free (full);
    }
  }
  free (unsub);
  json_decref (ctx);
  return rc;
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

/* Decide (and render) for one customer.  FAILED lists channel indexes that
 * already failed permanently for this message (fallback), or NULL.
 * Returns 0; -1 when the customer cannot be planned (no id, a router
 * error: p->render_error says why); PLAN_STORE_ERROR when a store read
 * failed (a suppression, a cap's count, the history): then nothing was
 * decided and the customer must not be messaged (fail closed). */
static int
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
  if (r->journey)
    snprintf (p->key, sizeof p->key, "%s:%d:%s:%lld", r->c->id, r->step, id,
              (long long) r->journey);
  else
    snprintf (p->key, sizeof p->key, "%s:%d:%s", r->c->id, r->step, id);

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
    p->address = json_incref (addrs[p->cidx]);
    int rp = render_parts (r, cust, p->d.channel, p->d.variant, p->key, p);
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

static char *
dupn (const char *s)
{
  return s ? xstrdup (s) : NULL;
}

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
static void
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

static void
due_free (struct due_list *l)
{
  size_t i;

  for (i = 0; i < l->n; i++)
    due_clear (&l->d[i]);
  free (l->d);
  memset (l, 0, sizeof *l);
}

/* ---- recording ---------------------------------------------------- */

static char *
dumps (json_t *j)
{
  return jsonw_dumps (j);
}

/* Insert the outbox row of a plan.  Returns 0, 1 if it existed, -1. */
static int
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

static void
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

/* ---- planning the audience --------------------------------------- */

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
static int
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
  n = store_audience_next (r->st, r->c->id, r->c->step, after, limit,
                           page_add, &pg);
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

/* ---- dispatch ----------------------------------------------------- */

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

static int
channel_index (struct run *r, const char *instance)
{
  size_t i;

  for (i = 0; instance && i < r->c->n_channels; i++)
    if (strcmp (r->c->channels[i].conf->name, instance) == 0)
      return (int) i;
  return -1;
}

/* ---- journeys ----------------------------------------------------- */

/* Plan step STEP of journey JOURNEY of CUSTOMER: the key, the step's
 * templates and the trigger event (from the journey's step 1 timer) for
 * plan_customer.  0, or -1 on a store error.  Undo with journey_leave. */
static int
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

static void
journey_leave (struct run *r)
{
  r->step = 1;
  r->journey = 0;
  json_decref (r->event);
  r->event = NULL;
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
static int
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
    for (i = 0; i < r->c->n_channels; i++)
      if (failed[i])
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

static void
batch_free (struct batch *b)
{
  size_t i;

  for (i = 0; i < b->n; i++) {
    due_clear (&b->rows[i]);
    free (b->to[i]);
    free (b->parts[i]);
    free (b->inv[i]);
  }
  free (b->rows);
  free (b->to);
  free (b->parts);
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
  b->to = xcalloc (n ? n : 1, sizeof *b->to);
  b->parts = xcalloc (n ? n : 1, sizeof *b->parts);
  b->inv = xcalloc (n ? n : 1, sizeof *b->inv);
  /* Zero is HERALD_SENT: a result the plugin does not fill must not read
   * as sent. */
  for (i = 0; i < n; i++)
    b->res[i].status = HERALD_NO_RESULT;
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
    json_array_foreach (d->addr_j, k, v) {
      b->to[i][k].type = jstr (v, "type") ? jstr (v, "type") : d->channel;
      b->to[i][k].value = jstr (v, "value") ? jstr (v, "value") : "";
    }
    b->inv[i] = xcalloc (na ? na : 1, 1);
    b->parts[i] = xcalloc (json_object_size (d->parts_j) + 1, sizeof **b->parts);
    json_object_foreach (d->parts_j, pk, v) {
      if (pk[0] == '_')
        continue;
      b->parts[i][np].name = pk;
      b->parts[i][np].data = json_string_value (v);
      b->parts[i][np].len = json_string_length (v);
      np++;
    }
    m->key = d->key;
    m->campaign = r->c->id;
    m->customer = d->customer;
    m->channel = d->channel;
    m->variant = d->variant ? d->variant : "";
    m->to = b->to[i];
    m->n_to = na;
    m->to_name = jstr (d->parts_j, "_to_name");
    m->parts = b->parts[i];
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
static int
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
    int status = b->call < 0 ? HERALD_RETRY : x->status;
    const char *detail = x->detail[0] ? x->detail : NULL;

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
       * later START can lift it. */
      if (detail && detail_flag (detail, "opt_out")
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

/* ---- the sender threads ------------------------------------------ */

/* Fresh batches (committed as "sending" by plan_page) go to their plugin
 * on a thread of their own while this one plans, renders and records: the
 * plugins' network work and the core's store work overlap instead of
 * taking turns.  Each lane (plugin instance) has at most one batch in
 * flight; batches take the lanes of their channel in turn.  When a lane's
 * batch lands, the next batch (already built) takes off at once, and only
 * then are the landed batch's results recorded, so a plugin waits neither
 * for planning nor for the store.  The main thread alone touches the
 * store.  The plugin ABI allows this: a state is used by one thread at a
 * time, and the states of one plugin are independent. */

static void *
lane_main (void *data)
{
  struct lane *l = data;
  struct batch *b = &l->flight;

  b->call = l->ch->plugin->p.send (l->ch->state, b->m, b->n, b->res);
  return NULL;
}

/* Wait for the lane's batch in flight.  1 with it moved into *B, or 0
 * when nothing was in flight. */
static int
lane_wait (struct lane *l, struct batch *b)
{
  if (!l->flying)
    return 0;
  pthread_join (l->thread, NULL);
  l->flying = 0;
  *b = l->flight;
  memset (&l->flight, 0, sizeof l->flight);
  return 1;
}

/* Put B (moved) on the lane's thread.  0, or -1 when no thread could be
 * started (B is then left to the caller). */
static int
lane_takeoff (struct lane *l, struct batch *b)
{
  sigset_t all, old;
  int rc;

  l->flight = *b;
  /* Signals stay with the main thread, whose handler sets run_stop; the
   * faults a plugin's own bug raises in this thread stay deliverable, so
   * that they end the process as they would anywhere (a blocked SIGSEGV
   * from raise() would only stay pending). */
  sigfillset (&all);
  sigdelset (&all, SIGSEGV);
  sigdelset (&all, SIGBUS);
  sigdelset (&all, SIGFPE);
  sigdelset (&all, SIGILL);
  sigdelset (&all, SIGABRT);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  rc = pthread_create (&l->thread, NULL, lane_main, l);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    memset (&l->flight, 0, sizeof l->flight);
    return -1;
  }
  l->flying = 1;
  memset (b, 0, sizeof *b);
  return 0;
}

/* Record a landed batch and free it. */
static void
batch_land (struct run *r, struct batch *b)
{
  batch_record (r, b);
  batch_free (b);
}

/* Wait for every batch in flight and record it. */
static void
land_all (struct run *r)
{
  struct batch b;
  size_t k;
  int i;

  for (k = 0; r->c && k < r->c->n_channels; k++)
    for (i = 0; r->lanes[k] && i < r->n_lanes[k]; i++)
      if (lane_wait (&r->lanes[k][i], &b))
        batch_land (r, &b);
}

/* 1 when a landed batch says its channel is misconfigured. */
static int
batch_channel_error (const struct batch *b)
{
  size_t i;

  for (i = 0; i < b->n; i++)
    if (b->call >= 0 && b->res[i].status == HERALD_CHANNEL_ERROR)
      return 1;
  return 0;
}

/* Send B on its lane's plugin instance here, record it, free it.  0, or
 * -1 on a store failure. */
static int
batch_send_here (struct run *r, struct batch *b)
{
  struct channel *ch = r->lanes[b->cidx][b->lane].ch;
  int rc;

  b->call = ch->plugin->p.send (ch->state, b->m, b->n, b->res);
  rc = batch_record (r, b);
  batch_free (b);
  return rc;
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
    if (store_outbox_update (r->st, b->rows[j].key, "pending",
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

/* Send fresh rows DS[0..N) (all for channel CIDX, committed as "sending"
 * by plan_page; moved out) on the channel's next lane.  1 when handed to
 * the plugin. */
static int
send_claimed (struct run *r, int cidx, struct due **ds, size_t n)
{
  struct batch next, landed;
  struct lane *l;
  int had;

  batch_prepare (r, cidx, ds, n, &next);
  next.lane = (int) (r->next_lane[cidx]++ % (unsigned) r->n_lanes[cidx]);
  l = &r->lanes[cidx][next.lane];
  had = lane_wait (l, &landed);
  if (r->channel_error || r->store_error
      || (had && batch_channel_error (&landed))) {
    /* The run stops, or this channel is broken: these stay unsent. */
    if (had)
      batch_land (r, &landed);
    unclaim (r, &next);
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

/* Send rows DS[0..N) that are due (all for channel CIDX; moved out) here,
 * on the channel's next lane: marked "sending" (attempt counted) in one
 * transaction, then handed over as send_claimed does.  0, or -1 when they
 * were not handed to the plugin (a store failure, the run stopping). */
static int
send_due (struct run *r, int cidx, struct due **ds, size_t n)
{
  size_t i;

  if (store_begin (r->st) < 0)
    goto store_fail;
  for (i = 0; i < n; i++)
    if (store_outbox_update (r->st, ds[i]->key, "sending",
                             ds[i]->attempts + 1, 0, NULL, NULL, NULL) < 0)
      goto store_fail;
  if (store_commit (r->st) < 0)
    goto store_fail;
  /* On the channel's lanes, as fresh batches go: retries and at-most-once
   * batches overlap with the store's work too. */
  return send_claimed (r, cidx, ds, n) ? 0 : -1;

store_fail:
  fprintf (stderr, "herald: %s\n", store_error (r->st));
  store_rollback (r->st);
  r->store_error = 1;
  return -1;
}

/* Send DS[0..N) in batches, grouped by channel.  CLAIMED: the rows were
 * committed as "sending" by plan_page, so they are the batch in flight:
 * sent even after SIGTERM, and after a channel or store failure the ones
 * not handed to a plugin go back to "pending" (never sent: no attempt
 * counted).  Otherwise a signal or a failure stops before the next batch
 * and the rows simply stay due.  Returns the number of rows handed to a
 * plugin. */
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
    for (i = 0; i < nrec; i++)
      if (!(r->channel_error || r->store_error || run_stop)
          && send_due (r, (int) k, by[k] + i, 1) == 0)
        handled++;
    memmove (by[k], by[k] + nrec, (nby[k] - nrec) * sizeof *by[k]);
    nby[k] -= nrec;
  }
  for (k = 0; k < r->c->n_channels; k++)
    for (off = 0; off < nby[k]; off += BATCH) {
      size_t cnt = nby[k] - off < BATCH ? nby[k] - off : BATCH;

      if (claimed) {
        if (send_claimed (r, (int) k, by[k] + off, cnt))
          handled += (long) cnt;
        continue;
      }
      /* send_claimed waits for its lane's batch in flight (a plugin
       * state is never used by two threads at once) and stops at a
       * channel error its results report. */
      if (r->channel_error || r->store_error || run_stop)
        continue;            /* the rows stay due */
      if (send_due (r, (int) k, by[k] + off, cnt) == 0)
        handled += (long) cnt;
    }
  for (k = 0; k < r->c->n_channels; k++)
    free (by[k]);
  return handled;
}

/* Send the messages plan_page just committed as "sending", from memory
 * (moved into their batches). */
static void
send_fresh (struct run *r, struct due_list *l)
{
  struct due **ds;
  size_t i;

  if (l->n == 0)
    return;
  ds = xcalloc (l->n, sizeof *ds);
  for (i = 0; i < l->n; i++)
    ds[i] = &l->d[i];
  send_by_channel (r, ds, l->n, 1);
  free (ds);
}

/* The permanent failures batch_record left in "reroute": planned again
 * here, in a transaction of their own, onto the next usable channel of
 * the campaign under the same key ("pending" for dispatch_due), or
 * "failed" with their own reason when none is left.  0, or -1 on a store
 * failure (r->store_error set). */
static int
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

/* Dispatch every row due now.  Returns the number of rows handled, or -1
 * when the run must stop (store failure, channel error, signal). */
static long
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
    n = store_outbox_due (r->st, r->c->id, r->now, BATCH * 4, due_add, &l);
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
      handled += send_by_channel (r, ok, nok, 0);
    free (ok);
    due_free (&l);
    if (run_stop || r->channel_error || r->store_error)
      return -1;
  }
}

/* ---- herald serve's side: journey steps ----------------------------- */

static int open_run (struct run *r, const char *campaign_path,
                     int open_channels);
static void close_run (struct run *r);

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
  if (flock (r->lock_fd, LOCK_EX | LOCK_NB) == 0)
    return 1;
  return errno == EWOULDBLOCK ? 0 : -1;
}

void
run_serve_unlock (struct run *r)
{
  flock (r->lock_fd, LOCK_UN);
}

/* The key of step STEP of the journey into BUF. */
static void
journey_key (const struct run *r, int step, const char *customer,
             int64_t journey, char *buf, size_t len)
{
  if (journey)
    snprintf (buf, len, "%s:%d:%s:%lld", r->c->id, step, customer,
              (long long) journey);
  else
    snprintf (buf, len, "%s:%d:%s", r->c->id, step, customer);
}

/* The channel mask of a follow-up: which channels the step must not use,
 * from the channel the previous step's message went on. */
static void
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

    journey_key (r, 1, t->customer, t->instance, key, sizeof key);
    if (store_outbox_get (r->st, key, &first) < 0)
      goto out;
    journey_key (r, t->step - 1, t->customer, t->instance, key, sizeof key);
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

/* ---- the commands ------------------------------------------------- */

static void
fmt_time (int64_t t, char *buf, size_t len)
{
  time_t tt = (time_t) t;
  struct tm tm;

  gmtime_r (&tt, &tm);
  strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
print_summary (struct run *r, FILE *fp)
{
  size_t i;
  char t1[64], t2[64];

  if (r->dry_run)
    fprintf (fp, "dry run of campaign %s: nothing was sent or recorded\n",
             r->c->id);
  fprintf (fp, "campaign %s: %ld customers planned\n", r->c->id,
           r->total.planned);
  fprintf (fp, "  %-10s %8s %8s %8s %8s %8s %8s\n", "channel",
           r->dry_run ? "to send" : "sent", "retry", "failed", "dead",
           "deferred", "shifted");
  for (i = 0; i < r->c->n_channels; i++) {
    struct counts *c = &r->per[i];
    fprintf (fp, "  %-10s %8ld %8ld %8ld %8ld %8ld %8ld\n",
             r->c->channels[i].conf->name, r->dry_run ? c->planned : c->sent,
             c->retry, c->failed, c->dead, c->deferred, c->shifted);
  }
  if (r->total.fallback)
    fprintf (fp, "  %ld message(s) fell back to another channel after a "
             "permanent failure\n", r->total.fallback);
  if (r->total.held_out)
    fprintf (fp, "  held out: %ld\n", r->total.held_out);
  if (r->n_reasons) {
    fprintf (fp, "  skipped or failed by reason:\n");
    for (i = 0; i < r->n_reasons; i++)
      fprintf (fp, "    %-20s %ld\n", r->reasons[i].reason, r->reasons[i].n);
  }
  if (r->variants && json_object_size (r->variants)) {
    const char *k;
    json_t *v;
    fprintf (fp, "  by variant:\n");
    json_object_foreach (r->variants, k, v)
      fprintf (fp, "    %-20s %lld\n", k, (long long) json_integer_value (v));
  }
  if (r->total.deferred) {
    fmt_time (r->deferred_until_min, t1, sizeof t1);
    fmt_time (r->deferred_until_max, t2, sizeof t2);
    if (!r->scheduled)
      fprintf (fp, "  deferred by quiet hours: %ld, due from %s to %s\n",
               r->total.deferred, t1, t2);
    else {
      fprintf (fp, "  scheduled for the campaign's start: %ld, due from %s "
               "to %s\n", r->scheduled, t1, t2);
      if (r->total.deferred > r->scheduled)
        fprintf (fp, "  deferred by quiet hours: %ld\n",
                 r->total.deferred - r->scheduled);
    }
  }
}

static int
run_usage (FILE *fp, int rc)
{
  fprintf (fp,
           "Usage: herald [-c GATEWAY.ini] run CAMPAIGN.ini [--dry-run] [--limit N]\n\n"
           "Runs or resumes the campaign: plans every customer of the audience\n"
           "not planned yet, sends what is due, waits for retries due within the\n"
           "campaign's retry_horizon, and prints a summary.  --dry-run renders and\n"
           "routes everything and reports what would be sent, sending nothing and\n"
           "changing nothing.  --limit N plans at most N new customers.\n");
  return rc;
}

static int
open_run (struct run *r, const char *campaign_path, int open_channels)
{
  struct strbuf pb = STRBUF_INIT;
  char err[2048];
  size_t i;
  int k;

  r->gw = config_gateway_load (main_config_path, err, sizeof err);
  if (!r->gw) {
    fprintf (stderr, "herald: %s\n", err);
    return -1;
  }
  r->c = campaign_load (campaign_path, r->gw, &pb);
  if (!r->c) {
    fputs (pb.s ? pb.s : "", stderr);
    strbuf_free (&pb);
    return -1;
  }
  strbuf_free (&pb);
  if (r->c->n_channels > ROUTER_MAX_CHANNELS) {
    fprintf (stderr, "herald: %s: too many channels\n", campaign_path);
    return -1;
  }
  if (open_channels && mkdir_parents (r->gw->store_path) < 0) {
    fprintf (stderr, "herald: %s: cannot create its folder: %s\n",
             r->gw->store_path, strerror (errno));
    return -1;
  }
  /* One herald run per campaign and store at a time: two would race for
   * the same due rows.  The lock lives beside the store and dies with the
   * process, so a crash never leaves it behind. */
  if (open_channels) {
    char *lock = xasprintf ("%s.%s.lock", r->gw->store_path, r->c->id);
    r->lock_fd = open_private (lock, O_RDWR | O_CLOEXEC);
    /* herald serve (OPEN_CHANNELS 2) takes it tick by tick: run_serve_lock. */
    if (r->lock_fd < 0
        || (open_channels == 1 && flock (r->lock_fd, LOCK_EX | LOCK_NB) < 0)) {
      fprintf (stderr, "herald: campaign %s is already running on %s (lock "
               "%s: %s)\n", r->c->id, r->gw->store_path, lock,
               r->lock_fd < 0 ? strerror (errno) : "held by another process");
      free (lock);
      return -1;
    }
    free (lock);
  }
  r->st = store_open (r->gw->store_path, err, sizeof err);
  if (!r->st) {
    fprintf (stderr, "herald: %s\n", err);
    return -1;
  }
  for (i = 0; i < r->c->n_channels; i++) {
    const struct channel_conf *cc = r->c->channels[i].conf;
    struct plugin *pl = loader_get (r->gw->plugin_dir, cc->plugin, err,
                                    sizeof err);
    if (!pl) {
      fprintf (stderr, "herald: %s:%d: [channel.%s] plugin: %s\n",
               r->gw->ini->path, ini_line (cc->sec, "plugin"), cc->name, err);
      return -1;
    }
    if (!open_channels)
      continue;
    r->lanes[i] = xcalloc ((size_t) cc->lanes, sizeof *r->lanes[i]);
    for (k = 0; k < cc->lanes; k++) {
      r->lanes[i][k].ch = channel_open (pl, cc->name, cc->kind, cc->sec,
                                        r->gw->ini->path,
                                        r->gw->tracking_base_url, err,
                                        sizeof err);
      if (!r->lanes[i][k].ch) {
        fprintf (stderr, "herald: %s\n", err);
        return -1;
      }
      r->n_lanes[i]++;
    }
  }
  liquid_buf_init (&r->buf);
  r->step = 1;
  r->rerouting = 1;            /* one look for those an earlier run left */
  r->now = now_seconds ();
  if (r->c->policy->kind == POLICY_ENGAGEMENT
      && store_channel_stats (r->st, r->now - r->c->policy->window, &r->pop) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r->st));
    return -1;
  }
  return 0;
}

static void
close_run (struct run *r)
{
  size_t i;

  land_all (r);             /* batches still in flight are recorded */
  if (r->lock_fd >= 0)
    close (r->lock_fd);     /* releases the flock */

  for (i = 0; r->c && i < r->c->n_channels; i++) {
    int k;
    for (k = 0; r->lanes[i] && k < r->n_lanes[i]; k++)
      channel_close (r->lanes[i][k].ch);
    free (r->lanes[i]);
  }
  for (i = 0; i < r->n_reasons; i++)
    free (r->reasons[i].reason);
  free (r->reasons);
  json_decref (r->pop);
  json_decref (r->variants);
  json_decref (r->retried);
  json_decref (r->campaign_j);
  json_decref (r->event);
  liquid_buf_free (&r->buf);
  if (r->unsub_key_ready)
    token_key_free (&r->unsub_key);
  if (r->track_key_ready)
    token_key_free (&r->track_key);
  store_close (r->st);
  campaign_free (r->c);
  config_gateway_free (r->gw);
  if (!r->serve)
    loader_unload_all ();
}

static void
sleep_until (int64_t t)
{
  while (!run_stop) {
    int64_t now = now_seconds ();
    if (now >= t)
      return;
    sleep (1);
  }
}

int
cmd_run (int argc, char **argv)
{
  struct run r;
  const char *path = NULL;
  char after[1024] = "";
  int64_t limit = -1, planned = 0, next;
  int i, rc = 1, recovered = 0, later = 0;
  struct sigaction sa;

  memset (&r, 0, sizeof r);
  r.lock_fd = -1;
  for (i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      return run_usage (stdout, 0);
    else if (strcmp (argv[i], "--dry-run") == 0 || strcmp (argv[i], "-n") == 0)
      r.dry_run = 1;
    else if (strcmp (argv[i], "--limit") == 0 && i + 1 < argc) {
      if (parse_int64 (argv[++i], 0, INT64_MAX, &limit) < 0) {
        fprintf (stderr, "herald run: --limit: '%s' is not a number\n", argv[i]);
        return EXIT_USAGE;
      }
    }
    else if (argv[i][0] == '-' || path) {
      fprintf (stderr, "herald run: unexpected argument '%s'\n", argv[i]);
      return run_usage (stderr, EXIT_USAGE);
    }
    else
      path = argv[i];
  }
  if (!path)
    return run_usage (stderr, EXIT_USAGE);

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  srand ((unsigned) (now_ms () ^ getpid ()));

  if (open_run (&r, path, !r.dry_run) < 0)
    goto out;
  if (r.c->trigger.event) {
    fprintf (stderr, "herald: %s: campaign %s has a [trigger]: herald serve "
             "runs it for each '%s' event (herald serve %s)\n", path,
             r.c->id, r.c->trigger.event, path);
    goto out;
  }
  r.verbose_progress = isatty (2);
  if (r.dry_run) {
    if (r.c->policy->n_variants)
      r.variants = json_object ();
  }
  else {
    r.retried = json_object ();
    if (store_outbox_recover (r.st, r.c->id, r.c->at_least_once,
                              r.c->max_attempts, &recovered) < 0
        || store_campaign_start (r.st, r.c->id, r.c->name, r.now) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r.st));
      goto out;
    }
    if (recovered)
      fprintf (stderr, "herald: %d message(s) were in flight when an earlier "
               "run stopped: %s\n", recovered,
               r.c->at_least_once
               ? "sending them again, one at a time (at-least-once; one in "
                 "flight at as many crashes as max_attempts is dead)"
               : "marked failed (at-most-once)");
  }

  /* Plan a page, send what is due, repeat: memory stays flat however large
   * the audience, and sending starts at once. */
  while (!run_stop && (limit < 0 || planned < limit)) {
    int want = PAGE, n;
    if (limit >= 0 && limit - planned < want)
      want = (int) (limit - planned);
    struct due_list fresh = { 0 };

    n = plan_page (&r, after, sizeof after, want, &fresh);
    if (n > 0)
      send_fresh (&r, &fresh);
    due_free (&fresh);
    if (n < 0)
      goto out;
    if (n == 0)
      break;
    planned += n;
    if (!r.dry_run && dispatch_due (&r) < 0)
      break;
    if (r.dry_run && r.verbose_progress)
      fprintf (stderr, "\rherald: %ld customers planned   ", r.total.planned);
  }
  land_all (&r);
  if (!r.dry_run && !run_stop && !r.channel_error && !r.store_error) {
    /* What is due now, and what the landed batches left to re-route (a
     * fallback's batch can leave more, one channel further each time). */
    do {
      dispatch_due (&r);
      land_all (&r);
    } while (r.rerouting && !run_stop && !r.channel_error && !r.store_error);
    /* Then retries that fall due within the horizon (not with a frozen
     * clock: HERALD_NOW would never reach them). */
    while (!getenv ("HERALD_NOW") && !run_stop && !r.channel_error && !r.store_error
           && (later = store_outbox_next_due (r.st, r.c->id, &next)) == 1
           && next - now_seconds () <= r.c->retry_horizon) {
      sleep_until (next);
      if (dispatch_due (&r) < 0)
        break;
      land_all (&r);
      if (r.rerouting && dispatch_due (&r) < 0)
        break;
    }
    if (later < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r.st));
      r.store_error = 1;
    }
  }
  if (r.verbose_progress) {
    __atomic_store_n (&loader_progress, 0, __ATOMIC_RELAXED);
    fprintf (stderr, "\n");
  }

  print_summary (&r, stdout);
  if (r.dry_run) {
    rc = 0;
    goto out;
  }
  /* Every store failure is said, and fails the run, down to its last
   * bookkeeping. */
  if ((later = store_outbox_next_due (r.st, r.c->id, &next)) == 1) {
    char t[64];
    fmt_time (next, t, sizeof t);
    printf ("  messages scheduled for later (retries, quiet hours or the "
            "campaign's start): next due %s; run again then to send them, or "
            "let herald serve %s send them when due\n", t, path);
  }
  else if (later < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r.st));
    r.store_error = 1;
  }
  if (r.channel_error)
    fprintf (stderr, "herald: stopped: %s (messages kept; fix the channel and "
             "run again)\n", r.channel_error_msg);
  if (run_stop)
    fprintf (stderr, "herald: interrupted: the batch in flight was recorded; "
             "run again to resume\n");
  if (r.unplanned)
    fprintf (stderr, "herald: %ld customer%s not planned: the store failed "
             "while reading their suppressions, caps or history, so they "
             "were not messaged; run again to plan them\n", r.unplanned,
             r.unplanned == 1 ? "" : "s");
  if (store_campaign_finish (r.st, r.c->id,
                             r.store_error || r.channel_error || r.unplanned
                             ? "failed" : run_stop ? "interrupted"
                             : later == 1 ? "scheduled" : "done",
                             now_seconds ()) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (r.st));
    r.store_error = 1;
  }
  rc = (r.store_error || r.channel_error || run_stop || r.unplanned) ? 1 : 0;
out:
  close_run (&r);
  return rc;
}

static int
preview_usage (FILE *fp, int rc)
{
  fprintf (fp,
           "Usage: herald [-c GATEWAY.ini] preview CAMPAIGN.ini --customer ID "
           "[--event JSON]\n\n"
           "Shows the channel decision for one customer with its reason, and\n"
           "the rendered parts.  Changes nothing.  With [step.N], each step in\n"
           "turn, as it goes when the customer does none of its unless events.\n"
           "--event gives a triggered campaign's event properties (event.*).\n");
  return rc;
}

/* Print one step's decision and rendered parts. */
static void
preview_print (struct run *r, const struct plan *p)
{
  static const char *const outcomes[] = { "send", "defer", "skip", "hold out" };

  printf ("key: %s\n", p->key);
  if (!p->in_segment) {
    printf ("decision: not in the audience (segment: %s)\n", r->c->segment);
    return;
  }
  printf ("decision: %s", outcomes[p->d.outcome]);
  if (p->d.channel)
    printf (" via %s", p->d.channel);
  if (p->d.reason)
    printf (" (%s)", p->d.reason);
  if (p->d.outcome == ROUTER_DEFER) {
    char t[64];
    fmt_time (p->d.until, t, sizeof t);
    printf (" until %s", t);
  }
  printf ("\nreason: %s\n", p->d.trace);
  if (p->d.variant)
    printf ("variant: %s\n", p->d.variant);
  if (p->d.n_fallback) {
    size_t k;
    printf ("fallback:");
    for (k = 0; k < p->d.n_fallback; k++)
      printf (" %s", p->d.fallback[k]);
    printf ("\n");
  }
  if (p->address) {
    size_t k;
    json_t *v;
    printf ("to:");
    json_array_foreach (p->address, k, v)
      printf (" %s", jstr (v, "value"));
    printf ("\n");
  }
  if (p->render_error)
    printf ("render error: %s\n", p->render_error);
  if (p->parts) {
    const char *k;
    json_t *v;
    json_object_foreach (p->parts, k, v) {
      if (k[0] == '_')
        continue;
      printf ("--- %s ---\n%s", k, json_string_value (v));
      if (json_string_length (v) == 0
          || json_string_value (v)[json_string_length (v) - 1] != '\n')
        printf ("\n");
    }
  }
}

int
cmd_preview (int argc, char **argv)
{
  struct run r;
  const char *path = NULL, *id = NULL, *event = NULL;
  json_t *cust = NULL;
  struct plan p;
  int i, rc = 1, prev_cidx = -1, short_links = 0, planned;
  size_t k;

  memset (&r, 0, sizeof r);
  r.lock_fd = -1;
  memset (&p, 0, sizeof p);
  for (i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      return preview_usage (stdout, 0);
    else if (strcmp (argv[i], "--customer") == 0 && i + 1 < argc)
      id = argv[++i];
    else if (strcmp (argv[i], "--event") == 0 && i + 1 < argc)
      event = argv[++i];
    else if (argv[i][0] == '-' || path)
      return preview_usage (stderr, EXIT_USAGE);
    else
      path = argv[i];
  }
  if (!path || !id)
    return preview_usage (stderr, EXIT_USAGE);
  r.dry_run = 1;
  if (open_run (&r, path, 0) < 0)
    goto out;
  cust = store_customer_get (r.st, id);
  if (!cust) {
    fprintf (stderr, "herald: customer '%s' not found in %s\n", id,
             r.gw->store_path);
    goto out;
  }
  /* A triggered campaign sees its event: the properties given, with the
   * type and the time of now. */
  if (r.c->trigger.event || event) {
    json_error_t jerr;
    char at[32];
    time_t t = (time_t) r.now;
    struct tm tm;

    r.event = event ? json_loads (event, 0, &jerr) : json_object ();
    if (!json_is_object (r.event)) {
      fprintf (stderr, "herald preview: --event: not a JSON object of the "
               "event's properties: %s\n", event);
      rc = EXIT_USAGE;
      goto out;
    }
    gmtime_r (&t, &tm);
    strftime (at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (r.c->trigger.event)
      json_object_set_new (r.event, "type", json_string (r.c->trigger.event));
    json_object_set_new (r.event, "at", json_string (at));
  }
  printf ("customer: %s\ncampaign: %s\n", id, r.c->id);
  if (r.c->trigger.event)
    printf ("trigger: a '%s' event, then %lld s\n", r.c->trigger.event,
            (long long) r.c->trigger.delay);
  /* An SMS channel with track_links records its short links while it
   * renders: in a transaction rolled back at once, so that the preview
   * shows the links as long as a run's and changes nothing. */
  for (k = 0; k < r.c->n_channels; k++)
    if (r.c->channels[k].conf->track_links)
      short_links = 1;
  /* Each step as it would go if the one before was sent and the customer
   * did none of its unless events. */
  for (k = 0; k <= r.c->n_steps; k++) {
    int failed[ROUTER_MAX_CHANNELS] = { 0 };

    r.step = (int) k + 1;
    if (r.c->n_steps)
      printf ("%s== step %d ==\n", k ? "\n" : "", r.step);
    if (k) {
      const struct campaign_step *cs = &r.c->steps[k - 1];
      struct outbox_row prev;
      size_t u;

      memset (&prev, 0, sizeof prev);
      if (prev_cidx >= 0)
        prev.instance = r.c->channels[prev_cidx].conf->name;
      step_channels (&r, cs, prev_cidx >= 0 ? &prev : NULL, failed);
      printf ("after: %lld s", (long long) cs->after);
      for (u = 0; cs->unless[u]; u++)
        printf ("%s%s", u ? ", " : "; unless: ", cs->unless[u]);
      printf ("; channel: %s\n", cs->channel == STEP_SAME ? "same"
                                 : cs->channel == STEP_NEXT ? "next"
                                 : r.c->channels[cs->channel_idx].conf->name);
      plan_clear (&p);
    }
    if (short_links && store_begin (r.st) < 0) {
      fprintf (stderr, "herald: %s\n", store_error (r.st));
      goto out;
    }
    planned = plan_customer (&r, cust, failed, &p);
    if (short_links)
      store_rollback (r.st);
    if (planned < 0) {
      fprintf (stderr, "herald: %s\n", p.render_error ? p.render_error
                                                      : "cannot plan");
      goto out;
    }
    preview_print (&r, &p);
    if (!p.in_segment || p.d.outcome == ROUTER_SKIP
        || p.d.outcome == ROUTER_HOLD)
      break;                 /* the journey ends here */
    prev_cidx = p.cidx;
  }
  rc = 0;
out:
  plan_clear (&p);
  json_decref (cust);
  close_run (&r);
  return rc;
}
