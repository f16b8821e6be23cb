/*
 * fuzz_linkrewrite.c: libFuzzer target for core/linkrewrite.c (see
 * tests/track/fuzz.sh).  Besides memory errors (ASan, UBSan), it aborts
 * when an invariant breaks:
 *  - every URL handed to the track function is trackable and holds no
 *    control character;
 *  - without a track function and a pixel, a text without
 *    data-herald-notrack comes out byte for byte the same;
 *  - the pixel is in the output once more than without a pixel, and
 *    where it is a tag: an <a> put in its place is a link;
 *  - rewriting the output again changes nothing (its links point into
 *    base_url; without data-herald-notrack in the input);
 *  - linkrewrite_text holds the first invariant too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "linkrewrite.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char pixel[] = "https://t.test/o/PIXEL.gif";
static const char pixel_tag[] = "<img src=\"https://t.test/o/PIXEL.gif\" "
                                "width=\"1\" height=\"1\" alt=\"\">";
static struct linkrewrite with, without, again;
static size_t tracked;

static char *
track (void *data, const char *url, size_t len)
{
  size_t i;

  (void) data;
  if (!linkrewrite_trackable (&with, url, len))
    abort ();
  for (i = 0; i < len; i++)
    if ((unsigned char) url[i] < 0x20 || url[i] == 0x7f)
      abort ();
  return xasprintf ("https://t.test/c/%zu", tracked++);
}

static int saw_probe;

static char *
probe (void *data, const char *url, size_t len)
{
  (void) data;
  if (len == 30 && memcmp (url, "https://probe.test/PIXEL-PROBE", 30) == 0)
    saw_probe++;
  return xasprintf ("https://t.test/c/probe");
}

static size_t
count (const char *s, size_t n, const char *what)
{
  size_t k = strlen (what), c = 0, i;

  for (i = 0; i + k <= n; i++)
    if (memcmp (s + i, what, k) == 0)
      c++;
  return c;
}

static int
has_notrack (const char *s, size_t n)
{
  static const char w[] = "data-herald-notrack";
  size_t i;

  for (i = 0; i + sizeof w - 1 <= n; i++)
    if (strncasecmp (s + i, w, sizeof w - 1) == 0)
      return 1;
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *in = (const char *) data;
  struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, c = STRBUF_INIT;
  int notrack = has_notrack (in, size);
  long n;

  with.base_url = "https://t.test";
  with.unsubscribe_url = "https://t.test/u/UNSUB";
  with.pixel_url = pixel;
  with.track = track;
  without.base_url = "https://t.test";
  again = with;
  again.pixel_url = NULL;

  n = linkrewrite_html (&with, in, size, &a);
  if (n < 0)
    abort ();                  /* track never fails here */
  /* One pixel more than the same rewrite without a pixel (a rewritten
   * href may eat a pixel's text that the input held). */
  if (linkrewrite_html (&again, in, size, &b) < 0
      || count (a.s, a.len, pixel_tag) != count (b.s, b.len, pixel_tag) + 1)
    abort ();
  strbuf_reset (&b);
  if (count (a.s, a.len, pixel_tag) == 1 && count (in, size, "probe.test") == 0) {
    /* The pixel where a browser sees a tag, not text, a comment or part
     * of another tag. */
    struct linkrewrite pr = { "https://t.test", NULL, NULL, probe, NULL };
    const char *at = memmem (a.s, a.len, pixel_tag, sizeof pixel_tag - 1);
    size_t off = (size_t) (at - a.s);
    strbuf_add (&c, a.s, off);
    strbuf_adds (&c, "<a href=\"https://probe.test/PIXEL-PROBE\">");
    strbuf_add (&c, at + sizeof pixel_tag - 1, a.len - off - (sizeof pixel_tag - 1));
    saw_probe = 0;
    if (linkrewrite_html (&pr, c.s, c.len, &b) < 0 || saw_probe != 1)
      abort ();
    strbuf_reset (&b);
    strbuf_reset (&c);
  }
  if (!notrack) {
    if (linkrewrite_html (&again, a.s, a.len, &b) != 0 || b.len != a.len
        || memcmp (a.s, b.s, a.len) != 0)
      abort ();
    if (linkrewrite_html (&without, in, size, &c) != 0 || c.len != size
        || (size && memcmp (c.s, in, size) != 0))
      abort ();
  }
  strbuf_reset (&a);
  if (linkrewrite_text (&with, in, size, &a) < 0)
    abort ();
  strbuf_free (&a);
  strbuf_free (&b);
  strbuf_free (&c);
  return 0;
}
