/* router: parses a campaign's routing policy and decides, per customer,
 * whether to message them, on which channel, with which variant, and why.
 * Pure: no I/O, no globals, no clock; the scheduler hands in everything
 * (customer state, policy, now) and stores what comes back.  See router.h
 * for the rules and the INI keys. */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router.h"
#include "tz.h"
#include "util.h"

/* Scores closer than this are a tie, decided by the preference order. */
#define SCORE_EPSILON 1e-9

static void __attribute__ ((format (printf, 3, 4)))
seterr (char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if (!err || errlen == 0)
    return;
  va_start (ap, fmt);
  vsnprintf (err, errlen, fmt, ap);
  va_end (ap);
}

/* ---- policy -------------------------------------------------------------- */

struct policy *
policy_new (void)
{
  struct policy *p = xcalloc (1, sizeof *p);

  p->kind = POLICY_PREFERENCE;
  p->on_cap = POLICY_CAP_SHIFT;
  p->half_life = 30 * 86400;
  p->window = 90 * 86400;
  p->w_open = 0.5;
  p->w_click = 1;
  p->w_reply = 1;
  p->w_convert = 2;
  p->prior = 5;
  p->prior_rate = 0.05;
  return p;
}

void
policy_free (struct policy *p)
{
  size_t i;

  if (!p)
    return;
  for (i = 0; i < p->n_ch; i++) {
    free (p->ch[i].name);
    free (p->ch[i].cap_spec);
  }
  free (p->cap_all_spec);
  free (p->ch);
  for (i = 0; i < p->n_variants; i++) {
    free (p->variants[i].name);
    free (p->variants[i].templates);
  }
  free (p->variants);
  free (p->timezone);
  free (p);
}

static int
valid_name (const char *s)
{
  if (!*s)
    return 0;
  for (; *s; s++)
    if (!isalnum ((unsigned char) *s) && *s != '_' && *s != '-' && *s != '.')
      return 0;
  return 1;
}

static struct policy_channel *
find_channel (const struct policy *p, const char *name)
{
  size_t i;

  for (i = 0; i < p->n_ch; i++)
    if (strcmp (p->ch[i].name, name) == 0)
      return &p->ch[i];
  return NULL;
}

/* The policy's entry for NAME, created (not allowed, no settings) when
 * missing.  Returns NULL when there are already ROUTER_MAX_CHANNELS * 2
 * names: a campaign naming that many channels is a mistake. */
static struct policy_channel *
get_channel (struct policy *p, const char *name)
{
  struct policy_channel *c = find_channel (p, name);

  if (c)
    return c;
  if (p->n_ch >= 2 * ROUTER_MAX_CHANNELS)
    return NULL;
  p->ch = xrealloc (p->ch, (p->n_ch + 1) * sizeof *p->ch);
  c = &p->ch[p->n_ch++];
  memset (c, 0, sizeof *c);
  c->name = xstrdup (name);
  c->implied_consent = -1;
  return c;
}

/* Split a list "a, b c" into NAMES (each xstrdup'd; the caller frees them).
 * Returns the count, or -1 with ERR set (bad name, duplicate, too many). */
static int
split_list (const char *value, char **names, int max, char *err,
            size_t errlen)
{
  int n = 0, i;
  const char *s = value, *e;
  char *w;

  for (;;) {
    while (*s == ',' || isspace ((unsigned char) *s))
      s++;
    if (!*s)
      break;
    e = s;
    while (*e && *e != ',' && !isspace ((unsigned char) *e))
      e++;
    w = xstrndup (s, (size_t) (e - s));
    s = e;
    if (!valid_name (w)) {
      seterr (err, errlen, "'%s' is not a channel name", w);
      free (w);
      goto fail;
    }
    for (i = 0; i < n; i++)
      if (strcmp (names[i], w) == 0) {
        seterr (err, errlen, "'%s' is listed twice", w);
        free (w);
        goto fail;
      }
    if (n >= max) {
      seterr (err, errlen, "more than %d channels", max);
      free (w);
      goto fail;
    }
    names[n++] = w;
  }
  return n;
 fail:
  for (i = 0; i < n; i++)
    free (names[i]);
  return -1;
}

/* [campaign] channels: the listed channels first, in order, allowed; the
 * other names the policy knows keep their settings, not allowed. */
static int
set_channels (struct policy *p, const char *value, char *err, size_t errlen)
{
  char *names[ROUTER_MAX_CHANNELS];
  struct policy_channel *old = p->ch, *nc;
  size_t n_old = p->n_ch, i, k = 0;
  int n, j, rc = -1;
  struct policy_channel *c;

  n = split_list (value, names, ROUTER_MAX_CHANNELS, err, errlen);
  if (n < 0)
    return -1;
  if (n == 0) {
    seterr (err, errlen, "no channel listed");
    return -1;
  }
  nc = xcalloc ((size_t) n + n_old, sizeof *nc);
  for (j = 0; j < n; j++) {
    c = find_channel (p, names[j]);
    if (c) {
      nc[k] = *c;
      c->name = NULL;          /* moved */
    } else {
      nc[k].name = names[j];
      names[j] = NULL;
      nc[k].implied_consent = -1;
    }
    nc[k++].allowed = 1;
  }
  for (i = 0; i < n_old; i++)
    if (old[i].name) {
      nc[k] = old[i];
      nc[k++].allowed = 0;
    }
  free (old);
  p->ch = nc;
  p->n_ch = k;
  p->n_allowed = (size_t) n;
  rc = 0;
  for (j = 0; j < n; j++)
    free (names[j]);
  return rc;
}

/* "implied" / "explicit" → 1 / 0, else -1. */
static int
parse_consent (const char *value)
{
  if (strcmp (value, "implied") == 0)
    return 1;
  if (strcmp (value, "explicit") == 0)
    return 0;
  return -1;
}

/* "N/PERIOD" as in 2/7d or 1/24h. */
static int
parse_cap (const char *value, long *n_r, int64_t *period_r, char *err,
           size_t errlen)
{
  const char *slash = strchr (value, '/');
  char *num;
  int64_t n, period;
  int rc;

  if (!slash)
    goto bad;
  num = xstrndup (value, (size_t) (slash - value));
  rc = parse_int64 (num, 0, 1000000, &n);
  free (num);
  if (rc < 0 || parse_duration (slash + 1, &period) < 0 || period <= 0)
    goto bad;
  *n_r = (long) n;
  *period_r = period;
  return 0;
 bad:
  seterr (err, errlen, "'%s' is not N/PERIOD (e.g. 2/7d)", value);
  return -1;
}

/* "HH:MM" into minutes after midnight; -1 when malformed. */
static int
parse_hhmm (const char *s, size_t len)
{
  int h = 0, m = 0;
  size_t i = 0, digits = 0;

  while (i < len && isdigit ((unsigned char) s[i]) && digits < 2) {
    h = h * 10 + (s[i++] - '0');
    digits++;
  }
  if (digits == 0 || i >= len || s[i++] != ':')
    return -1;
  if (len - i != 2 || !isdigit ((unsigned char) s[i])
      || !isdigit ((unsigned char) s[i + 1]))
    return -1;
  m = (s[i] - '0') * 10 + (s[i + 1] - '0');
  if (h > 23 || m > 59)
    return -1;
  return h * 60 + m;
}

/* "21:00-08:00": the window starts at 21:00 (inside) and ends at 08:00
 * (outside), crossing midnight when start > end. */
static int
parse_quiet (const char *value, int *start_r, int *end_r, char *err,
             size_t errlen)
{
  const char *dash = strchr (value, '-');
  int start, end;

  if (!dash)
    goto bad;
  start = parse_hhmm (value, (size_t) (dash - value));
  end = parse_hhmm (dash + 1, strlen (dash + 1));
  if (start < 0 || end < 0)
    goto bad;
  if (start == end) {
    seterr (err, errlen, "'%s' is an empty window", value);
    return -1;
  }
  *start_r = start;
  *end_r = end;
  return 0;
 bad:
  seterr (err, errlen, "'%s' is not HH:MM-HH:MM (e.g. 21:00-08:00)", value);
  return -1;
}

/* A plain non-negative decimal ("0.5", "2", "12.25"), at most MAXDEC
 * decimals when MAXDEC >= 0; no exponent, sign, inf or nan. */
static int
parse_decimal (const char *s, int maxdec, double max, double *v_r)
{
  const char *q = s;
  char *end;
  int dec = -1;
  double v;

  if (!isdigit ((unsigned char) *q))
    return -1;
  for (; *q; q++) {
    if (*q == '.' && dec < 0)
      dec = 0;
    else if (isdigit ((unsigned char) *q)) {
      if (dec >= 0)
        dec++;
    } else
      return -1;
  }
  if (dec == 0 || (maxdec >= 0 && dec > maxdec))
    return -1;
  errno = 0;
  v = strtod (s, &end);
  if (errno || *end || v > max)
    return -1;
  *v_r = v;
  return 0;
}

static int
set_campaign (struct policy *p, const char *key, const char *value,
              char *err, size_t errlen)
{
  char *names[ROUTER_MAX_CHANNELS];
  struct policy_channel *c;
  int n, i, v;

  if (strcmp (key, "policy") == 0) {
    if (strcmp (value, "preference") == 0)
      p->kind = POLICY_PREFERENCE;
    else if (strcmp (value, "engagement") == 0)
      p->kind = POLICY_ENGAGEMENT;
    else {
      seterr (err, errlen, "'%s' is not preference or engagement", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "channels") == 0)
    return set_channels (p, value, err, errlen);
  if (strcmp (key, "consent") == 0) {
    v = parse_consent (value);
    if (v < 0) {
      seterr (err, errlen, "'%s' is not implied or explicit", value);
      return -1;
    }
    p->implied_consent_all = v;
    return 0;
  }
  if (strcmp (key, "implied_consent") == 0) {
    n = split_list (value, names, ROUTER_MAX_CHANNELS, err, errlen);
    if (n < 0)
      return -1;
    for (i = 0; i < n; i++) {
      c = get_channel (p, names[i]);
      if (c)
        c->implied_consent = 1;
      free (names[i]);
    }
    return 0;
  }
  return -2;
}

static int
set_caps (struct policy *p, const char *key, const char *value, char *err,
          size_t errlen)
{
  struct policy_channel *c;
  long n;
  int64_t period;

  if (strcmp (key, "on_cap") == 0) {
    if (strcmp (value, "shift") == 0)
      p->on_cap = POLICY_CAP_SHIFT;
    else if (strcmp (value, "skip") == 0)
      p->on_cap = POLICY_CAP_SKIP;
    else {
      seterr (err, errlen, "'%s' is not shift or skip", value);
      return -1;
    }
    return 0;
  }
  if (!valid_name (key))
    return -2;
  if (parse_cap (value, &n, &period, err, errlen) < 0)
    return -1;
  if (strcmp (key, "all") == 0) {
    p->cap_all_n = n;
    p->cap_all_period = period;
    free (p->cap_all_spec);
    p->cap_all_spec = xstrdup (value);
    return 0;
  }
  c = get_channel (p, key);
  if (!c) {
    seterr (err, errlen, "too many channels");
    return -1;
  }
  c->cap_n = n;
  c->cap_period = period;
  free (c->cap_spec);
  c->cap_spec = xstrdup (value);
  return 0;
}

static int
set_quiet (struct policy *p, const char *key, const char *value, char *err,
           size_t errlen)
{
  struct policy_channel *c;
  int start, end;

  if (strcmp (key, "timezone") == 0) {
    if (!tz_valid (value)) {
      seterr (err, errlen, "'%s' is not an IANA time zone", value);
      return -1;
    }
    free (p->timezone);
    p->timezone = xstrdup (value);
    return 0;
  }
  if (!valid_name (key))
    return -2;
  if (parse_quiet (value, &start, &end, err, errlen) < 0)
    return -1;
  if (strcmp (key, "all") == 0) {
    p->quiet_all_start = start;
    p->quiet_all_end = end;
    p->has_quiet_all = 1;
    return 0;
  }
  c = get_channel (p, key);
  if (!c) {
    seterr (err, errlen, "too many channels");
    return -1;
  }
  c->quiet_start = start;
  c->quiet_end = end;
  c->has_quiet = 1;
  return 0;
}

static int
set_consent (struct policy *p, const char *key, const char *value,
             char *err, size_t errlen)
{
  struct policy_channel *c;
  int v;

  if (strcmp (key, "implied") == 0)       /* [consent] implied = sms, push */
    return set_campaign (p, "implied_consent", value, err, errlen);
  if (!valid_name (key))
    return -2;
  v = parse_consent (value);
  if (v < 0) {
    seterr (err, errlen, "'%s' is not implied or explicit", value);
    return -1;
  }
  if (strcmp (key, "all") == 0) {
    p->implied_consent_all = v;
    return 0;
  }
  c = get_channel (p, key);
  if (!c) {
    seterr (err, errlen, "too many channels");
    return -1;
  }
  c->implied_consent = v;
  return 0;
}

static int
set_engagement (struct policy *p, const char *key, const char *value,
                char *err, size_t errlen)
{
  static const struct {
    const char *key;
    size_t off;
  } weights[] = {
    { "open", offsetof (struct policy, w_open) },
    { "opened", offsetof (struct policy, w_open) },
    { "click", offsetof (struct policy, w_click) },
    { "clicked", offsetof (struct policy, w_click) },
    { "reply", offsetof (struct policy, w_reply) },
    { "replied", offsetof (struct policy, w_reply) },
    { "convert", offsetof (struct policy, w_convert) },
    { "converted", offsetof (struct policy, w_convert) },
    { "conversion", offsetof (struct policy, w_convert) },
    { "prior", offsetof (struct policy, prior) },
  };
  size_t i;
  double v;
  int64_t d;

  if (strcmp (key, "half_life") == 0 || strcmp (key, "window") == 0) {
    if (parse_duration (value, &d) < 0 || d <= 0) {
      seterr (err, errlen, "'%s' is not a duration (e.g. 30d)", value);
      return -1;
    }
    if (key[0] == 'h')
      p->half_life = d;
    else
      p->window = d;
    return 0;
  }
  if (strcmp (key, "prior_rate") == 0) {
    if (parse_decimal (value, -1, 1000, &v) < 0) {
      seterr (err, errlen, "'%s' is not a number >= 0", value);
      return -1;
    }
    p->prior_rate = v;
    return 0;
  }
  for (i = 0; i < sizeof weights / sizeof weights[0]; i++)
    if (strcmp (key, weights[i].key) == 0) {
      if (parse_decimal (value, -1, 1000000, &v) < 0) {
        seterr (err, errlen, "'%s' is not a number >= 0", value);
        return -1;
      }
      *(double *) ((char *) p + weights[i].off) = v;
      return 0;
    }
  return -2;
}

static int
set_variant (struct policy *p, const char *name, const char *key,
             const char *value, char *err, size_t errlen)
{
  struct policy_variant *v = NULL;
  size_t i;
  int64_t w;

  if (strcmp (key, "weight") != 0 && strcmp (key, "templates") != 0)
    return -2;
  if (!valid_name (name)) {
    seterr (err, errlen, "'%s' is not a variant name", name);
    return -1;
  }
  for (i = 0; i < p->n_variants; i++)
    if (strcmp (p->variants[i].name, name) == 0)
      v = &p->variants[i];
  if (!v) {
    p->variants = xrealloc (p->variants,
                            (p->n_variants + 1) * sizeof *p->variants);
    v = &p->variants[p->n_variants++];
    v->name = xstrdup (name);
    v->weight = 1;
    v->templates = NULL;
  }
  if (strcmp (key, "weight") == 0) {
    if (parse_int64 (value, 0, 1000000, &w) < 0) {
      seterr (err, errlen, "'%s' is not a whole number 0..1000000", value);
      return -1;
    }
    v->weight = (long) w;
    return 0;
  }
  if (!*value) {
    seterr (err, errlen, "empty templates folder");
    return -1;
  }
  free (v->templates);
  v->templates = xstrdup (value);
  return 0;
}

int
policy_set (struct policy *p, const char *section, const char *key,
            const char *value, char *err, size_t errlen)
{
  double v;

  if (!p || !section || !key || !value)
    return -2;
  if (strcmp (section, "campaign") == 0)
    return set_campaign (p, key, value, err, errlen);
  if (strcmp (section, "caps") == 0)
    return set_caps (p, key, value, err, errlen);
  if (strcmp (section, "quiet_hours") == 0)
    return set_quiet (p, key, value, err, errlen);
  if (strcmp (section, "consent") == 0)
    return set_consent (p, key, value, err, errlen);
  if (strcmp (section, "engagement") == 0)
    return set_engagement (p, key, value, err, errlen);
  if (strncmp (section, "variant.", 8) == 0)
    return set_variant (p, section + 8, key, value, err, errlen);
  if (strcmp (section, "holdout") == 0) {
    if (strcmp (key, "percent") != 0)
      return -2;
    if (parse_decimal (value, 2, 100, &v) < 0) {
      seterr (err, errlen, "'%s' is not a percentage 0..100", value);
      return -1;
    }
    p->holdout_percent = v;
    return 0;
  }
  return -2;
}

static int
variant_cmp (const void *a, const void *b)
{
  const struct policy_variant *x = a, *y = b;

  return strcmp (x->name, y->name);
}

int
policy_finish (struct policy *p, char *err, size_t errlen)
{
  size_t i;
  long total = 0;
  const struct policy_channel *c;

  if (!p) {
    seterr (err, errlen, "no policy");
    return -1;
  }
  if (p->n_variants > 0) {
    for (i = 0; i < p->n_variants; i++)
      total += p->variants[i].weight;
    if (total <= 0) {
      seterr (err, errlen, "[variant.*] weights sum to 0: no variant can "
              "be assigned");
      return -1;
    }
    qsort (p->variants, p->n_variants, sizeof *p->variants, variant_cmp);
  }
  if (p->n_allowed > 0)
    for (i = p->n_allowed; i < p->n_ch; i++) {
      c = &p->ch[i];
      seterr (err, errlen, "channel '%s' is named in [%s] but not in "
              "[campaign] channels", c->name,
              c->cap_period ? "caps" : c->has_quiet ? "quiet_hours"
              : "consent");
      return -1;
    }
  return 0;
}

int
policy_cap (const struct policy *p, const char *channel, long *n_r,
            int64_t *period_r)
{
  const struct policy_channel *c;

  if (!p)
    return 0;
  if (!channel) {
    if (p->cap_all_period <= 0)
      return 0;
    *n_r = p->cap_all_n;
    *period_r = p->cap_all_period;
    return 1;
  }
  c = find_channel (p, channel);
  if (!c || c->cap_period <= 0)
    return 0;
  *n_r = c->cap_n;
  *period_r = c->cap_period;
  return 1;
}

double
router_population_rate (const struct policy *p, long sends, long opens,
                        long clicks, long replies, long conversions)
{
  if (!p || sends <= 0)
    return -1;
  return (p->w_open * (double) opens + p->w_click * (double) clicks
          + p->w_reply * (double) replies
          + p->w_convert * (double) conversions) / (double) sends;
}

/* ---- variants and holdout -------------------------------------------------- */

/* FNV-1a 64 over the parts joined by ':', then the splitmix64 finaliser so
 * that the low bits a modulo reads are as well mixed as the high ones. */
static uint64_t
stable_hash (const char *a, const char *b, const char *c)
{
  const char *parts[3] = { a, b, c };
  uint64_t h = 0xcbf29ce484222325ULL;
  const unsigned char *s;
  int i;

  for (i = 0; i < 3 && parts[i]; i++) {
    if (i > 0) {
      h ^= ':';
      h *= 0x100000001b3ULL;
    }
    for (s = (const unsigned char *) parts[i]; *s; s++) {
      h ^= *s;
      h *= 0x100000001b3ULL;
    }
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

int
router_assign_variant (const struct policy *p, const char *campaign_id,
                       const char *customer_id, const char **variant_r)
{
  uint64_t h, g, total = 0;
  long bp;
  size_t i;

  *variant_r = NULL;
  if (!p)
    return 0;
  if (!campaign_id)
    campaign_id = "";
  if (!customer_id)
    customer_id = "";
  bp = lround (p->holdout_percent * 100);
  h = stable_hash (campaign_id, customer_id, NULL);
  if (bp > 0 && h % 10000 < (uint64_t) bp)
    return 1;
  for (i = 0; i < p->n_variants; i++)
    total += (uint64_t) p->variants[i].weight;
  if (total == 0)
    return 0;
  g = stable_hash (campaign_id, customer_id, "variant") % total;
  for (i = 0; i < p->n_variants; i++) {
    if (g < (uint64_t) p->variants[i].weight) {
      *variant_r = p->variants[i].name;
      return 0;
    }
    g -= (uint64_t) p->variants[i].weight;
  }
  return 0;                   /* cannot happen: g < total */
}

/* ---- quiet hours ------------------------------------------------------------ */

static int
offset_at (const char *zone, int64_t t)
{
  int off = 0;

  if (tz_offset (zone, t, &off) < 0)
    return 0;
  return off;
}

static int64_t
floor_div (int64_t a, int64_t b)
{
  int64_t q = a / b;

  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

/* The UTC instant at which the local wall clock of ZONE reads WALL (local
 * seconds counted as if UTC), the first one after NOW when the fall-back
 * hour repeats WALL, and the end of the gap when spring-forward skips it
 * (the first instant whose local time is past WALL). */
static int64_t
wall_to_utc (const char *zone, int64_t wall, int64_t now)
{
  int offs[2], i, found = 0;
  int64_t t, best = 0, lo, hi, mid;
  int off_lo;

  /* Two days apart: the offsets in force on either side of any one
   * transition near WALL (zones are within 14 hours of UTC). */
  offs[0] = offset_at (zone, wall - 86400);
  offs[1] = offset_at (zone, wall + 86400);
  for (i = 0; i < 2; i++) {
    t = wall - offs[i];
    if (offset_at (zone, t) != offs[i])
      continue;
    if (!found || (best <= now && t > now) || (t > now && t < best)) {
      best = t;
      found = 1;
    }
  }
  if (found)
    return best;
  /* WALL falls in a gap: find the transition between the two offsets. */
  lo = wall - (offs[0] > offs[1] ? offs[0] : offs[1]);
  hi = wall - (offs[0] > offs[1] ? offs[1] : offs[0]);
  off_lo = offset_at (zone, lo);
  while (hi - lo > 1) {
    mid = lo + (hi - lo) / 2;
    if (offset_at (zone, mid) == off_lo)
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}

static const char *
resolve_zone (const struct policy *p, const char *zone)
{
  if (zone && *zone && tz_valid (zone))
    return zone;
  if (p && p->timezone)
    return p->timezone;
  return "UTC";
}

static int
quiet_window (const struct policy *p, const char *channel, int *start_r,
              int *end_r)
{
  const struct policy_channel *c = channel ? find_channel (p, channel) : NULL;

  if (c && c->has_quiet) {
    *start_r = c->quiet_start;
    *end_r = c->quiet_end;
    return 1;
  }
  if (p->has_quiet_all) {
    *start_r = p->quiet_all_start;
    *end_r = p->quiet_all_end;
    return 1;
  }
  return 0;
}

int
router_quiet_until (const struct policy *p, const char *channel,
                    const char *zone, int64_t now, int64_t *until_r)
{
  int start, end, inside;
  int64_t local, day, minute, end_day;

  if (!p || !quiet_window (p, channel, &start, &end))
    return 0;
  zone = resolve_zone (p, zone);
  local = now + offset_at (zone, now);
  day = floor_div (local, 86400);
  minute = (local - day * 86400) / 60;
  if (start < end)
    inside = minute >= start && minute < end;
  else
    inside = minute >= start || minute < end;
  if (!inside)
    return 0;
  end_day = day;
  if (start > end && minute >= start)
    end_day++;
  *until_r = wall_to_utc (zone, end_day * 86400 + (int64_t) end * 60, now);
  return 1;
}

/* ---- the decision ----------------------------------------------------------- */

enum exclusion {
  EX_NONE,
  EX_CAPPED,                 /* usable but for a cap: may take the shift */
  EX_CAPPED_ALL,
  EX_NO_TEMPLATES,
  EX_NO_ADDRESS,
  EX_NO_CONSENT,
  EX_SUPPRESSED,
  EX_FAILED,
  EX_STEP                    /* a follow-up step's channel rule leaves it out */
};

struct cand {
  const char *name;
  const struct policy_channel *pc;     /* NULL: the policy says nothing */
  const struct router_channel *ic;     /* NULL: not in the input */
  enum exclusion ex;
  int pref;                  /* preference rank, lower first */
  double score, e, s;
};

static const char *
exclusion_text (enum exclusion ex)
{
  switch (ex) {
  case EX_NO_TEMPLATES: return "no templates";
  case EX_NO_ADDRESS: return "no address";
  case EX_NO_CONSENT: return "no consent";
  case EX_SUPPRESSED: return "suppressed";
  case EX_FAILED: return "failed permanently";
  case EX_STEP: return "not this step's channel";
  case EX_CAPPED: case EX_CAPPED_ALL: return "capped";
  case EX_NONE: break;
  }
  return "usable";
}

static const char *
exclusion_reason (enum exclusion ex)
{
  switch (ex) {
  case EX_NO_ADDRESS: return ROUTER_NO_ADDRESS;
  case EX_NO_CONSENT: return ROUTER_NO_CONSENT;
  case EX_SUPPRESSED: return ROUTER_SUPPRESSED;
  case EX_CAPPED: case EX_CAPPED_ALL: return ROUTER_CAPPED;
  default: break;
  }
  return ROUTER_NO_USABLE_CHANNEL;
}

static void
add_time (struct strbuf *b, int64_t t)
{
  time_t tt = (time_t) t;
  struct tm tm;
  char buf[32];

  if (!gmtime_r (&tt, &tm) || strftime (buf, sizeof buf,
                                        "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    strbuf_addf (b, "%lld", (long long) t);
    return;
  }
  strbuf_adds (b, buf);
}

static void
add_cap (struct strbuf *b, const struct policy *p, const struct cand *c)
{
  if (c->ex == EX_CAPPED_ALL)
    strbuf_addf (b, "capped all %s", p->cap_all_spec);
  else
    strbuf_addf (b, "capped %s", c->pc->cap_spec);
}

/* What a customer's JSON says: preferred_channels (array of strings). */
static int
preference_rank (json_t *customer, const char *name)
{
  json_t *pref = customer ? json_object_get (customer, "preferred_channels")
    : NULL;
  json_t *v;
  size_t i;

  if (!json_is_array (pref))
    return -1;
  json_array_foreach (pref, i, v)
    if (json_is_string (v) && strcmp (json_string_value (v), name) == 0)
      return (int) i;
  return -1;
}

/* Decayed sends (S) and weighted engagements (E) per candidate.  Returns 1
 * when any event counted at all. */
static int
score_history (const struct policy *p, const struct router_input *in,
               int64_t now, struct cand *cands, size_t n)
{
  size_t i, k;
  const struct router_event *ev;
  int64_t age;
  double d, w;
  int any = 0, send;

  for (i = 0; i < in->n_events; i++) {
    ev = &in->events[i];
    if (!ev->channel || !ev->type)
      continue;
    age = now - ev->at;
    if (age < 0 || age > p->window)
      continue;
    send = 0;
    w = 0;
    if (strcmp (ev->type, "sent") == 0)
      send = 1;
    else if (strcmp (ev->type, "delivered") == 0)
      send = !ev->herald_message;
    else if (strcmp (ev->type, "opened") == 0)
      w = p->w_open;
    else if (strcmp (ev->type, "clicked") == 0)
      w = p->w_click;
    else if (strcmp (ev->type, "replied") == 0)
      w = p->w_reply;
    else if (strcmp (ev->type, "converted") == 0)
      w = p->w_convert;
    else
      continue;
    for (k = 0; k < n; k++)
      if (strcmp (cands[k].name, ev->channel) == 0)
        break;
    if (k == n)
      continue;
    d = exp2 (-(double) age / (double) p->half_life);
    if (send)
      cands[k].s += d;
    else
      cands[k].e += w * d;
    if (send || w > 0)
      any = 1;
  }
  for (k = 0; k < n; k++) {
    double rate = -1;

    if (cands[k].ic)
      rate = cands[k].ic->population_rate;
    if (rate < 0)
      rate = p->prior_rate;
    if (cands[k].s + p->prior > 0)
      cands[k].score = (cands[k].e + p->prior * rate)
        / (cands[k].s + p->prior);
    else
      cands[k].score = rate;
  }
  return any;
}

static int
cmp_pref (const struct cand *a, const struct cand *b)
{
  return (a->pref > b->pref) - (a->pref < b->pref);
}

static int
cmp_score (const struct cand *a, const struct cand *b)
{
  if (fabs (a->score - b->score) > SCORE_EPSILON)
    return a->score > b->score ? -1 : 1;
  return cmp_pref (a, b);
}

/* Insertion sort of pointers: at most ROUTER_MAX_CHANNELS, and stable. */
static void
sort_ranked (struct cand **r, size_t n, int by_score)
{
  size_t i, j;
  struct cand *x;

  for (i = 1; i < n; i++) {
    x = r[i];
    for (j = i; j > 0; j--) {
      int c = by_score ? cmp_score (r[j - 1], x) : cmp_pref (r[j - 1], x);
      if (c <= 0)
        break;
      r[j] = r[j - 1];
    }
    r[j] = x;
  }
}

static void
finish_trace (struct router_decision *out, struct strbuf *b)
{
  size_t len = b->len;

  if (len >= sizeof out->trace) {
    len = sizeof out->trace - 4;
    memcpy (out->trace, b->s, len);
    memcpy (out->trace + len, "...", 4);
  } else if (b->s)
    memcpy (out->trace, b->s, len + 1);
  else
    out->trace[0] = '\0';
  strbuf_free (b);
}

int
router_decide (const struct policy *p, const struct router_input *in,
               int64_t now, struct router_decision *out)
{
  struct cand cands[ROUTER_MAX_CHANNELS], *ranked[ROUTER_MAX_CHANNELS];
  struct cand *c, *chosen = NULL;
  size_t n = 0, n_ranked = 0, i, j;
  struct strbuf b = STRBUF_INIT;
  const char *zone = NULL, *variant = NULL, *same = NULL;
  json_t *jz;
  int history = 0, tie = 0, by_score, all_same = 1, held;
  int64_t until;
  int qs = 0, qe = 0;

  memset (out, 0, sizeof *out);
  out->score = -1;
  if (!p || !in || (in->n_channels > 0 && !in->channels)
      || in->n_channels > ROUTER_MAX_CHANNELS) {
    strbuf_adds (&b, !p || !in ? "no policy or input"
                 : "too many channels in the input");
    out->outcome = ROUTER_SKIP;
    out->reason = ROUTER_NO_USABLE_CHANNEL;
    finish_trace (out, &b);
    return -1;
  }

  /* The candidates: the campaign's channels in its order (every input
   * channel in input order when the campaign lists none). */
  if (p->n_allowed > 0) {
    for (i = 0; i < p->n_allowed && n < ROUTER_MAX_CHANNELS; i++) {
      memset (&cands[n], 0, sizeof cands[n]);
      cands[n].name = p->ch[i].name;
      cands[n].pc = &p->ch[i];
      for (j = 0; j < in->n_channels; j++)
        if (in->channels[j].name
            && strcmp (in->channels[j].name, p->ch[i].name) == 0) {
          cands[n].ic = &in->channels[j];
          break;
        }
      n++;
    }
  } else {
    for (j = 0; j < in->n_channels; j++) {
      if (!in->channels[j].name)
        continue;
      memset (&cands[n], 0, sizeof cands[n]);
      cands[n].name = in->channels[j].name;
      cands[n].pc = find_channel (p, cands[n].name);
      cands[n].ic = &in->channels[j];
      n++;
    }
  }

  /* Eligibility, first failing rule wins. */
  for (i = 0; i < n; i++) {
    const struct router_channel *ic = cands[i].ic;
    int implied;

    c = &cands[i];
    implied = c->pc && c->pc->implied_consent >= 0 ? c->pc->implied_consent
      : p->implied_consent_all;
    if (!ic || !ic->templates)
      c->ex = EX_NO_TEMPLATES;
    else if (!ic->has_address)
      c->ex = EX_NO_ADDRESS;
    else if (ic->consent == 0 || (ic->consent < 0 && !implied))
      c->ex = EX_NO_CONSENT;
    else if (ic->suppressed)
      c->ex = EX_SUPPRESSED;
    else if (ic->failed == 2)
      c->ex = EX_STEP;
    else if (ic->failed)
      c->ex = EX_FAILED;
    else if (p->cap_all_period > 0 && in->sent_all >= p->cap_all_n)
      c->ex = EX_CAPPED_ALL;
    else if (c->pc && c->pc->cap_period > 0 && ic->sent >= c->pc->cap_n)
      c->ex = EX_CAPPED;
    else
      c->ex = EX_NONE;
    if (c->ex == EX_NONE || c->ex == EX_CAPPED || c->ex == EX_CAPPED_ALL)
      ranked[n_ranked++] = c;
  }

  /* Preference rank: the customer's preferred channels in their order,
   * then the campaign's order. */
  for (i = 0; i < n; i++) {
    int r = preference_rank (in->customer, cands[i].name);
    cands[i].pref = r >= 0 ? r : 1000 + (int) i;
  }

  by_score = 0;
  if (p->kind == POLICY_ENGAGEMENT && n_ranked > 0) {
    history = score_history (p, in, now, cands, n);
    by_score = history;
  }
  sort_ranked (ranked, n_ranked, by_score);

  /* The first uncapped channel, unless on_cap = skip and the best is
   * capped. */
  for (i = 0; i < n_ranked; i++)
    if (ranked[i]->ex == EX_NONE) {
      chosen = ranked[i];
      break;
    }
  if (chosen && chosen != ranked[0] && p->on_cap == POLICY_CAP_SKIP)
    chosen = NULL;

  if (!chosen) {
    out->outcome = ROUTER_SKIP;
    if (n_ranked > 0)
      out->reason = ROUTER_CAPPED;
    else {
      /* Channels the campaign cannot send (no templates) say nothing
       * about this customer: the reason comes from the others. */
      for (i = 0; i < n; i++) {
        const char *r = exclusion_reason (cands[i].ex);
        if (cands[i].ex == EX_NO_TEMPLATES || cands[i].ex == EX_STEP)
          continue;
        if (same && strcmp (same, r) != 0)
          all_same = 0;
        same = r;
      }
      out->reason = same && all_same ? same : ROUTER_NO_USABLE_CHANNEL;
    }
    strbuf_addf (&b, "skip %s", out->reason);
    if (n_ranked > 0 && p->on_cap == POLICY_CAP_SKIP
        && ranked[0]->ex != EX_NONE) {
      strbuf_addf (&b, " (on_cap = skip): %s ", ranked[0]->name);
      add_cap (&b, p, ranked[0]);
    }
    if (n == 0)
      strbuf_adds (&b, ": the campaign allows no channel");
    for (i = 0; i < n; i++) {
      strbuf_addf (&b, "; %s: ", cands[i].name);
      if (cands[i].ex == EX_CAPPED || cands[i].ex == EX_CAPPED_ALL)
        add_cap (&b, p, &cands[i]);
      else
        strbuf_adds (&b, exclusion_text (cands[i].ex));
    }
    finish_trace (out, &b);
    return 0;
  }

  out->channel = chosen->name;
  if (chosen != ranked[0])
    out->shifted_from = ranked[0]->name;
  if (by_score)
    out->score = chosen->score;
  for (i = 0; i < n_ranked; i++)
    if (ranked[i] != chosen && ranked[i]->ex == EX_NONE)
      out->fallback[out->n_fallback++] = ranked[i]->name;

  /* Trace: the choice, then what else there was, then the exclusions. */
  strbuf_addf (&b, "%s: ", chosen->name);
  if (by_score) {
    for (i = 0; i < n_ranked; i++)
      if (ranked[i] != chosen && ranked[i]->ex == EX_NONE
          && fabs (ranked[i]->score - chosen->score) <= SCORE_EPSILON)
        tie = 1;
    strbuf_addf (&b, "engagement %.2f", chosen->score);
    for (i = 0; i < n_ranked; i++)
      if (ranked[i] != chosen && ranked[i]->ex == EX_NONE)
        strbuf_addf (&b, " %s %s %.2f",
                     fabs (ranked[i]->score - chosen->score) <= SCORE_EPSILON
                     ? "=" : ">", ranked[i]->name, ranked[i]->score);
    if (tie)
      strbuf_adds (&b, " (tie: preference order)");
  } else {
    if (p->kind == POLICY_ENGAGEMENT)
      strbuf_adds (&b, "no history, ");
    strbuf_adds (&b, preference_rank (in->customer, chosen->name) >= 0
                 ? "customer preference" : "campaign order");
    for (i = 0; i < n_ranked; i++)
      if (ranked[i] != chosen && ranked[i]->ex == EX_NONE)
        strbuf_addf (&b, " > %s", ranked[i]->name);
  }
  for (i = 0; i < n; i++) {
    c = &cands[i];
    if (c->ex == EX_NONE)
      continue;
    strbuf_addf (&b, "; %s: ", c->name);
    if (c->ex == EX_CAPPED || c->ex == EX_CAPPED_ALL) {
      add_cap (&b, p, c);
      if (by_score)
        strbuf_addf (&b, " (engagement %.2f)", c->score);
    } else
      strbuf_adds (&b, exclusion_text (c->ex));
  }
  if (out->shifted_from)
    strbuf_addf (&b, "; shifted from %s", out->shifted_from);

  /* The holdout applies to those the router would message (deferred
   * ones included); quiet hours defer on the same channel. */
  held = router_assign_variant (p, in->campaign_id, in->customer_id,
                                &variant);
  if (held) {
    out->outcome = ROUTER_HOLD;
    out->reason = ROUTER_HELD_OUT;
    strbuf_addf (&b, "; held out (holdout %g%%)", p->holdout_percent);
    finish_trace (out, &b);
    return 0;
  }
  if (variant) {
    out->variant = variant;
    for (i = 0; i < p->n_variants; i++)
      if (p->variants[i].name == variant)
        out->variant_templates = p->variants[i].templates;
    strbuf_addf (&b, "; variant %s", variant);
  }
  jz = in->customer ? json_object_get (in->customer, "timezone") : NULL;
  zone = in->timezone ? in->timezone
    : json_is_string (jz) ? json_string_value (jz) : NULL;
  out->outcome = ROUTER_SEND;
  if (router_quiet_until (p, chosen->name, zone, now, &until)) {
    out->outcome = ROUTER_DEFER;
    out->until = until;
    quiet_window (p, chosen->name, &qs, &qe);
    strbuf_addf (&b, "; quiet hours %02d:%02d-%02d:%02d %s: deferred to ",
                 qs / 60, qs % 60, qe / 60, qe % 60, resolve_zone (p, zone));
    add_time (&b, until);
  }
  finish_trace (out, &b);
  return 0;
}

const char *
router_outcome_name (enum router_outcome o)
{
  switch (o) {
  case ROUTER_SEND: return "send";
  case ROUTER_DEFER: return "defer";
  case ROUTER_SKIP: return "skip";
  case ROUTER_HOLD: return ROUTER_HELD_OUT;
  }
  return "unknown";
}

int
router_uplift_ci (long conv_v, long n_v, long conv_h, long n_h,
                  double *uplift_r, double *lo_r, double *hi_r)
{
  double pv, ph, se, d;

  if (n_v <= 0 || n_h <= 0 || conv_v < 0 || conv_h < 0 || conv_v > n_v
      || conv_h > n_h)
    return -1;
  pv = (double) conv_v / (double) n_v;
  ph = (double) conv_h / (double) n_h;
  d = pv - ph;
  se = sqrt (pv * (1 - pv) / (double) n_v + ph * (1 - ph) / (double) n_h);
  *uplift_r = d;
  *lo_r = d - 1.96 * se;
  *hi_r = d + 1.96 * se;
  return 0;
}
