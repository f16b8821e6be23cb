/* compose.c: a message for one customer: the render context, the parts, the
 * unsubscribe and tracking links.  It never touches the store: the short
 * links of an SMS are recorded through the caller's link_sink, in the
 * caller's transaction (tests/core/test-compose links it without one). */
#include <config.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/internal.h"
#include "campaign.h"
#include "jsonw.h"
#include "linkrewrite.h"
#include "../lib/jsoncheck.h"
#include "token.h"
#include "tz.h"


const char *
jstr (json_t *o, const char *k)
{
  json_t *v = json_object_get (o, k);
  return json_is_string (v) && *json_string_value (v) ? json_string_value (v)
                                                      : NULL;
}

/* {K1: V1, K2: V2[, K3: V3]} of strings (a NULL value is ""; K3 NULL:
 * two members).  json_pack, without parsing a format per call. */
json_t *
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

/* The unsubscribe link of (customer, campaign, channel): base_url/u/TOKEN,
 * TOKEN = base64url(customer \n campaign \n channel) "." base64url(first
 * 16 bytes of HMAC-SHA256(secret, that payload)).  Opaque to the reader,
 * unforgeable without the secret (RFC 8058 section 3.1). */
char *
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

/* The message whose links are being signed. */
struct track_msg {
  struct run *r;
  const char *key;
  const struct link_sink *links;
  int record_failed;           /* track_short_url: links->record failed */
  char *err;                   /* why: track_part's ERR, ERRLEN bytes */
  size_t errlen;
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
 * base_url/s/TOKEN, a short link (token.h).  The link is recorded through
 * the caller's sink: plan.c's puts it in the store's links table in the
 * caller's transaction (plan_page's, or batch_record's for a fallback), so
 * it is kept exactly when the message is; a dry run's and a preview's are
 * rolled back with theirs. */
static char *
track_short_url (void *data, const char *url, size_t len)
{
  struct track_msg *t = data;
  int64_t id = 0;
  char *tok, *u;

  t->err[0] = '\0';
  if (t->links->record (t->links->data, t->key, url, len, &id, t->err,
                        t->errlen) < 0) {
    t->record_failed = 1;
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
 * short links could not be recorded (ERR, ERRLEN bytes, says why). */
static int
track_part (struct run *r, const char *part, const char *key,
            const char *unsub, int short_links,
            const struct link_sink *links, struct strbuf *out, char *err,
            size_t errlen)
{
  int html = strcmp (part, "email.html") == 0;
  int sms = short_links && strcmp (part, "sms.body") == 0;
  struct track_msg tm;
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
  memset (&tm, 0, sizeof tm);
  tm.r = r;
  tm.key = key;
  tm.links = links;
  tm.err = err;
  tm.errlen = errlen;
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
  return n >= 0 ? 1 : tm.record_failed ? -2 : -1;
}

/* Templates see customer.* = the attributes plus id, email, phone,
 * timezone and locale; campaign.*; message.*; unsubscribe_url. */
json_t *
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

const char *
customer_zone (struct run *r, json_t *cust)
{
  const char *z = jstr (cust, "timezone");
  if (z && tz_valid (z))
    return z;
  return r->c->policy->timezone;
}

/* Render every part of KIND for the customer into p->parts (the caller
 * frees it, plan_clear).  LINKS records the short links of sms.body when
 * the channel p->cidx has track_links; it is not used otherwise.  Returns
 * 0; -1 when a part cannot be rendered or signed (p->render_error says
 * why); PLAN_STORE_ERROR when LINKS failed (p->render_error says why). */
int
render_parts (struct run *r, json_t *cust, const char *kind,
              const char *variant, const char *key,
              const struct link_sink *links, struct plan *p)
{
  static const char *const builtin_parts[] = {
    "email.subject", "email.html", "email.text", "sms.body", "push.title",
    "push.body", "push.data", "webhook.body", NULL
  };
  const struct config_kind *pk = config_kind_find (kind);
  const char *const *parts = builtin_parts;
  const char **kparts = NULL;
  json_t *ctx = render_context (r, cust);
  struct liquid_render_options ro;
  char *unsub = NULL;
  size_t klen = strlen (kind), i;
  int rc = 0, want_unsub = strcmp (kind, "email") == 0;

  /* A plugin's kind: its required parts, then its optional ones. */
  if (pk) {
    size_t n = 0, j;
    for (j = 0; pk->required[j]; j++)
      n++;
    for (j = 0; pk->optional[j]; j++)
      n++;
    kparts = xcalloc (n + 1, sizeof *kparts);
    n = 0;
    for (j = 0; pk->required[j]; j++)
      kparts[n++] = pk->required[j];
    for (j = 0; pk->optional[j]; j++)
      kparts[n++] = pk->optional[j];
    parts = (const char *const *) kparts;
  }

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
      char why[512];
      int t = track_part (r, parts[i], key, unsub,
                          p->cidx >= 0
                          && r->c->channels[p->cidx].conf->track_links,
                          links, &tracked, why, sizeof why);

      if (t < 0) {
        p->render_error = t == -2
          ? xasprintf ("%s: cannot record its short links: %s", tp->path,
                       why)
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
  free (kparts);
  json_decref (ctx);
  return rc;
}

char *
dupn (const char *s)
{
  return s ? xstrdup (s) : NULL;
}

char *
dumps (json_t *j)
{
  return jsonw_dumps (j);
}
