/* jsoncheck.c: a recursive-descent JSON recogniser (RFC 8259).  See
 * jsoncheck.h. */
#include <config.h>

#include <string.h>

#include "jsoncheck.h"

struct jc {
  const unsigned char *p, *end;
  int depth;
  const char *why;
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

static int jc_value (struct jc *j);

static int
jc_string (struct jc *j)
{
  j->p++;                                   /* the opening quote */
  while (j->p < j->end) {
    unsigned c = *j->p;
    if (c == '"') {
      j->p++;
      return 0;
    }
    if (c < 0x20) {
      j->why = "control character in string";
      return -1;
    }
    if (c == '\\') {
      int k;
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
jc_number (struct jc *j)
{
  const unsigned char *s = j->p;
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
    j->p++;
    if (j->p >= j->end || !jc_digit (*j->p))
      goto bad;
    while (j->p < j->end && jc_digit (*j->p))
      j->p++;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
      j->p++;
    if (j->p >= j->end || !jc_digit (*j->p))
      goto bad;
    while (j->p < j->end && jc_digit (*j->p))
      j->p++;
  }
  return 0;
bad:
  j->p = s;
  j->why = s < j->end && (*s == '}' || *s == ']') ? "unexpected bracket"
           : "invalid token";
  return -1;
}

static int
jc_container (struct jc *j, unsigned char close)
{
  int first = 1;
  if (++j->depth > JSONCHECK_MAX_DEPTH) {
    j->why = "nested too deeply";
    return -1;
  }
  j->p++;                                   /* '[' or '{' */
  jc_ws (j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    j->depth--;
    return 0;
  }
  for (;;) {
    if (!first) {
      jc_ws (j);
      if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
      }
      if (j->p >= j->end || *j->p != ',') {
        j->why = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
        return -1;
      }
      j->p++;
      jc_ws (j);
    }
    first = 0;
    if (close == '}') {
      if (j->p >= j->end || *j->p != '"') {
        j->why = "expected a string key";
        return -1;
      }
      if (jc_string (j) < 0)
        return -1;
      jc_ws (j);
      if (j->p >= j->end || *j->p != ':') {
        j->why = "expected ':'";
        return -1;
      }
      j->p++;
      jc_ws (j);
    }
    if (jc_value (j) < 0)
      return -1;
  }
}

static int
jc_literal (struct jc *j, const char *word)
{
  size_t n = strlen (word);
  if ((size_t) (j->end - j->p) < n || memcmp (j->p, word, n) != 0) {
    j->why = "invalid token";
    return -1;
  }
  j->p += n;
  return 0;
}

static int
jc_value (struct jc *j)
{
  if (j->p >= j->end) {
    j->why = "unexpected end of input";
    return -1;
  }
  switch (*j->p) {
  case '{': return jc_container (j, '}');
  case '[': return jc_container (j, ']');
  case '"': return jc_string (j);
  case 't': return jc_literal (j, "true");
  case 'f': return jc_literal (j, "false");
  case 'n': return jc_literal (j, "null");
  default: return jc_number (j);
  }
}

int
jsoncheck (const char *s, size_t len, const char **why_r, size_t *off_r)
{
  struct jc j;

  j.p = (const unsigned char *) s;
  j.end = j.p + len;
  j.depth = 0;
  j.why = NULL;
  jc_ws (&j);
  if (jc_value (&j) == 0) {
    jc_ws (&j);
    if (j.p == j.end)
      return 0;
    j.why = "data after the JSON value";
  }
  *why_r = j.why;
  *off_r = (size_t) (j.p - (const unsigned char *) s);
  return -1;
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
