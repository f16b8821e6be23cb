/* jsoncheck.c: a recursive-descent JSON recogniser (RFC 8259), which
 * can also build the jansson tree of what it recognised.  See
 * jsoncheck.h. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncheck.h"

struct jc {
  const unsigned char *p, *end;
  int depth;
  const char *why;
  int build;                 /* build values (jsoncheck_load) */
  int reject_duplicates;
  char *buf;                 /* decoded strings and keys, when building */
  size_t bufcap;
};

static int
jc_digit (unsigned c)
{
  return c >= '0' && c <= '9';
}

static int
jc_xdigit (unsigned c)
{
  return jc_digit (c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void
jc_ws (struct jc *j)
{
  while (j->p < j->end
         && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int jc_value (struct jc *j, json_t **out);

static int
jc_hex4 (const unsigned char *p)
{
  int k, v = 0;

  for (k = 0; k < 4; k++)
    v = v * 16 + (p[k] <= '9' ? p[k] - '0' : (p[k] | 0x20) - 'a' + 10);
  return v;
}

/* Decode the string body S..E (between the quotes, already recognised)
 * into j->buf, NUL-terminated; its length, or -1 (a \u escape that is
 * not a character jansson would take: NUL or a lone surrogate). */
static long
jc_decode (struct jc *j, const unsigned char *s, const unsigned char *e)
{
  size_t need = (size_t) (e - s) + 1;
  char *o;

  if (need > j->bufcap) {
    char *nb = realloc (j->buf, need);
    if (!nb)
      return j->why = "out of memory", -1;
    j->buf = nb;
    j->bufcap = need;
  }
  o = j->buf;
  while (s < e) {
    const unsigned char *bs = memchr (s, '\\', (size_t) (e - s));
    size_t run = bs ? (size_t) (bs - s) : (size_t) (e - s);
    long cp;

    memcpy (o, s, run);
    o += run;
    s += run;
    if (s == e)
      break;
    s++;                                    /* the backslash */
    switch (*s++) {
    case 'b': *o++ = '\b'; continue;
    case 'f': *o++ = '\f'; continue;
    case 'n': *o++ = '\n'; continue;
    case 'r': *o++ = '\r'; continue;
    case 't': *o++ = '\t'; continue;
    case 'u': break;
    default: *o++ = (char) s[-1]; continue;    /* " \ / */
    }
    cp = jc_hex4 (s);
    s += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      long lo;
      if (e - s < 6 || s[0] != '\\' || s[1] != 'u'
          || (lo = jc_hex4 (s + 2)) < 0xdc00 || lo > 0xdfff) {
        j->why = "invalid Unicode escape (lone surrogate)";
        return -1;
      }
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      s += 6;
    }
    else if (cp >= 0xdc00 && cp <= 0xdfff) {
      j->why = "invalid Unicode escape (lone surrogate)";
      return -1;
    }
    else if (cp == 0) {
      j->why = "\\u0000 is not allowed";
      return -1;
    }
    /* UTF-8 of cp: never longer than the 6 or 12 bytes of its escape */
    if (cp < 0x80)
      *o++ = (char) cp;
    else if (cp < 0x800) {
      *o++ = (char) (0xc0 | (cp >> 6));
      *o++ = (char) (0x80 | (cp & 0x3f));
    }
    else if (cp < 0x10000) {
      *o++ = (char) (0xe0 | (cp >> 12));
      *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
      *o++ = (char) (0x80 | (cp & 0x3f));
    }
    else {
      *o++ = (char) (0xf0 | (cp >> 18));
      *o++ = (char) (0x80 | ((cp >> 12) & 0x3f));
      *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
      *o++ = (char) (0x80 | (cp & 0x3f));
    }
  }
  *o = '\0';
  return (long) (o - j->buf);
}

/* Recognise a string; when building, decode it into j->buf (*LEN_R its
 * length, *ESC_R whether it had escapes: else it is S..S+LEN in the
 * text). */
static int
jc_string_ex (struct jc *j, const unsigned char **s_r, long *len_r)
{
  const unsigned char *start = j->p + 1;
  int esc = 0;

  j->p++;                                   /* the opening quote */
  while (j->p < j->end) {
    unsigned c = *j->p;
    if (c == '"') {
      const unsigned char *end = j->p;
      j->p++;
      if (!j->build)
        return 0;
      if (!esc) {
        *s_r = start;
        *len_r = (long) (end - start);
        return 0;
      }
      *len_r = jc_decode (j, start, end);
      if (*len_r < 0) {
        j->p = start - 1;
        return -1;
      }
      *s_r = (const unsigned char *) j->buf;
      return 0;
    }
    if (c < 0x20) {
      j->why = "control character in string";
      return -1;
    }
    if (c == '\\') {
      int k;
      esc = 1;
      if (++j->p >= j->end)
        break;
      switch (*j->p) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n':
      case 'r': case 't':
        j->p++;
        continue;
      case 'u':
        for (k = 1; k <= 4; k++)
          if (j->p + k >= j->end || !jc_xdigit (j->p[k])) {
            j->why = "bad \\u escape";
            return -1;
          }
        j->p += 5;
        continue;
      default:
        j->why = "bad escape";
        return -1;
      }
    }
    if (c < 0x80) {
      j->p++;
      continue;
    }
    {
      /* UTF-8 (RFC 3629 section 4): no overlongs, no surrogates, nothing
       * above U+10FFFF. */
      size_t n = (c >= 0xc2 && c <= 0xdf) ? 1 : (c & 0xf0) == 0xe0 ? 2
        : (c >= 0xf0 && c <= 0xf4) ? 3 : 0;
      size_t k;
      if (!n || j->p + n >= j->end)
        goto bad_utf8;
      for (k = 1; k <= n; k++)
        if ((j->p[k] & 0xc0) != 0x80)
          goto bad_utf8;
      if ((c == 0xe0 && j->p[1] < 0xa0) || (c == 0xed && j->p[1] >= 0xa0)
          || (c == 0xf0 && j->p[1] < 0x90) || (c == 0xf4 && j->p[1] >= 0x90))
        goto bad_utf8;
      j->p += n + 1;
    }
  }
  j->why = "unterminated string";
  return -1;
bad_utf8:
  j->why = "string is not UTF-8";
  return -1;
}

static int
jc_string (struct jc *j, json_t **out)
{
  const unsigned char *s;
  long len;

  if (jc_string_ex (j, &s, &len) < 0)
    return -1;
  if (out && !(*out = json_stringn_nocheck ((const char *) s, (size_t) len))) {
    j->why = "out of memory";
    return -1;
  }
  return 0;
}

static int
jc_number (struct jc *j, json_t **out)
{
  const unsigned char *s = j->p;
  int real = 0;
  if (j->p < j->end && *j->p == '-')
    j->p++;
  if (j->p < j->end && *j->p == '0')
    j->p++;
  else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
    while (j->p < j->end && jc_digit (*j->p))
      j->p++;
  else
    goto bad;
  if (j->p < j->end && *j->p == '.') {
    real = 1;
    j->p++;
    if (j->p >= j->end || !jc_digit (*j->p))
      goto bad;
    while (j->p < j->end && jc_digit (*j->p))
      j->p++;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    real = 1;
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
      j->p++;
    if (j->p >= j->end || !jc_digit (*j->p))
      goto bad;
    while (j->p < j->end && jc_digit (*j->p))
      j->p++;
  }
  if (out) {
    char tmp[64], *endp, *text = tmp;
    size_t n = (size_t) (j->p - s);
    if (n >= sizeof tmp && !real) {
      /* 64 digits are past any 64-bit integer. */
      j->p = s;
      j->why = "too big integer";
      return -1;
    }
    /* A real may have any number of digits (0.1000...0001): json_loadb
     * reads it, so herald customers import took a record that the
     * scheduler then refused as "not a JSON object" (fuzz_json). */
    if (n >= sizeof tmp && !(text = malloc (n + 1))) {
      j->why = "out of memory";
      return -1;
    }
    memcpy (text, s, n);
    text[n] = '\0';
    errno = 0;
    if (real) {
      double d = strtod (text, &endp);
      if (text != tmp)
        free (text);
      if (errno == ERANGE && (d > 1 || d < -1)) {
        j->p = s;
        j->why = "real number overflow";
        return -1;
      }
      *out = json_real (d);
    }
    else {
      long long v = strtoll (text, &endp, 10);
      if (errno == ERANGE) {
        j->p = s;
        j->why = "too big integer";
        return -1;
      }
      *out = json_integer ((json_int_t) v);
    }
    if (!*out) {
      j->why = "out of memory";
      return -1;
    }
  }
  return 0;
bad:
  j->p = s;
  j->why = s < j->end && (*s == '}' || *s == ']') ? "unexpected bracket"
           : "invalid token";
  return -1;
}

static int
jc_container (struct jc *j, unsigned char close, json_t **out)
{
  int first = 1;
  json_t *c = NULL;

  if (++j->depth > JSONCHECK_MAX_DEPTH) {
    j->why = "nested too deeply";
    return -1;
  }
  if (out && !(c = close == '}' ? json_object () : json_array ())) {
    j->why = "out of memory";
    return -1;
  }
  j->p++;                                   /* '[' or '{' */
  jc_ws (j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    j->depth--;
    goto done;
  }
  for (;;) {
    json_t *v = NULL;
    char *key = NULL;

    if (!first) {
      jc_ws (j);
      if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        goto done;
      }
      if (j->p >= j->end || *j->p != ',') {
        j->why = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
        goto fail;
      }
      j->p++;
      jc_ws (j);
    }
    first = 0;
    if (close == '}') {
      const unsigned char *ks, *kat = j->p;
      long klen;
      if (j->p >= j->end || *j->p != '"') {
        j->why = "expected a string key";
        goto fail;
      }
      if (jc_string_ex (j, &ks, &klen) < 0)
        goto fail;
      if (c) {
        /* jansson keys are C strings: a NUL inside one was refused when
         * decoding \u0000; a raw NUL is a control character. */
        key = malloc ((size_t) klen + 1);
        if (!key) {
          j->why = "out of memory";
          goto fail;
        }
        memcpy (key, ks, (size_t) klen);
        key[klen] = '\0';
        if (j->reject_duplicates && json_object_get (c, key)) {
          free (key);
          j->p = kat;
          j->why = "duplicate object key";
          goto fail;
        }
      }
      jc_ws (j);
      if (j->p >= j->end || *j->p != ':') {
        free (key);
        j->why = "expected ':'";
        goto fail;
      }
      j->p++;
      jc_ws (j);
    }
    if (jc_value (j, c ? &v : NULL) < 0) {
      free (key);
      goto fail;
    }
    if (c) {
      int rc = key ? json_object_set_new_nocheck (c, key, v)
                   : json_array_append_new (c, v);
      free (key);
      if (rc < 0) {
        j->why = "out of memory";
        goto fail;
      }
    }
  }
done:
  if (out)
    *out = c;
  return 0;
fail:
  json_decref (c);
  return -1;
}

static int
jc_literal (struct jc *j, const char *word, json_t **out)
{
  size_t n = strlen (word);
  if ((size_t) (j->end - j->p) < n || memcmp (j->p, word, n) != 0) {
    j->why = "invalid token";
    return -1;
  }
  j->p += n;
  if (out)
    *out = word[0] == 't' ? json_true () : word[0] == 'f' ? json_false ()
                                                           : json_null ();
  return 0;
}

static int
jc_value (struct jc *j, json_t **out)
{
  if (j->p >= j->end) {
    j->why = "unexpected end of input";
    return -1;
  }
  switch (*j->p) {
  case '{': return jc_container (j, '}', out);
  case '[': return jc_container (j, ']', out);
  case '"': return jc_string (j, out);
  case 't': return jc_literal (j, "true", out);
  case 'f': return jc_literal (j, "false", out);
  case 'n': return jc_literal (j, "null", out);
  default: return jc_number (j, out);
  }
}

int
jsoncheck (const char *s, size_t len, const char **why_r, size_t *off_r)
{
  struct jc j;

  memset (&j, 0, sizeof j);
  j.p = (const unsigned char *) s;
  j.end = j.p + len;
  jc_ws (&j);
  if (jc_value (&j, NULL) == 0) {
    jc_ws (&j);
    if (j.p == j.end)
      return 0;
    j.why = "data after the JSON value";
  }
  *why_r = j.why;
  *off_r = (size_t) (j.p - (const unsigned char *) s);
  return -1;
}

json_t *
jsoncheck_load (const char *s, size_t len, int flags, const char **why_r,
                size_t *off_r)
{
  struct jc j;
  json_t *v = NULL;

  memset (&j, 0, sizeof j);
  j.p = (const unsigned char *) s;
  j.end = j.p + len;
  j.build = 1;
  j.reject_duplicates = (flags & JSONCHECK_REJECT_DUPLICATES) != 0;
  jc_ws (&j);
  if (!(flags & JSONCHECK_ANY) && (j.p >= j.end || (*j.p != '{' && *j.p != '[')))
    j.why = "'[' or '{' expected";
  else if (jc_value (&j, &v) == 0) {
    jc_ws (&j);
    if (j.p == j.end) {
      free (j.buf);
      return v;
    }
    j.why = "data after the JSON value";
    json_decref (v);
  }
  free (j.buf);
  *why_r = j.why;
  *off_r = (size_t) (j.p - (const unsigned char *) s);
  return NULL;
}

void
jsoncheck_position (const char *s, size_t off, int *line_r, int *col_r)
{
  size_t i;
  int line = 1, col = 1;

  for (i = 0; i < off; i++) {
    if (s[i] == '\n') {
      line++;
      col = 1;
    }
    else
      col++;
  }
  *line_r = line;
  *col_r = col;
}
