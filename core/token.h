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
 * A message key never holds a NUL, so the first NUL ends it.
 *
 * The short links of SMS ([channel.NAME] track_links) are billed by the
 * character, so their token holds no key and no URL, only a reference:
 *   base_url/s/TOKEN      TOKEN = base64url(ID MAC)
 * ID is the link's id in the store (store_link_add: the message key and
 * the URL are kept there), big-endian in as few bytes as it takes (1 to
 * 8, never a leading zero byte, so one ID has one spelling); MAC is the
 * first TOKEN_SHORT_MAC_LEN bytes of HMAC-SHA256 (the tracking key,
 * "s" ID-as-8-bytes-big-endian message-key NUL url).  A link id under
 * 16,777,216 makes a 15-character token.  The "s" keeps these MACs apart
 * from the click and open tokens' ("c", "o").
 *
 * Why 8 bytes of MAC are enough: the server redirects only to the URL it
 * recorded for ID, so a forged token can at best count a false click on
 * a link that exists, or read its URL; it can never send anyone
 * elsewhere.  Without the secret each guess is right with probability
 * 2^-64 (5.4e-20): a year of guessing at 10,000 requests a second (3.2e11
 * guesses, each one request to herald serve) succeeds with odds of about
 * 1.7e-8.  Binding the message key and URL into the MAC means that a
 * link id that came to name another link (a store restored from an
 * older backup) is refused, not redirected. */
#ifndef HERALD_TOKEN_H
#define HERALD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/hmac256.h"

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

/* ---- short links --------------------------------------------------- */

#define TOKEN_SHORT_MAC_LEN 8
/* Longest short token: base64url of 8 + TOKEN_SHORT_MAC_LEN bytes. */
#define TOKEN_SHORT_MAX 22

/* What a short token says before it is checked. */
struct token_short {
  int64_t id;                  /* the link's id in the store, >= 1 */
  unsigned char mac[TOKEN_SHORT_MAC_LEN];
};

/* The short token of link ID (>= 1) of message MSG_KEY to URL[0..URL_LEN),
 * malloc'ed; NULL when OpenSSL failed, or ID < 1, or MSG_KEY is empty, or
 * URL is empty or holds a NUL. */
char *token_short_make (struct token_key *k, int64_t id, const char *msg_key,
                        const char *url, size_t url_len);

/* Read TOKEN into *T: 0, or -1 when it is not a short token (not
 * canonical base64url, too short or too long, a leading zero byte or an
 * ID < 1).  Nothing is checked yet: look the link up by T->id, then
 * token_short_verify. */
int token_short_read (const char *token, struct token_short *t);

/* 0 when T's MAC is the one of (T->id, MSG_KEY, URL[0..URL_LEN)) under K
 * (compared in constant time), else -1. */
int token_short_verify (struct token_key *k, const struct token_short *t,
                        const char *msg_key, const char *url, size_t url_len);

#endif
