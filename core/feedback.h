/* feedback: what a bounce or a complaint does to the store, whoever
 * reported it: `herald bounces import` reading the bounce mailbox
 * (cmd_bounces.c), or a provider's webhook through `herald serve`
 * (serve.c's inbound sink).  Both must have exactly the same effect, so
 * both go through feedback_record:
 *  - a hard bounce records "bounced" and suppresses the address;
 *  - a soft bounce records "soft_bounced"; once policy->soft_limit of the
 *    customer's soft bounces on the channel fall within soft_window, the
 *    address is suppressed;
 *  - a complaint records "complained", suppresses the address and
 *    withdraws the customer's consent for the channel.
 * An event already recorded (same customer, type, time, channel, campaign
 * and message key: a mailbox imported twice, a webhook retried) changes
 * nothing.  It never opens or commits a transaction: the caller does. */
#ifndef HERALD_FEEDBACK_H
#define HERALD_FEEDBACK_H
#include <stdint.h>

#include "store.h"

enum feedback_kind {
  FEEDBACK_HARD,
  FEEDBACK_SOFT,
  FEEDBACK_COMPLAINT
};

struct feedback_policy {
  int soft_limit;             /* [bounces] soft_limit; <= 0: never */
  int64_t soft_window;        /* [bounces] soft_window, seconds */
};

/* One bounce or complaint, every string lent. */
struct feedback {
  enum feedback_kind kind;
  const char *customer;
  const char *channel;        /* the channel kind: "email" */
  const char *campaign;       /* NULL when no message was named */
  const char *message_key;    /* NULL likewise */
  const char *address_json;   /* the address(es) it went to, as JSON
                                 text: an outbox row's address column (a
                                 list of {"type", "value"}, or of
                                 strings) or one JSON string; NULL: none
                                 known (store_event_put then suppresses
                                 the customer's address) */
  int64_t at;                 /* unix seconds: the report's own time, so
                                 that a second report of it is a repeat */
  const char *detail;         /* JSON object text, or NULL */
};

/* The event type feedback_record records for KIND ("bounced",
 * "soft_bounced", "complained"); static. */
const char *feedback_type (enum feedback_kind kind);

/* Record F with its effects.  Returns 0 recorded, 1 already recorded
 * (nothing changed), -1 store error (roll back).  *SOFT_SUPPRESSED_R,
 * when not NULL, is set to the number of addresses a soft bounce got
 * suppressed by reaching the limit (0 otherwise). */
int feedback_record (struct store *st, const struct feedback_policy *policy,
                     const struct feedback *f, int *soft_suppressed_r);

#endif
