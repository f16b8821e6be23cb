/* plugin-run: drives one channel plugin without the rest of the core, for
 * tests: loads it through the real loader, opens an instance with the
 * keys given on the command line, sends JSON-lines messages in batches and
 * prints one JSON line per result (or calls its inbound entry). */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

static const char *status_names[] = { "sent", "retry", "rejected",
                                      "invalid_address", "channel_error" };

static void
usage (void)
{
  fprintf (stderr,
           "Usage: plugin-run PLUGIN.so [-k KEY=VALUE]... [-n NAME] [-K KIND]\n"
           "                  [-b BATCH] [-t TRACKING_BASE_URL] < messages.jsonl\n"
           "       plugin-run PLUGIN.so [-k ...] --inbound METHOD URL BODY_FILE\n"
           "                  [-H 'Name: value']...\n");
  exit (2);
}

static const char *
jstr (json_t *o, const char *k)
{
  json_t *v = json_object_get (o, k);
  return json_is_string (v) ? json_string_value (v) : NULL;
}

struct msgbuf {
  struct herald_message m;
  struct herald_address *to;      /* malloc'ed unless in the arena */
  struct herald_part *parts;
  unsigned char *invalid;
  json_t *j;                      /* NULL when parsed by the fast path */
};

/* ---- A fast path for the common message line. ----
 *
 * jansson built, and printf-ed from, a tree per line: 120k instructions a
 * message, half of what the webhook bench measured through this harness.
 * Lines are instead parsed in place, into a copy held by a batch arena, by a
 * strict recogniser that gives up (returns -1) on anything it does not
 * handle exactly as jansson does: a top level that is not an object,
 * duplicate keys, \u0000, invalid UTF-8 or surrogates, real numbers,
 * integers of 19 digits or more, deep nesting, many values.  A line it gives
 * up on goes through jansson as before, so errors and odd inputs behave as
 * they always did.  Results are printed the same way: by hand when every
 * string is ASCII, else through json_dumps. */

/* Bump allocator for one batch's line copies and arrays; freed at once. */
struct arena_chunk {
  struct arena_chunk *next;
  size_t used, cap;
  char data[];
};

static struct arena_chunk *arena;

static void *
arena_alloc (size_t n)
{
  struct arena_chunk *c = arena;
  void *p;
  n = (n + 15) & ~(size_t) 15;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > (1 << 18) ? n : (1 << 18);
    c = xmalloc (sizeof *c + cap);
    c->next = arena;
    c->used = 0;
    c->cap = cap;
    arena = c;
  }
  p = c->data + c->used;
  c->used += n;
  return p;
}

static void
arena_free (void)
{
  while (arena) {
    struct arena_chunk *next = arena->next;
    free (arena);
    arena = next;
  }
}

enum { FJ_OBJ, FJ_ARR, FJ_STR, FJ_INT, FJ_LIT };

/* One value; a container's members follow it, and end is the index after
 * its last descendant.  An object's members alternate key, value. */
struct fj_node {
  int type;
  size_t end;
  size_t n;                      /* members, or string length */
  const char *s;                 /* decoded, NUL-terminated, in the copy */
  long long i;
};

#define FJ_MAX_NODES 256
#define FJ_MAX_DEPTH 32

struct fj {
  char *p;                       /* read position in the copy */
  struct fj_node nodes[FJ_MAX_NODES];
  size_t n;
};

static void
fj_ws (struct fj *f)
{
  while (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r')
    f->p++;
}

static int
fj_hex4 (const char *p, unsigned *r)
{
  unsigned v = 0;
  int k;
  for (k = 0; k < 4; k++) {
    char c = p[k];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned) (c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned) (c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned) (c - 'A' + 10);
    else
      return -1;
  }
  *r = v;
  return 0;
}

/* Decode the string at f->p (on its opening quote) in place. */
static int
fj_string (struct fj *f, const char **s_r, size_t *len_r)
{
  unsigned char *r = (unsigned char *) f->p + 1, *w = r, *start = r;
  for (;;) {
    unsigned c = *r;
    if (c == '"')
      break;
    if (c < 0x20)
      return -1;                           /* also the end of the line */
    if (c == '\\') {
      unsigned u, lo;
      r++;
      switch (*r) {
      case '"': *w++ = '"'; r++; continue;
      case '\\': *w++ = '\\'; r++; continue;
      case '/': *w++ = '/'; r++; continue;
      case 'b': *w++ = '\b'; r++; continue;
      case 'f': *w++ = '\f'; r++; continue;
      case 'n': *w++ = '\n'; r++; continue;
      case 'r': *w++ = '\r'; r++; continue;
      case 't': *w++ = '\t'; r++; continue;
      case 'u':
        if (fj_hex4 ((char *) r + 1, &u) < 0 || u == 0)
          return -1;
        r += 5;
        if (u >= 0xdc00 && u <= 0xdfff)
          return -1;
        if (u >= 0xd800 && u <= 0xdbff) {
          if (r[0] != '\\' || r[1] != 'u' || fj_hex4 ((char *) r + 2, &lo) < 0
              || lo < 0xdc00 || lo > 0xdfff)
            return -1;
          r += 6;
          u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (u < 0x80)
          *w++ = (unsigned char) u;
        else if (u < 0x800) {
          *w++ = (unsigned char) (0xc0 | (u >> 6));
          *w++ = (unsigned char) (0x80 | (u & 0x3f));
        }
        else if (u < 0x10000) {
          *w++ = (unsigned char) (0xe0 | (u >> 12));
          *w++ = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
          *w++ = (unsigned char) (0x80 | (u & 0x3f));
        }
        else {
          *w++ = (unsigned char) (0xf0 | (u >> 18));
          *w++ = (unsigned char) (0x80 | ((u >> 12) & 0x3f));
          *w++ = (unsigned char) (0x80 | ((u >> 6) & 0x3f));
          *w++ = (unsigned char) (0x80 | (u & 0x3f));
        }
        continue;
      default:
        return -1;
      }
    }
    if (c < 0x80) {
      *w++ = *r++;
      continue;
    }
    {
      /* UTF-8 (RFC 3629 section 4): no overlongs, surrogates or > U+10FFFF. */
      size_t n = (c >= 0xc2 && c <= 0xdf) ? 1 : (c & 0xf0) == 0xe0 ? 2
        : (c >= 0xf0 && c <= 0xf4) ? 3 : 0, k;
      if (!n)
        return -1;
      for (k = 1; k <= n; k++)
        if ((r[k] & 0xc0) != 0x80)
          return -1;
      if ((c == 0xe0 && r[1] < 0xa0) || (c == 0xed && r[1] >= 0xa0)
          || (c == 0xf0 && r[1] < 0x90) || (c == 0xf4 && r[1] >= 0x90))
        return -1;
      for (k = 0; k <= n; k++)
        *w++ = *r++;
    }
  }
  f->p = (char *) r + 1;
  *w = '\0';                              /* w <= r: the quote's place */
  *s_r = (const char *) start;
  *len_r = (size_t) (w - start);
  return 0;
}

static int fj_value (struct fj *f, int depth);

static int
fj_container (struct fj *f, int depth, struct fj_node *node, char close)
{
  size_t first = f->n, i;
  f->p++;
  fj_ws (f);
  if (*f->p == close) {
    f->p++;
    return 0;
  }
  for (;;) {
    if (close == '}') {
      struct fj_node *k;
      if (*f->p != '"' || f->n == FJ_MAX_NODES)
        return -1;
      k = &f->nodes[f->n++];
      k->type = FJ_STR;
      if (fj_string (f, &k->s, &k->n) < 0)
        return -1;
      k->end = f->n;
      /* jansson keeps the last of duplicate keys: leave those to it. */
      for (i = first; i + 1 < f->n; i = f->nodes[i + 1].end)
        if (f->nodes[i].n == k->n && memcmp (f->nodes[i].s, k->s, k->n) == 0)
          return -1;
      fj_ws (f);
      if (*f->p != ':')
        return -1;
      f->p++;
      fj_ws (f);
    }
    if (fj_value (f, depth + 1) < 0)
      return -1;
    node->n++;
    fj_ws (f);
    if (*f->p == close) {
      f->p++;
      return 0;
    }
    if (*f->p != ',')
      return -1;
    f->p++;
    fj_ws (f);
  }
}

static int
fj_value (struct fj *f, int depth)
{
  struct fj_node *node;
  size_t idx = f->n;
  int rc = 0;

  if (f->n == FJ_MAX_NODES || depth > FJ_MAX_DEPTH)
    return -1;
  node = &f->nodes[f->n++];
  memset (node, 0, sizeof *node);
  switch (*f->p) {
  case '{':
    node->type = FJ_OBJ;
    rc = fj_container (f, depth, node, '}');
    break;
  case '[':
    node->type = FJ_ARR;
    rc = fj_container (f, depth, node, ']');
    break;
  case '"':
    node->type = FJ_STR;
    rc = fj_string (f, &node->s, &node->n);
    break;
  case 't': case 'f': case 'n':
    node->type = FJ_LIT;
    if (strncmp (f->p, "true", 4) == 0)
      f->p += 4;
    else if (strncmp (f->p, "false", 5) == 0)
      f->p += 5;
    else if (strncmp (f->p, "null", 4) == 0)
      f->p += 4;
    else
      rc = -1;
    break;
  default: {
    /* Integers only: reals and overflow are jansson's to judge. */
    int neg = *f->p == '-', digits = 0;
    long long v = 0;
    if (neg)
      f->p++;
    if (*f->p == '0' && f->p[1] >= '0' && f->p[1] <= '9')
      return -1;
    while (*f->p >= '0' && *f->p <= '9' && digits < 19) {
      v = v * 10 + (*f->p++ - '0');
      digits++;
    }
    if (digits == 0 || digits == 19 || *f->p == '.' || *f->p == 'e'
        || *f->p == 'E')
      return -1;
    node->type = FJ_INT;
    node->i = neg ? -v : v;
    break;
  }
  }
  f->nodes[idx].end = f->n;
  return rc;
}

/* Parse the whole line (a copy the caller owns) into f; -1 to use jansson. */
static int
fj_parse (struct fj *f, char *line)
{
  f->p = line;
  f->n = 0;
  fj_ws (f);
  if (*f->p != '{' || fj_value (f, 0) < 0)
    return -1;
  fj_ws (f);
  return *f->p == '\0' ? 0 : -1;
}

/* Value of key k in object node o, or NULL. */
static const struct fj_node *
fj_get (const struct fj *f, size_t o, const char *k)
{
  size_t i;
  if (f->nodes[o].type != FJ_OBJ)
    return NULL;
  for (i = o + 1; i < f->nodes[o].end; i = f->nodes[i + 1].end)
    if (strcmp (f->nodes[i].s, k) == 0)
      return &f->nodes[i + 1];
  return NULL;
}

static const char *
fj_str (const struct fj *f, size_t o, const char *k)
{
  const struct fj_node *v = fj_get (f, o, k);
  return v && v->type == FJ_STR ? v->s : NULL;
}

/* msg_from_json over the fast parse: the same defaults and the same
 * refusal (no 'to').  Everything lives in the arena. */
static int
msg_from_fast (const struct fj *f, struct msgbuf *mb, const char *kind)
{
  const struct fj_node *to = fj_get (f, 0, "to"), *parts = fj_get (f, 0, "parts"), *v;
  const char *s;
  size_t i, n, idx;

  memset (mb, 0, sizeof *mb);
  mb->m.key = (s = fj_str (f, 0, "key")) ? s : "test:1:c1";
  mb->m.campaign = (s = fj_str (f, 0, "campaign")) ? s : "test";
  mb->m.customer = (s = fj_str (f, 0, "customer")) ? s : "c1";
  mb->m.channel = (s = fj_str (f, 0, "channel")) ? s : kind;
  mb->m.variant = (s = fj_str (f, 0, "variant")) ? s : "";
  mb->m.to_name = fj_str (f, 0, "to_name");
  mb->m.unsubscribe_url = fj_str (f, 0, "unsubscribe_url");
  mb->m.unsubscribe_mailto = fj_str (f, 0, "unsubscribe_mailto");
  v = fj_get (f, 0, "created");
  mb->m.created = v && v->type == FJ_INT ? v->i : 1767225600;
  v = fj_get (f, 0, "attempt");
  mb->m.attempt = v && v->type == FJ_INT ? (unsigned) v->i : 1;
  if (to && to->type == FJ_STR) {
    n = 1;
    mb->to = arena_alloc (sizeof *mb->to);
    memset (mb->to, 0, sizeof *mb->to);
    mb->to[0].type = mb->m.channel;
    mb->to[0].value = to->s;
  }
  else if (to && to->type == FJ_ARR) {
    n = to->n;
    mb->to = arena_alloc ((n ? n : 1) * sizeof *mb->to);
    memset (mb->to, 0, (n ? n : 1) * sizeof *mb->to);
    idx = (size_t) (to - f->nodes) + 1;
    for (i = 0; i < n; i++, idx = f->nodes[idx].end) {
      mb->to[i].type = (s = fj_str (f, idx, "type")) ? s : mb->m.channel;
      mb->to[i].value = (s = fj_str (f, idx, "value")) ? s : "";
    }
  }
  else
    return -1;
  mb->m.n_to = n;
  mb->invalid = arena_alloc (n ? n : 1);
  memset (mb->invalid, 0, n ? n : 1);
  n = parts && parts->type == FJ_OBJ ? parts->n : 0;
  mb->parts = arena_alloc ((n ? n : 1) * sizeof *mb->parts);
  memset (mb->parts, 0, (n ? n : 1) * sizeof *mb->parts);
  if (n) {
    idx = (size_t) (parts - f->nodes) + 1;
    for (i = 0; i < n; i++, idx = f->nodes[idx + 1].end) {
      mb->parts[i].name = f->nodes[idx].s;
      v = &f->nodes[idx + 1];
      mb->parts[i].data = v->type == FJ_STR ? v->s : "";
      mb->parts[i].len = v->type == FJ_STR ? v->n : 0;
    }
  }
  mb->m.n_parts = n;
  return 0;
}

/* Output: a JSON string as json_dumps (JSON_COMPACT | JSON_ENSURE_ASCII)
 * writes it; -1 (nothing usable written) when s is not plain ASCII. */
static int
out_str (struct strbuf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p = (const unsigned char *) s;
  strbuf_addc (b, '"');
  for (; *p; p++) {
    const unsigned char *q = p;
    while (*q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
      q++;
    if (q > p) {
      strbuf_add (b, (const char *) p, (size_t) (q - p));
      p = q;
      if (!*p)
        break;
    }
    if (*p >= 0x80)
      return -1;
    switch (*p) {
    case '"': strbuf_add (b, "\\\"", 2); break;
    case '\\': strbuf_add (b, "\\\\", 2); break;
    case '\b': strbuf_add (b, "\\b", 2); break;
    case '\f': strbuf_add (b, "\\f", 2); break;
    case '\n': strbuf_add (b, "\\n", 2); break;
    case '\r': strbuf_add (b, "\\r", 2); break;
    case '\t': strbuf_add (b, "\\t", 2); break;
    default: {
      char u[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
      strbuf_add (b, u, 6);
    }
    }
  }
  strbuf_addc (b, '"');
  return 0;
}

static void
out_int (struct strbuf *b, long long v)
{
  char d[24];
  int n = snprintf (d, sizeof d, "%lld", v);
  strbuf_add (b, d, (size_t) n);
}

static int
msg_from_json (json_t *j, struct msgbuf *mb, const char *kind)
{
  json_t *to = json_object_get (j, "to"), *parts = json_object_get (j, "parts"), *v;
  const char *k;
  size_t i, n;

  memset (mb, 0, sizeof *mb);
  mb->j = j;
  mb->m.key = jstr (j, "key") ? jstr (j, "key") : "test:1:c1";
  mb->m.campaign = jstr (j, "campaign") ? jstr (j, "campaign") : "test";
  mb->m.customer = jstr (j, "customer") ? jstr (j, "customer") : "c1";
  mb->m.channel = jstr (j, "channel") ? jstr (j, "channel") : kind;
  mb->m.variant = jstr (j, "variant") ? jstr (j, "variant") : "";
  mb->m.to_name = jstr (j, "to_name");
  mb->m.unsubscribe_url = jstr (j, "unsubscribe_url");
  mb->m.unsubscribe_mailto = jstr (j, "unsubscribe_mailto");
  v = json_object_get (j, "created");
  mb->m.created = json_is_integer (v) ? json_integer_value (v) : 1767225600;
  v = json_object_get (j, "attempt");
  mb->m.attempt = json_is_integer (v) ? (unsigned) json_integer_value (v) : 1;
  if (json_is_string (to)) {
    mb->to = xcalloc (1, sizeof *mb->to);
    mb->to[0].type = mb->m.channel;
    mb->to[0].value = json_string_value (to);
    n = 1;
  }
  else if (json_is_array (to)) {
    n = json_array_size (to);
    mb->to = xcalloc (n ? n : 1, sizeof *mb->to);
    json_array_foreach (to, i, v) {
      mb->to[i].type = jstr (v, "type") ? jstr (v, "type") : mb->m.channel;
      mb->to[i].value = jstr (v, "value") ? jstr (v, "value") : "";
    }
  }
  else
    return -1;
  mb->m.n_to = n;
  mb->invalid = xcalloc (n ? n : 1, 1);
  n = json_object_size (parts);
  mb->parts = xcalloc (n ? n : 1, sizeof *mb->parts);
  i = 0;
  json_object_foreach (parts, k, v) {
    mb->parts[i].name = k;
    mb->parts[i].data = json_string_value (v) ? json_string_value (v) : "";
    mb->parts[i].len = json_string_length (v);
    i++;
  }
  mb->m.n_parts = i;
  return 0;
}

static void
flush_batch (struct channel *ch, struct msgbuf *mbs, size_t n)
{
  struct herald_message *msgs = xcalloc (n, sizeof *msgs);
  struct herald_result *res = xcalloc (n, sizeof *res);
  const struct herald_message **mp = xcalloc (n, sizeof *mp);
  struct herald_result **rp = xcalloc (n, sizeof *rp);
  const struct herald_address ***top = xcalloc (n, sizeof *top);
  const struct herald_part ***pp = xcalloc (n, sizeof *pp);
  struct strbuf out = STRBUF_INIT;
  size_t i, k;
  int rc;

  /* As the core hands them: arrays of pointers, every structure with its
   * size, results HERALD_NO_RESULT until the plugin says. */
  for (i = 0; i < n; i++) {
    msgs[i] = mbs[i].m;
    msgs[i].struct_size = sizeof msgs[i];
    top[i] = xcalloc (msgs[i].n_to ? msgs[i].n_to : 1, sizeof **top);
    for (k = 0; k < msgs[i].n_to; k++) {
      mbs[i].to[k].struct_size = sizeof mbs[i].to[k];
      top[i][k] = &mbs[i].to[k];
    }
    pp[i] = xcalloc (msgs[i].n_parts ? msgs[i].n_parts : 1, sizeof **pp);
    for (k = 0; k < msgs[i].n_parts; k++) {
      mbs[i].parts[k].struct_size = sizeof mbs[i].parts[k];
      pp[i][k] = &mbs[i].parts[k];
    }
    msgs[i].to = top[i];
    msgs[i].parts = pp[i];
    mp[i] = &msgs[i];
    res[i].struct_size = sizeof res[i];
    res[i].status = HERALD_NO_RESULT;
    res[i].to_invalid = mbs[i].invalid;
    rp[i] = &res[i];
  }
  rc = channel_send (ch, mp, n, rp);
  for (i = 0; i < n; i++) {
    json_t *o, *inv;
    char *line;
    int st = rc < 0 ? HERALD_RETRY : res[i].status;
    const char *stname = st >= 0 && st <= 4 ? status_names[st]
                         : st == HERALD_NO_RESULT ? "no_result" : "bad-status";
    size_t mark = out.len;

    strbuf_adds (&out, "{\"key\":");
    if (out_str (&out, msgs[i].key) == 0) {
      strbuf_adds (&out, ",\"status\":");
      out_str (&out, stname);
      strbuf_adds (&out, ",\"provider_id\":");
      if (out_str (&out, res[i].provider_id) == 0) {
        strbuf_adds (&out, ",\"error\":");
        if (out_str (&out, res[i].error) == 0) {
          strbuf_adds (&out, ",\"retry_after_ms\":");
          out_int (&out, (long long) res[i].retry_after_ms);
          strbuf_adds (&out, ",\"detail\":");
          if (out_str (&out, res[i].detail) == 0) {
            strbuf_adds (&out, ",\"to_invalid\":[");
            for (k = 0; k < msgs[i].n_to; k++) {
              if (k)
                strbuf_addc (&out, ',');
              out_int (&out, mbs[i].invalid[k]);
            }
            strbuf_adds (&out, "]}\n");
            continue;
          }
        }
      }
    }
    /* Not ASCII: jansson's own rules (escapes, invalid UTF-8). */
    out.len = mark;
    o = json_object ();
    inv = json_array ();
    json_object_set_new (o, "key", json_string (msgs[i].key));
    json_object_set_new (o, "status", json_string (stname));
    json_object_set_new (o, "provider_id", json_string (res[i].provider_id));
    json_object_set_new (o, "error", json_string (res[i].error));
    json_object_set_new (o, "retry_after_ms", json_integer (res[i].retry_after_ms));
    json_object_set_new (o, "detail", json_string (res[i].detail));
    for (k = 0; k < msgs[i].n_to; k++)
      json_array_append_new (inv, json_integer (mbs[i].invalid[k]));
    json_object_set_new (o, "to_invalid", inv);
    line = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
    strbuf_adds (&out, line);
    strbuf_addc (&out, '\n');
    free (line);
    json_decref (o);
  }
  if (out.len)
    fwrite (out.s, 1, out.len, stdout);
  fflush (stdout);
  strbuf_free (&out);
  for (i = 0; i < n; i++) {
    if (mbs[i].j) {
      free (mbs[i].to);
      free (mbs[i].parts);
      free (mbs[i].invalid);
      json_decref (mbs[i].j);
    }
  }
  arena_free ();
  for (i = 0; i < n; i++) {
    free (top[i]);
    free (pp[i]);
  }
  free (top);
  free (pp);
  free (mp);
  free (rp);
  free (msgs);
  free (res);
}

static int
sink_event (void *data, const struct herald_event *ev)
{
  json_t *o = json_object (), *e = json_object ();
  char *line;

  json_object_set_new (e, "type", json_string (ev->type ? ev->type : ""));
  json_object_set_new (e, "provider_id", ev->provider_id ? json_string (ev->provider_id) : json_null ());
  json_object_set_new (e, "address", ev->address ? json_string (ev->address) : json_null ());
  json_object_set_new (e, "at", json_integer (ev->at));
  json_object_set_new (e, "detail", ev->detail ? json_string (ev->detail) : json_null ());
  json_object_set_new (o, "event", e);
  line = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
  printf ("%s\n", line);
  free (line);
  json_decref (o);
  return 0;
}

int
main (int argc, char **argv)
{
  struct ini_section sec = { 0 };
  const char *name = "test", *kind = NULL, *tracking = NULL;
  const char *in_method = NULL, *in_url = NULL, *in_body = NULL;
  struct herald_header hdrs[32];
  size_t n_hdrs = 0, batch = 1000, n = 0, i;
  struct plugin *pl = NULL;
  struct channel *ch = NULL;
  struct msgbuf *mbs;
  struct fj *fj;
  char err[2048], line[1 << 16];
  int a, rc = 0, lineno = 0;
  int64_t v;

  signal (SIGPIPE, SIG_IGN);
  if (argc < 2)
    usage ();
  sec.name = xstrdup ("channel.test");
  sec.line = 1;
  for (a = 2; a < argc; a++) {
    if (strcmp (argv[a], "-k") == 0 && a + 1 < argc) {
      char *eq = strchr (argv[++a], '=');
      if (!eq)
        usage ();
      sec.kv = xrealloc (sec.kv, (sec.n + 1) * sizeof *sec.kv);
      sec.kv[sec.n].key = xstrndup (argv[a], (size_t) (eq - argv[a]));
      sec.kv[sec.n].value = xstrdup (eq + 1);
      sec.kv[sec.n].line = (int) sec.n + 2;
      sec.n++;
    }
    else if (strcmp (argv[a], "-n") == 0 && a + 1 < argc)
      name = argv[++a];
    else if (strcmp (argv[a], "-K") == 0 && a + 1 < argc)
      kind = argv[++a];
    else if (strcmp (argv[a], "-t") == 0 && a + 1 < argc)
      tracking = argv[++a];
    else if (strcmp (argv[a], "-b") == 0 && a + 1 < argc) {
      if (parse_int64 (argv[++a], 1, 1000000, &v) < 0)
        usage ();
      batch = (size_t) v;
    }
    else if (strcmp (argv[a], "-H") == 0 && a + 1 < argc && n_hdrs < 32) {
      char *c = strchr (argv[++a], ':');
      if (!c)
        usage ();
      hdrs[n_hdrs].name = xstrndup (argv[a], (size_t) (c - argv[a]));
      for (c++; *c == ' '; c++)
        ;
      hdrs[n_hdrs++].value = c;
    }
    else if (strcmp (argv[a], "--inbound") == 0 && a + 3 < argc) {
      in_method = argv[++a];
      in_url = argv[++a];
      in_body = argv[++a];
    }
    else
      usage ();
  }
  pl = loader_load (argv[1], err, sizeof err);
  if (!pl) {
    fprintf (stderr, "plugin-run: %s\n", err);
    rc = 1;
    goto done;
  }
  if (!kind)
    kind = pl->p.channels && pl->p.channels[0] ? pl->p.channels[0] : "email";
  ch = channel_open (pl, name, kind, &sec, "test.ini", tracking, err, sizeof err);
  if (!ch) {
    fprintf (stderr, "plugin-run: %s\n", err);
    rc = 1;
    goto done;
  }

  if (in_method) {
    struct herald_request req = { 0 };
    struct herald_response resp = { 0 };
    struct herald_sink sink = { NULL, sink_event };
    FILE *fp = fopen (in_body, "rb");
    struct strbuf body = STRBUF_INIT;
    const char *path;
    json_t *o, *r;
    char *s;
    size_t got;

    if (!fp) {
      fprintf (stderr, "plugin-run: %s: %s\n", in_body, strerror (errno));
      rc = 1;
      goto done;
    }
    while ((got = fread (line, 1, sizeof line, fp)) > 0)
      strbuf_add (&body, line, got);
    fclose (fp);
    if (!ch->plugin->p.inbound) {
      fprintf (stderr, "plugin-run: plugin has no inbound entry\n");
      strbuf_free (&body);
      rc = 1;
      goto done;
    }
    path = strstr (in_url, "/inbound/");
    if (path) {
      path = strchr (path + 9, '/');
    }
    req.method = in_method;
    req.url = in_url;
    req.path = path ? path : "/";
    req.headers = hdrs;
    req.n_headers = n_hdrs;
    req.body = body.s ? body.s : "";
    req.body_len = body.len;
    resp.status = 200;
    req.struct_size = sizeof req;
    resp.struct_size = sizeof resp;
    rc = channel_inbound (ch, &req, &sink, &resp);
    o = json_object ();
    r = json_object ();
    json_object_set_new (r, "rc", json_integer (rc));
    json_object_set_new (r, "status", json_integer (resp.status));
    json_object_set_new (r, "content_type", json_string (resp.content_type));
    json_object_set_new (r, "body", json_stringn (resp.body, resp.body_len < sizeof resp.body ? resp.body_len : sizeof resp.body));
    json_object_set_new (o, "response", r);
    s = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf ("%s\n", s);
    free (s);
    json_decref (o);
    strbuf_free (&body);
    goto done;
  }

  mbs = xcalloc (batch, sizeof *mbs);
  fj = xmalloc (sizeof *fj);
  while (fgets (line, sizeof line, stdin)) {
    json_error_t jerr;
    json_t *j;
    size_t len;
    char *copy;

    lineno++;
    if (line[0] == '\n')
      continue;
    len = strlen (line);
    copy = arena_alloc (len + 1);
    memcpy (copy, line, len + 1);
    if (fj_parse (fj, copy) == 0 && msg_from_fast (fj, &mbs[n], kind) == 0) {
      if (++n == batch) {
        flush_batch (ch, mbs, n);
        n = 0;
      }
      continue;
    }
    j = json_loads (line, 0, &jerr);
    if (!j || msg_from_json (j, &mbs[n], kind) < 0) {
      fprintf (stderr, "plugin-run: stdin:%d: bad message: %s\n", lineno,
               j ? "'to' missing" : jerr.text);
      rc = 1;
      json_decref (j);
      break;
    }
    if (++n == batch) {
      flush_batch (ch, mbs, n);
      n = 0;
    }
  }
  if (n)
    flush_batch (ch, mbs, n);
  arena_free ();
  free (fj);
  free (mbs);
done:
  channel_close (ch);      /* both accept NULL */
  loader_unload (pl);
  for (i = 0; i < n_hdrs; i++)
    free ((char *) hdrs[i].name);
  for (i = 0; i < sec.n; i++) {
    free (sec.kv[i].key);
    free (sec.kv[i].value);
  }
  free (sec.kv);
  free (sec.name);
  return rc;
}
