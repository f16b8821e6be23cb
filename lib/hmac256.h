/* hmac256.h: HMAC-SHA256 (RFC 2104) with the key absorbed once.
 *
 * OpenSSL 3's one-shot HMAC() fetches the algorithm and pads the key on
 * every call (about 20,000 instructions for a short message); here the
 * states after (K ^ ipad) and (K ^ opad) are kept, and each MAC costs two
 * context copies and the hashing itself.  Used by the core (signed
 * unsubscribe links) and the webhook plugin (Standard Webhooks
 * signatures).  One struct hmac256 is not to be used by two threads at
 * once. */
#ifndef HERALD_HMAC256_H
#define HERALD_HMAC256_H

#include <stddef.h>

#include <openssl/evp.h>

#define HMAC256_LEN 32

struct hmac256 {
  EVP_MD_CTX *inner;           /* SHA-256 after (K ^ ipad) */
  EVP_MD_CTX *outer;           /* SHA-256 after (K ^ opad) */
  EVP_MD_CTX *work;            /* the MAC being computed */
};

/* Absorb KEY (any length: one longer than SHA-256's 64-byte block is
 * hashed first, as RFC 2104 says).  0, or -1 when OpenSSL failed (then
 * nothing needs freeing). */
int hmac256_init (struct hmac256 *h, const void *key, size_t klen);

/* Start a MAC, feed it, finish it into OUT (HMAC256_LEN bytes).  Each
 * returns 0, or -1 when OpenSSL failed. */
int hmac256_begin (struct hmac256 *h);
int hmac256_update (struct hmac256 *h, const void *data, size_t len);
int hmac256_final (struct hmac256 *h, unsigned char out[HMAC256_LEN]);

/* HMAC of DATA[0..LEN) in one call. */
int hmac256 (struct hmac256 *h, const void *data, size_t len,
             unsigned char out[HMAC256_LEN]);

void hmac256_free (struct hmac256 *h);

/* Key H with a key of its own derived from SECRET: HMAC-SHA256 (SECRET,
 * LABEL), so that the MACs of one use (LABEL) are never those of another
 * made with the same secret.  0, or -1 when OpenSSL failed. */
int hmac256_init_derived (struct hmac256 *h, const char *secret,
                          const char *label);

#endif
