/* verp.h: an envelope sender that names its message (VERP), so that a
 * bounce, which goes to the envelope sender (RFC 5321 section 4.5.5),
 * says which message bounced without parsing its text.
 *
 *   MAIL FROM:<b+TOKEN@BOUNCE_DOMAIN>
 *   TOKEN = base32 of H || MAC, lower case, no padding: 40 characters
 *   H     = the first 16 bytes of SHA-256 (message key)
 *   MAC   = the first 9 bytes of HMAC-SHA256 (K, H)
 *   K     = HMAC-SHA256 (secret, "herald verp v1")
 *
 * Why this shape:
 *  - The local part "b+" TOKEN is 42 characters of letters and digits: a
 *    dot-atom well under the 64-octet limit (RFC 5321 section 4.5.3.1.1)
 *    whatever the length of the message key.  Base32 (RFC 4648 section 6)
 *    because some MTAs lower-case local parts: the token is written in
 *    lower case and read in either case.
 *  - H is the hash that the Message-ID already carries in hex
 *    (<HEX32.herald@FROM-DOMAIN>, mime.h), which the email plugin reports
 *    as the provider id and the core stores with the message.  A bounce
 *    maps to its message by hex(H) alone, through the store, with no
 *    guessing; and for a candidate message key, verp_key_hash gives its H.
 *    Two keys share an H with odds of 2^-128.
 *  - MAC makes the address unforgeable: without the secret, a forged
 *    bounce to b+anything@ names no message (odds 2^-72 per try), so
 *    backscatter and spoofed DSNs cannot mark messages bounced.  K is
 *    derived with a label, so the secret may be the [tracking] secret:
 *    no VERP token is a valid link token (core/token.c) or the reverse.
 *
 * Pure functions over OpenSSL's digests; one struct verp_key is not for
 * two threads at once (like struct hmac256). */
#ifndef HERALD_VERP_H
#define HERALD_VERP_H

#include <stddef.h>

#include "hmac256.h"

#define VERP_HASH_LEN 16
#define VERP_MAC_LEN 9
#define VERP_TOKEN_LEN 40              /* base32 of 25 bytes, no padding */
#define VERP_PREFIX "b+"
/* RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with its
 * angle brackets, so the bounce domain may take what the local part and
 * the '@' leave. */
#define VERP_DOMAIN_MAX (256 - 2 - 2 - VERP_TOKEN_LEN - 1)
/* Room for any address verp_address writes, with its NUL. */
#define VERP_ADDRESS_MAX 256

struct verp_key {
  struct hmac256 h;
};

/* Non-zero when DOMAIN is a domain name (labels of 1 to 63 letters,
 * digits and hyphens, no hyphen first or last) of at most VERP_DOMAIN_MAX
 * octets: fit to follow "b+TOKEN@". */
int verp_domain_ok (const char *domain);

/* Derive K from SECRET (any length).  0, or -1 when OpenSSL failed (then
 * nothing needs freeing). */
int verp_key_init (struct verp_key *k, const char *secret);
void verp_key_free (struct verp_key *k);

/* H of MSG_KEY: the first VERP_HASH_LEN bytes of SHA-256 (MSG_KEY). */
int verp_key_hash (const char *msg_key, unsigned char h[VERP_HASH_LEN]);

/* The token of MSG_KEY into OUT, NUL-terminated.  0, or -1 when OpenSSL
 * failed. */
int verp_token (struct verp_key *k, const char *msg_key,
                char out[VERP_TOKEN_LEN + 1]);

/* "b+TOKEN@DOMAIN" for MSG_KEY into BUF.  0, or -1 when OpenSSL failed or
 * it does not fit in BUFLEN (DOMAIN longer than VERP_DOMAIN_MAX never
 * does). */
int verp_address (struct verp_key *k, const char *msg_key,
                  const char *domain, char *buf, size_t buflen);

/* Read ADDR, an address "b+TOKEN@domain", its local part "b+TOKEN", or a
 * bare TOKEN, in any case; the domain is not checked.  When the token is
 * well formed and its MAC is K's (compared in constant time), write its H
 * into H_R and return 0; else -1. */
int verp_check (struct verp_key *k, const char *addr,
                unsigned char h_r[VERP_HASH_LEN]);

#endif /* HERALD_VERP_H */
