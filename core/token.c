/* token.c: signed tokens for the tracking server's links.  See token.h. */
#include <config.h>

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "token.h"
#include "util.h"

#define TOKEN_MAC_LEN 16

int
token_key_init (struct token_key *k, const char *secret)
{
  return hmac256_init (&k->h, secret, strlen (secret));
}

void
token_key_free (struct token_key *k)
{
  hmac256_free (&k->h);
}

/* base64url of IN[0..N) into OUT (room for 4 * ceil(N / 3) + 1), no
 * padding. */
static void
b64url (const unsigned char *in, size_t n, char *out)
{
  size_t i = (size_t) EVP_EncodeBlock ((unsigned char *) out, in, (int) n);

  while (i > 0 && out[i - 1] == '=')
    out[--i] = '\0';
  for (i = 0; out[i]; i++)
    out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

/* Decode base64url S[0..N) (no padding) into a new buffer; NULL when it
 * is not base64url. */
static unsigned char *
unb64url (const char *s, size_t n, size_t *len_r)
{
  size_t i, padded = (n + 3) / 4 * 4, pad = padded - n;
  char *t;
  unsigned char *out;
  int got;

  if (n == 0 || pad == 3)
    return NULL;
  t = xmalloc (padded + 1);
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
          || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
      free (t);
      return NULL;
    }
    t[i] = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  for (; i < padded; i++)
    t[i] = '=';
  t[padded] = '\0';
  out = xmalloc (padded / 4 * 3 + 1);
  got = EVP_DecodeBlock (out, (unsigned char *) t, (int) padded);
  free (t);
  if (got < 0 || (size_t) got < pad) {
    free (out);
    return NULL;
  }
  *len_r = (size_t) got - pad;
  out[*len_r] = '\0';
  /* Only the canonical spelling: the last character's unused bits must be
   * zero, so that one token has one text. */
  t = xmalloc (padded + 1);
  b64url (out, *len_r, t);
  if (strlen (t) != n || memcmp (t, s, n) != 0) {
    free (t);
    free (out);
    return NULL;
  }
  free (t);
  return out;
}

char *
token_make (struct token_key *k, const char *payload, size_t len)
{
  unsigned char mac[HMAC256_LEN];
  char *tok, *m;
  size_t plen = (len + 2) / 3 * 4;

  if (hmac256 (&k->h, payload, len, mac) < 0)
    return NULL;
  tok = xmalloc (plen + 1 + 32 + 1);
  b64url ((const unsigned char *) payload, len, tok);
  m = tok + strlen (tok);
  *m++ = '.';
  b64url (mac, TOKEN_MAC_LEN, m);
  return tok;
}

char *
token_check (struct token_key *k, const char *token, size_t *len_r)
{
  const char *dot = strchr (token, '.');
  unsigned char mac[HMAC256_LEN], *payload, *given;
  size_t plen, glen;
  int ok;

  if (!dot)
    return NULL;
  payload = unb64url (token, (size_t) (dot - token), &plen);
  if (!payload)
    return NULL;
  given = unb64url (dot + 1, strlen (dot + 1), &glen);
  ok = given && glen == TOKEN_MAC_LEN
       && hmac256 (&k->h, payload, plen, mac) == 0
       && CRYPTO_memcmp (mac, given, TOKEN_MAC_LEN) == 0;
  free (given);
  if (!ok) {
    free (payload);
    return NULL;
  }
  *len_r = plen;
  return (char *) payload;
}

/* ---- tracking tokens ----------------------------------------------- */

int
token_track_key_init (struct token_key *k, const char *secret)
{
  return hmac256_init_derived (&k->h, secret, "herald tracking links v1");
}

char *
token_click_make (struct token_key *k, const char *msg_key, const char *url,
                  size_t url_len)
{
  size_t kl = strlen (msg_key);
  char *payload, *tok;

  if (kl == 0 || url_len == 0 || memchr (url, '\0', url_len))
    return NULL;
  payload = xmalloc (1 + kl + 1 + url_len);
  payload[0] = 'c';
  memcpy (payload + 1, msg_key, kl + 1);          /* with its NUL */
  memcpy (payload + 1 + kl + 1, url, url_len);
  tok = token_make (k, payload, 1 + kl + 1 + url_len);
  free (payload);
  return tok;
}

char *
token_open_make (struct token_key *k, const char *msg_key)
{
  size_t kl = strlen (msg_key);
  char *payload, *tok;

  if (kl == 0)
    return NULL;
  payload = xmalloc (1 + kl);
  payload[0] = 'o';
  memcpy (payload + 1, msg_key, kl);
  tok = token_make (k, payload, 1 + kl);
  free (payload);
  return tok;
}

int
token_track_check (struct token_key *k, const char *token,
                   struct token_track *t)
{
  size_t len;
  char *p = token_check (k, token, &len), *nul;

  memset (t, 0, sizeof *t);
  if (!p)
    return -1;
  /* token_check NUL-terminates: p[len] == '\0'. */
  nul = len > 1 ? memchr (p + 1, '\0', len - 1) : NULL;
  if (len < 2)
    goto bad;
  if (p[0] == 'o') {
    if (nul)
      goto bad;
    t->kind = 'o';
  }
  else if (p[0] == 'c') {
    /* One NUL, between a non-empty key and a non-empty URL. */
    if (!nul || nul == p + 1 || nul == p + len - 1
        || memchr (nul + 1, '\0', (size_t) (p + len - nul - 1)))
      goto bad;
    t->kind = 'c';
    t->url = nul + 1;
    t->url_len = (size_t) (p + len - nul - 1);
  }
  else
    goto bad;
  t->key = p + 1;
  t->payload = p;
  return 0;
bad:
  free (p);
  memset (t, 0, sizeof *t);
  return -1;
}

/* ---- short links --------------------------------------------------- */

/* The MAC of a short link: HMAC (K, "s" ID-as-8-bytes msg-key NUL url). */
static int
short_mac (struct token_key *k, int64_t id, const char *msg_key,
           const char *url, size_t url_len, unsigned char mac[HMAC256_LEN])
{
  size_t kl = strlen (msg_key), n = 1 + 8 + kl + 1 + url_len;
  char *p = xmalloc (n);
  int i, rc;

  p[0] = 's';
  for (i = 0; i < 8; i++)
    p[1 + i] = (char) (((uint64_t) id >> (56 - 8 * i)) & 0xff);
  memcpy (p + 9, msg_key, kl + 1);                /* with its NUL */
  memcpy (p + 9 + kl + 1, url, url_len);
  rc = hmac256 (&k->h, p, n, mac);
  free (p);
  return rc;
}

char *
token_short_make (struct token_key *k, int64_t id, const char *msg_key,
                  const char *url, size_t url_len)
{
  unsigned char mac[HMAC256_LEN], raw[8 + TOKEN_SHORT_MAC_LEN];
  size_t n = 0;
  char *tok;
  int i;

  if (id < 1 || !*msg_key || url_len == 0 || memchr (url, '\0', url_len))
    return NULL;
  if (short_mac (k, id, msg_key, url, url_len, mac) < 0)
    return NULL;
  for (i = 7; i >= 0; i--) {
    unsigned char b = (unsigned char) (((uint64_t) id >> (8 * i)) & 0xff);
    if (n || b)                /* no leading zero byte */
      raw[n++] = b;
  }
  memcpy (raw + n, mac, TOKEN_SHORT_MAC_LEN);
  n += TOKEN_SHORT_MAC_LEN;
  tok = xmalloc ((n + 2) / 3 * 4 + 1);
  b64url (raw, n, tok);
  return tok;
}

int
token_short_read (const char *token, struct token_short *t)
{
  size_t len = strlen (token), n, i, idlen;
  unsigned char *raw;
  uint64_t id = 0;

  memset (t, 0, sizeof *t);
  /* Checked before decoding: a long path costs nothing. */
  if (len > TOKEN_SHORT_MAX)
    return -1;
  raw = unb64url (token, len, &n);
  if (!raw)
    return -1;
  idlen = n > TOKEN_SHORT_MAC_LEN ? n - TOKEN_SHORT_MAC_LEN : 0;
  if (idlen < 1 || idlen > 8 || raw[0] == 0 || (idlen == 8 && raw[0] >= 0x80)) {
    free (raw);
    return -1;
  }
  for (i = 0; i < idlen; i++)
    id = id << 8 | raw[i];
  t->id = (int64_t) id;
  memcpy (t->mac, raw + idlen, TOKEN_SHORT_MAC_LEN);
  free (raw);
  return 0;
}

int
token_short_verify (struct token_key *k, const struct token_short *t,
                    const char *msg_key, const char *url, size_t url_len)
{
  unsigned char mac[HMAC256_LEN];

  if (t->id < 1 || short_mac (k, t->id, msg_key, url, url_len, mac) < 0)
    return -1;
  return CRYPTO_memcmp (mac, t->mac, TOKEN_SHORT_MAC_LEN) == 0 ? 0 : -1;
}
