/* verp.c: signed VERP envelope senders.  See verp.h for the format.
 *
 * Shared by the email plugin (which writes the addresses) and herald
 * bounces import (core/cmd_bounces.c, which checks them).  It must never
 * accept a token whose MAC it did not check in constant time, nor write
 * an address longer than RFC 5321 allows. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "verp.h"

/* RFC 4648 section 6, in lower case. */
static const char verp_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int
verp_domain_ok (const char *d)
{
  size_t n = strlen (d), label = 0, i;

  if (n == 0 || n > VERP_DOMAIN_MAX)
    return 0;
  for (i = 0; i <= n; i++) {
    char c = d[i];
    if (c == '.' || c == '\0') {
      if (label == 0 || d[i - 1] == '-')
        return 0;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '-') {
      if ((c == '-' && label == 0) || ++label > 63)
        return 0;
    } else
      return 0;
  }
  return 1;
}

int
verp_key_init (struct verp_key *k, const char *secret)
{
  return hmac256_init_derived (&k->h, secret, "herald verp v1");
}

void
verp_key_free (struct verp_key *k)
{
  hmac256_free (&k->h);
}

int
verp_key_hash (const char *msg_key, unsigned char h[VERP_HASH_LEN])
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;

  if (!EVP_Digest (msg_key, strlen (msg_key), d, &dlen, EVP_sha256 (), NULL)
      || dlen < VERP_HASH_LEN)
    return -1;
  memcpy (h, d, VERP_HASH_LEN);
  return 0;
}

/* MAC of H under K. */
static int
verp_mac (struct verp_key *k, const unsigned char h[VERP_HASH_LEN],
          unsigned char mac[VERP_MAC_LEN])
{
  unsigned char full[HMAC256_LEN];

  if (hmac256 (&k->h, h, VERP_HASH_LEN, full) < 0)
    return -1;
  memcpy (mac, full, VERP_MAC_LEN);
  return 0;
}

int
verp_token (struct verp_key *k, const char *msg_key,
            char out[VERP_TOKEN_LEN + 1])
{
  unsigned char raw[VERP_HASH_LEN + VERP_MAC_LEN];
  size_t i, o = 0;

  if (verp_key_hash (msg_key, raw) < 0
      || verp_mac (k, raw, raw + VERP_HASH_LEN) < 0)
    return -1;
  /* 25 bytes are five 5-byte groups: 40 characters, no padding. */
  for (i = 0; i < sizeof raw; i += 5) {
    unsigned long long v = 0;
    int j;
    for (j = 0; j < 5; j++)
      v = v << 8 | raw[i + (size_t) j];
    for (j = 7; j >= 0; j--)
      out[o++] = verp_b32[(v >> (5 * j)) & 31];
  }
  out[o] = '\0';
  return 0;
}

int
verp_address (struct verp_key *k, const char *msg_key, const char *domain,
              char *buf, size_t buflen)
{
  char tok[VERP_TOKEN_LEN + 1];
  int n;

  if (strlen (domain) > VERP_DOMAIN_MAX || verp_token (k, msg_key, tok) < 0)
    return -1;
  n = snprintf (buf, buflen, "%s%s@%s", VERP_PREFIX, tok, domain);
  return n < 0 || (size_t) n >= buflen ? -1 : 0;
}

/* The value of base32 character C in either case, or -1. */
static int
verp_b32_value (char c)
{
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= '2' && c <= '7')
    return c - '2' + 26;
  return -1;
}

int
verp_check (struct verp_key *k, const char *addr,
            unsigned char h_r[VERP_HASH_LEN])
{
  unsigned char raw[VERP_HASH_LEN + VERP_MAC_LEN], mac[VERP_MAC_LEN];
  const char *tok = addr, *at = strchr (addr, '@');
  size_t len = at ? (size_t) (at - addr) : strlen (addr), i, o = 0;

  if (len == VERP_TOKEN_LEN + 2
      && (tok[0] == 'b' || tok[0] == 'B') && tok[1] == '+') {
    tok += 2;
    len -= 2;
  }
  if (len != VERP_TOKEN_LEN)
    return -1;
  for (i = 0; i < VERP_TOKEN_LEN; i += 8) {
    unsigned long long v = 0;
    int j;
    for (j = 0; j < 8; j++) {
      int c = verp_b32_value (tok[i + (size_t) j]);
      if (c < 0)
        return -1;
      v = v << 5 | (unsigned) c;
    }
    for (j = 4; j >= 0; j--)
      raw[o++] = (unsigned char) (v >> (8 * j));
  }
  if (verp_mac (k, raw, mac) < 0
      || CRYPTO_memcmp (mac, raw + VERP_HASH_LEN, VERP_MAC_LEN) != 0)
    return -1;
  memcpy (h_r, raw, VERP_HASH_LEN);
  return 0;
}
