/* test-router: the router as a pure function, table-driven.
 * Each row is (policy INI, customer, channel state, history, now) and the
 * decision it must give; then the policy parser, the stable assignment,
 * quiet hours across DST and the uplift interval. */
#include <config.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "util.h"
#include "../tap.h"

#define NOW "2026-06-15T12:00:00Z"     /* a Monday, summer time in Europe */

static int64_t
ts (const char *s)
{
  int64_t t = 0;

  if (parse_rfc3339 (s, &t) < 0) {
    fprintf (stderr, "bad time '%s'\n", s);
    abort ();
  }
  return t;
}

/* A policy from INI text ("[section]" lines and "key = value" lines).
 * Returns NULL when a line or policy_finish fails, with ERR set. */
static struct policy *
mkpolicy (const char *ini, char *err, size_t errlen)
{
  struct policy *p = policy_new ();
  char section[64] = "campaign", line[256], *k, *v, *e;
  const char *s = ini, *nl;
  size_t len;
  int rc;

  while (s && *s) {
    nl = strchr (s, '\n');
    len = nl ? (size_t) (nl - s) : strlen (s);
    if (len >= sizeof line)
      len = sizeof line - 1;
    memcpy (line, s, len);
    line[len] = '\0';
    s = nl ? nl + 1 : NULL;
    k = line;
    while (isspace ((unsigned char) *k))
      k++;
    if (!*k)
      continue;
    if (*k == '[') {
      e = strchr (k, ']');
      if (e)
        *e = '\0';
      strlcpy_ (section, k + 1, sizeof section);
      continue;
    }
    v = strchr (k, '=');
    if (!v)
      continue;
    *v++ = '\0';
    for (e = v - 2; e >= k && isspace ((unsigned char) *e); e--)
      *e = '\0';
    while (isspace ((unsigned char) *v))
      v++;
    rc = policy_set (p, section, k, v, err, errlen);
    if (rc != 0) {
      if (rc == -2)
        snprintf (err, errlen, "unknown [%.60s] %.60s", section, k);
      policy_free (p);
      return NULL;
    }
  }
  if (policy_finish (p, err, errlen) < 0) {
    policy_free (p);
    return NULL;
  }
  return p;
}

/* Channel state: "email sms:U push:Cn2" = name[:flags], flags
 * T no templates, A no address, C consent refused, U consent unknown,
 * S suppressed, F failed, nN sent N in the cap window, rX population rate. */
static size_t
mkchannels (const char *spec, struct router_channel *ch, char names[][32])
{
  size_t n = 0, len;
  const char *s = spec, *e, *colon;
  char *end;

  while (s && *s) {
    while (*s == ' ')
      s++;
    if (!*s)
      break;
    e = strchr (s, ' ');
    if (!e)
      e = s + strlen (s);
    colon = memchr (s, ':', (size_t) (e - s));
    len = (size_t) ((colon ? colon : e) - s);
    memcpy (names[n], s, len);
    names[n][len] = '\0';
    memset (&ch[n], 0, sizeof ch[n]);
    ch[n].name = names[n];
    ch[n].templates = 1;
    ch[n].has_address = 1;
    ch[n].consent = 1;
    ch[n].population_rate = -1;
    for (s = colon ? colon + 1 : e; s < e; s++)
      switch (*s) {
      case 'T': ch[n].templates = 0; break;
      case 'A': ch[n].has_address = 0; break;
      case 'C': ch[n].consent = 0; break;
      case 'U': ch[n].consent = -1; break;
      case 'S': ch[n].suppressed = 1; break;
      case 'F': ch[n].failed = 1; break;
      case 'n': ch[n].sent = strtol (s + 1, &end, 10); s = end - 1; break;
      case 'r': ch[n].population_rate = strtod (s + 1, &end); s = end - 1;
        break;
      default: abort ();
      }
    n++;
    s = e;
  }
  return n;
}

/* History: "10x email sent 5d; sms clicked 2h!" = [COUNTx] channel type
 * age (s m h d), '!' for an event about a Herald message. */
static size_t
mkevents (const char *spec, int64_t now, struct router_event *ev,
          char chans[][16], char types[][16], size_t max)
{
  size_t n = 0;
  const char *s = spec;
  char item[64], ch[16], ty[16], age[16];
  long count, i;
  int64_t secs;
  size_t len;
  char *bang;

  while (s && *s) {
    const char *semi = strchr (s, ';');
    len = semi ? (size_t) (semi - s) : strlen (s);
    if (len >= sizeof item)
      abort ();
    memcpy (item, s, len);
    item[len] = '\0';
    s = semi ? semi + 1 : NULL;
    count = 1;
    if (sscanf (item, " %ldx %15s %15s %15s", &count, ch, ty, age) != 4
        && sscanf (item, " %15s %15s %15s", ch, ty, age) != 3)
      continue;
    bang = strchr (age, '!');
    if (bang)
      *bang = '\0';
    if (age[0] == '-') {
      if (parse_duration (age + 1, &secs) < 0)
        abort ();
      secs = -secs;
    } else if (parse_duration (age, &secs) < 0)
      abort ();
    for (i = 0; i < count && n < max; i++, n++) {
      strlcpy_ (chans[n], ch, 16);
      strlcpy_ (types[n], ty, 16);
      ev[n].channel = chans[n];
      ev[n].type = types[n];
      ev[n].at = now - secs;
      ev[n].herald_message = bang != NULL;
    }
  }
  return n;
}

struct rcase {
  const char *name;
  const char *ini;
  const char *customer;      /* JSON, or NULL */
  const char *channels;
  const char *events;
  long sent_all;
  const char *now;           /* NULL: NOW */
  enum router_outcome outcome;
  const char *what;          /* SEND/DEFER/HOLD: channel; SKIP: reason */
  const char *fallback;      /* comma-joined, or NULL: not checked */
  const char *until;         /* DEFER */
  const char *trace;         /* a substring of the trace, or NULL */
  const char *shifted;       /* NULL: must be NULL */
};

#define CH3 "[campaign]\nchannels = email, sms, push\n"
#define ENG "[campaign]\npolicy = engagement\nchannels = email, sms\n"
#define PARIS "{\"timezone\": \"Europe/Paris\"}"
#define NY "{\"timezone\": \"America/New_York\"}"
#define QSMS CH3 "[quiet_hours]\nsms = 21:00-08:00\n"
#define QGAP CH3 "[quiet_hours]\nsms = 22:00-02:30\n"
#define PREF_SMS "{\"preferred_channels\": [\"sms\"]}"
#define PREF_EMAIL "{\"preferred_channels\": [\"email\", \"sms\"]}"

static const struct rcase cases[] = {
  /* ---- preference and eligibility ---- */
  { "campaign order without preferences", CH3, NULL, "email sms push", "",
    0, NULL, ROUTER_SEND, "email", "sms,push", NULL,
    "email: campaign order > sms > push", NULL },
  { "customer's first preference", CH3, PREF_SMS, "email sms push", "",
    0, NULL, ROUTER_SEND, "sms", "email,push", NULL,
    "sms: customer preference", NULL },
  { "first usable preference", CH3,
    "{\"preferred_channels\": [\"push\", \"sms\"]}", "email sms push:C", "",
    0, NULL, ROUTER_SEND, "sms", "email", NULL,
    "sms: customer preference > email; push: no consent", NULL },
  { "preference not allowed by the campaign is ignored",
    "[campaign]\nchannels = email, sms\n",
    "{\"preferred_channels\": [\"push\"]}", "email sms push", "",
    0, NULL, ROUTER_SEND, "email", "sms", NULL, "campaign order", NULL },
  { "input channel outside the campaign is ignored",
    "[campaign]\nchannels = sms\n", NULL, "email sms:A", "",
    0, NULL, ROUTER_SKIP, ROUTER_NO_ADDRESS, NULL, NULL,
    "skip no_address; sms: no address", NULL },
  { "no consent recorded = no consent", CH3, NULL, "email:U sms push", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, "email: no consent", NULL },
  { "implied consent per channel ([consent])",
    CH3 "[consent]\nemail = implied\n", NULL, "email:U sms push", "",
    0, NULL, ROUTER_SEND, "email", "sms,push", NULL, NULL, NULL },
  { "implied consent list ([campaign] implied_consent)",
    CH3 "implied_consent = sms, push\n", NULL, "email:U sms:U push:U", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, "email: no consent", NULL },
  { "implied consent list ([consent] implied)",
    CH3 "[consent]\nimplied = push\n", NULL, "email:U sms:U push:U", "",
    0, NULL, ROUTER_SEND, "push", "", NULL, NULL, NULL },
  { "a variant with a deferral",
    QSMS "[variant.A]\nweight = 1\n", PARIS, "sms", "", 0,
    "2026-06-15T20:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-06-16T06:00:00Z", "; variant A; quiet hours 21:00-08:00",
    NULL },
  { "implied consent for all ([campaign] consent)",
    CH3 "consent = implied\n", NULL, "email:U sms:U push:U", "",
    0, NULL, ROUTER_SEND, "email", "sms,push", NULL, NULL, NULL },
  { "a recorded refusal beats implied consent",
    CH3 "consent = implied\n", NULL, "email:C sms:U push:U", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, "email: no consent", NULL },
  { "channel-level explicit beats campaign implied",
    CH3 "consent = implied\n[consent]\nemail = explicit\n", NULL,
    "email:U sms:U push:U", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, NULL, NULL },
  { "no templates for a channel", CH3, NULL, "email:T sms push", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, "email: no templates", NULL },
  { "channel absent from the input", CH3, NULL, "sms push", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, "email: no templates", NULL },
  { "suppressed address", CH3, NULL, "email:S sms push", "",
    0, NULL, ROUTER_SEND, "sms", "push", NULL, "email: suppressed", NULL },
  { "permanent failure falls back to the next best", CH3, PREF_SMS,
    "email sms:F push", "", 0, NULL, ROUTER_SEND, "email", "push", NULL,
    "sms: failed permanently", NULL },
  { "no address anywhere", CH3, NULL, "email:A sms:A push:A", "",
    0, NULL, ROUTER_SKIP, ROUTER_NO_ADDRESS, "", NULL,
    "skip no_address", NULL },
  { "no consent anywhere", CH3, NULL, "email:C sms:U push:C", "",
    0, NULL, ROUTER_SKIP, ROUTER_NO_CONSENT, "", NULL, NULL, NULL },
  { "suppressed everywhere", CH3, NULL, "email:S sms:S push:S", "",
    0, NULL, ROUTER_SKIP, ROUTER_SUPPRESSED, NULL, NULL, NULL, NULL },
  { "mixed exclusions", CH3, NULL, "email:A sms:C push:S", "",
    0, NULL, ROUTER_SKIP, ROUTER_NO_USABLE_CHANNEL, NULL, NULL,
    "skip no_usable_channel; email: no address; sms: no consent; "
    "push: suppressed", NULL },
  { "no templates anywhere", CH3, NULL, "email:T sms:T push:T", "",
    0, NULL, ROUTER_SKIP, ROUTER_NO_USABLE_CHANNEL, NULL, NULL, NULL, NULL },
  { "no channel in the input", CH3, NULL, "", "",
    0, NULL, ROUTER_SKIP, ROUTER_NO_USABLE_CHANNEL, NULL, NULL, NULL, NULL },
  { "campaign without channels allows the input's",
    "[campaign]\npolicy = preference\n", NULL, "sms email", "",
    0, NULL, ROUTER_SEND, "sms", "email", NULL, NULL, NULL },

  /* ---- caps ---- */
  { "cap not reached (1 of 2)", CH3 "[caps]\nemail = 2/7d\n", NULL,
    "email:n1 sms push", "", 0, NULL, ROUTER_SEND, "email", "sms,push",
    NULL, NULL, NULL },
  { "cap exactly reached shifts", CH3 "[caps]\nemail = 2/7d\n", NULL,
    "email:n2 sms push", "", 0, NULL, ROUTER_SEND, "sms", "push", NULL,
    "sms: campaign order > push; email: capped 2/7d; shifted from email",
    "email" },
  { "on_cap = skip", CH3 "[caps]\nemail = 2/7d\non_cap = skip\n", NULL,
    "email:n2 sms push", "", 0, NULL, ROUTER_SKIP, ROUTER_CAPPED, NULL, NULL,
    "skip capped (on_cap = skip): email capped 2/7d", NULL },
  { "on_cap = skip, capped channel not the best",
    CH3 "[caps]\nsms = 1/24h\non_cap = skip\n", NULL, "email sms:n1 push",
    "", 0, NULL, ROUTER_SEND, "email", "push", NULL, "sms: capped 1/24h",
    NULL },
  { "total cap reached", CH3 "[caps]\nall = 3/7d\n", NULL, "email sms push",
    "", 3, NULL, ROUTER_SKIP, ROUTER_CAPPED, NULL, NULL,
    "email: capped all 3/7d", NULL },
  { "total cap not reached", CH3 "[caps]\nall = 3/7d\n", NULL,
    "email sms push", "", 2, NULL, ROUTER_SEND, "email", NULL, NULL, NULL,
    NULL },
  { "capped everywhere", CH3 "[caps]\nemail = 2/7d\nsms = 1/24h\n"
    "push = 1/1d\n", NULL, "email:n2 sms:n1 push:n5", "", 0, NULL,
    ROUTER_SKIP, ROUTER_CAPPED, NULL, NULL, NULL, NULL },
  { "capped beats other exclusions as the reason",
    CH3 "[caps]\nemail = 2/7d\n", NULL, "email:n2 sms:C push:A", "",
    0, NULL, ROUTER_SKIP, ROUTER_CAPPED, NULL, NULL, NULL, NULL },
  { "zero cap", CH3 "[caps]\nemail = 0/7d\n", NULL, "email sms", "",
    0, NULL, ROUTER_SEND, "sms", NULL, NULL, NULL, "email" },

  /* ---- quiet hours ---- */
  { "inside quiet hours: deferred, same channel", QSMS,
    "{\"preferred_channels\": [\"sms\"], \"timezone\": \"Europe/Paris\"}",
    "email sms push", "", 0, "2026-06-15T20:00:00Z", ROUTER_DEFER, "sms",
    "email,push", "2026-06-16T06:00:00Z",
    "quiet hours 21:00-08:00 Europe/Paris: deferred to 2026-06-16T06:00:00Z",
    NULL },
  { "no zone: customer zone from JSON, Paris morning",
    QSMS, "{\"preferred_channels\": [\"sms\"], \"timezone\": \"Europe/Paris\"}",
    "sms", "", 0, "2026-06-15T05:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-06-15T06:00:00Z", NULL, NULL },
  { "exactly at the end of quiet hours: send",
    QSMS, "{\"preferred_channels\": [\"sms\"], \"timezone\": \"Europe/Paris\"}",
    "sms", "", 0, "2026-06-15T06:00:00Z", ROUTER_SEND, "sms", NULL, NULL,
    NULL, NULL },
  { "exactly at the start of quiet hours: deferred",
    QSMS, "{\"timezone\": \"Europe/Paris\"}", "sms", "", 0,
    "2026-06-15T19:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-06-16T06:00:00Z", NULL, NULL },
  { "a minute before quiet hours: send",
    QSMS, "{\"timezone\": \"Europe/Paris\"}", "sms", "", 0,
    "2026-06-15T18:59:00Z", ROUTER_SEND, "sms", NULL, NULL, NULL, NULL },
  { "quiet hours of another channel do not matter", QSMS, PARIS,
    "email sms", "", 0, "2026-06-15T20:00:00Z", ROUTER_SEND, "email", NULL,
    NULL, NULL, NULL },
  { "unknown customer zone: the campaign's zone",
    QSMS "timezone = America/New_York\n", "{\"timezone\": \"Mars/Olympus\"}",
    "sms", "", 0, "2026-06-15T02:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-06-15T12:00:00Z", "America/New_York", NULL },
  { "no zone at all: UTC", QSMS, NULL, "sms", "", 0,
    "2026-06-15T22:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-06-16T08:00:00Z", " UTC:", NULL },
  { "window within a day", CH3 "[quiet_hours]\nall = 12:00-14:00\n", NULL,
    "email", "", 0, "2026-06-15T13:59:59Z", ROUTER_DEFER, "email", NULL,
    "2026-06-15T14:00:00Z", NULL, NULL },
  { "window within a day, after it", CH3 "[quiet_hours]\nall = 12:00-14:00\n",
    NULL, "email", "", 0, "2026-06-15T14:00:00Z", ROUTER_SEND, "email",
    NULL, NULL, NULL, NULL },
  { "channel line beats all", CH3 "[quiet_hours]\nall = 12:00-14:00\n"
    "email = 01:00-02:00\n", NULL, "email", "", 0, "2026-06-15T12:30:00Z",
    ROUTER_SEND, "email", NULL, NULL, NULL, NULL },
  { "Paris, spring forward night", QSMS, PARIS, "sms", "", 0,
    "2026-03-28T20:30:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-03-29T06:00:00Z", NULL, NULL },
  { "Paris, spring forward night, after the change", QSMS, PARIS, "sms", "",
    0, "2026-03-29T01:30:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-03-29T06:00:00Z", NULL, NULL },
  { "Paris, fall back night", QSMS, PARIS, "sms", "", 0,
    "2026-10-24T20:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-10-25T07:00:00Z", NULL, NULL },
  { "New York, spring forward night", QSMS, NY, "sms", "", 0,
    "2026-03-08T02:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-03-08T12:00:00Z", NULL, NULL },
  { "New York, spring forward, after midnight", QSMS, NY, "sms", "", 0,
    "2026-03-08T06:30:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-03-08T12:00:00Z", NULL, NULL },
  { "New York, fall back night", QSMS, NY, "sms", "", 0,
    "2026-11-01T01:30:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-11-01T13:00:00Z", NULL, NULL },
  { "end inside the spring-forward gap: the change itself", QGAP, PARIS,
    "sms", "", 0, "2026-03-28T22:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-03-29T01:00:00Z", NULL, NULL },
  { "end inside the repeated hour: its first occurrence", QGAP, PARIS,
    "sms", "", 0, "2026-10-24T21:00:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-10-25T00:30:00Z", NULL, NULL },
  { "inside the repeated hour, second pass: end already past", QGAP, PARIS,
    "sms", "", 0, "2026-10-25T01:15:00Z", ROUTER_DEFER, "sms", NULL,
    "2026-10-25T01:30:00Z", NULL, NULL },

  /* ---- engagement ---- */
  { "ignored ten emails, clicked five SMS: SMS", ENG, PREF_EMAIL,
    "email sms", "10x email sent 10d; 5x sms sent 12d; 5x sms clicked 11d",
    0, NULL, ROUTER_SEND, "sms", "email", NULL, "sms: engagement 0.", NULL },
  { "new customer: first preference", ENG, PREF_SMS, "email sms", "",
    0, NULL, ROUTER_SEND, "sms", "email", NULL,
    "sms: no history, customer preference > email", NULL },
  { "new customer without preferences: campaign order", ENG, NULL,
    "email sms", "", 0, NULL, ROUTER_SEND, "email", "sms", NULL,
    "no history, campaign order", NULL },
  { "population rates do not move a new customer", ENG, NULL,
    "email:r0.01 sms:r0.5", "", 0, NULL, ROUTER_SEND, "email", NULL, NULL,
    NULL, NULL },
  { "tie: preference order", ENG, PREF_SMS, "email sms",
    "3x email sent 5d; 3x sms sent 5d; email clicked 4d; sms clicked 4d",
    0, NULL, ROUTER_SEND, "sms", "email", NULL, "(tie: preference order)",
    NULL },
  { "opens count half: 4 opens tie 2 clicks", ENG, PREF_SMS, "email sms",
    "4x email sent 5d; 4x sms sent 5d; 4x email opened 4d; 2x sms clicked 4d",
    0, NULL, ROUTER_SEND, "sms", NULL, NULL, "= email", NULL },
  { "conversions count double", ENG, PREF_SMS, "email sms",
    "2x email sent 5d; 2x sms sent 5d; email converted 4d; sms clicked 4d",
    0, NULL, ROUTER_SEND, "email", NULL, NULL, NULL, NULL },
  { "weights are configurable", ENG "[engagement]\nopen = 3\n", PREF_SMS,
    "email sms",
    "2x email sent 5d; 2x sms sent 5d; email opened 4d; 2x sms clicked 4d",
    0, NULL, ROUTER_SEND, "email", NULL, NULL, NULL, NULL },
  { "recent beats old (half-life)", ENG, PREF_EMAIL, "email sms",
    "3x email sent 60d; 3x email clicked 60d; 3x sms sent 1d; "
    "3x sms clicked 1d", 0, NULL, ROUTER_SEND, "sms", NULL, NULL, NULL, NULL },
  { "outside the window: no history", ENG, PREF_SMS, "email sms",
    "5x email sent 91d; 5x email clicked 91d", 0, NULL, ROUTER_SEND, "sms",
    NULL, NULL, "no history", NULL },
  { "a longer window sees it", ENG "[engagement]\nwindow = 120d\n", PREF_SMS,
    "email sms", "5x email sent 91d; 5x email clicked 91d", 0, NULL,
    ROUTER_SEND, "email", NULL, NULL, NULL, NULL },
  { "future events are ignored", ENG, PREF_SMS, "email sms",
    "5x email clicked -2d", 0, NULL, ROUTER_SEND, "sms", NULL, NULL,
    "no history", NULL },
  { "imported deliveries count as sends", ENG, PREF_EMAIL, "email sms",
    "20x email delivered 20d; 2x email clicked 20d; sms sent 1d; "
    "sms clicked 1d", 0, NULL, ROUTER_SEND, "sms", NULL, NULL, NULL, NULL },
  { "receipts of Herald's sends do not count twice", ENG, PREF_SMS,
    "email sms", "2x email sent 20d; 20x email delivered 20d!; "
    "2x email clicked 20d; sms sent 1d; sms clicked 1d", 0, NULL,
    ROUTER_SEND, "email", NULL, NULL, NULL, NULL },
  { "one ignored email, high email population rate: email", ENG, PREF_SMS,
    "email:r0.2 sms:r0.01", "email sent 1d", 0, NULL, ROUTER_SEND, "email",
    NULL, NULL, "email: engagement 0.17 > sms 0.01", NULL },
  { "one ignored email, unknown rates: the other channel", ENG, PREF_EMAIL,
    "email sms", "email sent 1d", 0, NULL, ROUTER_SEND, "sms", NULL, NULL,
    "sms: engagement 0.05 > email 0.04", NULL },
  { "best channel capped: the next best, scores traced",
    ENG "[caps]\nsms = 1/24h\n", PREF_EMAIL, "email sms:n1",
    "5x sms sent 2d; 5x sms clicked 2d", 0, NULL, ROUTER_SEND, "email", "",
    NULL, "sms: capped 1/24h (engagement 0.", "sms" },
  { "events on unusable channels are not history", ENG, PREF_SMS,
    "email sms push:C", "5x push sent 2d; 5x push clicked 2d", 0, NULL,
    ROUTER_SEND, "sms", NULL, NULL, "no history", NULL },

  /* ---- holdout and variants ---- */
  { "everyone held out", CH3 "[holdout]\npercent = 100\n", NULL,
    "email sms", "", 0, NULL, ROUTER_HOLD, "email", NULL, NULL,
    "held out (holdout 100%)", NULL },
  { "skipped customers are not held out", CH3 "[holdout]\npercent = 100\n",
    NULL, "email:C sms:C", "", 0, NULL, ROUTER_SKIP, ROUTER_NO_CONSENT, NULL,
    NULL, NULL, NULL },
  { "held out rather than deferred", QSMS "[holdout]\npercent = 100\n",
    PARIS, "sms", "", 0, "2026-06-15T20:00:00Z", ROUTER_HOLD, "sms", NULL,
    NULL, NULL, NULL },
  { "a single variant", CH3 "[variant.only]\nweight = 1\n"
    "templates = tpl/only\n", NULL, "email", "", 0, NULL, ROUTER_SEND,
    "email", NULL, NULL, "; variant only", NULL },
};

static void
join (const struct router_decision *d, char *buf, size_t len)
{
  size_t i;

  buf[0] = '\0';
  for (i = 0; i < d->n_fallback; i++) {
    if (i)
      strncat (buf, ",", len - strlen (buf) - 1);
    strncat (buf, d->fallback[i], len - strlen (buf) - 1);
  }
}


static void
run_case (const struct rcase *c)
{
  char err[256] = "", names[ROUTER_MAX_CHANNELS][32], fb[256];
  static char evch[512][16], evty[512][16];
  static struct router_event ev[512];
  struct router_channel ch[ROUTER_MAX_CHANNELS];
  struct router_input in;
  struct router_decision d, d2;
  struct policy *p = mkpolicy (c->ini, err, sizeof err);
  json_t *cust = NULL;
  json_error_t jerr;
  int64_t now = ts (c->now ? c->now : NOW);
  const char *what;
  int ok;

  if (!p) {
    tap_ok (0, "%s: policy: %s", c->name, err);
    return;
  }
  if (c->customer) {
    cust = json_loads (c->customer, 0, &jerr);
    if (!cust)
      abort ();
  }
  memset (&in, 0, sizeof in);
  in.campaign_id = "spring";
  in.customer_id = "c42";
  in.customer = cust;
  in.channels = ch;
  in.n_channels = mkchannels (c->channels, ch, names);
  in.sent_all = c->sent_all;
  in.events = ev;
  in.n_events = mkevents (c->events, now, ev, evch, evty, 512);

  ok = router_decide (p, &in, now, &d) == 0;
  what = d.outcome == ROUTER_SKIP ? d.reason : d.channel;
  ok = ok && d.outcome == c->outcome && what && strcmp (what, c->what) == 0;
  join (&d, fb, sizeof fb);
  if (c->fallback)
    ok = ok && strcmp (fb, c->fallback) == 0;
  if (c->outcome == ROUTER_DEFER)
    ok = ok && d.until == ts (c->until);
  if (c->trace)
    ok = ok && strstr (d.trace, c->trace) != NULL;
  ok = ok && ((!c->shifted && !d.shifted_from)
              || (c->shifted && d.shifted_from
                  && strcmp (c->shifted, d.shifted_from) == 0));
  if (c->outcome == ROUTER_HOLD)
    ok = ok && d.reason && strcmp (d.reason, ROUTER_HELD_OUT) == 0;
  /* Deterministic: the same input and now give the same decision. */
  router_decide (p, &in, now, &d2);
  ok = ok && memcmp (&d, &d2, sizeof d) == 0;
  if (!tap_ok (ok, "%s", c->name)) {
    printf ("#   outcome %s %s, fallback '%s', until %lld, shifted %s\n",
            router_outcome_name (d.outcome), what ? what : "(null)", fb,
            (long long) d.until, d.shifted_from ? d.shifted_from : "-");
    printf ("#   trace: %s\n", d.trace);
  }
  json_decref (cust);
  policy_free (p);
}

/* ---- the parser ---------------------------------------------------------- */

struct pcase {
  const char *section, *key, *value;
  int rc;
  const char *err;           /* exact message for rc -1 */
};

static const struct pcase pcases[] = {
  { "campaign", "policy", "engagement", 0, NULL },
  { "campaign", "policy", "random", -1,
    "'random' is not preference or engagement" },
  { "campaign", "channels", "email,,sms push", 0, NULL },
  { "campaign", "channels", "email, email", -1, "'email' is listed twice" },
  { "campaign", "channels", "e/mail", -1, "'e/mail' is not a channel name" },
  { "campaign", "channels", " , ", -1, "no channel listed" },
  { "campaign", "consent", "maybe", -1, "'maybe' is not implied or explicit" },
  { "campaign", "segment", "x", -2, NULL },
  { "consent", "sms", "implied", 0, NULL },
  { "consent", "sms", "yes", -1, "'yes' is not implied or explicit" },
  { "caps", "email", "2/7d", 0, NULL },
  { "caps", "email", "1/24h", 0, NULL },
  { "caps", "email", "2/7x", -1, "'2/7x' is not N/PERIOD (e.g. 2/7d)" },
  { "caps", "email", "2", -1, "'2' is not N/PERIOD (e.g. 2/7d)" },
  { "caps", "email", "-1/7d", -1, "'-1/7d' is not N/PERIOD (e.g. 2/7d)" },
  { "caps", "email", "2/0d", -1, "'2/0d' is not N/PERIOD (e.g. 2/7d)" },
  { "caps", "all", "3/7d", 0, NULL },
  { "caps", "on_cap", "shift", 0, NULL },
  { "caps", "on_cap", "drop", -1, "'drop' is not shift or skip" },
  { "caps", "e mail", "2/7d", -2, NULL },
  { "quiet_hours", "sms", "21:00-08:00", 0, NULL },
  { "quiet_hours", "sms", "9:30-17:00", 0, NULL },
  { "quiet_hours", "sms", "21:00-24:00", -1,
    "'21:00-24:00' is not HH:MM-HH:MM (e.g. 21:00-08:00)" },
  { "quiet_hours", "sms", "21-08", -1,
    "'21-08' is not HH:MM-HH:MM (e.g. 21:00-08:00)" },
  { "quiet_hours", "sms", "08:00-08:00", -1, "'08:00-08:00' is an empty window" },
  { "quiet_hours", "timezone", "Europe/Paris", 0, NULL },
  { "quiet_hours", "timezone", "Europe/Atlantis", -1,
    "'Europe/Atlantis' is not an IANA time zone" },
  { "holdout", "percent", "10", 0, NULL },
  { "holdout", "percent", "2.5", 0, NULL },
  { "holdout", "percent", "100", 0, NULL },
  { "holdout", "percent", "100.5", -1, "'100.5' is not a percentage 0..100" },
  { "holdout", "percent", "1.234", -1, "'1.234' is not a percentage 0..100" },
  { "holdout", "percent", "-1", -1, "'-1' is not a percentage 0..100" },
  { "holdout", "percent", "10%", -1, "'10%' is not a percentage 0..100" },
  { "holdout", "size", "10", -2, NULL },
  { "engagement", "half_life", "30d", 0, NULL },
  { "engagement", "half_life", "0d", -1, "'0d' is not a duration (e.g. 30d)" },
  { "engagement", "window", "soon", -1, "'soon' is not a duration (e.g. 30d)" },
  { "engagement", "click", "1", 0, NULL },
  { "engagement", "open", "0.5", 0, NULL },
  { "engagement", "open", "1e3", -1, "'1e3' is not a number >= 0" },
  { "engagement", "convert", "nan", -1, "'nan' is not a number >= 0" },
  { "engagement", "prior_rate", "0.1", 0, NULL },
  { "engagement", "bounce", "1", -2, NULL },
  { "variant.A", "weight", "3", 0, NULL },
  { "variant.A", "weight", "-3", -1, "'-3' is not a whole number 0..1000000" },
  { "variant.A", "templates", "tpl/a", 0, NULL },
  { "variant.A", "subject", "x", -2, NULL },
  { "variant.", "weight", "1", -1, "'' is not a variant name" },
  { "trigger", "on", "x", -2, NULL },
};

/* policy_free as a tap_returns callback. */
static void
call_policy_free (void *p)
{
  policy_free (p);
}

static void
test_parser (void)
{
  size_t i;
  char err[256];
  struct policy *p;
  int rc;
  long n;
  int64_t period;

  for (i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
    const struct pcase *c = &pcases[i];
    p = policy_new ();
    strlcpy_ (err, "untouched", sizeof err);
    rc = policy_set (p, c->section, c->key, c->value, err, sizeof err);
    if (c->rc == -1)
      tap_ok (rc == -1 && strcmp (err, c->err) == 0,
              "[%s] %s = %s: %s (got %d '%s')", c->section, c->key, c->value,
              c->err, rc, err);
    else
      tap_ok (rc == c->rc && (rc != -2 || strcmp (err, "untouched") == 0),
              "[%s] %s = %s: %d (got %d '%s')", c->section, c->key,
              c->value, c->rc, rc, rc ? err : "");
    policy_free (p);
  }

  /* Cross-checks in policy_finish. */
  p = mkpolicy ("[variant.A]\nweight = 0\n[variant.B]\nweight = 0\n", err,
                sizeof err);
  tap_ok (!p && strstr (err, "weights sum to 0"), "zero total weight: %s",
          err);
  policy_free (p);
  p = mkpolicy ("[campaign]\nchannels = email\n[caps]\nemial = 2/7d\n", err,
                sizeof err);
  tap_is (p ? "" : err, "channel 'emial' is named in [caps] but not in "
          "[campaign] channels", "typo in [caps] caught");
  policy_free (p);
  p = mkpolicy ("[caps]\nsms = 1/24h\n[campaign]\nchannels = email, sms\n",
                err, sizeof err);
  tap_ok (p && p->n_allowed == 2 && strcmp (p->ch[1].name, "sms") == 0
          && p->ch[1].cap_period == 86400,
          "[caps] before channels keeps the cap");
  tap_ok (p && policy_cap (p, "sms", &n, &period) == 1 && n == 1
          && period == 86400, "policy_cap for a capped channel");
  tap_ok (p && policy_cap (p, "email", &n, &period) == 0,
          "policy_cap for an uncapped channel");
  tap_ok (p && policy_cap (p, NULL, &n, &period) == 0, "no total cap");
  policy_free (p);
  p = mkpolicy ("[caps]\nall = 3/7d\n", err, sizeof err);
  tap_ok (p && policy_cap (p, NULL, &n, &period) == 1 && n == 3
          && period == 7 * 86400, "policy_cap for all");
  policy_free (p);
  p = policy_new ();
  tap_ok (p->kind == POLICY_PREFERENCE && p->on_cap == POLICY_CAP_SHIFT
          && p->half_life == 30 * 86400 && p->window == 90 * 86400
          && p->w_click == 1 && p->w_reply == 1 && p->w_open == 0.5
          && p->w_convert == 2 && p->holdout_percent == 0, "defaults");
  tap_ok (fabs (router_population_rate (p, 100, 10, 5, 1, 2) - 0.15) < 1e-12,
          "population rate: (0.5*10 + 5 + 1 + 2*2) / 100");
  tap_ok (router_population_rate (p, 0, 1, 1, 1, 1) < 0,
          "population rate without sends is unknown");
  policy_free (p);
  tap_ok (tap_returns (call_policy_free, NULL), "policy_free (NULL) is a no-op");
}

/* ---- variants and holdout ---------------------------------------------- */

static void
test_assignment (void)
{
  char err[256], id[32];
  struct policy *p, *q, *r;
  const char *v, *w;
  int i, held = 0, b = 0, same = 1, stable = 1, reorder = 1, h1, h2;

  p = mkpolicy ("[variant.A]\nweight = 1\n[variant.B]\nweight = 3\n"
                "[holdout]\npercent = 10\n", err, sizeof err);
  q = mkpolicy ("[variant.B]\nweight = 3\n[variant.A]\nweight = 1\n"
                "[holdout]\npercent = 20\n", err, sizeof err);
  r = mkpolicy ("[variant.B]\nweight = 3\n[variant.A]\nweight = 1\n"
                "[holdout]\npercent = 10\n", err, sizeof err);
  if (!p || !q || !r)
    abort ();
  for (i = 0; i < 20000; i++) {
    snprintf (id, sizeof id, "cust-%d", i);
    h1 = router_assign_variant (p, "spring", id, &v);
    if (h1) {
      held++;
      same = same && v == NULL;
    } else if (strcmp (v, "B") == 0)
      b++;
    h2 = router_assign_variant (p, "spring", id, &w);
    stable = stable && h1 == h2 && v == w;
    /* A bigger holdout only takes customers out; variants stay. */
    h2 = router_assign_variant (q, "spring", id, &w);
    if (!h1 && !h2)
      stable = stable && strcmp (v, w) == 0;
    if (h1)
      stable = stable && h2;
    h2 = router_assign_variant (r, "spring", id, &w);
    reorder = reorder && h1 == h2 && (h1 || strcmp (v, w) == 0);
  }
  tap_ok (held > 1800 && held < 2200, "holdout 10%%: %d of 20000", held);
  tap_ok (same, "held-out customers have no variant");
  tap_ok (b > 0.72 * (20000 - held) && b < 0.78 * (20000 - held),
          "weights 1:3: B got %d of %d", b, 20000 - held);
  tap_ok (stable, "assignment is stable; a larger holdout keeps variants");
  tap_ok (reorder, "section order does not change the assignment");

  /* Different campaigns shuffle differently. */
  for (i = 0, same = 0; i < 1000; i++) {
    snprintf (id, sizeof id, "cust-%d", i);
    router_assign_variant (p, "spring", id, &v);
    router_assign_variant (p, "autumn", id, &w);
    same += v == w;
  }
  tap_ok (same < 800, "another campaign assigns independently (%d/1000)",
          same);
  /* Pinned values: the hash is part of the contract (re-runs, resumes and
   * upgrades must assign the same). */
  {
    static const char *pinned[][2] = {
      { "c1", "B" }, { "c2", "B" }, { "c3", "A" }, { "c4", "A" },
      { "c5", "B" }, { "c8", "-" }, { "c42", "-" },
      { "alice@example.com", "B" },
    };
    for (i = 0, same = 1; i < (int) (sizeof pinned / sizeof pinned[0]); i++) {
      h1 = router_assign_variant (p, "spring", pinned[i][0], &v);
      same = same && strcmp (h1 ? "-" : v, pinned[i][1]) == 0;
    }
    tap_ok (same, "pinned assignments (FNV-1a + splitmix64)");
  }
  policy_free (p);
  policy_free (q);
  policy_free (r);

  p = policy_new ();
  tap_ok (router_assign_variant (p, "spring", "c42", &v) == 0 && v == NULL,
          "no variants, no holdout");
  policy_free (p);
}

/* ---- quiet hours directly, uplift ----------------------------------------- */

static void
test_quiet_and_uplift (void)
{
  char err[256];
  struct policy *p;
  int64_t until = 0;
  double u = 0, lo = 0, hi = 0;
  int rc;

  p = mkpolicy ("[quiet_hours]\nsms = 21:00-08:00\ntimezone = Europe/Paris\n",
                err, sizeof err);
  if (!p)
    abort ();
  tap_ok (router_quiet_until (p, "sms", NULL, ts ("2026-03-28T23:30:00Z"),
                              &until) == 1
          && until == ts ("2026-03-29T06:00:00Z"),
          "default zone when none is given");
  tap_ok (router_quiet_until (p, "email", NULL, ts ("2026-03-28T23:30:00Z"),
                              &until) == 0, "no quiet hours for email");
  tap_ok (router_quiet_until (p, "sms", "Asia/Tokyo",
                              ts ("2026-06-15T13:00:00Z"), &until) == 1
          && until == ts ("2026-06-15T23:00:00Z"),
          "Tokyo 22:00 -> 08:00 next day");
  tap_ok (router_quiet_until (p, "sms", "Australia/Sydney",
                              ts ("2026-04-04T12:00:00Z"), &until) == 1
          && until == ts ("2026-04-04T22:00:00Z"),
          "Sydney DST ends that night: 08:00 AEST");
  policy_free (p);

  rc = router_uplift_ci (20, 100, 10, 100, &u, &lo, &hi);
  tap_ok (rc == 0 && fabs (u - 0.10) < 1e-12 && fabs (lo - 0.002) < 1e-9
          && fabs (hi - 0.198) < 1e-9, "uplift 20%% vs 10%%: 0.10 [0.002, "
          "0.198] (got %f [%f, %f])", u, lo, hi);
  tap_ok (router_uplift_ci (0, 50, 0, 50, &u, &lo, &hi) == 0 && u == 0
          && lo == 0 && hi == 0, "no conversions anywhere: 0 [0, 0]");
  tap_ok (router_uplift_ci (5, 100, 10, 100, &u, &lo, &hi) == 0 && u < 0
          && lo < u && hi > u, "negative uplift");
  tap_ok (router_uplift_ci (1, 10, 0, 0, &u, &lo, &hi) == -1,
          "empty holdout");
  tap_ok (router_uplift_ci (11, 10, 0, 5, &u, &lo, &hi) == -1,
          "more conversions than customers");
}

static void
test_bad_input (void)
{
  struct policy *p = policy_new ();
  struct router_input in;
  struct router_decision d;
  struct router_channel ch[ROUTER_MAX_CHANNELS + 1];

  memset (&in, 0, sizeof in);
  memset (ch, 0, sizeof ch);
  in.channels = ch;
  in.n_channels = ROUTER_MAX_CHANNELS + 1;
  tap_ok (router_decide (p, &in, 0, &d) == -1 && d.outcome == ROUTER_SKIP
          && strstr (d.trace, "too many"), "too many channels: -1");
  tap_ok (router_decide (NULL, &in, 0, &d) == -1, "no policy: -1");
  tap_ok (strcmp (router_outcome_name (ROUTER_SEND), "send") == 0
          && strcmp (router_outcome_name (ROUTER_DEFER), "defer") == 0
          && strcmp (router_outcome_name (ROUTER_SKIP), "skip") == 0
          && strcmp (router_outcome_name (ROUTER_HOLD), "held_out") == 0,
          "outcome names");
  policy_free (p);
}

int
main (void)
{
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_case (&cases[i]);
  test_parser ();
  test_assignment ();
  test_quiet_and_uplift ();
  test_bad_input ();
  return tap_done ();
}
