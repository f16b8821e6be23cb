/* jsonw.c: compact JSON text of a jansson value.  See jsonw.h. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* 1 for the bytes a JSON string cannot hold as they are. */
static const unsigned char needs_escape[256] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  ['"'] = 1, ['\\'] = 1,
};

static void
string_append (struct strbuf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";     /* as jansson */
  const unsigned char *p = (const unsigned char *) s, *end = p + n;
  char *o;

  /* Room for the worst case (every byte \u00XX), then written in place. */
  strbuf_grow (b, 6 * n + 2);
  o = b->s + b->len;
  *o++ = '"';
  while (p < end) {
    const unsigned char *run = p;
    unsigned char c;

    while (p < end && !needs_escape[*p])
      p++;
    memcpy (o, run, (size_t) (p - run));
    o += p - run;
    if (p == end)
      break;
    c = *p++;
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
  }
  *o++ = '"';
  *o = '\0';
  b->len = (size_t) (o - b->s);
}

void
jsonw_append (struct strbuf *b, const json_t *j)
{
  switch (json_typeof (j)) {
  case JSON_OBJECT: {
      const char *k;
      json_t *v;
      int first = 1;

      strbuf_addc (b, '{');
      json_object_foreach ((json_t *) j, k, v) {
        if (!first)
          strbuf_addc (b, ',');
        first = 0;
        string_append (b, k, strlen (k));
        strbuf_addc (b, ':');
        jsonw_append (b, v);
      }
      strbuf_addc (b, '}');
      break;
    }
  case JSON_ARRAY: {
      size_t i, n = json_array_size (j);

      strbuf_addc (b, '[');
      for (i = 0; i < n; i++) {
        if (i)
          strbuf_addc (b, ',');
        jsonw_append (b, json_array_get (j, i));
      }
      strbuf_addc (b, ']');
      break;
    }
  case JSON_STRING:
    string_append (b, json_string_value (j), json_string_length (j));
    break;
  case JSON_INTEGER:
    strbuf_addf (b, "%" JSON_INTEGER_FORMAT, json_integer_value (j));
    break;
  case JSON_TRUE:
    strbuf_add (b, "true", 4);
    break;
  case JSON_FALSE:
    strbuf_add (b, "false", 5);
    break;
  case JSON_NULL:
    strbuf_add (b, "null", 4);
    break;
  case JSON_REAL: {
      /* jansson's shortest-round-trip spelling, rare here: its own. */
      char *t = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY);
      if (t)
        strbuf_adds (b, t);
      free (t);
      break;
    }
  }
}

char *
jsonw_dumps (const json_t *j)
{
  struct strbuf b = STRBUF_INIT;

  if (!j)
    return NULL;
  jsonw_append (&b, j);
  if (!b.s)
    return xstrdup ("");
  return b.s;
}
