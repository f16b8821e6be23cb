/* token: the signed tokens in the tracking server's links.
 *
 *   TOKEN = base64url(PAYLOAD) "." base64url(first 16 bytes of
 *           HMAC-SHA256([tracking] secret, PAYLOAD))
 *
 * base64url without padding (RFC 4648 section 5).  Opaque to the reader,
 * unforgeable without the secret (RFC 8058 section 3.1 asks as much of a
 * one-click unsubscribe URL).  Signed, not encrypted: whoever holds a
 * link can read its payload.
 *
 * The unsubscribe link is base_url/u/TOKEN with PAYLOAD = customer "\n"
 * campaign "\n" channel, MAC'ed with the secret itself.
 *
 * The tracking links are MAC'ed with a key derived from the secret
 * (token_track_key_init), so that no unsubscribe token is a valid
 * tracking token nor the reverse, whatever the customer ids:
 *   base_url/c/TOKEN      PAYLOAD = "c" message-key NUL url (a click)
 *   base_url/o/TOKEN.gif  PAYLOAD = "o" message-key         (an open)
 * A message key never holds a NUL, so the first NUL ends it. */
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

/* The key of the tracking tokens: HMAC-SHA256 (SECRET, "herald tracking
 * links v1") as the MAC key.  0, or -1 when OpenSSL failed. */
int token_track_key_init (struct token_key *k, const char *secret);

/* A click token for (MSG_KEY, URL[0..URL_LEN)), or an open token for
 * MSG_KEY, malloc'ed; NULL when OpenSSL failed, or when MSG_KEY is empty
 * or URL is empty or holds a NUL (such a token could not be read back). */
char *token_click_make (struct token_key *k, const char *msg_key,
                        const char *url, size_t url_len);
char *token_open_make (struct token_key *k, const char *msg_key);

/* What a tracking token says. */
struct token_track {
  int kind;                    /* 'c' (click) or 'o' (open) */
  const char *key;             /* the message key, NUL-terminated */
  const char *url;             /* a click's URL, NUL-terminated; else NULL */
  size_t url_len;
  char *payload;               /* owns the strings above */
};

/* Check TOKEN (a tracking token) and read it into *T: 0, and the caller
 * frees T->payload; or -1 (T->payload NULL) when it is malformed, not
 * signed with K, of an unknown kind, or its payload is not canonical (an
 * empty key or URL, a second NUL, a URL on an open). */
int token_track_check (struct token_key *k, const char *token,
                       struct token_track *t);

#endif
