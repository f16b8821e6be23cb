/* linkrewrite: rewrites the links of a rendered e-mail for click tracking
 * and adds the open pixel (see linkrewrite.h).  A tokenizer, not a pattern:
 * a link is what a browser would take for one.  It must never change a
 * byte it does not mean to, and never touches the store or a key. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linkrewrite.h"
#include "htmlentities.h"

#define NOT_FOUND SIZE_MAX
#define NAME_MAX_ 24           /* longest tag or attribute name we compare */

/* "Whitespace" of the tokenizer: tab, LF, FF, space, and CR (which input
 * preprocessing turns into LF). */
static int
is_ws (unsigned char c)
{
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '\r';
}

static int
is_alpha (unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit (unsigned char c)
{
  return c >= '0' && c <= '9';
}

static int
is_alnum (unsigned char c)
{
  return is_alpha (c) || is_digit (c);
}

static int
is_hex (unsigned char c)
{
  return is_digit (c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned char
lower (unsigned char c)
{
  return c >= 'A' && c <= 'Z' ? (unsigned char) (c + 32) : c;
}

/* 1 when S[0..N) is NAME (lowercase) in any ASCII case. */
static int
ci_eq (const char *s, size_t n, const char *name)
{
  size_t i;

  if (strlen (name) != n)
    return 0;
  for (i = 0; i < n; i++)
    if (lower ((unsigned char) s[i]) != (unsigned char) name[i])
      return 0;
  return 1;
}

/* ---- character references (13.2.5.72 onwards) --------------------- */

static void
add_utf8 (struct strbuf *b, uint32_t v)
{
  char u[4];
  size_t n;

  if (v < 0x80) {
    u[0] = (char) v;
    n = 1;
  }
  else if (v < 0x800) {
    u[0] = (char) (0xc0 | (v >> 6));
    u[1] = (char) (0x80 | (v & 0x3f));
    n = 2;
  }
  else if (v < 0x10000) {
    u[0] = (char) (0xe0 | (v >> 12));
    u[1] = (char) (0x80 | ((v >> 6) & 0x3f));
    u[2] = (char) (0x80 | (v & 0x3f));
    n = 3;
  }
  else {
    u[0] = (char) (0xf0 | (v >> 18));
    u[1] = (char) (0x80 | ((v >> 12) & 0x3f));
    u[2] = (char) (0x80 | ((v >> 6) & 0x3f));
    u[3] = (char) (0x80 | (v & 0x3f));
    n = 4;
  }
  strbuf_add (b, u, n);
}

/* The numeric character reference end state's table: what 0x80..0x9F
 * mean (windows-1252), 0 where the code point stays. */
static const uint16_t c1_table[32] = {
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
  0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
  0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
  0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178
};

static int
entity_cmp (const void *key, const void *elem)
{
  const struct html_entity *e = elem;
  return strcmp (key, e->name);
}

/* Decode the reference at P[0] == '&' (N bytes available, the value's
 * end being its end) into B.  Returns the bytes consumed (>= 1). */
static size_t
char_ref (const char *p, size_t n, struct strbuf *b)
{
  size_t j, run, len;

  if (n > 1 && p[1] == '#') {
    int hex = n > 2 && (p[2] == 'x' || p[2] == 'X');
    uint32_t v = 0;
    size_t ds;

    j = hex ? 3 : 2;
    ds = j;
    for (; j < n && (hex ? is_hex ((unsigned char) p[j])
                         : is_digit ((unsigned char) p[j])); j++) {
      unsigned char c = (unsigned char) p[j];
      uint32_t d = is_digit (c) ? (uint32_t) (c - '0')
                                : (uint32_t) (lower (c) - 'a' + 10);
      /* Saturate: anything past U+10FFFF is U+FFFD anyway. */
      v = v > 0x10ffff ? v : v * (hex ? 16 : 10) + d;
    }
    if (j == ds) {             /* "&#" or "&#x" without digits: as is */
      strbuf_add (b, p, j);
      return j;
    }
    if (j < n && p[j] == ';')
      j++;
    if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
      v = 0xfffd;
    else if (v >= 0x80 && v <= 0x9f && c1_table[v - 0x80])
      v = c1_table[v - 0x80];
    add_utf8 (b, v);
    return j;
  }

  /* Named: the longest name of the table that starts here. */
  for (run = 1; run < n && is_alnum ((unsigned char) p[run]); run++)
    ;
  len = run - 1 + (run < n && p[run] == ';');
  if (len > HTML_ENTITY_MAX_NAME)
    len = HTML_ENTITY_MAX_NAME;
  for (; len > 0; len--) {
    char name[HTML_ENTITY_MAX_NAME + 1];
    const struct html_entity *e;

    memcpy (name, p + 1, len);
    name[len] = '\0';
    e = bsearch (name, html_entities,
                 sizeof html_entities / sizeof html_entities[0],
                 sizeof html_entities[0], entity_cmp);
    if (!e)
      continue;
    /* In an attribute, a name without its ';' followed by '=' or an
     * alphanumeric stays as written, "for historical reasons" (query
     * strings: href="?a=1&copy=2"). */
    if (name[len - 1] != ';' && 1 + len < n
        && (p[1 + len] == '=' || is_alnum ((unsigned char) p[1 + len]))) {
      strbuf_add (b, p, 1 + len);
      return 1 + len;
    }
    strbuf_adds (b, e->utf8);
    return 1 + len;
  }
  strbuf_addc (b, '&');        /* no such name: an ampersand */
  return 1;
}

void
linkrewrite_attr_decode (const char *raw, size_t len, struct strbuf *out)
{
  size_t i = 0;

  strbuf_grow (out, len);
  while (i < len) {
    char c = raw[i];
    if (c == '&')
      i += char_ref (raw + i, len - i, out);
    else if (c == '\0') {
      strbuf_adds (out, "\xef\xbf\xbd");
      i++;
    }
    else if (c == '\r') {
      strbuf_addc (out, '\n');
      i += i + 1 < len && raw[i + 1] == '\n' ? 2 : 1;
    }
    else {
      strbuf_addc (out, c);
      i++;
    }
  }
}

/* ---- URLs ---------------------------------------------------------- */

void
linkrewrite_url_normalise (const char *url, size_t len, struct strbuf *out)
{
  size_t i;

  /* WHATWG URL, basic URL parser: strip leading and trailing C0 control
   * or space, then remove every ASCII tab or newline. */
  while (len && (unsigned char) url[0] <= 0x20) {
    url++;
    len--;
  }
  while (len && (unsigned char) url[len - 1] <= 0x20)
    len--;
  strbuf_grow (out, len);
  for (i = 0; i < len; i++)
    if (url[i] != '\t' && url[i] != '\n' && url[i] != '\r')
      strbuf_addc (out, url[i]);
}

int
linkrewrite_trackable (const struct linkrewrite *o, const char *url,
                       size_t len)
{
  size_t i, s;

  /* http: or https:, any case, then an authority: two slashes, where a
   * backslash counts as one for these schemes.  A scheme-relative or
   * relative link has no base in an e-mail; "http:x" would resolve
   * against the tracking server's own URL after the redirect. */
  if (len >= 5 && ci_eq (url, 4, "http") && url[4] == ':')
    s = 5;
  else if (len >= 6 && ci_eq (url, 5, "https") && url[5] == ':')
    s = 6;
  else
    return 0;
  if (len < s + 2 || (url[s] != '/' && url[s] != '\\')
      || (url[s + 1] != '/' && url[s + 1] != '\\'))
    return 0;
  /* ...and a host: "http://" alone is no address. */
  for (i = s; i < len && (url[i] == '/' || url[i] == '\\'); i++)
    ;
  if (i == len || url[i] == '?' || url[i] == '#')
    return 0;
  /* A control character cannot travel in a Location header as it is. */
  for (i = 0; i < len; i++)
    if ((unsigned char) url[i] < 0x20 || url[i] == 0x7f)
      return 0;
  if (o->unsubscribe_url && strlen (o->unsubscribe_url) == len
      && memcmp (o->unsubscribe_url, url, len) == 0)
    return 0;
  if (o->base_url) {
    size_t bl = strlen (o->base_url);
    if (bl && len >= bl && memcmp (o->base_url, url, bl) == 0
        && (len == bl || url[bl] == '/' || url[bl] == '?' || url[bl] == '#'))
      return 0;
  }
  return 1;
}

/* ---- the tokenizer ------------------------------------------------- */

/* One attribute of the tag being read: offsets into the input. */
struct attr {
  size_t name_start;
  size_t outer;                /* the value with its quotes */
  size_t vs, ve;               /* the value itself */
  size_t end;                  /* the whole attribute */
  int has_value;
  size_t name_len;             /* true length; name[] holds the first */
  char name[NAME_MAX_];        /* lowercased, NUL-free: U+FFFD as 0xff */
};

struct tag {
  size_t start;                /* its '<' */
  size_t end;                  /* after its '>' */
  int end_tag;
  size_t name_len;
  char name[NAME_MAX_];
};

struct lr {
  const struct linkrewrite *o;
  const char *in;
  size_t len;
  size_t copied;               /* in[0..copied) is in out */
  struct strbuf *out;
  struct attr *a;
  size_t na, cap;
  long links;
  int failed;
  int pixel_done;
};

static void
name_add (char *name, size_t *n, unsigned char c)
{
  if (*n < NAME_MAX_)
    name[*n] = c == '\0' ? (char) 0xff : (char) lower (c);
  (*n)++;
}

static int
name_is (const char *name, size_t n, const char *want)
{
  return n == strlen (want) && memcmp (name, want, n) == 0;
}

static size_t
attr_new (struct lr *r, size_t at)
{
  struct attr *a;

  if (r->na == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 16;
    r->a = xrealloc (r->a, r->cap * sizeof *r->a);
  }
  a = &r->a[r->na];
  memset (a, 0, sizeof *a);
  a->name_start = a->end = at;
  return r->na++;
}

/* Read the tag whose name starts at P (after "<" or "</") into T and
 * r->a, through the tag name, attribute and self-closing states
 * (13.2.5.8 and 13.2.5.32-40).  1 when its '>' came, 0 at the end of the
 * input (eof-in-tag: a browser drops the tag). */
static int
scan_tag (struct lr *r, size_t p, struct tag *t)
{
  enum { NAME, BEFORE_NAME, ANAME, AFTER_NAME, BEFORE_VALUE, VALUE_DQ,
         VALUE_SQ, VALUE_UNQ, AFTER_VALUE, SELF_CLOSING } s = NAME;
  const char *in = r->in;
  size_t k = 0;

  r->na = 0;
  t->name_len = 0;
  while (p < r->len) {
    unsigned char c = (unsigned char) in[p];
    struct attr *a = r->na ? &r->a[k] : NULL;

    switch (s) {
    case NAME:
      if (is_ws (c))
        s = BEFORE_NAME;
      else if (c == '/')
        s = SELF_CLOSING;
      else if (c == '>')
        goto done;
      else
        name_add (t->name, &t->name_len, c);
      p++;
      break;
    case BEFORE_NAME:
      if (is_ws (c)) {
        p++;
        break;
      }
      if (c == '/' || c == '>') {
        s = AFTER_NAME;        /* reconsume */
        break;
      }
      k = attr_new (r, p);
      if (c == '=') {          /* unexpected-equals-sign: part of the name */
        name_add (r->a[k].name, &r->a[k].name_len, c);
        p++;
      }
      s = ANAME;
      break;
    case ANAME:
      if (is_ws (c) || c == '/' || c == '>') {
        a->end = p;
        s = AFTER_NAME;        /* reconsume */
        break;
      }
      if (c == '=') {
        a->end = p + 1;
        s = BEFORE_VALUE;
        p++;
        break;
      }
      name_add (a->name, &a->name_len, c);   /* " ' < too, parse errors */
      p++;
      break;
    case AFTER_NAME:
      if (is_ws (c))
        p++;
      else if (c == '/') {
        s = SELF_CLOSING;
        p++;
      }
      else if (c == '=') {
        s = BEFORE_VALUE;
        p++;
      }
      else if (c == '>')
        goto done;
      else {
        k = attr_new (r, p);
        s = ANAME;             /* reconsume */
      }
      break;
    case BEFORE_VALUE:
      if (is_ws (c))
        p++;
      else if (c == '"' || c == '\'') {
        a->outer = p;
        a->vs = p + 1;
        a->has_value = 1;
        s = c == '"' ? VALUE_DQ : VALUE_SQ;
        p++;
      }
      else if (c == '>') {     /* missing-attribute-value: "" */
        a->end = p;
        goto done;
      }
      else {
        a->outer = a->vs = p;
        a->has_value = 1;
        s = VALUE_UNQ;         /* reconsume */
      }
      break;
    case VALUE_DQ:
    case VALUE_SQ:
      if (c == (s == VALUE_DQ ? '"' : '\'')) {
        a->ve = p;
        a->end = p + 1;
        s = AFTER_VALUE;
      }
      p++;
      break;
    case VALUE_UNQ:
      if (is_ws (c) || c == '>') {
        a->ve = a->end = p;
        if (c == '>')
          goto done;
        s = BEFORE_NAME;
      }
      p++;                     /* " ' < = ` are parse errors, kept */
      break;
    case AFTER_VALUE:
      if (is_ws (c)) {
        s = BEFORE_NAME;
        p++;
      }
      else if (c == '/') {
        s = SELF_CLOSING;
        p++;
      }
      else if (c == '>')
        goto done;
      else
        s = BEFORE_NAME;       /* missing-whitespace: reconsume */
      break;
    case SELF_CLOSING:
      if (c == '>')
        goto done;
      s = BEFORE_NAME;         /* unexpected-solidus: reconsume */
      break;
    }
  }
  return 0;
done:
  t->end = p + 1;
  return 1;
}

/* After "<!--" at P: the end of the comment (after its "-->", "--!>",
 * or the abrupt "<!-->" and "<!--->"), or NOT_FOUND when the input ends
 * first (13.2.5.43-52). */
static size_t
comment_end (const char *in, size_t len, size_t p)
{
  size_t j;

  if (p < len && in[p] == '>')
    return p + 1;
  if (p + 1 < len && in[p] == '-' && in[p + 1] == '>')
    return p + 2;
  for (j = p; j + 2 < len; j++)
    if (in[j] == '-' && in[j + 1] == '-') {
      if (in[j + 2] == '>')
        return j + 3;
      if (in[j + 2] == '!' && j + 3 < len && in[j + 3] == '>')
        return j + 4;
    }
  return NOT_FOUND;
}

/* After the '>' at or after P (a doctype or a bogus comment), or
 * NOT_FOUND. */
static size_t
gt_end (const char *in, size_t len, size_t p)
{
  const char *gt = p < len ? memchr (in + p, '>', len - p) : NULL;
  return gt ? (size_t) (gt - in) + 1 : NOT_FOUND;
}

/* 1 when an end tag named NAME (any case) starts at P: "</NAME" then
 * whitespace, '/' or '>' (the "appropriate end tag" of 13.2.5.11). */
static int
end_tag_at (const char *in, size_t len, size_t p, const char *name)
{
  size_t n = strlen (name);

  return p + 2 + n < len && in[p] == '<' && in[p + 1] == '/'
         && ci_eq (in + p + 2, n, name)
         && (is_ws ((unsigned char) in[p + 2 + n]) || in[p + 2 + n] == '/'
             || in[p + 2 + n] == '>');
}

/* RAWTEXT and RCDATA (13.2.5.2-3, 9-14): the '<' of the element's end
 * tag at or after P, or NOT_FOUND.  Character references of RCDATA
 * never end it. */
static size_t
raw_end (const char *in, size_t len, size_t p, const char *name)
{
  for (;;) {
    const char *lt = p < len ? memchr (in + p, '<', len - p) : NULL;
    if (!lt)
      return NOT_FOUND;
    p = (size_t) (lt - in);
    if (end_tag_at (in, len, p, name))
      return p;
    p++;
  }
}

/* Script data (13.2.5.4 and 15-31): the '<' of the </script> that ends
 * the script at or after P, or NOT_FOUND.  Inside "<!--" a </script>
 * still ends it, unless a "<script" came after the "<!--" (double
 * escaped), until its own "</script". */
static size_t
script_end (const char *in, size_t len, size_t p)
{
  enum { DATA, ESC, ESC_DASH, ESC_DASH_DASH, DESC, DESC_DASH,
         DESC_DASH_DASH } s = DATA;

  while (p < len) {
    char c = in[p];
    size_t q;

    switch (s) {
    case DATA:
      if (c == '<') {
        if (end_tag_at (in, len, p, "script"))
          return p;
        if (p + 3 < len && in[p + 1] == '!' && in[p + 2] == '-'
            && in[p + 3] == '-') {
          s = ESC_DASH_DASH;
          p += 4;
          continue;
        }
      }
      p++;
      continue;
    case ESC:
    case ESC_DASH:
    case ESC_DASH_DASH:
      if (c == '-') {
        s = s == ESC ? ESC_DASH : ESC_DASH_DASH;
        p++;
        continue;
      }
      if (c == '>' && s == ESC_DASH_DASH) {
        s = DATA;
        p++;
        continue;
      }
      if (c != '<') {
        s = ESC;
        p++;
        continue;
      }
      /* Script data escaped less-than sign state. */
      if (end_tag_at (in, len, p, "script"))
        return p;
      s = ESC;
      if (p + 1 < len && in[p + 1] == '/') {
        p += 2;                /* not ours: "</" is text */
        continue;
      }
      if (p + 1 < len && is_alpha ((unsigned char) in[p + 1])) {
        /* Double escape start state: "<script" then space, / or >. */
        for (q = p + 1; q < len && is_alpha ((unsigned char) in[q]); q++)
          ;
        if (q == len)
          return NOT_FOUND;
        if (is_ws ((unsigned char) in[q]) || in[q] == '/' || in[q] == '>') {
          if (ci_eq (in + p + 1, q - p - 1, "script"))
            s = DESC;
          p = q + 1;
        }
        else
          p = q;               /* reconsume, escaped */
        continue;
      }
      p++;
      continue;
    case DESC:
    case DESC_DASH:
    case DESC_DASH_DASH:
      if (c == '-') {
        s = s == DESC ? DESC_DASH : DESC_DASH_DASH;
        p++;
        continue;
      }
      if (c == '>' && s == DESC_DASH_DASH) {
        s = DATA;
        p++;
        continue;
      }
      s = DESC;
      if (c != '<') {
        p++;
        continue;
      }
      /* Double escaped less-than sign, then double escape end state:
       * "</script" then space, / or > goes back to escaped. */
      if (p + 1 < len && in[p + 1] == '/') {
        for (q = p + 2; q < len && is_alpha ((unsigned char) in[q]); q++)
          ;
        if (q == len)
          return NOT_FOUND;
        if (is_ws ((unsigned char) in[q]) || in[q] == '/' || in[q] == '>') {
          if (ci_eq (in + p + 2, q - p - 2, "script"))
            s = ESC;
          p = q + 1;
        }
        else
          p = q;
        continue;
      }
      p++;
      continue;
    }
  }
  return NOT_FOUND;
}

/* ---- the rewriting ------------------------------------------------- */

static void
copy_to (struct lr *r, size_t pos)
{
  strbuf_add (r->out, r->in + r->copied, pos - r->copied);
  r->copied = pos;
}

/* URL into B as a double-quoted attribute value's text. */
static void
add_attr_escaped (struct strbuf *b, const char *s)
{
  for (; *s; s++)
    if (*s == '&')
      strbuf_adds (b, "&amp;");
    else if (*s == '"')
      strbuf_adds (b, "&quot;");
    else
      strbuf_addc (b, *s);
}

static void
add_pixel (struct lr *r, size_t at)
{
  if (r->pixel_done || !r->o->pixel_url)
    return;
  copy_to (r, at);
  strbuf_adds (r->out, "<img src=\"");
  add_attr_escaped (r->out, r->o->pixel_url);
  strbuf_adds (r->out, "\" width=\"1\" height=\"1\" alt=\"\">");
  r->pixel_done = 1;
}

/* Track URL (normalised, trackable) in place of IN[from..to). */
static int
put_tracked (struct lr *r, const char *url, size_t len, size_t from,
             size_t to, int quote)
{
  char *t = r->o->track (r->o->data, url, len);

  if (!t) {
    r->failed = 1;
    return -1;
  }
  copy_to (r, from);
  if (quote) {
    strbuf_addc (r->out, '"');
    add_attr_escaped (r->out, t);
    strbuf_addc (r->out, '"');
  }
  else
    strbuf_adds (r->out, t);
  r->copied = to;
  r->links++;
  free (t);
  return 0;
}

/* A complete <a> or <area> start tag. */
static void
link_tag (struct lr *r)
{
  struct strbuf raw = STRBUF_INIT, url = STRBUF_INIT;
  struct attr *href = NULL;
  size_t i;
  int notrack = 0;

  for (i = 0; i < r->na; i++) {
    struct attr *a = &r->a[i];
    /* A repeated attribute is dropped by the tokenizer: the first wins. */
    if (!href && name_is (a->name, a->name_len, "href"))
      href = a;
    if (name_is (a->name, a->name_len, "data-herald-notrack"))
      notrack = 1;
  }
  if (notrack) {
    /* Each from its name to its value's end, with the whitespace after
     * it: what was before it (whitespace, '/' or a quote) still separates
     * the attributes around it, and an unquoted value before it never
     * meets a '/' or '>' it did not end at. */
    for (i = 0; i < r->na; i++)
      if (name_is (r->a[i].name, r->a[i].name_len, "data-herald-notrack")) {
        size_t e = r->a[i].end;
        while (e < r->len && is_ws ((unsigned char) r->in[e]))
          e++;
        copy_to (r, r->a[i].name_start);
        r->copied = e;
      }
    return;
  }
  if (!href || !href->has_value || !r->o->track)
    return;
  linkrewrite_attr_decode (r->in + href->vs, href->ve - href->vs, &raw);
  linkrewrite_url_normalise (raw.s ? raw.s : "", raw.len, &url);
  if (linkrewrite_trackable (r->o, url.s ? url.s : "", url.len))
    put_tracked (r, url.s, url.len, href->outer, href->end, 1);
  strbuf_free (&raw);
  strbuf_free (&url);
}

long
linkrewrite_html (const struct linkrewrite *o, const char *html, size_t len,
                  struct strbuf *out)
{
  struct lr r;
  size_t p = 0, unfinished = NOT_FOUND;

  memset (&r, 0, sizeof r);
  r.o = o;
  r.in = html;
  r.len = len;
  r.out = out;
  strbuf_grow (out, len + 256);
  while (p < len && !r.failed) {
    const char *lt = memchr (html + p, '<', len - p);
    struct tag t;
    size_t q, e;
    unsigned char c;

    if (!lt)
      break;
    q = (size_t) (lt - html);
    if (q + 1 >= len)
      break;                   /* a '<' at the end is text */
    c = (unsigned char) html[q + 1];
    memset (&t, 0, sizeof t);
    t.start = q;
    if (c == '!') {            /* markup declaration open */
      if (q + 3 < len && html[q + 2] == '-' && html[q + 3] == '-')
        e = comment_end (html, len, q + 4);
      else                     /* doctype, CDATA outside foreign content,
                                  bogus comment: all end at '>' */
        e = gt_end (html, len, q + 2);
      if (e == NOT_FOUND) {
        unfinished = q;
        break;
      }
      p = e;
      continue;
    }
    if (c == '?') {            /* bogus comment */
      if ((e = gt_end (html, len, q + 2)) == NOT_FOUND) {
        unfinished = q;
        break;
      }
      p = e;
      continue;
    }
    if (c == '/') {            /* end tag open */
      if (q + 2 >= len) {      /* "</" at the end is text, but a pixel */
        unfinished = q;        /* after it would start a bogus comment */
        break;
      }
      c = (unsigned char) html[q + 2];
      if (c == '>') {          /* "</>" is dropped */
        p = q + 3;
        continue;
      }
      if (!is_alpha (c)) {     /* bogus comment */
        if ((e = gt_end (html, len, q + 2)) == NOT_FOUND) {
          unfinished = q;
          break;
        }
        p = e;
        continue;
      }
      t.end_tag = 1;
      if (!scan_tag (&r, q + 2, &t)) {
        unfinished = q;
        break;
      }
      if (name_is (t.name, t.name_len, "body"))
        add_pixel (&r, q);
      p = t.end;
      continue;
    }
    if (!is_alpha (c)) {       /* "<" then anything else is text */
      p = q + 1;
      continue;
    }
    if (!scan_tag (&r, q + 1, &t)) {
      unfinished = q;
      break;
    }
    p = t.end;
    if (name_is (t.name, t.name_len, "a")
        || name_is (t.name, t.name_len, "area"))
      link_tag (&r);
    else if (name_is (t.name, t.name_len, "plaintext")) {
      unfinished = q;          /* the rest is text, a pixel included */
      break;
    }
    else {
      static const char *const raw[] = { "script", "style", "xmp", "iframe",
                                         "noembed", "noframes", "title",
                                         "textarea", NULL };
      size_t k;
      char name[NAME_MAX_ + 1];

      for (k = 0; raw[k] && !name_is (t.name, t.name_len, raw[k]); k++)
        ;
      if (!raw[k])
        continue;
      memcpy (name, t.name, t.name_len);
      name[t.name_len] = '\0';
      e = k == 0 ? script_end (html, len, p) : raw_end (html, len, p, name);
      /* Its end tag, read as a tag (it may carry attributes). */
      t.end_tag = 1;
      if (e == NOT_FOUND || !scan_tag (&r, e + 2, &t)) {
        unfinished = q;
        break;
      }
      p = t.end;
    }
  }
  if (r.failed) {
    free (r.a);
    return -1;
  }
  add_pixel (&r, unfinished != NOT_FOUND ? unfinished : len);
  copy_to (&r, len);
  free (r.a);
  return r.links;
}

long
linkrewrite_text (const struct linkrewrite *o, const char *text, size_t len,
                  struct strbuf *out)
{
  struct lr r;
  size_t p = 0;

  memset (&r, 0, sizeof r);
  r.o = o;
  r.in = text;
  r.len = len;
  r.out = out;
  strbuf_grow (out, len + 256);
  while (p < len && o->track) {
    size_t i, e, open_p = 0, close_p = 0, k;

    for (i = p; i < len; i++)
      if ((text[i] == 'h' || text[i] == 'H')
          && (i == 0 || !is_alnum ((unsigned char) text[i - 1]))
          && ((i + 7 <= len && ci_eq (text + i, 7, "http://"))
              || (i + 8 <= len && ci_eq (text + i, 8, "https://"))))
        break;
    if (i == len)
      break;
    for (e = i; e < len; e++) {
      unsigned char c = (unsigned char) text[e];
      if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"')
        break;
    }
    /* Trailing punctuation is the sentence's, and a closing bracket
     * without its opening one in the URL is the text's: "(see
     * https://example.com/a)." */
    for (;;) {
      while (e > i && strchr (".,;:!?'*", text[e - 1]))
        e--;
      if (e > i && (text[e - 1] == ')' || text[e - 1] == ']')) {
        char cl = text[e - 1], op = cl == ')' ? '(' : '[';
        for (open_p = close_p = 0, k = i; k < e; k++) {
          open_p += text[k] == op;
          close_p += text[k] == cl;
        }
        if (close_p > open_p) {
          e--;
          continue;
        }
      }
      break;
    }
    if (linkrewrite_trackable (o, text + i, e - i)
        && put_tracked (&r, text + i, e - i, i, e, 0) < 0)
      return -1;
    p = e > i ? e : i + 1;
  }
  copy_to (&r, len);
  return r.links;
}
