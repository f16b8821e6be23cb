/* token: the signed tokens in the tracking server's links.
 *
 *   TOKEN = base64url(PAYLOAD) "." base64url(first 16 bytes of
 *           HMAC-SHA256([tracking] secret, PAYLOAD))
 *
 * base64url without padding (RFC 4648 section 5).  Opaque to the reader,
 * unforgeable without the secret (RFC 8058 section 3.1 asks as much of a
 * one-click unsubscribe URL).  The unsubscribe link is
 * base_url/u/TOKEN with PAYLOAD = customer "\n" campaign "\n" channel. */
#ifndef HERALD_TOKEN_H
#define HERALD_TOKEN_H

#include <stddef.h>

#include "../plugins/common/hmac256.h"

struct token_key {
  struct hmac256 h;
};

/* 0, or -1 when OpenSSL failed. */
int token_key_init (struct token_key *k, const char *secret);
void token_key_free (struct token_key *k);

/* The token of PAYLOAD[0..LEN), malloc'ed, or NULL when OpenSSL failed. */
char *token_make (struct token_key *k, const char *payload, size_t len);

/* The payload of TOKEN (malloc'ed, NUL-terminated, length in *LEN_R) when
 * its MAC is right, else NULL: malformed, or not signed with this key. */
char *token_check (struct token_key *k, const char *token, size_t *len_r);

#endif
