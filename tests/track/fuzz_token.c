/*
 * fuzz_token.c: libFuzzer target for the token readers of core/token.c
 * (see tests/track/fuzz.sh).  Besides memory errors, it aborts when:
 *  - a token that token_check or token_track_check accepts is not the
 *    very text token_make / token_click_make / token_open_make write for
 *    what it read (one token, one spelling);
 *  - the input, split at its first NUL into a message key and a URL, does
 *    not read back from the click token made of it (and the key from the
 *    open token).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"
#include "util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct token_key unsub, track;
static int ready;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = xstrndup ((const char *) data, size), *p, *again;
  const char *nul = memchr (data, '\0', size);
  struct token_track t;
  size_t len;

  if (!ready) {
    if (token_key_init (&unsub, "fuzz-secret-0123456789")
        || token_track_key_init (&track, "fuzz-secret-0123456789"))
      abort ();
    ready = 1;
  }

  /* The input as a token. */
  p = token_check (&unsub, s, &len);
  if (p) {
    again = token_make (&unsub, p, len);
    if (!again || strcmp (again, s) != 0)
      abort ();
    free (again);
    free (p);
  }
  if (token_track_check (&track, s, &t) == 0) {
    again = t.kind == 'c' ? token_click_make (&track, t.key, t.url, t.url_len)
                          : token_open_make (&track, t.key);
    if (!again || strcmp (again, s) != 0)
      abort ();
    free (again);
    free (t.payload);
  }
  else if (t.payload)
    abort ();

  /* The input as a key and a URL. */
  if (nul && nul > (const char *) data && (size_t) (nul - (const char *) data) + 1 < size
      && !memchr (nul + 1, '\0', size - (size_t) (nul - (const char *) data) - 1)) {
    const char *url = nul + 1;
    size_t ul = size - (size_t) (url - (const char *) data);
    char *tok = token_click_make (&track, (const char *) data, url, ul);
    if (!tok || token_track_check (&track, tok, &t) != 0 || t.kind != 'c'
        || strcmp (t.key, (const char *) data) != 0 || t.url_len != ul
        || memcmp (t.url, url, ul) != 0)
      abort ();
    free (t.payload);
    free (tok);
    tok = token_open_make (&track, (const char *) data);
    if (!tok || token_track_check (&track, tok, &t) != 0 || t.kind != 'o'
        || strcmp (t.key, (const char *) data) != 0 || t.url)
      abort ();
    free (t.payload);
    /* Neither is an unsubscribe token. */
    if ((p = token_check (&unsub, tok, &len)) != NULL)
      abort ();
    free (tok);
  }
  free (s);
  return 0;
}
