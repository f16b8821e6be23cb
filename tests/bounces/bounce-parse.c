/* tests/bounces/bounce-parse: what core/bounce.c reads in each mailbox or
 * file given, one JSON object a line, for tests/bounces/parse.py:
 *   {"name", "kind", "format", "why", "date", "status", "action",
 *    "recipient", "diagnostic", "feedback_type", "tokens", "message_id"}
 * or {"name", "error"} for what could not be read.  Exit 0, or 1 when
 * anything could not be read. */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "bounce.h"

static const char *const kinds[] = {
  [BOUNCE_UNPARSEABLE] = "unparseable", [BOUNCE_HARD] = "hard",
  [BOUNCE_SOFT] = "soft", [BOUNCE_COMPLAINT] = "complaint",
  [BOUNCE_IGNORED] = "ignored"
};

static void
set_str (json_t *o, const char *k, const char *v)
{
  json_object_set_new (o, k, v ? json_string (v) : json_null ());
}

static int
each (void *data, const struct bounce_item *it)
{
  json_t *o = json_object (), *t;
  char *s;
  size_t i;

  set_str (o, "name", it->name);
  if (it->error)
    set_str (o, "error", it->error);
  else {
    const struct bounce *b = it->b;
    set_str (o, "kind", kinds[b->kind]);
    set_str (o, "format", b->format);
    set_str (o, "why", b->why);
    json_object_set_new (o, "date", json_integer (b->date));
    set_str (o, "status", b->status);
    set_str (o, "action", b->action);
    set_str (o, "recipient", b->recipient);
    set_str (o, "diagnostic", b->diagnostic);
    set_str (o, "feedback_type", b->feedback_type);
    t = json_array ();
    for (i = 0; i < b->n_tokens; i++)
      json_array_append_new (t, json_string (b->tokens[i]));
    json_object_set_new (o, "tokens", t);
    set_str (o, "message_id", b->message_id);
  }
  /* Every string must be UTF-8 (json_string refuses others): a NULL
   * member here is a bug of bounce.c. */
  s = json_dumps (o, JSON_COMPACT);
  printf ("%s\n", s ? s : "{\"error\":\"a string that is not UTF-8\"}");
  free (s);
  json_decref (o);
  (void) data;
  return 0;
}

int
main (int argc, char **argv)
{
  long files = 0;
  int i, bad = 0;

  bounce_global_init ();
  for (i = 1; i < argc; i++)
    if (bounce_read (argv[i], &files, each, NULL) != 0)
      bad = 1;
  bounce_global_shutdown ();
  return bad;
}
