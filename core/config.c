/* config: reads INI files through inih, keeping the line of every key,
 * and validates the gateway file.  Never ignores what it does not know:
 * an unknown section or key, a bad value or a too-long line is an error
 * naming file and line. */
#include <config.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herald/plugin.h"
#include "config.h"
#include "store.h"
#include "main.h"
#include "util.h"

/* Longest line we accept.  inih's default (200) would cut provider URLs. */
#define INI_LINE_MAX 8192
/* inih copies a section name into a buffer of its own MAX_SECTION (50)
 * bytes, which it does not export: a longer name was cut, its keys went to
 * the cut name and the error named the whole one ("missing key 'plugin'"
 * of a section that had it). */
#define INI_SECTION_MAX 49

struct ini_reader {
  const char *p, *end;
  int line;
  int too_long;              /* number of the first too-long line, or 0 */
  int long_section;          /* the first too-long section name's, or 0 */
  struct ini_section *heads; /* every [section] header seen, with line */
  size_t n_heads;
};

struct ini_state {
  struct ini *ini;
  struct ini_reader *rd;
  char *err;
  size_t errlen;
  int failed;
};

/* inih reads through this so that we know the current line number, see
 * every section header (an empty unknown section is still an error), and
 * refuse a line longer than the buffer instead of cutting it. */
static char *
ini_read_line (char *str, int num, void *stream)
{
  struct ini_reader *rd = stream;
  const char *nl, *s;
  size_t n, copy;

  if (rd->p >= rd->end)
    return NULL;
  nl = memchr (rd->p, '\n', (size_t) (rd->end - rd->p));
  n = nl ? (size_t) (nl - rd->p) + 1 : (size_t) (rd->end - rd->p);
  rd->line++;
  copy = n;
  if (n >= (size_t) num) {
    if (!rd->too_long)
      rd->too_long = rd->line;
    copy = (size_t) num - 1;
  }
  memcpy (str, rd->p, copy);
  str[copy] = '\0';
  rd->p += n;

  for (s = str; *s == ' ' || *s == '\t'; s++)
    ;
  if (*s == '[') {
    const char *e = strchr (s, ']');
    if (e) {
      rd->heads = xrealloc (rd->heads, (rd->n_heads + 1) * sizeof *rd->heads);
      memset (&rd->heads[rd->n_heads], 0, sizeof *rd->heads);
      rd->heads[rd->n_heads].name = xstrndup (s + 1, (size_t) (e - s - 1));
      rd->heads[rd->n_heads].line = rd->line;
      rd->n_heads++;
      if ((size_t) (e - s - 1) > INI_SECTION_MAX && !rd->long_section)
        rd->long_section = rd->line;
    }
  }
  return str;
}

/* Why TEXT cannot be a section name or key (NAME), or a value, or NULL
 * when it can.  An INI file is UTF-8 text: a value that is not would
 * reach a template, a header or a terminal as bytes nobody wrote on
 * purpose.  A name is also printed as it is (a channel's name in run's
 * summary and in logs): it holds no control character either.  A value
 * may (a plugin must cope with a CR in a From line), and every message
 * that quotes one escapes it. */
static const char *
ini_text_problem (const char *text, int name)
{
  size_t len = strlen (text), i;
  const unsigned char *p = (const unsigned char *) text;

  if (utf8_check (text, len) != len)
    return "is not UTF-8 text";
  for (i = 0; name && i < len; i++)
    if (p[i] < 0x20 || p[i] == 0x7f
        /* C1 controls, U+0080..U+009F: C2 80..C2 9F in UTF-8. */
        || (p[i] == 0xc2 && i + 1 < len && p[i + 1] <= 0x9f))
      return "holds a control character";
  return NULL;
}

/* The first section name, key or value of INI that is not UTF-8 text,
 * or name that holds a control character, as "FILE:LINE: ..." in ERR.
 * 0 or -1. */
static int
ini_check_text (const struct ini *ini, char *err, size_t errlen)
{
  const char *why;
  size_t i, j;

  for (i = 0; i < ini->n; i++) {
    const struct ini_section *sec = &ini->sec[i];
    if ((why = ini_text_problem (sec->name, 1))) {
      snprintf (err, errlen, "%s:%d: section name '%s' %s", ini->path,
                sec->line, sec->name, why);
      return -1;
    }
    for (j = 0; j < sec->n; j++) {
      const struct ini_kv *kv = &sec->kv[j];
      if ((why = ini_text_problem (kv->key, 1))) {
        snprintf (err, errlen, "%s:%d: [%s] key '%s' %s", ini->path,
                  kv->line, sec->name, kv->key, why);
        return -1;
      }
      if ((why = ini_text_problem (kv->value, 0))) {
        snprintf (err, errlen, "%s:%d: [%s] %s: '%s' %s", ini->path, kv->line,
                  sec->name, kv->key, kv->value, why);
        return -1;
      }
    }
  }
  return 0;
}

static struct ini_section *
ini_add_section (struct ini *ini, const char *name, int line)
{
  struct ini_section *sec;

  ini->sec = xrealloc (ini->sec, (ini->n + 1) * sizeof *ini->sec);
  sec = &ini->sec[ini->n++];
  memset (sec, 0, sizeof *sec);
  sec->name = xstrdup (name);
  sec->line = line;
  return sec;
}

static int
config_ini_handler (void *user, const char *section, const char *name,
             const char *value)
{
  struct ini_state *st = user;
  struct ini *ini = st->ini;
  struct ini_section *sec = NULL;
  size_t i;

  if (st->failed)
    return 0;
  if (!*section) {
    snprintf (st->err, st->errlen, "%s:%d: %s: key outside of any [section]",
              ini->path, st->rd->line, name);
    st->failed = 1;
    return 0;
  }
  for (i = ini->n; i > 0; i--)
    if (strcmp (ini->sec[i - 1].name, section) == 0) {
      sec = &ini->sec[i - 1];
      break;
    }
  if (!sec)
    sec = ini_add_section (ini, section,
                           st->rd->n_heads ? st->rd->heads[st->rd->n_heads - 1].line
                                           : st->rd->line);
  for (i = 0; i < sec->n; i++)
    if (strcmp (sec->kv[i].key, name) == 0) {
      snprintf (st->err, st->errlen,
                "%s:%d: [%s] %s: duplicate key (first set on line %d)",
                ini->path, st->rd->line, section, name, sec->kv[i].line);
      st->failed = 1;
      return 0;
    }
  sec->kv = xrealloc (sec->kv, (sec->n + 1) * sizeof *sec->kv);
  sec->kv[sec->n].key = xstrdup (name);
  sec->kv[sec->n].value = xstrdup (value ? value : "");
  sec->kv[sec->n].line = st->rd->line;
  sec->n++;
  return 1;
}

struct ini *
ini_load (const char *path, char *err, size_t errlen)
{
  struct ini *ini = xcalloc (1, sizeof *ini);
  struct ini_reader rd = { 0 };
  struct ini_state st = { 0 };
  char *text = NULL, *slash;
  size_t len = 0, i, j;
  int rc;

  ini->path = xstrdup (path);
  ini->dir = xstrdup (path);
  slash = strrchr (ini->dir, '/');
  if (slash)
    slash[slash == ini->dir ? 1 : 0] = '\0';
  else {
    free (ini->dir);
    ini->dir = xstrdup (".");
  }
  text = slurp_file (path, &len);
  if (!text) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto fail;
  }
  if (memchr (text, '\0', len)) {
    snprintf (err, errlen, "%s: contains a NUL byte: not a text file", path);
    goto fail;
  }

#if HAVE_DECL_INI_MAX_LINE
  ini_max_line = INI_LINE_MAX;
#endif
  /* A continuation line would silently join values: refuse it instead. */
  ini_allow_multiline = false;
  ini_stop_on_first_error = true;
  rd.p = text;
  rd.end = text + len;
  st.ini = ini;
  st.rd = &rd;
  st.err = err;
  st.errlen = errlen;
  rc = ini_parse_stream (ini_read_line, &rd, config_ini_handler, &st);
  if (rd.too_long && (!st.failed || rd.too_long < rc)) {
    snprintf (err, errlen, "%s:%d: line longer than %d bytes", path,
              rd.too_long, INI_LINE_MAX - 2);
    goto fail;
  }
  if (rd.long_section) {
    snprintf (err, errlen, "%s:%d: section name longer than %d bytes", path,
              rd.long_section, INI_SECTION_MAX);
    goto fail;
  }
  if (st.failed)
    goto fail;
  if (rc != 0) {
    snprintf (err, errlen, "%s:%d: syntax error (expected [section] or "
              "key = value)", path, rc);
    goto fail;
  }
  /* Sections with no keys never reach the handler: add them, so an
   * unknown empty section is reported like any other. */
  for (i = 0; i < rd.n_heads; i++) {
    for (j = 0; j < ini->n; j++)
      if (strcmp (ini->sec[j].name, rd.heads[i].name) == 0)
        break;
    if (j == ini->n)
      ini_add_section (ini, rd.heads[i].name, rd.heads[i].line);
  }
  if (ini_check_text (ini, err, errlen) < 0)
    goto fail;
  for (i = 0; i < rd.n_heads; i++)
    free (rd.heads[i].name);
  free (rd.heads);
  free (text);
  return ini;

fail:
  /* The message quotes what the file holds. */
  escape_in_place (err, errlen);
  for (i = 0; i < rd.n_heads; i++)
    free (rd.heads[i].name);
  free (rd.heads);
  free (text);
  ini_free (ini);
  return NULL;
}

void
ini_free (struct ini *ini)
{
  size_t i, j;

  if (!ini)
    return;
  for (i = 0; i < ini->n; i++) {
    for (j = 0; j < ini->sec[i].n; j++) {
      free (ini->sec[i].kv[j].key);
      free (ini->sec[i].kv[j].value);
    }
    free (ini->sec[i].kv);
    free (ini->sec[i].name);
  }
  free (ini->sec);
  free (ini->path);
  free (ini->dir);
  free (ini);
}

const struct ini_section *
ini_section (const struct ini *ini, const char *name)
{
  size_t i;

  for (i = 0; i < ini->n; i++)
    if (strcmp (ini->sec[i].name, name) == 0)
      return &ini->sec[i];
  return NULL;
}

const char *
ini_get (const struct ini_section *sec, const char *key)
{
  size_t i;

  if (!sec)
    return NULL;
  for (i = 0; i < sec->n; i++)
    if (strcmp (sec->kv[i].key, key) == 0)
      return sec->kv[i].value;
  return NULL;
}

int
ini_line (const struct ini_section *sec, const char *key)
{
  size_t i;

  if (!sec)
    return 0;
  for (i = 0; i < sec->n; i++)
    if (strcmp (sec->kv[i].key, key) == 0)
      return sec->kv[i].line;
  return 0;
}

char *
ini_path (const struct ini *ini, const char *path)
{
  if (path[0] == '/' || strcmp (ini->dir, ".") == 0)
    return xstrdup (path);
  return xasprintf ("%s/%s", ini->dir, path);
}

int
config_kind_builtin (const char *kind)
{
  return strcmp (kind, "email") == 0 || strcmp (kind, "sms") == 0
         || strcmp (kind, "push") == 0 || strcmp (kind, "webhook") == 0;
}

/* The plugin kinds, in the order they were registered.  Registered from
 * the loader, which runs on the main thread before any sender thread. */
static struct config_kind *plugin_kinds;
static size_t n_plugin_kinds;

int (*config_kind_finder) (const char *plugin_dir, const char *plugin,
                           const char *kind);

const struct config_kind *
config_kind_find (const char *kind)
{
  size_t i;

  for (i = 0; i < n_plugin_kinds; i++)
    if (strcmp (plugin_kinds[i].name, kind) == 0)
      return &plugin_kinds[i];
  return NULL;
}

int
config_kind_valid (const char *kind)
{
  return config_kind_builtin (kind) || config_kind_find (kind) != NULL;
}

static char **
strv_dup (const char *const *v)
{
  size_t n = 0, i;
  char **out;

  while (v && v[n])
    n++;
  out = xcalloc (n + 1, sizeof *out);
  for (i = 0; i < n; i++)
    out[i] = xstrdup (v[i]);
  return out;
}

void
config_kind_register (const char *plugin,
                      const struct herald_kind *const *kinds)
{
  size_t i;

  for (i = 0; kinds && kinds[i]; i++) {
    struct config_kind *k;
    if (config_kind_valid (kinds[i]->name))
      continue;
    plugin_kinds = xrealloc (plugin_kinds,
                             (n_plugin_kinds + 1) * sizeof *plugin_kinds);
    k = &plugin_kinds[n_plugin_kinds++];
    k->name = xstrdup (kinds[i]->name);
    k->plugin = xstrdup (plugin);
    k->address_field = xstrdup (kinds[i]->address_field);
    k->required = strv_dup (kinds[i]->required_parts);
    k->optional = strv_dup (kinds[i]->optional_parts);
    /* Members appended to struct herald_kind: only when the plugin's
     * struct has them. */
    k->json = strv_dup (HERALD_HAS (kinds[i], json_parts)
                        ? kinds[i]->json_parts : NULL);
    k->html = strv_dup (HERALD_HAS (kinds[i], html_parts)
                        ? kinds[i]->html_parts : NULL);
  }
}

static int
strv_has (char *const *v, const char *s)
{
  size_t i;

  for (i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return 1;
  return 0;
}

int
config_kind_part_json (const char *part)
{
  size_t i;

  for (i = 0; i < n_plugin_kinds; i++)
    if (strv_has (plugin_kinds[i].json, part))
      return 1;
  return 0;
}

int
config_kind_part_html (const char *part)
{
  size_t i;

  for (i = 0; i < n_plugin_kinds; i++)
    if (strv_has (plugin_kinds[i].html, part))
      return 1;
  return 0;
}

void
config_kinds_list (struct strbuf *out)
{
  size_t i;

  strbuf_adds (out, "email, sms, push, webhook");
  for (i = 0; i < n_plugin_kinds; i++)
    strbuf_addf (out, ", %s", plugin_kinds[i].name);
}

void
config_kind_parts_list (struct strbuf *out)
{
  size_t i, j;

  for (i = 0; i < n_plugin_kinds; i++) {
    for (j = 0; plugin_kinds[i].required[j]; j++)
      strbuf_addf (out, ", %s", plugin_kinds[i].required[j]);
    for (j = 0; plugin_kinds[i].optional[j]; j++)
      strbuf_addf (out, ", %s", plugin_kinds[i].optional[j]);
  }
}

int
config_kind_part (const char *part)
{
  size_t i, j;

  for (i = 0; i < n_plugin_kinds; i++) {
    for (j = 0; plugin_kinds[i].required[j]; j++)
      if (strcmp (plugin_kinds[i].required[j], part) == 0)
        return 1;
    for (j = 0; plugin_kinds[i].optional[j]; j++)
      if (strcmp (plugin_kinds[i].optional[j], part) == 0)
        return 1;
  }
  return 0;
}

const char *
config_gateway_path (const char *path)
{
  static const char local[] = "etc/herald.ini";

  if (path)
    return path;
  if (access (local, F_OK) == 0)
    return local;
  return HERALD_SYSCONFDIR "/herald.ini";
}

/* Whether V can go between the angle brackets of a List-Unsubscribe
 * header (RFC 2369 section 2), as plugins/common/mime.c writes base_url's
 * unsubscribe link and unsubscribe_mailto into every e-mail: visible
 * ASCII, no '<' or '>'.  A CR or a '>' let through here made every
 * e-mail fail at send time (fuzz_gateway). */
static int
header_text_ok (const char *v)
{
  for (; *v; v++)
    if ((unsigned char) *v <= ' ' || (unsigned char) *v >= 0x7f || *v == '<'
        || *v == '>')
      return 0;
  return 1;
}

/* Report an unknown key of SEC that is not in KNOWN (NULL-terminated). */
static int
check_keys (const struct ini *ini, const struct ini_section *sec,
            const char *const *known, char *err, size_t errlen)
{
  size_t i;
  int k;

  for (i = 0; i < sec->n; i++) {
    for (k = 0; known[k]; k++)
      if (strcmp (sec->kv[i].key, known[k]) == 0)
        break;
    if (!known[k]) {
      snprintf (err, errlen, "%s:%d: [%s] %s: unknown key", ini->path,
                sec->kv[i].line, sec->name, sec->kv[i].key);
      return -1;
    }
  }
  return 0;
}

/* [channel.NAME] warmup and warmup_start into CH.  0, or -1 with ERR. */
static int
parse_warmup (struct channel_conf *ch, const struct ini_section *sec,
              const char *path, char *err, size_t errlen)
{
  const char *v = ini_get (sec, "warmup");
  const char *start = ini_get (sec, "warmup_start");
  char *end;
  long n;

  ch->warmup_factor = 1;
  if (!v) {
    if (start) {
      snprintf (err, errlen, "%s:%d: [%s] warmup_start: without warmup",
                path, ini_line (sec, "warmup_start"), sec->name);
      return -1;
    }
    return 0;
  }
  errno = 0;
  n = strtol (v, &end, 10);
  if (errno || n < 1 || n > 100000000 || strncmp (end, "/d", 2) != 0)
    goto bad;
  end += 2;
  while (*end == ' ' || *end == '\t')
    end++;
  if (*end == '\0')
    ;
  else if (strcmp (end, "doubling") == 0)
    ch->warmup_factor = 2;
  else if (*end == 'x' || *end == '+') {
    char *e2;
    errno = 0;
    if (*end == 'x') {
      ch->warmup_factor = strtod (end + 1, &e2);
      if (errno || e2 == end + 1 || *e2 || !(ch->warmup_factor >= 1)
          || ch->warmup_factor > 10)
        goto bad;
    }
    else {
      ch->warmup_step = strtol (end + 1, &e2, 10);
      if (errno || e2 == end + 1 || *e2 || ch->warmup_step < 1
          || ch->warmup_step > 100000000)
        goto bad;
    }
  }
  else
    goto bad;
  ch->warmup_n = n;
  ch->warmup_spec = xstrdup (v);
  if (!start) {
    snprintf (err, errlen, "%s:%d: [%s] warmup: needs warmup_start = "
              "YYYY-MM-DD, the first day of the warm-up", path,
              ini_line (sec, "warmup"), sec->name);
    return -1;
  }
  {
    char t[32];
    if (strlen (start) != 10
        || (snprintf (t, sizeof t, "%sT00:00:00Z", start),
            parse_rfc3339 (t, &ch->warmup_start) < 0)) {
      snprintf (err, errlen, "%s:%d: [%s] warmup_start: '%s' is not a date "
                "like 2026-12-07", path, ini_line (sec, "warmup_start"),
                sec->name, start);
      return -1;
    }
  }
  return 0;

bad:
  snprintf (err, errlen, "%s:%d: [%s] warmup: '%s' is not N/d, N/d doubling, "
            "N/d xF (F from 1 to 10) or N/d +M (e.g. 200/d doubling)", path,
            ini_line (sec, "warmup"), sec->name, v);
  return -1;
}

long
config_warmup_cap (const struct channel_conf *cc, int64_t now)
{
  int64_t day;
  double cap;

  if (cc->warmup_n <= 0)
    return LONG_MAX;
  day = now < cc->warmup_start ? 0 : (now - cc->warmup_start) / 86400;
  if (cc->warmup_factor > 1)
    cap = (double) cc->warmup_n * pow (cc->warmup_factor, (double) day);
  else
    cap = (double) cc->warmup_n + (double) cc->warmup_step * (double) day;
  return cap >= 1e12 ? LONG_MAX : (long) cap;
}

struct gateway *
config_gateway_load (const char *path, char *err, size_t errlen)
{
  static const char *const store_keys[] = { "path", "url", "password_file",
                                            "lease", NULL };
  static const char *const plugins_keys[] = { "dir", NULL };
  static const char *const bounces_keys[] = { "soft_limit", "soft_window",
                                              "max_complaint_rate",
                                              "max_bounce_rate", NULL };
  static const char *const tracking_keys[] = { "base_url", "secret",
                                               "unsubscribe_mailto", "listen",
                                               "events_token",
                                               "connections_per_client",
                                               "text_links", "machine_window",
                                               "metrics_token", NULL };
  struct gateway *gw = xcalloc (1, sizeof *gw);
  const struct ini_section *sec;
  const char *v;
  size_t i;

  gw->tracking_per_client = -1;      /* serve's default */
  path = config_gateway_path (path);
  gw->ini = ini_load (path, err, errlen);
  if (!gw->ini)
    goto fail;
  for (i = 0; i < gw->ini->n; i++) {
    sec = &gw->ini->sec[i];
    if (strcmp (sec->name, "store") == 0) {
      if (check_keys (gw->ini, sec, store_keys, err, errlen) < 0)
        goto fail;
    }
    else if (strcmp (sec->name, "plugins") == 0) {
      if (check_keys (gw->ini, sec, plugins_keys, err, errlen) < 0)
        goto fail;
    }
    else if (strcmp (sec->name, "tracking") == 0) {
      if (check_keys (gw->ini, sec, tracking_keys, err, errlen) < 0)
        goto fail;
    }
    else if (strcmp (sec->name, "bounces") == 0) {
      if (check_keys (gw->ini, sec, bounces_keys, err, errlen) < 0)
        goto fail;
    }
    else if (strncmp (sec->name, "channel.", 8) == 0 && sec->name[8]) {
      struct channel_conf *ch;
      const char *name = sec->name + 8;

      v = ini_get (sec, "plugin");
      if (!v || !*v) {
        snprintf (err, errlen, "%s:%d: [%s]: missing key 'plugin'",
                  path, sec->line, sec->name);
        goto fail;
      }
      gw->channels = xrealloc (gw->channels,
                               (gw->n_channels + 1) * sizeof *gw->channels);
      ch = &gw->channels[gw->n_channels++];
      memset (ch, 0, sizeof *ch);
      ch->name = xstrdup (name);
      ch->plugin = xstrdup (v);
      ch->sec = sec;
      v = ini_get (sec, "kind");
      if (!v)
        v = name;
      /* A kind of a plugin's is checked below, once [plugins] dir is
       * known, wherever it is in the file. */
      ch->kind = xstrdup (v);
      ch->lanes = 1;
      v = ini_get (sec, "lanes");
      if (v) {
        int64_t n;
        if (parse_int64 (v, 1, CONFIG_MAX_LANES, &n) < 0) {
          snprintf (err, errlen, "%s:%d: [%s] lanes: '%s' is not a number "
                    "from 1 to %d", path, ini_line (sec, "lanes"), sec->name,
                    v, CONFIG_MAX_LANES);
          goto fail;
        }
        ch->lanes = (int) n;
      }
      ch->send_timeout = CONFIG_SEND_TIMEOUT;
      v = ini_get (sec, "send_timeout");
      if (v && (parse_duration (v, &ch->send_timeout) < 0
                || ch->send_timeout < 1 || ch->send_timeout > 86400)) {
        snprintf (err, errlen, "%s:%d: [%s] send_timeout: '%s' is not a "
                  "duration from 1s to 1d (e.g. 300s, 5m)", path,
                  ini_line (sec, "send_timeout"), sec->name, v);
        goto fail;
      }
      if (parse_warmup (ch, sec, path, err, errlen) < 0)
        goto fail;
      v = ini_get (sec, "track_links");
      if (v && parse_bool (v, &ch->track_links) < 0) {
        snprintf (err, errlen, "%s:%d: [%s] track_links: '%s' is not yes or "
                  "no", path, ini_line (sec, "track_links"), sec->name, v);
        goto fail;
      }
      /* Only SMS has short links: an e-mail's are tracked by [tracking]
       * base_url alone, and push and webhook bodies are not text a person
       * reads as it is. */
      if (ch->track_links && strcmp (ch->kind, "sms") != 0) {
        snprintf (err, errlen, "%s:%d: [%s] track_links: only a channel of "
                  "kind sms takes it (this one is %s; e-mail links are "
                  "tracked with [tracking] base_url alone)", path,
                  ini_line (sec, "track_links"), sec->name, ch->kind);
        goto fail;
      }
    }
    else {
      snprintf (err, errlen, "%s:%d: [%s]: unknown section (expected store, "
                "plugins, tracking, bounces or channel.NAME)", path,
                sec->line, sec->name);
      goto fail;
    }
  }

  sec = ini_section (gw->ini, "store");
  v = ini_get (sec, "url");
  if (v && *v) {
    /* PostgreSQL: a URL, or a libpq keyword=value string. */
    if (ini_get (sec, "path")) {
      snprintf (err, errlen, "%s:%d: [store] url: give url or path, not "
                "both (url is PostgreSQL, path an SQLite file)", path,
                ini_line (sec, "url"));
      goto fail;
    }
    if (!store_location_is_url (v) && !strchr (v, '=')) {
      snprintf (err, errlen, "%s:%d: [store] url: '%s' is neither a "
                "postgresql:// URL nor a libpq connection string "
                "(host=... dbname=...)", path, ini_line (sec, "url"), v);
      goto fail;
    }
    gw->store_path = store_location_is_url (v)
                     ? xstrdup (v) : xasprintf ("pg:%s", v);
  }
  else {
    v = ini_get (sec, "path");
    gw->store_path = ini_path (gw->ini, v && *v ? v : "var/herald.db");
  }
  v = ini_get (sec, "password_file");
  if (v && *v) {
    char *pf = ini_path (gw->ini, v), line[1024];
    FILE *fp = fopen (pf, "re");
    if (!fp || !fgets (line, sizeof line, fp)) {
      snprintf (err, errlen, "%s:%d: [store] password_file: cannot read "
                "'%s': %s", path, ini_line (sec, "password_file"), pf,
                fp ? "it is empty" : strerror (errno));
      if (fp)
        fclose (fp);
      free (pf);
      goto fail;
    }
    fclose (fp);
    free (pf);
    line[strcspn (line, "\r\n")] = '\0';
    /* libpq reads it from the environment when the URL has none. */
    setenv ("PGPASSWORD", line, 1);
    explicit_bzero (line, sizeof line);
  }
  gw->store_lease = 60;
  v = ini_get (sec, "lease");
  if (v && (parse_duration (v, &gw->store_lease) < 0 || gw->store_lease < 2
            || gw->store_lease > 3600)) {
    snprintf (err, errlen, "%s:%d: [store] lease: '%s' is not a duration "
              "from 2s to 1h (e.g. 60s)", path, ini_line (sec, "lease"), v);
    goto fail;
  }
  sec = ini_section (gw->ini, "plugins");
  v = ini_get (sec, "dir");
  if (v && *v)
    gw->plugin_dir = ini_path (gw->ini, v);
  for (i = 0; i < gw->n_channels; i++) {
    const struct channel_conf *ch = &gw->channels[i];
    struct strbuf known = STRBUF_INIT;

    if (config_kind_valid (ch->kind)
        || (config_kind_finder
            && config_kind_finder (gw->plugin_dir, ch->plugin, ch->kind)))
      continue;
    config_kinds_list (&known);
    if (ini_get (ch->sec, "kind"))
      snprintf (err, errlen, "%s:%d: [%s] kind: '%s' is not one of %s (nor "
                "a kind a plugin of the plugin folders declares)", path,
                ini_line (ch->sec, "kind"), ch->sec->name, ch->kind, known.s);
    else
      snprintf (err, errlen, "%s:%d: [%s]: channel name is not a kind "
                "(%s): add 'kind = ...'", path, ch->sec->line, ch->sec->name,
                known.s);
    strbuf_free (&known);
    goto fail;
  }
  sec = ini_section (gw->ini, "tracking");
  v = ini_get (sec, "base_url");
  if (v && *v) {
    size_t n = strlen (v);
    if ((strncmp (v, "https://", 8) != 0 && strncmp (v, "http://", 7) != 0)
        || !header_text_ok (v)) {
      snprintf (err, errlen, "%s:%d: [tracking] base_url: '%s' is not an "
                "http(s) URL%s", path, ini_line (sec, "base_url"), v,
                header_text_ok (v) ? "" : " (visible ASCII, without spaces, "
                "'<' or '>')");
      goto fail;
    }
    while (n > 0 && v[n - 1] == '/')
      n--;
    gw->tracking_base_url = xstrndup (v, n);
  }
  v = ini_get (sec, "secret");
  if (v && *v) {
    if (strlen (v) < 16) {
      snprintf (err, errlen, "%s:%d: [tracking] secret: too short (at least "
                "16 characters)", path, ini_line (sec, "secret"));
      goto fail;
    }
    gw->tracking_secret = xstrdup (v);
  }
  v = ini_get (sec, "unsubscribe_mailto");
  if (v && *v) {
    if (!strchr (v, '@') || !header_text_ok (v)) {
      snprintf (err, errlen, "%s:%d: [tracking] unsubscribe_mailto: '%s' is "
                "not an e-mail address%s", path,
                ini_line (sec, "unsubscribe_mailto"), v,
                header_text_ok (v) ? "" : " (visible ASCII, without spaces, "
                "'<' or '>')");
      goto fail;
    }
    gw->unsubscribe_mailto = xstrdup (v);
  }
  if (gw->tracking_base_url && !gw->tracking_secret) {
    snprintf (err, errlen, "%s:%d: [tracking] base_url: needs [tracking] "
              "secret, which signs the unsubscribe and tracking links", path,
              ini_line (sec, "base_url"));
    goto fail;
  }
  /* After [tracking], wherever it is in the file. */
  for (i = 0; i < gw->n_channels; i++)
    if (gw->channels[i].track_links && !gw->tracking_base_url) {
      snprintf (err, errlen, "%s:%d: [%s] track_links: needs [tracking] "
                "base_url, under which herald serve answers the short links",
                path, ini_line (gw->channels[i].sec, "track_links"),
                gw->channels[i].sec->name);
      goto fail;
    }
  v = ini_get (sec, "text_links");
  if (v && parse_bool (v, &gw->tracking_text_links) < 0) {
    snprintf (err, errlen, "%s:%d: [tracking] text_links: '%s' is not yes or "
              "no", path, ini_line (sec, "text_links"), v);
    goto fail;
  }
  gw->tracking_machine_window = 2;
  v = ini_get (sec, "machine_window");
  if (v && (parse_duration (v, &gw->tracking_machine_window) < 0
            || gw->tracking_machine_window > 86400)) {
    snprintf (err, errlen, "%s:%d: [tracking] machine_window: '%s' is not a "
              "duration of at most a day (e.g. 2s, 1m; 0 turns the rule "
              "off)", path, ini_line (sec, "machine_window"), v);
    goto fail;
  }
  /* herald serve's keys: checked here, so that lint and every command
   * say what is wrong, not serve alone. */
  v = ini_get (sec, "listen");
  if (v) {
    struct sockaddr_storage sa;
    socklen_t salen;
    if (parse_listen_addr (v, &sa, &salen) < 0) {
      snprintf (err, errlen, "%s:%d: [tracking] listen: '%s' is not HOST:PORT "
                "with a numeric address (127.0.0.1:8025, [::1]:8025)", path,
                ini_line (sec, "listen"), v);
      goto fail;
    }
  }
  v = ini_get (sec, "connections_per_client");
  if (v) {
    if (parse_int64 (v, 0, 100000, &gw->tracking_per_client) < 0) {
      snprintf (err, errlen, "%s:%d: [tracking] connections_per_client: '%s' "
                "is not a number from 0 (no limit) to 100000", path,
                ini_line (sec, "connections_per_client"), v);
      goto fail;
    }
  }
  v = ini_get (sec, "events_token");
  if (v && strlen (v) < 16) {
    snprintf (err, errlen, "%s:%d: [tracking] events_token: too short (at "
              "least 16 characters)", path, ini_line (sec, "events_token"));
    goto fail;
  }
  v = ini_get (sec, "metrics_token");
  if (v) {
    const char *p;
    /* It travels as "Authorization: Bearer TOKEN" (RFC 6750 section
     * 2.1): a space or a control character could never arrive as it
     * was written. */
    for (p = v; *p > ' ' && *p < 0x7f; p++)
      ;
    if (strlen (v) < 16 || *p) {
      snprintf (err, errlen, "%s:%d: [tracking] metrics_token: %s", path,
                ini_line (sec, "metrics_token"),
                *p ? "only visible ASCII characters, no spaces"
                   : "too short (at least 16 characters)");
      goto fail;
    }
    gw->tracking_metrics_token = xstrdup (v);
  }
  /* herald bounces import: soft bounces (4.x.x) suppress an address only
   * when they repeat, since a full mailbox or a greylisting server is
   * usually fine again the next week. */
  sec = ini_section (gw->ini, "bounces");
  gw->bounces_soft_limit = 3;
  gw->bounces_soft_window = 7 * 86400;
  v = ini_get (sec, "soft_limit");
  if (v) {
    int64_t n;
    if (parse_int64 (v, 0, 1000, &n) < 0) {
      snprintf (err, errlen, "%s:%d: [bounces] soft_limit: '%s' is not a "
                "number from 0 to 1000 (0: soft bounces never suppress)",
                path, ini_line (sec, "soft_limit"), v);
      goto fail;
    }
    gw->bounces_soft_limit = (int) n;
  }
  v = ini_get (sec, "soft_window");
  if (v && (parse_duration (v, &gw->bounces_soft_window) < 0
            || gw->bounces_soft_window < 1
            || gw->bounces_soft_window > 366 * 86400)) {
    snprintf (err, errlen, "%s:%d: [bounces] soft_window: '%s' is not a "
              "duration from 1s to 366d (e.g. 7d, 72h)", path,
              ini_line (sec, "soft_window"), v);
    goto fail;
  }
  /* herald run's guard rails: since 2024 Gmail and Yahoo reject bulk
   * mail from senders whose complaint rate passes 0.3%. */
  {
    static const char *const keys[] = { "max_complaint_rate",
                                        "max_bounce_rate" };
    double *dst[] = { &gw->max_complaint_rate, &gw->max_bounce_rate };
    int k;

    gw->max_complaint_rate = 0.003;
    gw->max_bounce_rate = 0.05;
    for (k = 0; k < 2; k++) {
      char *end = NULL;
      double d;

      if (!(v = ini_get (sec, keys[k])))
        continue;
      d = strtod (v, &end);
      if (end == v || strcmp (end, "%") != 0 || !(d >= 0 && d <= 100)) {
        snprintf (err, errlen, "%s:%d: [bounces] %s: '%s' is not a "
                  "percentage from 0%% to 100%% (e.g. 0.3%%)", path,
                  ini_line (sec, keys[k]), keys[k], v);
        goto fail;
      }
      *dst[k] = d / 100.0;
    }
  }
  return gw;

fail:
  escape_in_place (err, errlen);    /* it may quote the file's values */
  config_gateway_free (gw);
  return NULL;
}

void
config_gateway_free (struct gateway *gw)
{
  size_t i;

  if (!gw)
    return;
  for (i = 0; i < gw->n_channels; i++) {
    free (gw->channels[i].name);
    free (gw->channels[i].plugin);
    free (gw->channels[i].kind);
    free (gw->channels[i].warmup_spec);
  }
  free (gw->channels);
  free (gw->store_path);
  free (gw->plugin_dir);
  free (gw->tracking_base_url);
  free (gw->tracking_secret);
  free (gw->unsubscribe_mailto);
  free (gw->tracking_metrics_token);
  ini_free (gw->ini);
  free (gw);
}

/* The domain of the address in a From value ("Name <local@domain>",
 * "<local@domain>" or "local@domain"): a pointer into FROM and its length
 * in *LEN_R, or NULL when there is none. */
static const char *
from_domain (const char *from, size_t *len_r)
{
  const char *lt = strrchr (from, '<'), *at, *end;

  if (lt) {
    end = strchr (lt, '>');
    if (!end)
      return NULL;
  } else {
    lt = from;
    end = from + strlen (from);
  }
  at = NULL;
  for (const char *p = lt; p < end; p++)
    if (*p == '@')
      at = p;
  if (!at)
    return NULL;
  at++;
  while (end > at && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (end == at)
    return NULL;
  *len_r = (size_t) (end - at);
  return at;
}

/* Relaxed alignment without the Public Suffix List: A[0..ALEN) equals B,
 * or ends in "." B, or the reverse; ASCII case is ignored (RFC 1035
 * section 2.3.3).  Two sibling subdomains (a.example.com, b.example.com)
 * share an organisational domain under DMARC but are not aligned here:
 * the warning then errs on the side of saying something. */
static int
domains_aligned (const char *a, size_t alen, const char *b, size_t blen)
{
  if (alen < blen) {
    const char *t = a;
    size_t tl = alen;
    a = b;
    alen = blen;
    b = t;
    blen = tl;
  }
  if (strncasecmp (a + alen - blen, b, blen) != 0)
    return 0;
  return alen == blen || a[alen - blen - 1] == '.';
}

size_t
config_gateway_warnings (const struct gateway *gw, struct strbuf *out)
{
  struct strbuf line = STRBUF_INIT;
  size_t i, n = 0;

  for (i = 0; i < gw->n_channels; i++) {
    const struct ini_section *sec = gw->channels[i].sec;
    const char *d = ini_get (sec, "dkim_domain"), *from = ini_get (sec, "from");
    const char *fd;
    size_t fdlen = 0, dlen;

    if (!d || !*d || !from)
      continue;
    fd = from_domain (from, &fdlen);
    if (!fd)
      continue;            /* the plugin refuses such a from at open */
    dlen = strlen (d);
    while (dlen > 0 && d[dlen - 1] == '.')
      dlen--;
    if (domains_aligned (d, dlen, fd, fdlen))
      continue;
    /* One line: the values quoted may hold a CR (fuzz_gateway). */
    strbuf_addf (&line, "%s:%d: warning: [%s] dkim_domain: '%s' is not aligned "
                 "with the From domain '%.*s' of line %d: DMARC receivers "
                 "will not count this DKIM signature for the From domain "
                 "(relaxed alignment: one must be the other or a subdomain "
                 "of it)", gw->ini->path, ini_line (sec, "dkim_domain"),
                 sec->name, d, (int) fdlen, fd, ini_line (sec, "from"));
    strbuf_add_escaped (out, line.s, line.len);
    strbuf_addc (out, '\n');
    strbuf_reset (&line);
    n++;
  }
  strbuf_free (&line);
  return n;
}

const struct channel_conf *
config_channel (const struct gateway *gw, const char *name)
{
  size_t i;

  for (i = 0; i < gw->n_channels; i++)
    if (strcmp (gw->channels[i].name, name) == 0)
      return &gw->channels[i];
  return NULL;
}

/* Set by main from -c; NULL means the default gateway file. */
const char *main_config_path;
