/* tests/track/test-token.c: the click and open tokens of core/token.c.
 *  - what is made reads back: message key, URL (any bytes but NUL), kind;
 *  - a token MAC'ed with another secret, a flipped MAC or payload bit, a
 *    truncated or extended token, a re-spelled one, a MAC moved onto
 *    another payload: all refused;
 *  - an unsubscribe token is no tracking token and the reverse, even for
 *    a payload that would parse as the other kind;
 *  - payloads that the key signed but that are not canonical (empty key
 *    or URL, a second NUL, a URL on an open, an unknown kind) are
 *    refused. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"
#include "util.h"
#include "../tap.h"

static const char SECRET[] = "track-test-secret-0123456789";

static int
refused (struct token_key *k, const char *tok)
{
  struct token_track t;
  int r = token_track_check (k, tok, &t);

  free (t.payload);
  return r == -1 && t.payload == NULL;
}

/* TOK with its character at I replaced by C (a new string). */
static char *
with_char (const char *tok, size_t i, char c)
{
  char *s = xstrdup (tok);
  s[i] = c;
  return s;
}

int
main (void)
{
  struct token_key k, other, unsub;
  struct token_track t;
  static const char url[] = "https://shop.example/p?a=1&b=\xc3\xa9#x";
  char *tok, *tok2, *s;
  size_t i, bad;

  if (token_track_key_init (&k, SECRET) < 0
      || token_track_key_init (&other, "another-secret-0123456789") < 0
      || token_key_init (&unsub, SECRET) < 0) {
    printf ("Bail out! OpenSSL cannot do HMAC-SHA256\n");
    return 1;
  }

  /* Round trips. */
  tok = token_click_make (&k, "news:1:c\n42", url, sizeof url - 1);
  tap_ok (tok && strspn (tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                         "vwxyz0123456789-_.") == strlen (tok),
          "a click token is base64url and a dot: %s", tok ? tok : "(null)");
  tap_ok (tok && token_track_check (&k, tok, &t) == 0 && t.kind == 'c'
          && strcmp (t.key, "news:1:c\n42") == 0 && t.url_len == sizeof url - 1
          && memcmp (t.url, url, sizeof url) == 0,
          "a click token reads back: kind, key (with a newline), URL");
  free (t.payload);
  tok2 = token_open_make (&k, "news:1:c\n42");
  tap_ok (tok2 && token_track_check (&k, tok2, &t) == 0 && t.kind == 'o'
          && strcmp (t.key, "news:1:c\n42") == 0 && t.url == NULL,
          "an open token reads back: kind and key, no URL");
  free (t.payload);
  s = token_click_make (&k, "news:1:c", url, sizeof url - 1);
  tap_ok (s && strcmp (s, tok) != 0 && token_track_check (&k, s, &t) == 0
          && strcmp (t.key, "news:1:c") == 0,
          "another key, another token");
  free (t.payload);
  free (s);
  tap_ok (token_click_make (&k, "", url, 3) == NULL
          && token_click_make (&k, "k", "", 0) == NULL
          && token_click_make (&k, "k", "a\0b", 3) == NULL
          && token_open_make (&k, "") == NULL,
          "no token for an empty key or URL, or a URL holding a NUL");

  /* Forgeries. */
  tap_ok (refused (&other, tok) && refused (&other, tok2),
          "a token of another secret is refused");
  for (bad = 0, i = 0; tok[i]; i++) {
    char c = tok[i] == '.' ? 'A' : tok[i] == 'A' ? 'B' : 'A';
    s = with_char (tok, i, c);
    if (!refused (&k, s))
      bad++;
    free (s);
  }
  tap_ok (bad == 0, "any one character changed, anywhere: refused (%zu "
          "accepted)", bad);
  for (bad = 0, i = 0; i < strlen (tok); i++) {
    s = xstrndup (tok, i);
    if (!refused (&k, s))
      bad++;
    free (s);
  }
  tap_ok (bad == 0, "every truncation refused (%zu accepted)", bad);
  s = xasprintf ("%sA", tok);
  tap_ok (refused (&k, s), "an extended token is refused");
  free (s);
  s = xasprintf ("%s.%s", tok, strchr (tok, '.') + 1);
  tap_ok (refused (&k, s), "a second MAC is refused");
  free (s);
  {
    /* The last MAC character re-spelled: the same bits for a lenient
     * decoder, another text here. */
    size_t n = strlen (tok);
    s = with_char (tok, n - 1, (char) (tok[n - 1] + 1));
    tap_ok (refused (&k, s), "a re-spelled MAC is refused");
    free (s);
  }
  {
    /* b's MAC on a's payload. */
    char *a = token_click_make (&k, "news:1:a", url, sizeof url - 1);
    char *b = token_click_make (&k, "news:1:b", url, sizeof url - 1);
    s = xasprintf ("%.*s%s", (int) (strchr (a, '.') - a), a, strchr (b, '.'));
    tap_ok (refused (&k, s), "a MAC moved onto another payload is refused");
    free (s);
    free (a);
    free (b);
  }
  tap_ok (refused (&k, "") && refused (&k, ".") && refused (&k, "abc")
          && refused (&k, "%%%.AAAA") && refused (&k, "YQ.") && refused (&k, ".YQ"),
          "malformed tokens are refused");

  /* Kinds stay apart. */
  {
    size_t len;
    char *p;
    /* The unsubscribe key signs "c" key NUL url, a valid click payload. */
    static const char payload[] = "cnews:1:a\0https://evil.example/";
    s = token_make (&unsub, payload, sizeof payload - 1);
    tap_ok (s && refused (&k, s), "an unsubscribe-key token is no click token");
    free (s);
    p = token_check (&unsub, tok, &len);
    tap_ok (p == NULL, "a click token is no unsubscribe token");
    free (p);
  }

  /* Signed with the right key, but not what token_*_make writes. */
  {
    static const struct { const char *p; size_t n; const char *what; } nc[] = {
      { "c\0https://a.example/", 20, "an empty key" },
      { "ck\0", 3, "an empty URL" },
      { "ck", 2, "no URL at all" },
      { "ck\0https://a\0b", 14, "a second NUL" },
      { "ok\0https://a/", 13, "a URL on an open" },
      { "o", 1, "an open without a key" },
      { "uk", 2, "an unknown kind" },
    };
    for (i = 0; i < sizeof nc / sizeof nc[0]; i++) {
      s = token_make (&k, nc[i].p, nc[i].n);
      tap_ok (s && refused (&k, s), "refused: %s", nc[i].what);
      free (s);
    }
  }

  free (tok);
  free (tok2);
  token_key_free (&k);
  token_key_free (&other);
  token_key_free (&unsub);
  return tap_done ();
}
