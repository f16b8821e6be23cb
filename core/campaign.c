/* campaign: reads a campaign INI, hands the routing sections to the
 * router's policy parser, and compiles every template once.  It collects
 * every problem it finds (lint shows them all), each as file:line[:col]. */
#include <config.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "campaign.h"
#include "loader.h"
#include "main.h"
#include "tz.h"

static const char *const known_parts[] = {
  "email.subject", "email.html", "email.text", "sms.body", "push.title",
  "push.body", "push.data", "webhook.body", NULL
};

int
campaign_part_autoescape (const char *part)
{
  return strcmp (part, "email.html") == 0 || config_kind_part_html (part);
}

int
campaign_part_json (const char *part)
{
  return strcmp (part, "push.data") == 0 || strcmp (part, "webhook.body") == 0
         || config_kind_part_json (part);
}

static void __attribute__ ((format (printf, 2, 3)))
problem (struct strbuf *pb, const char *fmt, ...)
{
  va_list ap;
  char buf[2048];

  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  /* One problem is one line: what it quotes from the campaign or a
   * template is escaped. */
  strbuf_add_escaped (pb, buf, strlen (buf));
  strbuf_addc (pb, '\n');
}

/* Partials: _partials/NAME.liquid beside the templates, else in the shared
 * templates folder (the parent of the campaign's templates folder).  All
 * of them are read when the campaign is loaded (read_partials), so that a
 * partial named at render time ({% render customer.tier %}) costs no file
 * access per message, and a file changed during a run changes nothing. */
static char *
partial_loader (void *userdata, const char *name, size_t *len_r,
                char **filename_r)
{
  const struct tmpl_set *set = userdata;
  int shared;
  size_t i;

  if (!*name || strstr (name, "..") || name[0] == '/')
    return NULL;
  for (shared = 0; shared < 2; shared++)
    for (i = 0; i < set->n_partials; i++) {
      const struct tmpl_partial *p = &set->partials[i];
      if (p->shared == shared && strcmp (p->name, name) == 0) {
        char *src = xmalloc (p->len + 1);
        memcpy (src, p->src, p->len);
        src[p->len] = '\0';
        *len_r = p->len;
        *filename_r = xstrdup (p->path);
        return src;
      }
    }
  return NULL;
}

/* Read every NAME.liquid under DIR (its sub-folders too, to a depth of
 * 4: partial names may hold a '/') into SET, named by PREFIX + NAME. */
static void
read_partials (struct tmpl_set *set, const char *dir, const char *prefix,
               int shared, int depth, struct strbuf *pb)
{
  DIR *d = opendir (dir);
  struct dirent *de;

  if (!d)
    return;                    /* no partials there */
  while ((de = readdir (d))) {
    size_t len = strlen (de->d_name);
    char *path, *name;
    struct stat sb;

    if (de->d_name[0] == '.')
      continue;
    path = xasprintf ("%s/%s", dir, de->d_name);
    if (stat (path, &sb) == 0 && S_ISDIR (sb.st_mode)) {
      if (depth < 4) {
        char *sub = xasprintf ("%s%s/", prefix, de->d_name);
        read_partials (set, path, sub, shared, depth + 1, pb);
        free (sub);
      }
      free (path);
      continue;
    }
    if (len < 8 || strcmp (de->d_name + len - 7, ".liquid") != 0) {
      free (path);
      continue;
    }
    name = xasprintf ("%s%.*s", prefix, (int) (len - 7), de->d_name);
    set->partials = xrealloc (set->partials, (set->n_partials + 1)
                                             * sizeof *set->partials);
    set->partials[set->n_partials].name = name;
    set->partials[set->n_partials].path = path;
    set->partials[set->n_partials].shared = shared;
    set->partials[set->n_partials].src =
      slurp_file (path, &set->partials[set->n_partials].len);
    if (!set->partials[set->n_partials].src) {
      problem (pb, "%s: %s", path, strerror (errno));
      free (name);
      free (path);
      continue;
    }
    set->n_partials++;
  }
  closedir (d);
}

static int
known_part (const char *name)
{
  size_t i;

  for (i = 0; known_parts[i]; i++)
    if (strcmp (known_parts[i], name) == 0)
      return 1;
  return config_kind_part (name);
}

/* Compile every CHANNEL.PART.liquid of DIR into SET. */
static void
load_set (struct tmpl_set *set, const char *dir, const char *ini_path,
          int ini_line, int strict, struct strbuf *pb)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  char **names = NULL;
  size_t nn = 0, i, j;

  set->dir = xstrdup (dir);
  {
    char *own = xasprintf ("%s/_partials", dir);
    char *shared = xasprintf ("%s/../_partials", dir);
    read_partials (set, own, "", 0, 0, pb);
    read_partials (set, shared, "", 1, 0, pb);
    free (own);
    free (shared);
  }
  if (!d) {
    problem (pb, "%s:%d: templates: cannot open folder '%s': %s", ini_path,
             ini_line, dir, strerror (errno));
    return;
  }
  while ((de = readdir (d))) {
    size_t len = strlen (de->d_name);
    if (de->d_name[0] == '.' || de->d_name[0] == '_' || len < 8
        || strcmp (de->d_name + len - 7, ".liquid") != 0)
      continue;
    names = xrealloc (names, (nn + 1) * sizeof *names);
    names[nn++] = xstrndup (de->d_name, len - 7);
  }
  closedir (d);
  for (i = 1; i < nn; i++)        /* sorted: stable lint output */
    for (j = i; j > 0 && strcmp (names[j - 1], names[j]) > 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  for (i = 0; i < nn; i++) {
    char *path = xasprintf ("%s/%s.liquid", dir, names[i]);
    struct liquid_options opts;
    struct liquid_error lerr;
    char *src;
    size_t len = 0;

    if (!known_part (names[i])) {
      struct strbuf more = STRBUF_INIT;
      config_kind_parts_list (&more);
      problem (pb, "%s:1: unknown template part '%s' (expected one of "
               "email.subject, email.html, email.text, sms.body, push.title, "
               "push.body, push.data, webhook.body%s)", path, names[i],
               more.s ? more.s : "");
      strbuf_free (&more);
      free (path);
      continue;
    }
    src = slurp_file (path, &len);
    if (!src) {
      problem (pb, "%s: %s", path, strerror (errno));
      free (path);
      continue;
    }
    liquid_options_init (&opts);
    opts.autoescape = campaign_part_autoescape (names[i]);
    opts.strict_filters = 1;
    opts.strict_variables = strict;
    opts.loader = partial_loader;
    opts.loader_data = set;
    opts.tz_offset = tz_offset;
    memset (&lerr, 0, sizeof lerr);
    set->parts = xrealloc (set->parts, (set->n + 1) * sizeof *set->parts);
    set->parts[set->n].name = xstrdup (names[i]);
    set->parts[set->n].path = path;
    set->parts[set->n].t = liquid_parse (src, len, path, &opts, &lerr);
    /* A template can only read unsubscribe_url by naming it, or through a
     * partial or a computed name: the link is signed (an HMAC) only for
     * the messages that might show it. */
    set->parts[set->n].may_unsubscribe = memmem (src, len, "unsubscribe_url", 15)
      || memmem (src, len, "include", 7) || memmem (src, len, "render", 6)
      || memchr (src, '[', len);
    if (!set->parts[set->n].t) {
      char msg[1024];
      liquid_error_format (&lerr, msg, sizeof msg);
      problem (pb, "%s", msg);
    }
    set->n++;
    free (src);
  }
  for (i = 0; i < nn; i++)
    free (names[i]);
  free (names);
}

static void
free_set (struct tmpl_set *set)
{
  size_t i;

  for (i = 0; i < set->n; i++) {
    free (set->parts[i].name);
    free (set->parts[i].path);
    liquid_template_free (set->parts[i].t);
  }
  free (set->parts);
  for (i = 0; i < set->n_partials; i++) {
    free (set->partials[i].name);
    free (set->partials[i].path);
    free (set->partials[i].src);
  }
  free (set->partials);
  free (set->dir);
  memset (set, 0, sizeof *set);
}

const char *const campaign_unless_types[] = {
  "opened", "clicked", "converted", "replied", NULL
};

static const struct tmpl_part *
set_part (const struct tmpl_set *set, const char *part)
{
  size_t i;

  for (i = 0; set && i < set->n; i++)
    if (strcmp (set->parts[i].name, part) == 0 && set->parts[i].t)
      return &set->parts[i];
  return NULL;
}

const struct tmpl_part *
campaign_part (const struct campaign *c, const char *variant, const char *part)
{
  const struct tmpl_part *p = NULL;
  size_t i;

  if (variant && c->variant_sets)
    for (i = 0; i < c->policy->n_variants; i++)
      if (strcmp (c->policy->variants[i].name, variant) == 0
          && c->variant_sets[i].dir) {
        p = set_part (&c->variant_sets[i], part);
        break;
      }
  return p ? p : set_part (&c->base, part);
}

const struct campaign_step *
campaign_step (const struct campaign *c, int step)
{
  if (step < 2 || (size_t) (step - 2) >= c->n_steps)
    return NULL;
  return &c->steps[step - 2];
}

const struct tmpl_part *
campaign_step_part (const struct campaign *c, int step, const char *variant,
                    const char *part)
{
  const struct campaign_step *st = campaign_step (c, step);
  const struct tmpl_part *p = st && st->set.dir ? set_part (&st->set, part)
                                                : NULL;
  return p ? p : campaign_part (c, variant, part);
}

int
campaign_cancels (const struct campaign *c, const char *type)
{
  size_t i;

  for (i = 0; i < c->trigger.n_cancel_on; i++)
    if (strcmp (c->trigger.cancel_on[i], type) == 0)
      return 1;
  return 0;
}

static int
has (const struct campaign *c, const struct tmpl_set *set, const char *part)
{
  return set_part (set, part) || set_part (&c->base, part);
}

int
campaign_has_parts (const struct campaign *c, const struct tmpl_set *set,
                    const char *kind)
{
  if (!set)
    set = &c->base;
  if (strcmp (kind, "email") == 0)
    return has (c, set, "email.subject")
           && (has (c, set, "email.html") || has (c, set, "email.text"));
  if (strcmp (kind, "sms") == 0)
    return has (c, set, "sms.body");
  if (strcmp (kind, "push") == 0)
    return has (c, set, "push.body");
  if (strcmp (kind, "webhook") == 0)
    return has (c, set, "webhook.body");
  {
    const struct config_kind *k = config_kind_find (kind);
    size_t i;

    if (!k)
      return 0;
    for (i = 0; k->required[i]; i++)
      if (!has (c, set, k->required[i]))
        return 0;
    return 1;
  }
}

static int
valid_id (const char *s)
{
  if (!*s || strlen (s) > 64)
    return 0;
  for (; *s; s++)
    if (!isalnum ((unsigned char) *s) && *s != '-' && *s != '_' && *s != '.')
      return 0;
  return 1;
}

static int
known_section (const char *name)
{
  static const char *const names[] = { "caps", "quiet_hours", "holdout",
                                       "engagement", "consent", NULL };
  size_t i;

  for (i = 0; names[i]; i++)
    if (strcmp (names[i], name) == 0)
      return 1;
  return 0;
}

/* [trigger]: event, delay, cancel_on, reenter. */
static void
trigger_key (struct campaign *c, const struct ini_kv *kv, struct strbuf *pb)
{
  struct campaign_trigger *t = &c->trigger;
  const char *path = c->ini->path, *k = kv->key, *v = kv->value;
  int64_t d;
  int b;

  if (strcmp (k, "event") == 0) {
    if (!valid_event_type (v))
      problem (pb, "%s:%d: [trigger] event: '%s' is not an event type "
               "([a-z][a-z0-9_.-]*, at most 64)", path, kv->line, v);
    else {
      free (t->event);
      t->event = xstrdup (v);
    }
  }
  else if (strcmp (k, "delay") == 0) {
    if (parse_duration (v, &d) < 0 || d > 30 * 86400)
      problem (pb, "%s:%d: [trigger] delay: '%s' is not a duration from 0s "
               "to 30d (units s, m, h, d)", path, kv->line, v);
    else
      t->delay = d;
  }
  else if (strcmp (k, "cancel_on") == 0) {
    char *copy = xstrdup (v), *save = NULL, *tok;
    for (tok = strtok_r (copy, ", \t", &save); tok;
         tok = strtok_r (NULL, ", \t", &save)) {
      if (!valid_event_type (tok)) {
        problem (pb, "%s:%d: [trigger] cancel_on: '%s' is not an event type "
                 "([a-z][a-z0-9_.-]*)", path, kv->line, tok);
        continue;
      }
      t->cancel_on = xrealloc (t->cancel_on,
                               (t->n_cancel_on + 1) * sizeof *t->cancel_on);
      t->cancel_on[t->n_cancel_on++] = xstrdup (tok);
    }
    free (copy);
  }
  else if (strcmp (k, "reenter") == 0) {
    if (parse_bool (v, &b) == 0 && !b)
      t->reenter = -1;
    else if (parse_duration (v, &d) == 0 && d > 0)
      t->reenter = d;
    else
      problem (pb, "%s:%d: [trigger] reenter: '%s' is not 'no' or a "
               "duration (e.g. 7d: a customer enters again that long after "
               "the last entry)", path, kv->line, v);
  }
  else
    problem (pb, "%s:%d: [trigger] %s: unknown key (expected event, delay, "
             "cancel_on, reenter)", path, kv->line, k);
}

/* [step.N]: after, unless, channel, templates. */
static void
step_key (struct campaign *c, struct campaign_step *st, const char *sname,
          const struct ini_kv *kv, char **templates_r, struct strbuf *pb)
{
  const char *path = c->ini->path, *k = kv->key, *v = kv->value;
  size_t i;

  if (strcmp (k, "after") == 0) {
    if (parse_duration (v, &st->after) < 0 || st->after > 365 * 86400)
      problem (pb, "%s:%d: [%s] after: '%s' is not a duration of at most a "
               "year (units s, m, h, d)", path, kv->line, sname, v);
  }
  else if (strcmp (k, "unless") == 0) {
    char *copy = xstrdup (v), *save = NULL, *tok;
    size_t n = 0;
    for (tok = strtok_r (copy, ", \t", &save); tok;
         tok = strtok_r (NULL, ", \t", &save)) {
      for (i = 0; campaign_unless_types[i]; i++)
        if (strcmp (campaign_unless_types[i], tok) == 0)
          break;
      if (!campaign_unless_types[i])
        problem (pb, "%s:%d: [%s] unless: '%s' is not one of opened, "
                 "clicked, converted, replied", path, kv->line, sname, tok);
      else if (n < UNLESS_MAX)
        st->unless[n++] = campaign_unless_types[i];
    }
    st->unless[n] = NULL;
    free (copy);
  }
  else if (strcmp (k, "channel") == 0) {
    if (strcmp (v, "same") == 0)
      st->channel = STEP_SAME;
    else if (strcmp (v, "next") == 0)
      st->channel = STEP_NEXT;
    else {
      st->channel = STEP_NAMED;
      st->channel_idx = -1;
      for (i = 0; i < c->n_channels; i++)
        if (strcmp (c->channels[i].conf->name, v) == 0)
          st->channel_idx = (int) i;
      if (st->channel_idx < 0)
        problem (pb, "%s:%d: [%s] channel: '%s' is not same, next or one of "
                 "the campaign's channels", path, kv->line, sname, v);
    }
  }
  else if (strcmp (k, "templates") == 0) {
    free (*templates_r);
    *templates_r = ini_path (c->ini, v);
  }
  else
    problem (pb, "%s:%d: [%s] %s: unknown key (expected after, unless, "
             "channel, templates)", path, kv->line, sname, k);
}

/* Read [trigger] and every [step.N] (N from 2, without gaps). */
static void
journey_sections (struct campaign *c, struct strbuf *pb)
{
  const char *path = c->ini->path;
  const struct ini_section *ts = ini_section (c->ini, "trigger");
  size_t i, j;
  int max = 1;

  c->trigger.reenter = -1;
  for (j = 0; ts && j < ts->n; j++)
    trigger_key (c, &ts->kv[j], pb);
  if (ts && !c->trigger.event)
    problem (pb, "%s:%d: [trigger]: missing key 'event'", path, ts->line);
  if (ts && c->start)
    problem (pb, "%s:%d: [campaign] start: a campaign with a [trigger] starts "
             "with each event, not at a time", path,
             ini_line (ini_section (c->ini, "campaign"), "start"));
  for (i = 0; i < c->ini->n; i++) {
    const char *name = c->ini->sec[i].name;
    int64_t n;
    if (strncmp (name, "step.", 5) != 0)
      continue;
    if (parse_int64 (name + 5, 2, 99, &n) < 0) {
      problem (pb, "%s:%d: [%s]: a step is [step.N] with N from 2 to 99 (the "
               "campaign itself is step 1)", path, c->ini->sec[i].line, name);
      continue;
    }
    if (n > max)
      max = (int) n;
  }
  if (max < 2)
    return;
  c->steps = xcalloc ((size_t) max - 1, sizeof *c->steps);
  c->n_steps = (size_t) max - 1;
  for (i = 0; i < c->n_steps; i++) {
    struct campaign_step *st = &c->steps[i];
    char *sname = xasprintf ("step.%zu", i + 2), *templates = NULL;
    const struct ini_section *sec = ini_section (c->ini, sname);

    st->n = (int) i + 2;
    if (!sec) {
      problem (pb, "%s:1: [%s]: missing (steps go 2, 3, ... without gaps)",
               path, sname);
      free (sname);
      continue;
    }
    for (j = 0; j < sec->n; j++)
      step_key (c, st, sname, &sec->kv[j], &templates, pb);
    if (!ini_get (sec, "after"))
      problem (pb, "%s:%d: [%s]: missing key 'after' (how long after the "
               "previous step was sent)", path, sec->line, sname);
    if (templates) {
      load_set (&st->set, templates, path, ini_line (sec, "templates"),
                c->strict, pb);
      free (templates);
    }
    free (sname);
  }
}

/* The keys of [campaign] this module reads itself; the rest go to the
 * router's policy parser. */
static int
campaign_key (struct campaign *c, const struct gateway *gw,
              const struct ini_kv *kv, char **templates_r, int *tline_r,
              struct strbuf *pb)
{
  const char *path = c->ini->path;
  const char *k = kv->key, *v = kv->value;
  int64_t n;
  int b;

  if (strcmp (k, "id") == 0) {
    if (!valid_id (v))
      problem (pb, "%s:%d: [campaign] id: '%s' must be 1 to 64 letters, "
               "digits, '-', '_' or '.'", path, kv->line, v);
    else
      c->id = xstrdup (v);
  }
  else if (strcmp (k, "name") == 0)
    c->name = xstrdup (v);
  else if (strcmp (k, "templates") == 0) {
    *templates_r = ini_path (c->ini, v);
    *tline_r = kv->line;
  }
  else if (strcmp (k, "segment") == 0) {
    struct liquid_error lerr;
    memset (&lerr, 0, sizeof lerr);
    c->segment = xstrdup (v);
    /* The column is relative to the value; the line is the INI line. */
    c->segment_expr = liquid_condition_parse (v, path, kv->line, &lerr);
    if (!c->segment_expr) {
      char msg[1024];
      liquid_error_format (&lerr, msg, sizeof msg);
      problem (pb, "%s [campaign] segment", msg);
    }
  }
  else if (strcmp (k, "delivery") == 0) {
    if (strcmp (v, "at_least_once") == 0)
      c->at_least_once = 1;
    else if (strcmp (v, "at_most_once") == 0)
      c->at_least_once = 0;
    else
      problem (pb, "%s:%d: [campaign] delivery: '%s' is not at_least_once "
               "or at_most_once", path, kv->line, v);
  }
  else if (strcmp (k, "max_attempts") == 0) {
    if (parse_int64 (v, 1, 100, &n) < 0)
      problem (pb, "%s:%d: [campaign] max_attempts: '%s' is not a number "
               "from 1 to 100", path, kv->line, v);
    else
      c->max_attempts = (int) n;
  }
  else if (strcmp (k, "retry_horizon") == 0) {
    if (parse_duration (v, &n) < 0)
      problem (pb, "%s:%d: [campaign] retry_horizon: '%s' is not a duration "
               "(e.g. 30s, 5m)", path, kv->line, v);
    else
      c->retry_horizon = n;
  }
  else if (strcmp (k, "strict") == 0) {
    if (parse_bool (v, &b) < 0)
      problem (pb, "%s:%d: [campaign] strict: '%s' is not yes or no", path,
               kv->line, v);
    else
      c->strict = b;
  }
  else if (strcmp (k, "start") == 0) {
    /* With Z or an offset, that instant; without, a wall-clock time read
     * in each customer's zone (herald run applies it). */
    char *z = NULL;
    size_t len = strlen (v);
    if (parse_rfc3339 (v, &c->start) == 0 && len > 10)
      c->start_local = 0;
    else if ((len == 16 && (z = xasprintf ("%s:00Z", v))
              && parse_rfc3339 (z, &c->start) == 0)
             || (len == 19 && (z = xasprintf ("%sZ", v))
                 && parse_rfc3339 (z, &c->start) == 0))
      c->start_local = 1;
    else
      problem (pb, "%s:%d: [campaign] start: '%s' is not a time like "
               "2026-12-10T09:00 (each customer's own time) or "
               "2026-12-10T09:00:00Z (one instant)", path, kv->line, v);
    free (z);
  }
  else if (strcmp (k, "fallback") == 0) {
    if (parse_bool (v, &b) < 0)
      problem (pb, "%s:%d: [campaign] fallback: '%s' is not yes or no",
               path, kv->line, v);
    else
      c->fallback = b;
  }
  else if (strcmp (k, "track_opens") == 0) {
    if (parse_bool (v, &b) < 0)
      problem (pb, "%s:%d: [campaign] track_opens: '%s' is not yes or no",
               path, kv->line, v);
    else
      c->track_opens = b;
  }
  else if (strcmp (k, "channels") == 0) {
    /* Instance names of the gateway; the policy sees their kinds. */
    char *copy = xstrdup (v), *save = NULL, *tok;
    struct strbuf kinds = STRBUF_INIT;
    size_t i;

    for (tok = strtok_r (copy, ", \t", &save); tok;
         tok = strtok_r (NULL, ", \t", &save)) {
      const struct channel_conf *cc = config_channel (gw, tok);
      if (!cc) {
        problem (pb, "%s:%d: [campaign] channels: '%s' is not a channel of "
                 "%s (no [channel.%s])", path, kv->line, tok, gw->ini->path,
                 tok);
        continue;
      }
      for (i = 0; i < c->n_channels; i++)
        if (strcmp (c->channels[i].kind, cc->kind) == 0)
          break;
      if (i < c->n_channels) {
        problem (pb, "%s:%d: [campaign] channels: '%s' and '%s' are both %s "
                 "channels: a campaign uses one channel per kind", path,
                 kv->line, c->channels[i].conf->name, tok, cc->kind);
        continue;
      }
      c->channels = xrealloc (c->channels,
                              (c->n_channels + 1) * sizeof *c->channels);
      c->channels[c->n_channels].conf = cc;
      c->channels[c->n_channels].kind = cc->kind;
      c->n_channels++;
      if (kinds.len)
        strbuf_adds (&kinds, ", ");
      strbuf_adds (&kinds, cc->kind);
    }
    free (copy);
    if (c->n_channels == 0)
      problem (pb, "%s:%d: [campaign] channels: no usable channel listed",
               path, kv->line);
    else {
      char err[512] = "";
      if (policy_set (c->policy, "campaign", "channels", kinds.s, err,
                      sizeof err) == -1)
        problem (pb, "%s:%d: [campaign] channels: %s", path, kv->line, err);
    }
    strbuf_free (&kinds);
  }
  else
    return -2;
  return 0;
}

struct campaign *
campaign_load (const char *path, const struct gateway *gw,
               struct strbuf *problems)
{
  struct campaign *c = xcalloc (1, sizeof *c);
  char err[2048], *templates = NULL;
  int tline = 0, rc;
  size_t i, j, start = problems->len;
  const struct ini_section *cs;

  c->step = 1;
  c->at_least_once = 1;
  c->max_attempts = 8;
  c->retry_horizon = 30;
  c->track_opens = 1;
  c->fallback = 1;
  c->policy = policy_new ();
  c->ini = ini_load (path, err, sizeof err);
  if (!c->ini) {
    problem (problems, "%s", err);
    goto fail;
  }
  cs = ini_section (c->ini, "campaign");
  if (!cs) {
    problem (problems, "%s:1: missing [campaign] section", path);
    goto fail;
  }
  /* [campaign] first: channels must be known before caps name them. */
  for (j = 0; j < cs->n; j++) {
    const struct ini_kv *kv = &cs->kv[j];
    if (campaign_key (c, gw, kv, &templates, &tline, problems) == -2) {
      *err = '\0';
      rc = policy_set (c->policy, "campaign", kv->key, kv->value, err,
                       sizeof err);
      if (rc == -2)
        problem (problems, "%s:%d: [campaign] %s: unknown key", path,
                 kv->line, kv->key);
      else if (rc < 0)
        problem (problems, "%s:%d: [campaign] %s: %s", path, kv->line,
                 kv->key, err);
    }
  }
  journey_sections (c, problems);
  for (i = 0; i < c->ini->n; i++) {
    const struct ini_section *sec = &c->ini->sec[i];
    if (sec == cs || strcmp (sec->name, "trigger") == 0
        || strncmp (sec->name, "step.", 5) == 0)
      continue;
    if (sec->n == 0) {
      /* An empty [variant.X] is a variant of weight 1; other empty
       * sections are harmless when known. */
      if (strncmp (sec->name, "variant.", 8) == 0 && sec->name[8]) {
        *err = '\0';
        if (policy_set (c->policy, sec->name, "weight", "1", err,
                        sizeof err) < 0)
          problem (problems, "%s:%d: [%s]: %s", path, sec->line, sec->name,
                   *err ? err : "bad variant name");
      }
      else if (!known_section (sec->name))
        problem (problems, "%s:%d: [%s]: unknown section", path, sec->line,
                 sec->name);
      continue;
    }
    for (j = 0; j < sec->n; j++) {
      const struct ini_kv *kv = &sec->kv[j];
      *err = '\0';
      rc = policy_set (c->policy, sec->name, kv->key, kv->value, err,
                       sizeof err);
      if (rc == -2)
        problem (problems, "%s:%d: [%s] %s: unknown %s", path, kv->line,
                 sec->name, kv->key, *err ? err : "section or key");
      else if (rc < 0)
        problem (problems, "%s:%d: [%s] %s: %s", path, kv->line, sec->name,
                 kv->key, err);
    }
  }
  if (!c->id)
    problem (problems, "%s:%d: [campaign]: missing key 'id'", path, cs->line);
  if (!c->n_channels && !ini_get (cs, "channels"))
    problem (problems, "%s:%d: [campaign]: missing key 'channels'", path,
             cs->line);
  if (!templates) {
    problem (problems, "%s:%d: [campaign]: missing key 'templates'", path,
             cs->line);
    goto fail;
  }
  if (!c->name)
    c->name = xstrdup (c->id ? c->id : "");
  if (problems->len == start && policy_finish (c->policy, err, sizeof err) < 0)
    problem (problems, "%s: %s", path, err);
  if (c->policy->timezone && !tz_valid (c->policy->timezone))
    problem (problems, "%s:%d: [quiet_hours] timezone: '%s' is not an IANA "
             "time zone", path,
             ini_line (ini_section (c->ini, "quiet_hours"), "timezone"),
             c->policy->timezone);

  load_set (&c->base, templates, path, tline, c->strict, problems);
  c->variant_sets = xcalloc (c->policy->n_variants + 1, sizeof *c->variant_sets);
  for (i = 0; i < c->policy->n_variants; i++) {
    const struct policy_variant *v = &c->policy->variants[i];
    if (v->templates) {
      char *sname = xasprintf ("variant.%s", v->name);
      const struct ini_section *vs = ini_section (c->ini, sname);
      char *dir = ini_path (c->ini, v->templates);
      load_set (&c->variant_sets[i], dir, path, ini_line (vs, "templates"),
                c->strict, problems);
      free (dir);
      free (sname);
    }
  }
  for (i = 0; i < c->n_channels; i++) {
    const char *kind = c->channels[i].kind;
    const struct config_kind *pk = config_kind_find (kind);
    struct strbuf need = STRBUF_INIT;
    size_t q;

    if (campaign_has_parts (c, NULL, kind))
      continue;
    for (q = 0; pk && pk->required[q]; q++)
      strbuf_addf (&need, "%s%s", q == 0 ? ""
                   : pk->required[q + 1] ? ", " : " and ", pk->required[q]);
    problem (problems, "%s:%d: [campaign] channels: %s: the templates in "
             "'%s' lack the parts it needs (%s)", path,
             ini_line (cs, "channels"), c->channels[i].conf->name,
             templates,
             pk ? need.s
             : strcmp (kind, "email") == 0
             ? "email.subject and email.html or email.text"
             : strcmp (kind, "sms") == 0 ? "sms.body"
             : strcmp (kind, "push") == 0 ? "push.body"
             : "webhook.body");
    strbuf_free (&need);
  }
  free (templates);
  templates = NULL;
  if (problems->len != start)
    goto fail;
  return c;

fail:
  free (templates);
  campaign_free (c);
  return NULL;
}

void
campaign_free (struct campaign *c)
{
  size_t i;

  if (!c)
    return;
  if (c->variant_sets) {
    for (i = 0; i < c->policy->n_variants; i++)
      free_set (&c->variant_sets[i]);
    free (c->variant_sets);
  }
  free_set (&c->base);
  for (i = 0; i < c->n_steps; i++)
    free_set (&c->steps[i].set);
  free (c->steps);
  for (i = 0; i < c->trigger.n_cancel_on; i++)
    free (c->trigger.cancel_on[i]);
  free (c->trigger.cancel_on);
  free (c->trigger.event);
  free (c->id);
  free (c->name);
  free (c->segment);
  liquid_expr_free (c->segment_expr);
  policy_free (c->policy);
  free (c->channels);
  ini_free (c->ini);
  free (c);
}

int
cmd_lint (int argc, char **argv)
{
  struct gateway *gw;
  struct campaign *c;
  struct strbuf pb = STRBUF_INIT;
  char err[2048];
  int i, rc = 0;

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    fprintf (argc < 2 ? stderr : stdout,
             "Usage: herald [-c GATEWAY.ini] lint CAMPAIGN.ini...\n\n"
             "Checks the gateway (each channel's plugin loads, carries its "
             "kind and\nknows its keys), then parses each campaign and all "
             "its templates;\nprints every problem as "
             "file:line[:col]: message.  Exit 0 when there is\nnone, 1 "
             "otherwise.  Warnings about the gateway (file:line: warning:\n"
             "...), such as a channel's dkim_domain not aligned with its "
             "From\ndomain, do not change the exit status.\n");
    return argc < 2 ? EXIT_USAGE : 0;
  }
  gw = config_gateway_load (main_config_path, err, sizeof err);
  if (!gw) {
    fprintf (stderr, "%s\n", err);
    return 1;
  }
  /* The gateway as run and serve will use it: every channel's plugin
   * loads, carries its kind and knows its keys.  Nothing is opened. */
  if (channel_check_gateway (gw, &pb) < 0) {
    fputs (pb.s, stderr);
    rc = 1;
  }
  /* Warnings about the gateway: printed, never failing the lint. */
  strbuf_reset (&pb);
  if (config_gateway_warnings (gw, &pb) > 0)
    fputs (pb.s, stderr);
  for (i = 1; i < argc; i++) {
    strbuf_reset (&pb);
    c = campaign_load (argv[i], gw, &pb);
    if (!c) {
      fputs (pb.s ? pb.s : "", stderr);
      rc = 1;
    }
    else {
      printf ("%s: ok (campaign %s, %zu channels, %zu variants", argv[i],
              c->id, c->n_channels, c->policy->n_variants);
      if (c->trigger.event)
        printf (", triggered by '%s'", c->trigger.event);
      if (c->n_steps)
        printf (", %zu steps", c->n_steps + 1);
      printf (")\n");
    }
    campaign_free (c);
  }
  strbuf_free (&pb);
  config_gateway_free (gw);
  return rc;
}
