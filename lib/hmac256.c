/* hmac256.c: HMAC-SHA256 with the key absorbed once.  See hmac256.h. */
#include <config.h>

#include <string.h>

#include <openssl/crypto.h>

#include "hmac256.h"

int
hmac256_init (struct hmac256 *h, const void *key, size_t klen)
{
  unsigned char k[64], ipad[64], opad[64];
  unsigned int dlen = 0;
  size_t i;
  int ok;

  memset (h, 0, sizeof *h);
  memset (k, 0, sizeof k);
  if (klen > sizeof k) {
    if (!EVP_Digest (key, klen, k, &dlen, EVP_sha256 (), NULL))
      return -1;
  }
  else if (klen)
    memcpy (k, key, klen);
  for (i = 0; i < 64; i++) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  h->inner = EVP_MD_CTX_new ();
  h->outer = EVP_MD_CTX_new ();
  h->work = EVP_MD_CTX_new ();
  ok = h->inner && h->outer && h->work
    && EVP_DigestInit_ex (h->inner, EVP_sha256 (), NULL)
    && EVP_DigestUpdate (h->inner, ipad, 64)
    && EVP_DigestInit_ex (h->outer, EVP_sha256 (), NULL)
    && EVP_DigestUpdate (h->outer, opad, 64);
  OPENSSL_cleanse (k, sizeof k);
  OPENSSL_cleanse (ipad, sizeof ipad);
  OPENSSL_cleanse (opad, sizeof opad);
  if (!ok) {
    hmac256_free (h);
    return -1;
  }
  return 0;
}

int
hmac256_begin (struct hmac256 *h)
{
  return EVP_MD_CTX_copy_ex (h->work, h->inner) ? 0 : -1;
}

int
hmac256_update (struct hmac256 *h, const void *data, size_t len)
{
  return EVP_DigestUpdate (h->work, data, len) ? 0 : -1;
}

int
hmac256_final (struct hmac256 *h, unsigned char out[HMAC256_LEN])
{
  unsigned char in[EVP_MAX_MD_SIZE];
  unsigned int ilen = 0, olen = 0;

  if (!EVP_DigestFinal_ex (h->work, in, &ilen)
      || !EVP_MD_CTX_copy_ex (h->work, h->outer)
      || !EVP_DigestUpdate (h->work, in, ilen)
      || !EVP_DigestFinal_ex (h->work, out, &olen))
    return -1;
  return 0;
}

int
hmac256 (struct hmac256 *h, const void *data, size_t len,
         unsigned char out[HMAC256_LEN])
{
  if (hmac256_begin (h) < 0 || hmac256_update (h, data, len) < 0)
    return -1;
  return hmac256_final (h, out);
}

void
hmac256_free (struct hmac256 *h)
{
  EVP_MD_CTX_free (h->inner);
  EVP_MD_CTX_free (h->outer);
  EVP_MD_CTX_free (h->work);
  memset (h, 0, sizeof *h);
}

int
hmac256_init_derived (struct hmac256 *h, const char *secret,
                      const char *label)
{
  unsigned char derived[HMAC256_LEN];
  struct hmac256 outer;
  int rc;

  if (hmac256_init (&outer, secret, strlen (secret)) < 0)
    return -1;
  rc = hmac256 (&outer, label, strlen (label), derived);
  hmac256_free (&outer);
  if (rc == 0)
    rc = hmac256_init (h, derived, sizeof derived);
  OPENSSL_cleanse (derived, sizeof derived);
  return rc;
}
