/* tests/track/test-token.c: the click and open tokens of core/token.c.
 *  - what is made reads back: message key, URL (any bytes but NUL), kind;
 *  - a token MAC'ed with another secret, a flipped MAC or payload bit, a
 *    truncated or extended token, a re-spelled one, a MAC moved onto
 *    another payload: all refused;
 *  - an unsubscribe token is no tracking token and the reverse, even for
 *    a payload that would parse as the other kind;
 *  - payloads that the key signed but that are not canonical (empty key
 *    or URL, a second NUL, a URL on an open, an unknown kind) are
 *    refused;
 *  - the short tokens of SMS links: link ids of every width read back,
 *    the length is what token.h says, and every other byte at every
 *    position (of the text and of the decoded bytes), every truncation,
 *    an extension, a re-spelling, a leading zero byte, another link's
 *    key or URL, another secret are refused: the store is played by a
 *    table in which every id names a link, so each altered token that
 *    still reads is refused by its MAC. */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

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

/* ---- short tokens ---- */

/* The store as the short-link tests see it: link ORIG_ID is the message
 * ORIG_KEY's link to ORIG_URL; every other id names a link too, of
 * message "sms:1:cID" to "https://shop.example/pID".  So a token that
 * reads as any id reaches the MAC check. */
static int64_t orig_id;
static const char *orig_key, *orig_url;

static void
link_of (int64_t id, char *key, size_t kn, char *url, size_t un)
{
  if (id == orig_id) {
    snprintf (key, kn, "%s", orig_key);
    snprintf (url, un, "%s", orig_url);
  }
  else {
    snprintf (key, kn, "sms:1:c%lld", (long long) id);
    snprintf (url, un, "https://shop.example/p%lld", (long long) id);
  }
}

/* What herald serve does with /s/TOK: read, look up, verify.  Returns
 * the link id it would redirect for, or 0 (404).  STRICT: also refuse a
 * token checked against the original link whatever id it reads as. */
static int64_t
short_accepts (struct token_key *k, const char *tok)
{
  struct token_short ts;
  char key[64], url[128];

  if (token_short_read (tok, &ts) < 0)
    return 0;
  link_of (ts.id, key, sizeof key, url, sizeof url);
  if (token_short_verify (k, &ts, key, url, strlen (url)) < 0)
    return 0;
  return ts.id;
}

/* 1 when no reading of TOK redirects: neither through the table nor
 * against the original link (as if the store answered with it for any
 * id). */
static int
short_refused (struct token_key *k, const char *tok)
{
  struct token_short ts;

  if (short_accepts (k, tok) != 0)
    return 0;
  if (token_short_read (tok, &ts) == 0
      && token_short_verify (k, &ts, orig_key, orig_url,
                             strlen (orig_url)) == 0)
    return 0;
  return 1;
}

/* base64url of RAW[0..N) (no padding), malloc'ed. */
static char *
b64u (const unsigned char *raw, size_t n)
{
  char *out = xmalloc ((n + 2) / 3 * 4 + 1);
  size_t i = (size_t) EVP_EncodeBlock ((unsigned char *) out, raw, (int) n);

  while (i > 0 && out[i - 1] == '=')
    out[--i] = '\0';
  for (i = 0; out[i]; i++)
    out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  return out;
}

/* The bytes of base64url TOK into RAW (room for 32); their count. */
static size_t
unb64u (const char *tok, unsigned char *raw)
{
  char buf[64];
  size_t n = strlen (tok), i;
  int got;

  for (i = 0; i < n; i++)
    buf[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : tok[i];
  while (i % 4)
    buf[i++] = '=';
  buf[i] = '\0';
  got = EVP_DecodeBlock (raw, (unsigned char *) buf, (int) i);
  return (size_t) got - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
}

static void
short_tests (struct token_key *k, struct token_key *other)
{
  static const struct { int64_t id; size_t len; } widths[] = {
    { 1, 12 }, { 255, 12 }, { 256, 14 }, { 65535, 14 }, { 65536, 15 },
    { 16777215, 15 }, { 16777216, 16 }, { 4294967296LL, 18 },
    { INT64_MAX, 22 },
  };
  static const char url[] = "https://shop.example/spring?utm_source=sms&c=42";
  char *tok, *s;
  size_t i, bad, tries, n;
  unsigned char raw[32], alt[32];
  int c;

  orig_key = "spring:1:c42";
  orig_url = url;
  for (bad = 0, i = 0; i < sizeof widths / sizeof widths[0]; i++) {
    struct token_short ts;
    orig_id = widths[i].id;
    tok = token_short_make (k, orig_id, orig_key, url, sizeof url - 1);
    if (!tok || strlen (tok) != widths[i].len || strlen (tok) > TOKEN_SHORT_MAX
        || strspn (tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_") != strlen (tok)
        || token_short_read (tok, &ts) < 0 || ts.id != orig_id
        || short_accepts (k, tok) != orig_id) {
      printf ("# id %lld: %s\n", (long long) orig_id, tok ? tok : "(null)");
      bad++;
    }
    free (tok);
  }
  tap_ok (bad == 0, "short tokens of ids 1 to 2^63-1 read back, base64url "
          "alone (GSM-7 characters), 12 to 22 characters");

  orig_id = 1234567;
  tok = token_short_make (k, orig_id, orig_key, url, sizeof url - 1);
  tap_ok (tok && strlen (tok) == 15 && short_accepts (k, tok) == orig_id,
          "link 1234567: a 15-character token: %s", tok ? tok : "(null)");
  s = token_short_make (k, orig_id, orig_key, url, sizeof url - 1);
  tap_ok (s && strcmp (s, tok) == 0, "the same link, the same token");
  free (s);
  tap_ok (token_short_make (k, 0, orig_key, url, 3) == NULL
          && token_short_make (k, -5, orig_key, url, 3) == NULL
          && token_short_make (k, 1, "", url, 3) == NULL
          && token_short_make (k, 1, "k", "", 0) == NULL
          && token_short_make (k, 1, "k", "a\0b", 3) == NULL,
          "no short token for an id below 1, an empty key or URL, or a NUL");

  {
    struct token_short ts;
    token_short_read (tok, &ts);
    tap_ok (token_short_verify (k, &ts, "spring:1:c43", url, sizeof url - 1) < 0
            && token_short_verify (k, &ts, orig_key, url, sizeof url - 2) < 0
            && token_short_verify (k, &ts, orig_key, "https://evil.example/",
                                   21) < 0,
            "the MAC binds the message key and the URL");
    tap_ok (token_short_verify (other, &ts, orig_key, url, sizeof url - 1) < 0
            && short_accepts (other, tok) == 0,
            "a short token of another secret is refused");
  }

  /* Every other byte value at every position of the text. */
  for (bad = tries = 0, i = 0; tok[i]; i++)
    for (c = 1; c < 256; c++) {
      if (c == (unsigned char) tok[i])
        continue;
      s = with_char (tok, i, (char) c);
      tries++;
      if (!short_refused (k, s)) {
        printf ("# accepted: %s\n", s);
        bad++;
      }
      free (s);
    }
  tap_ok (bad == 0 && tries == 15 * 254, "each of the %zu single-byte "
          "changes of the token's text refused (%zu accepted)", tries, bad);

  /* Every other value of every decoded byte, re-encoded. */
  n = unb64u (tok, raw);
  for (bad = tries = 0, i = 0; i < n; i++)
    for (c = 0; c < 256; c++) {
      if (c == raw[i])
        continue;
      memcpy (alt, raw, n);
      alt[i] = (unsigned char) c;
      s = b64u (alt, n);
      tries++;
      if (!short_refused (k, s)) {
        printf ("# accepted: %s\n", s);
        bad++;
      }
      free (s);
    }
  tap_ok (n == 11 && bad == 0 && tries == 11 * 255,
          "each of the %zu single-byte changes of its 11 bytes (id and MAC) "
          "refused (%zu accepted)", tries, bad);

  for (bad = 0, i = 0; i < strlen (tok); i++) {
    s = xstrndup (tok, i);
    if (!short_refused (k, s))
      bad++;
    free (s);
  }
  tap_ok (bad == 0, "every truncation refused (%zu accepted)", bad);
  for (bad = 0, c = 0; c < 64; c++) {
    s = xasprintf ("%s%c", tok,
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_"[c]);
    if (!short_refused (k, s))
      bad++;
    free (s);
  }
  tap_ok (bad == 0, "every one-character extension refused (%zu accepted)",
          bad);
  {
    /* The last character re-spelled: the same bytes for a lenient
     * decoder (its 2 unused bits set), another text here. */
    size_t m = strlen (tok);
    s = with_char (tok, m - 1, (char) (tok[m - 1] + 1));
    tap_ok (short_refused (k, s), "a re-spelled last character is refused");
    free (s);
  }
  {
    /* Link 5 with a zero byte before its id: the right MAC, two
     * spellings of one id. */
    char *five = token_short_make (k, 5, "sms:1:c5", "https://shop.example/p5",
                                   23);
    n = unb64u (five, raw);
    alt[0] = 0;
    memcpy (alt + 1, raw, n);
    s = b64u (alt, n + 1);
    tap_ok (five && short_accepts (k, five) == 5 && short_refused (k, s),
            "a leading zero byte in the id is refused");
    free (s);
    free (five);
    /* An 8-byte id with its top bit set is no int64. */
    memset (alt, 0xff, 16);
    s = b64u (alt, 16);
    tap_ok (short_refused (k, s), "an id past 2^63 - 1 is refused");
    free (s);
    s = b64u (alt, 17);
    tap_ok (short_refused (k, s), "a 9-byte id is refused");
    free (s);
  }
  tap_ok (short_refused (k, "") && short_refused (k, "A")
          && short_refused (k, "AAAAAAAAAAAA") && short_refused (k, "%%%")
          && short_refused (k, "AZpSd7IbL1.4"),
          "malformed short tokens are refused");
  {
    /* Kinds stay apart: a click token is no short token and the reverse. */
    struct token_track t;
    char *click = token_click_make (k, orig_key, url, sizeof url - 1);
    tap_ok (click && short_refused (k, click)
            && token_track_check (k, tok, &t) < 0 && t.payload == NULL,
            "a click token is no short token, a short token no click token");
    free (click);
  }
  free (tok);
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

  short_tests (&k, &other);

  free (tok);
  free (tok2);
  token_key_free (&k);
  token_key_free (&other);
  token_key_free (&unsub);
  return tap_done ();
}
