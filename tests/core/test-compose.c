/* tests/core/test-compose.c: core/compose.c alone.  This program does not
 * link core/store.c, so a store call in compose would not even link; the
 * short links of an SMS go to a link_sink that keeps them in memory.  The
 * gateway and the campaigns are real ones, loaded from a folder made here;
 * the struct run holds only what compose reads (the gateway, the campaign,
 * the step, the run's time, the event).
 *  - the unsubscribe URL of (customer, campaign, channel): its token
 *    verifies under the secret as "customer\ncampaign\nchannel", is the
 *    same on every call and in another run, differs by channel, is refused
 *    under another secret; without [tracking] base_url there is none;
 *  - email.html, byte for byte: an http(s) link becomes a /c/ click token
 *    that reads back as (message key, URL), the open pixel goes before
 *    </body>; mailto:, the unsubscribe link, a link into base_url and a
 *    data-herald-notrack link (the attribute removed) are left as they
 *    are; email.text keeps its URLs (no text_links); track_opens = no: no
 *    pixel; the sink is never called for e-mail;
 *  - sms.body on a track_links channel: each URL recorded through the
 *    sink, in order, under the message key, and replaced by a /s/ token
 *    that verifies for the id the sink gave; the sink's failure is
 *    PLAN_STORE_ERROR with its words in render_error; a channel without
 *    track_links keeps its URLs and never calls the sink;
 *  - Liquid: the customer's attributes, id and email, campaign.*,
 *    message.*, event.*, the run's time in the customer's zone, _to_name;
 *    a webhook.body that renders to invalid JSON is a render error that
 *    names its template. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "campaign.h"
#include "config.h"
#include "run/internal.h"
#include "token.h"
#include "util.h"
#include "../tap.h"

#define SECRET "compose-test-secret-0123456789"
#define BASE "https://t.example/t"
#define T0 1790000000          /* 2026-09-21 14:13:20 UTC, 16:13:20 in Paris */

static char dir[] = "/tmp/herald-test-compose-XXXXXX";
static const char *const files[] = {
  "herald.ini", "spring.ini", "plain.ini", "tpl/email.subject.liquid",
  "tpl/email.html.liquid", "tpl/email.text.liquid", "tpl/sms.body.liquid",
  "tpl/webhook.body.liquid", NULL
};

static void
put (const char *name, const char *text)
{
  char path[512];
  FILE *f;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  f = fopen (path, "w");
  if (!f || fputs (text, f) == EOF || fclose (f) != 0) {
    printf ("Bail out! cannot write %s: %s\n", path, strerror (errno));
    exit (1);
  }
}

static void
cleanup (void)
{
  char path[512];
  size_t i;

  for (i = 0; files[i]; i++) {
    snprintf (path, sizeof path, "%s/%s", dir, files[i]);
    unlink (path);
  }
  snprintf (path, sizeof path, "%s/tpl", dir);
  rmdir (path);
  rmdir (dir);
}

static void
make_fixture (void)
{
  char path[512];

  if (!mkdtemp (dir)) {
    printf ("Bail out! mkdtemp: %s\n", strerror (errno));
    exit (1);
  }
  atexit (cleanup);
  snprintf (path, sizeof path, "%s/tpl", dir);
  if (mkdir (path, 0700) < 0) {
    printf ("Bail out! mkdir %s: %s\n", path, strerror (errno));
    exit (1);
  }
  put ("herald.ini",
       "[store]\npath = herald.db\n"
       "[tracking]\nbase_url = " BASE "\nsecret = " SECRET "\n"
       "[channel.email]\nplugin = outbox\n"
       "[channel.sms]\nplugin = outbox\ntrack_links = yes\n"
       "[channel.plainsms]\nplugin = outbox\nkind = sms\n"
       "[channel.webhook]\nplugin = outbox\n");
  put ("spring.ini",
       "[campaign]\nid = spring\nname = Spring sale\ntemplates = tpl\n"
       "channels = email, sms, webhook\n");
  put ("plain.ini",
       "[campaign]\nid = plain\nname = Plain\ntemplates = tpl\n"
       "channels = email, plainsms\ntrack_opens = no\n");
  put ("tpl/email.subject.liquid",
       "Hi {{ customer.first_name }}, {{ campaign.name }}");
  put ("tpl/email.html.liquid",
       "<html><body><p>Hello {{ customer.first_name }} "
       "({{ customer.tier | upcase }})</p>\n"
       "<a href=\"https://shop.example/sale?c={{ customer.id }}&amp;x=1\">"
       "Sale</a>\n"
       "<a href=\"mailto:help@shop.example\">Help</a>\n"
       "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>\n"
       "<a data-herald-notrack href=\"https://shop.example/terms\">Terms</a>\n"
       "<a href=\"" BASE "/prefs\">Prefs</a>\n"
       "</body></html>\n");
  put ("tpl/email.text.liquid",
       "Sale: https://shop.example/sale?c={{ customer.id }}\n"
       "Stop: {{ unsubscribe_url }}\n");
  put ("tpl/sms.body.liquid",
       "{{ customer.first_name }}: https://shop.example/a?x=1 and "
       "https://shop.example/b. Sent {{ \"now\" | date: \"%H:%M\" }}");
  put ("tpl/webhook.body.liquid",
       "{\"id\": \"{{ message.id }}\", \"channel\": \"{{ message.channel }}\", "
       "\"event\": \"{{ event.type }}\", \"email\": \"{{ customer.email }}\", "
       "\"orders\": {{ customer.orders }}}");
}

static struct campaign *
load_campaign (const char *name, const struct gateway *gw)
{
  struct strbuf problems = STRBUF_INIT;
  struct campaign *c;
  char path[512];

  snprintf (path, sizeof path, "%s/%s", dir, name);
  c = campaign_load (path, gw, &problems);
  if (!c) {
    printf ("Bail out! %s: %s\n", name, problems.s ? problems.s : "?");
    exit (1);
  }
  strbuf_free (&problems);
  return c;
}

/* What compose reads of a run; nothing else is set. */
static void
run_init (struct run *r, struct gateway *gw, struct campaign *c)
{
  memset (r, 0, sizeof *r);
  r->gw = gw;
  r->c = c;
  r->step = 1;
  r->now = T0;
  liquid_buf_init (&r->buf);
}

/* What close_run frees of compose's. */
static void
run_clear (struct run *r)
{
  json_decref (r->campaign_j);
  json_decref (r->event);
  liquid_buf_free (&r->buf);
  if (r->unsub_key_ready)
    token_key_free (&r->unsub_key);
  if (r->track_key_ready)
    token_key_free (&r->track_key);
}

static int
channel_of (const struct campaign *c, const char *kind)
{
  size_t i;

  for (i = 0; i < c->n_channels; i++)
    if (strcmp (c->channels[i].kind, kind) == 0)
      return (int) i;
  return -1;
}

static const char *
part (const struct plan *p, const char *name)
{
  return json_string_value (json_object_get (p->parts, name));
}

/* ---- the link sink ---- */

#define MAX_LINKS 8

/* The store's links table as the test plays it: ids from 41 up. */
struct sink {
  int calls;
  int fail_at;                 /* the call (1, 2, ...) that fails; 0: none */
  char *key[MAX_LINKS], *url[MAX_LINKS];
  int64_t id[MAX_LINKS];
};

static int
sink_record (void *data, const char *key, const char *url, size_t len,
             int64_t *id_r, char *err, size_t errlen)
{
  struct sink *s = data;
  int n = s->calls++;

  if (s->calls == s->fail_at || n >= MAX_LINKS) {
    snprintf (err, errlen, "disk I/O error (call %d)", s->calls);
    return -1;
  }
  s->key[n] = xstrdup (key);
  s->url[n] = xstrndup (url, len);
  s->id[n] = 41 + n;
  *id_r = s->id[n];
  return 0;
}

static void
sink_clear (struct sink *s)
{
  int i;

  for (i = 0; i < MAX_LINKS; i++) {
    free (s->key[i]);
    free (s->url[i]);
  }
  memset (s, 0, sizeof *s);
}

/* ---- the customers ---- */

static json_t *
customer (const char *text)
{
  json_error_t e;
  json_t *j = json_loads (text, 0, &e);

  if (!j) {
    printf ("Bail out! customer: %s\n", e.text);
    exit (1);
  }
  return j;
}

#define ANN "{\"id\": \"c1\", \"email\": \"ann@example.com\", " \
  "\"phone\": \"+33612345678\", \"timezone\": \"Europe/Paris\", " \
  "\"attributes\": {\"first_name\": \"Ann\", \"last_name\": \"Lee\", " \
  "\"tier\": \"gold\", \"orders\": 3}}"
#define BOB "{\"id\": \"c2\", \"email\": \"bob@example.com\", " \
  "\"phone\": \"+33699999999\", \"attributes\": {\"name\": \"Bob B\", " \
  "\"first_name\": \"Bobby\"}}"

/* ---- the tests ---- */

static void
test_unsubscribe (struct gateway *gw, struct campaign *c)
{
  struct run r, r2;
  struct gateway nobase = *gw;
  struct token_key k, other;
  char *u1, *u2, *u3, *u4, *payload;
  size_t len = 0;
  const char *pre = BASE "/u/";

  run_init (&r, gw, c);
  run_init (&r2, gw, c);
  u1 = unsubscribe_url (&r, "c1", "email");
  u2 = unsubscribe_url (&r, "c1", "email");
  u3 = unsubscribe_url (&r2, "c1", "email");
  u4 = unsubscribe_url (&r, "c1", "sms");
  tap_ok (u1 && strncmp (u1, pre, strlen (pre)) == 0
          && strchr (u1 + strlen (pre), '/') == NULL,
          "unsubscribe: %s is base_url/u/TOKEN", u1 ? u1 : "(null)");
  tap_ok (token_key_init (&k, SECRET) == 0, "unsubscribe: key of the secret");
  payload = u1 ? token_check (&k, u1 + strlen (pre), &len) : NULL;
  tap_ok (payload && len == 15 && memcmp (payload, "c1\nspring\nemail", 15) == 0,
          "unsubscribe: the token verifies as customer, campaign, channel");
  free (payload);
  tap_is (u2, u1, "unsubscribe: the same URL on a second call");
  tap_is (u3, u1, "unsubscribe: the same URL in another run");
  tap_ok (u4 && u1 && strcmp (u4, u1) != 0, "unsubscribe: another channel, "
          "another URL");
  payload = u4 ? token_check (&k, u4 + strlen (pre), &len) : NULL;
  tap_ok (payload && len == 13 && memcmp (payload, "c1\nspring\nsms", 13) == 0,
          "unsubscribe: the sms token names the sms channel");
  free (payload);
  tap_ok (token_key_init (&other, "another-secret-0123456789") == 0,
          "unsubscribe: key of another secret");
  payload = u1 ? token_check (&other, u1 + strlen (pre), &len) : NULL;
  tap_ok (payload == NULL, "unsubscribe: refused under another secret");
  free (payload);
  token_key_free (&other);
  token_key_free (&k);
  free (u1);
  free (u2);
  free (u3);
  free (u4);
  run_clear (&r2);

  nobase.tracking_base_url = NULL;
  r.gw = &nobase;
  u1 = unsubscribe_url (&r, "c1", "email");
  tap_ok (u1 == NULL, "unsubscribe: no base_url, no URL");
  free (u1);
  run_clear (&r);
}

static void
test_email (struct gateway *gw, struct campaign *c, struct campaign *plain)
{
  struct run r;
  struct plan p;
  struct sink s;
  struct link_sink links = { sink_record, &s };
  struct token_key tk;
  struct token_track tt;
  json_t *ann = customer (ANN);
  char *unsub, *click, *open, *want;
  const char *html, *sale = "https://shop.example/sale?c=c1&x=1", *at;
  int rc;

  memset (&s, 0, sizeof s);
  run_init (&r, gw, c);
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (c, "email");
  rc = render_parts (&r, ann, "email", NULL, "spring:1:c1", &links, &p);
  tap_ok (rc == 0 && !p.render_error, "email: rendered (%s)",
          p.render_error ? p.render_error : "no error");
  tap_is (part (&p, "email.subject"), "Hi Ann, Spring sale",
          "email: subject from the customer's attributes and campaign.name");

  /* The expected tokens, made here from token.h's functions. */
  tap_ok (token_track_key_init (&tk, SECRET) == 0, "email: tracking key");
  unsub = unsubscribe_url (&r, "c1", "email");
  click = token_click_make (&tk, "spring:1:c1", sale, strlen (sale));
  open = token_open_make (&tk, "spring:1:c1");
  want = xasprintf ("<html><body><p>Hello Ann (GOLD)</p>\n"
                    "<a href=\"" BASE "/c/%s\">Sale</a>\n"
                    "<a href=\"mailto:help@shop.example\">Help</a>\n"
                    "<a href=\"%s\">Unsubscribe</a>\n"
                    "<a href=\"https://shop.example/terms\">Terms</a>\n"
                    "<a href=\"" BASE "/prefs\">Prefs</a>\n"
                    "<img src=\"" BASE "/o/%s.gif\" width=\"1\" height=\"1\" "
                    "alt=\"\"></body></html>\n", click, unsub, open);
  html = part (&p, "email.html");
  tap_is (html, want, "email: html with a tracked link and the open pixel; "
          "mailto, unsubscribe, base_url and notrack links left alone");

  /* And the click token reads back as what it stands for. */
  at = html ? strstr (html, BASE "/c/") : NULL;
  memset (&tt, 0, sizeof tt);
  if (at) {
    char *tok = xstrndup (at + strlen (BASE "/c/"),
                          strcspn (at + strlen (BASE "/c/"), "\""));
    tap_ok (token_track_check (&tk, tok, &tt) == 0 && tt.kind == 'c'
            && strcmp (tt.key, "spring:1:c1") == 0
            && tt.url_len == strlen (sale) && strcmp (tt.url, sale) == 0,
            "email: the click token reads back as (message key, URL)");
    free (tok);
  }
  else
    tap_ok (0, "email: the click token reads back as (message key, URL)");
  free (tt.payload);
  free (want);
  want = xasprintf ("Sale: https://shop.example/sale?c=c1\nStop: %s\n", unsub);
  tap_is (part (&p, "email.text"), want,
          "email: text keeps its URLs without text_links");
  tap_is (part (&p, "_unsubscribe_url"), unsub,
          "email: _unsubscribe_url travels with the parts");
  tap_is (part (&p, "_to_name"), "Ann Lee",
          "email: _to_name from first_name and last_name");
  tap_ok (s.calls == 0, "email: the link sink is not called");
  free (want);
  free (click);
  free (unsub);
  json_decref (p.parts);
  free (p.render_error);
  run_clear (&r);

  /* track_opens = no: the same links, no pixel. */
  run_init (&r, gw, plain);
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (plain, "email");
  rc = render_parts (&r, ann, "email", NULL, "plain:1:c1", &links, &p);
  html = part (&p, "email.html");
  tap_ok (rc == 0 && html && strstr (html, "</p>\n<a href=\"" BASE "/c/")
          && !strstr (html, "<img"),
          "email: track_opens = no: links tracked, no pixel");
  free (open);
  json_decref (p.parts);
  free (p.render_error);
  run_clear (&r);
  token_key_free (&tk);
  json_decref (ann);
}

static void
test_sms (struct gateway *gw, struct campaign *c, struct campaign *plain)
{
  struct run r;
  struct plan p;
  struct sink s;
  struct link_sink links = { sink_record, &s };
  struct token_key tk;
  json_t *ann = customer (ANN), *bob = customer (BOB);
  const char *body, *a = "https://shop.example/a?x=1";
  const char *b = "https://shop.example/b";
  char *want, *t1, *t2, *path;
  int rc;

  tap_ok (token_track_key_init (&tk, SECRET) == 0, "sms: tracking key");
  memset (&s, 0, sizeof s);
  run_init (&r, gw, c);
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (c, "sms");
  rc = render_parts (&r, ann, "sms", NULL, "spring:1:c1", &links, &p);
  tap_ok (rc == 0 && !p.render_error, "sms: rendered (%s)",
          p.render_error ? p.render_error : "no error");
  tap_ok (s.calls == 2 && s.key[0] && s.key[1]
          && strcmp (s.key[0], "spring:1:c1") == 0
          && strcmp (s.key[1], "spring:1:c1") == 0
          && strcmp (s.url[0], a) == 0 && strcmp (s.url[1], b) == 0,
          "sms: both URLs recorded through the sink, in order, under the "
          "message key (%d calls)", s.calls);
  t1 = token_short_make (&tk, 41, "spring:1:c1", a, strlen (a));
  t2 = token_short_make (&tk, 42, "spring:1:c1", b, strlen (b));
  want = xasprintf ("Ann: " BASE "/s/%s and " BASE "/s/%s. Sent 16:13", t1, t2);
  body = part (&p, "sms.body");
  tap_is (body, want, "sms: short links for the sink's ids; the time in the "
          "customer's zone");
  {
    struct token_short ts;
    const char *at = body ? strstr (body, BASE "/s/") : NULL;
    char *tok = at ? xstrndup (at + strlen (BASE "/s/"),
                               strcspn (at + strlen (BASE "/s/"), " "))
                   : NULL;
    tap_ok (tok && token_short_read (tok, &ts) == 0 && ts.id == 41
            && token_short_verify (&tk, &ts, "spring:1:c1", a, strlen (a)) == 0
            && token_short_verify (&tk, &ts, "spring:1:c1", b, strlen (b)) < 0,
            "sms: the first token reads as link 41 and verifies for its URL "
            "only");
    free (tok);
  }
  free (want);
  free (t1);
  free (t2);
  json_decref (p.parts);
  free (p.render_error);
  sink_clear (&s);

  /* The second link cannot be recorded: the customer is not planned. */
  s.fail_at = 2;
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (c, "sms");
  rc = render_parts (&r, bob, "sms", NULL, "spring:1:c2", &links, &p);
  tap_ok (rc == PLAN_STORE_ERROR, "sms: a sink failure is PLAN_STORE_ERROR "
          "(%d)", rc);
  path = xasprintf ("%s/tpl/sms.body.liquid: cannot record its short links: "
                    "disk I/O error (call 2)", dir);
  tap_is (p.render_error, path, "sms: render_error names the template and "
          "says what the sink said");
  tap_ok (s.calls == 2 && part (&p, "sms.body") == NULL,
          "sms: rendering stopped there, no sms.body kept");
  free (path);
  json_decref (p.parts);
  free (p.render_error);
  sink_clear (&s);
  run_clear (&r);

  /* The first: the same, at the first URL. */
  run_init (&r, gw, c);
  s.fail_at = 1;
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (c, "sms");
  rc = render_parts (&r, bob, "sms", NULL, "spring:1:c2", &links, &p);
  tap_ok (rc == PLAN_STORE_ERROR && s.calls == 1 && p.render_error
          && strstr (p.render_error, "disk I/O error (call 1)"),
          "sms: a failure at the first link too");
  json_decref (p.parts);
  free (p.render_error);
  sink_clear (&s);
  run_clear (&r);

  /* A channel without track_links: the URLs stay, nothing recorded; Bob
   * has no zone and the campaign none: UTC. */
  run_init (&r, gw, plain);
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (plain, "sms");
  rc = render_parts (&r, bob, "sms", NULL, "plain:1:c2", &links, &p);
  tap_is (part (&p, "sms.body"), "Bobby: https://shop.example/a?x=1 and "
          "https://shop.example/b. Sent 14:13",
          "sms: no track_links: URLs kept, the time in UTC");
  tap_ok (rc == 0 && s.calls == 0, "sms: no track_links: the sink is not "
          "called");
  tap_is (part (&p, "_to_name"), "Bob B", "sms: _to_name from name");
  json_decref (p.parts);
  free (p.render_error);
  run_clear (&r);
  token_key_free (&tk);
  json_decref (ann);
  json_decref (bob);
}

static void
test_liquid (struct gateway *gw, struct campaign *c)
{
  struct run r;
  struct plan p;
  struct sink s;
  struct link_sink links = { sink_record, &s };
  json_t *ann = customer (ANN), *bob = customer (BOB), *ctx;
  char *want;
  int rc;

  memset (&s, 0, sizeof s);
  run_init (&r, gw, c);
  r.event = json_pack ("{s:s}", "type", "cart_abandoned");
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (c, "webhook");
  rc = render_parts (&r, ann, "webhook", NULL, "spring:1:c1", &links, &p);
  tap_is (part (&p, "webhook.body"),
          "{\"id\": \"spring:1:c1\", \"channel\": \"webhook\", "
          "\"event\": \"cart_abandoned\", \"email\": \"ann@example.com\", "
          "\"orders\": 3}",
          "liquid: message.*, event.*, customer.email and an attribute");
  tap_ok (rc == 0 && !p.render_error && !json_object_get (p.parts,
                                                          "_unsubscribe_url"),
          "liquid: a webhook that does not show unsubscribe_url has none");
  json_decref (p.parts);
  free (p.render_error);

  /* Bob has no orders: "orders": } is no JSON. */
  memset (&p, 0, sizeof p);
  p.cidx = channel_of (c, "webhook");
  rc = render_parts (&r, bob, "webhook", NULL, "spring:1:c2", &links, &p);
  want = xasprintf ("%s/tpl/webhook.body.liquid: rendered text is not valid "
                    "JSON (line 1, column ", dir);
  tap_ok (rc == -1 && p.render_error
          && strncmp (p.render_error, want, strlen (want)) == 0,
          "liquid: invalid JSON is a render error naming the template (%s)",
          p.render_error ? p.render_error : "none");
  free (want);
  json_decref (p.parts);
  free (p.render_error);

  ctx = render_context (&r, ann);
  tap_ok (json_is_string (json_object_get (json_object_get (ctx, "customer"),
                                           "tier"))
          && strcmp (json_string_value (json_object_get (
                       json_object_get (ctx, "customer"), "id")), "c1") == 0
          && strcmp (json_string_value (json_object_get (
                       json_object_get (ctx, "campaign"), "name")),
                     "Spring sale") == 0
          && json_object_get (ctx, "event") == r.event,
          "liquid: render_context has customer.*, campaign.*, event");
  json_decref (ctx);
  tap_is (customer_zone (&r, ann), "Europe/Paris", "liquid: Ann's zone");
  run_clear (&r);
  json_decref (ann);
  json_decref (bob);
}

int
main (void)
{
  struct gateway *gw;
  struct campaign *c, *plain;
  char path[512], err[1024];

  make_fixture ();
  snprintf (path, sizeof path, "%s/herald.ini", dir);
  gw = config_gateway_load (path, err, sizeof err);
  if (!gw) {
    printf ("Bail out! %s\n", err);
    return 1;
  }
  c = load_campaign ("spring.ini", gw);
  plain = load_campaign ("plain.ini", gw);

  test_unsubscribe (gw, c);
  test_email (gw, c, plain);
  test_sms (gw, c, plain);
  test_liquid (gw, c);

  campaign_free (plain);
  campaign_free (c);
  config_gateway_free (gw);
  return tap_done ();
}
