/*
 * fuzz_token.c: libFuzzer target for the token readers of core/token.c
 * (see tests/track/fuzz.sh).  Besides memory errors, it aborts when:
 *  - a token that token_check or token_track_check accepts is not the
 *    very text token_make / token_click_make / token_open_make write for
 *    what it read (one token, one spelling);
 *  - the input, split at its first NUL into a message key and a URL, does
 *    not read back from the click token made of it (and the key from the
 *    open token);
 *  - a text token_short_read accepts is not the one spelling of the id
 *    and MAC it read, or one whose MAC token_short_verify accepts (for
 *    the link the harness's "store" has under that id: "sms:1:cID" to
 *    "https://shop.example/pID") is not what token_short_make writes for
 *    that link;
 *  - the short token made for the input's key and URL, under an id taken
 *    from the input, does not read back, verify, and refuse another URL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "token.h"
#include "util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct token_key unsub, track;
static int ready;

/* The one spelling of short token T: base64url, no padding, of its id
 * in as few big-endian bytes as it takes and its MAC. */
static char *
short_spelling (const struct token_short *t)
{
  unsigned char raw[8 + TOKEN_SHORT_MAC_LEN];
  char *out = xmalloc (4 * sizeof raw / 3 + 4);
  size_t n = 0, i;
  int b;

  for (b = 7; b >= 0; b--) {
    unsigned char x = (unsigned char) (((uint64_t) t->id >> (8 * b)) & 0xff);
    if (n || x)
      raw[n++] = x;
  }
  memcpy (raw + n, t->mac, TOKEN_SHORT_MAC_LEN);
  n += TOKEN_SHORT_MAC_LEN;
  i = (size_t) EVP_EncodeBlock ((unsigned char *) out, raw, (int) n);
  while (i > 0 && out[i - 1] == '=')
    out[--i] = '\0';
  for (i = 0; out[i]; i++)
    out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  return out;
}

/* The input as a short token (/s/TOKEN). */
static void
fuzz_short (const char *s)
{
  struct token_short ts;
  char key[48], url[64], *again;

  if (token_short_read (s, &ts) < 0)
    return;
  if (ts.id < 1 || strlen (s) > TOKEN_SHORT_MAX)
    abort ();
  again = short_spelling (&ts);
  if (strcmp (again, s) != 0)
    abort ();
  free (again);
  snprintf (key, sizeof key, "sms:1:c%lld", (long long) ts.id);
  snprintf (url, sizeof url, "https://shop.example/p%lld", (long long) ts.id);
  if (token_short_verify (&track, &ts, key, url, strlen (url)) == 0) {
    again = token_short_make (&track, ts.id, key, url, strlen (url));
    if (!again || strcmp (again, s) != 0)
      abort ();
    free (again);
  }
}

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

  fuzz_short (s);

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
    {
      /* A short link of that key and URL, its id from the input. */
      struct token_short ts;
      int64_t id = 1;
      size_t i;
      for (i = 0; i < size && i < 8; i++)
        id = (id * 131 + data[i]) & INT64_MAX;
      if (id < 1)
        id = 1;
      tok = token_short_make (&track, id, (const char *) data, url, ul);
      if (!tok || token_short_read (tok, &ts) != 0 || ts.id != id
          || token_short_verify (&track, &ts, (const char *) data, url, ul) != 0
          || token_short_verify (&track, &ts, (const char *) data, url,
                                 ul - 1) == 0
          || token_track_check (&track, tok, &t) == 0)
        abort ();
      free (tok);
    }
  }
  free (s);
  return 0;
}
