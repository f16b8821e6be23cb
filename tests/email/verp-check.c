/* tests/email/verp-check.c: the VERP tokens of lib/verp.c.
 *  - two known answers, computed with Python's hmac and hashlib (an
 *    independent path to the same format), so the format cannot drift;
 *  - verp_check reads back what verp_token and verp_address write, as an
 *    address, a local part or a bare token, in lower or upper case, and
 *    gives the message key's hash;
 *  - it refuses every token with one character changed, another key's
 *    MAC, a wrong length, characters outside base32, and a token of a
 *    key derived from another secret;
 *  - verp_address refuses a domain that would make the path longer than
 *    RFC 5321 allows, and verp_domain_ok checks domain names. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/verp.h"
#include "../tap.h"

static const char secret[] = "test-verp-secret-0123456789";

static void
hex (const unsigned char *p, size_t n, char *out)
{
  size_t i;

  for (i = 0; i < n; i++)
    snprintf (out + 2 * i, 3, "%02x", p[i]);
}

int
main (void)
{
  static const struct {
    const char *key, *token, *hash;
  } kat[] = {
    { "c1:0:u00001", "pxzudwjhkqcp2d5xqukknp5y3ixdpw3mmr7dvlnc",
      "7df341d9275404fd0fb78514a6bfb8da" },
    { "welcome:2:customer-\xc3\xa9", "csb3j6fxyufbscw6vs6sub3eiyju2aa6br645hb2",
      "1483b4f8b7c50a190adeacbd2a076446" },
  };
  struct verp_key k, other;
  char tok[VERP_TOKEN_LEN + 1], addr[VERP_ADDRESS_MAX], buf[512],
       hx[2 * VERP_HASH_LEN + 1], longkey[2001], domain[300];
  unsigned char h[VERP_HASH_LEN], want[VERP_HASH_LEN];
  size_t i, j, bad;

  tap_ok (verp_key_init (&k, secret) == 0, "verp_key_init");
  tap_ok (verp_key_init (&other, "another-secret-0123456789") == 0,
          "verp_key_init, another secret");

  for (i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    tap_ok (verp_token (&k, kat[i].key, tok) == 0
            && strcmp (tok, kat[i].token) == 0,
            "known answer %zu: token %s", i, tok);
    memset (h, 0, sizeof h);
    j = (size_t) verp_check (&k, kat[i].token, h);
    hex (h, VERP_HASH_LEN, hx);
    tap_ok (j == 0 && strcmp (hx, kat[i].hash) == 0,
            "known answer %zu: checked, hash %s (the Message-ID's hex)", i,
            hx);
  }

  /* Round trips, with a key far longer than a local part could hold. */
  memset (longkey, 'k', sizeof longkey - 1);
  longkey[sizeof longkey - 1] = '\0';
  tap_ok (verp_address (&k, longkey, "b.example.com", addr, sizeof addr) == 0
          && strlen (addr) == 2 + VERP_TOKEN_LEN + 1 + 13
          && strncmp (addr, "b+", 2) == 0
          && strcmp (addr + 2 + VERP_TOKEN_LEN, "@b.example.com") == 0,
          "a 2000-byte key: b+TOKEN@b.example.com, a 42-character local "
          "part (%s)", addr);
  verp_key_hash (longkey, want);
  tap_ok (verp_check (&k, addr, h) == 0 && memcmp (h, want, sizeof h) == 0,
          "the address checks and gives the key's hash");
  for (i = 0; addr[i]; i++)
    buf[i] = (char) toupper ((unsigned char) addr[i]);
  buf[i] = '\0';
  tap_ok (verp_check (&k, buf, h) == 0 && memcmp (h, want, sizeof h) == 0,
          "upper case (an MTA that changed the case) checks too");
  snprintf (buf, sizeof buf, "%.*s", 2 + VERP_TOKEN_LEN, addr);
  tap_ok (verp_check (&k, buf, h) == 0, "the local part alone checks");
  tap_ok (verp_check (&k, addr + 2, h) == 0,
          "the token with its domain, without b+, checks");

  /* Every single-character change is refused. */
  bad = 0;
  for (i = 2; i < 2 + VERP_TOKEN_LEN; i++) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (j = 0; j < 32; j++) {
      if (alphabet[j] == addr[i])
        continue;
      memcpy (buf, addr, sizeof addr);
      buf[i] = alphabet[j];
      if (verp_check (&k, buf, h) == 0)
        bad++;
    }
  }
  tap_ok (bad == 0, "all 1240 one-character changes are refused (%zu pass)",
          bad);
  tap_ok (verp_check (&other, addr, h) < 0,
          "a token checked with another secret's key is refused");
  tap_ok (verp_token (&other, longkey, tok) == 0 && verp_check (&k, tok, h) < 0,
          "another secret's token is refused");
  snprintf (buf, sizeof buf, "%.*s@b.example.com", 2 + VERP_TOKEN_LEN - 1,
            addr);
  tap_ok (verp_check (&k, buf, h) < 0, "one character short: refused");
  snprintf (buf, sizeof buf, "%.*sa@b.example.com", 2 + VERP_TOKEN_LEN,
            addr);
  tap_ok (verp_check (&k, buf, h) < 0, "one character long: refused");
  memcpy (buf, addr, sizeof addr);
  buf[5] = '1';
  tap_ok (verp_check (&k, buf, h) < 0, "'1' (not base32): refused");
  buf[5] = '=';
  tap_ok (verp_check (&k, buf, h) < 0, "'=' (padding): refused");
  tap_ok (verp_check (&k, "", h) < 0 && verp_check (&k, "@", h) < 0
          && verp_check (&k, "b+@b.example.com", h) < 0,
          "empty tokens are refused");

  /* Domains. */
  memset (domain, 'a', sizeof domain);
  for (i = 63; i < sizeof domain; i += 64)
    domain[i] = '.';
  domain[VERP_DOMAIN_MAX] = '\0';
  if (domain[VERP_DOMAIN_MAX - 1] == '.')
    domain[VERP_DOMAIN_MAX - 1] = 'a';
  tap_ok (verp_domain_ok (domain)
          && verp_address (&k, "x", domain, addr, sizeof addr) == 0
          && strlen (addr) + 2 == 256,
          "a %d-octet domain: a path of exactly 256 octets", VERP_DOMAIN_MAX);
  domain[VERP_DOMAIN_MAX] = 'a';
  domain[VERP_DOMAIN_MAX + 1] = '\0';
  tap_ok (!verp_domain_ok (domain)
          && verp_address (&k, "x", domain, addr, sizeof addr) < 0,
          "one octet more: refused");
  tap_ok (verp_domain_ok ("b.example.com") && verp_domain_ok ("B-1.Example.COM")
          && !verp_domain_ok ("") && !verp_domain_ok ("b..example.com")
          && !verp_domain_ok (".b.example.com")
          && !verp_domain_ok ("b.example.com.")
          && !verp_domain_ok ("-b.example.com")
          && !verp_domain_ok ("b-.example.com")
          && !verp_domain_ok ("b_x.example.com")
          && !verp_domain_ok ("b.example.com>")
          && !verp_domain_ok ("b example.com"),
          "verp_domain_ok: domain names only");

  verp_key_free (&k);
  verp_key_free (&other);
  return tap_done ();
}
