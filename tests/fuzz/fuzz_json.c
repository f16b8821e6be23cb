/* fuzz_json: libFuzzer target for lib/jsoncheck.c, the JSON recogniser
 * that the core (webhook.body, push.data, customer records) and the
 * webhook plugin use, against jansson as the reference.  For each input:
 *  - jsoncheck and jsoncheck_load agree: what the loader builds, the
 *    recogniser accepts, and what the recogniser accepts the loader builds
 *    unless it is one of the refusals jsoncheck.h lists (\u0000, a lone
 *    surrogate escape, an integer beyond 64 bits, a real that overflows);
 *  - jsoncheck_load builds what json_loadb builds (json_equal), and both
 *    refuse the same texts, but for nesting between JSONCHECK_MAX_DEPTH
 *    and jansson's own limit, and texts
 *    with a NUL byte (jansson's lexer takes it for the end of a token or
 *    of the text: it builds [6] from "[6\0]"); with and without duplicate
 *    keys refused;
 *  - a refusal has a reason and an offset within the text.
 * Built and run by tests/fuzz/fuzz.sh. */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../lib/jsoncheck.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
                       abort (); } while (0)

/* The build-only refusals of jsoncheck_load (jsoncheck.h). */
static int
build_refusal (const char *why)
{
  return strstr (why, "\\u0000") || strstr (why, "surrogate")
         || strstr (why, "too big integer") || strstr (why, "overflow");
}

static void
one (const char *s, size_t len, int dup)
{
  const char *why1 = NULL, *why2 = NULL;
  size_t off1 = 0, off2 = 0;
  int line, col, r;
  json_t *a, *b;
  json_error_t je;

  r = jsoncheck (s, len, &why1, &off1);
  if (r < 0 && (!why1 || off1 > len))
    FAIL ("jsoncheck: refusal without a reason or offset %zu of %zu", off1,
          len);
  if (r < 0)
    jsoncheck_position (s, off1, &line, &col);
  a = jsoncheck_load (s, len, JSONCHECK_ANY
                      | (dup ? JSONCHECK_REJECT_DUPLICATES : 0), &why2, &off2);
  if (!a && (!why2 || off2 > len))
    FAIL ("jsoncheck_load: refusal without a reason or offset");
  if (a && r < 0)
    FAIL ("jsoncheck refuses (%s at %zu) what jsoncheck_load builds", why1,
          off1);
  if (!a && r == 0 && !build_refusal (why2)
      && !(dup && strstr (why2, "duplicate")))
    FAIL ("jsoncheck accepts what jsoncheck_load refuses (%s at %zu)", why2,
          off2);
  b = json_loadb (s, len, JSON_DECODE_ANY | (dup ? JSON_REJECT_DUPLICATES : 0),
                  &je);
  if (a && !b)
    FAIL ("jsoncheck_load builds what jansson refuses (%s at %d)", je.text,
          je.position);
  if (!a && b && !strstr (why2, "nested too deeply")
      && !memchr (s, '\0', len))
    FAIL ("jsoncheck_load refuses (%s at %zu) what jansson builds", why2,
          off2);
  if (a && b && !json_equal (a, b))
    FAIL ("jsoncheck_load and jansson build different values");
  json_decref (a);
  json_decref (b);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size ? size : 1);   /* exactly SIZE bytes: ASan sees
                                           any read past the end */
  if (size)
    memcpy (s, data, size);
  one (s, size, 0);
  one (s, size, 1);
  free (s);
  return 0;
}
