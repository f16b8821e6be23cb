/* track: the click and open endpoints of herald serve.
 *
 *   GET|HEAD /c/TOKEN      a click: recorded as a "clicked" event (the URL
 *                          in its detail), then 302 to the link's URL;
 *   GET|HEAD /s/TOKEN      a click on an SMS's short link: the same, the
 *                          message key and URL read from the store's
 *                          links table by the token's link id;
 *   GET|HEAD /o/TOKEN.gif  an open: recorded as an "opened" event, then
 *                          the 43-byte transparent GIF.
 *
 * TOKEN is a tracking token (token.h).  One that is not valid gets 404
 * and no Location: a click never redirects where no signed token says.
 * A short link the store cannot read gets 503 (its URL is nowhere
 * else).
 * Each event records whether the request looked like a person's or a
 * machine's (track_machine_*); the router and the report leave the
 * machines' out.  A store failure is logged and the click still
 * redirected: a customer's link must work whatever the store does. */
#ifndef HERALD_TRACK_H
#define HERALD_TRACK_H

#include <stdint.h>

#include <microhttpd.h>

#include "config.h"
#include "store.h"
#include "token.h"

struct track {
  struct store *st;            /* lent */
  struct token_key key;        /* token_track_key_init of the secret */
  int64_t machine_window_ms;   /* [tracking] machine_window */
};

/* Ready T for GW's [tracking] secret (which must be set), recording into
 * ST (lent for T's life).  0, or -1 when OpenSSL failed. */
int track_init (struct track *t, struct store *st, const struct gateway *gw);
void track_free (struct track *t);

/* 1 when URL is one of the paths above (/c/..., /s/... or /o/...). */
int track_path (const char *url);

/* Answer the request for URL (track_path said 1). */
enum MHD_Result track_request (struct track *t, struct MHD_Connection *c,
                               const char *method, const char *url);

/* The rules on the request alone: "head" for a HEAD request (browsers
 * GET), "agent" for a missing User-Agent or one of a known scanner,
 * preview fetcher or HTTP library (track.c lists them; matched without
 * regard to case); else NULL. */
const char *track_machine_request (const char *method, const char *agent);

/* The rules on the message: "unsent" when it was not recorded as sent
 * (SENT_AT 0: a preview's link, or a scanner at the receiving server
 * before the result was committed), "fast" when NOW_MS is less than
 * WINDOW_MS after SENT_AT (unix seconds); else NULL. */
const char *track_machine_timing (int64_t sent_at, int64_t now_ms,
                                  int64_t window_ms);

#endif
