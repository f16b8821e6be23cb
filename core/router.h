/* router: the campaign's routing policy and the per-customer decision.
 *
 * A pure module: policy_* parses the policy sections of a campaign INI one
 * key at a time (the config parser owns the file); router_decide turns
 * (policy, customer state, now) into a decision and a human-readable trace.
 * No I/O, no globals, no clock: the same input and NOW give the same
 * decision.  The scheduler fills struct router_input from the store.
 *
 * ---- README: the campaign keys this module reads -------------------------
 *
 * [campaign]
 *   policy   = preference | engagement        (default preference)
 *   channels = email, sms, push               allowed channels, in order
 *   consent  = explicit | implied             for every channel (default
 *              explicit); per channel see [consent]
 *   implied_consent = sms, push               same as [consent] sms = implied
 * [consent]
 *   sms = implied | explicit                  implied: a customer with no
 *              consent recorded for sms counts as consenting; a recorded
 *              refusal (consent false, unsubscribe) still wins.
 *   implied = sms, push                       the same, as a list
 * [caps]                                      over messages sent to the
 *   email = 2/7d                              customer by ANY campaign;
 *   all   = 3/7d                              N/PERIOD, PERIOD as 30m 24h
 *   on_cap = shift | skip                     7d 2w; reached when sent >= N
 *                                             shift (default): use the next
 *              best usable channel; skip: skip the customer (reason capped)
 *              when the channel it would get is capped.
 * [quiet_hours]
 *   sms  = 21:00-08:00                        local time of the customer,
 *   push = 22:00-07:00                        may cross midnight; start is
 *   all  = 23:00-07:00                        inside, end outside; "all"
 *              applies to channels without their own line.
 *   timezone = Europe/Paris                   zone for customers whose own
 *              "timezone" is missing or unknown (default UTC).
 *   A message due inside quiet hours is deferred to the end of them on the
 *   same channel (DST-correct), never dropped or moved.
 * [variant.NAME]
 *   weight    = 1                             integer >= 0 (default 1)
 *   templates = DIR                           optional, kept for the loader
 * [holdout]
 *   percent = 10                              0..100, up to 2 decimals
 * [engagement]                                (policy = engagement)
 *   half_life = 30d     decay of every event and send
 *   window    = 90d     events older than this are ignored
 *   click = 1  reply = 1  open = 0.5  convert = 2      event weights
 *   prior = 5           smoothing strength, in (decayed) sends: a customer
 *                       with this many sends on a channel weighs as much as
 *                       the channel's population rate
 *   prior_rate = 0.05   population rate used when the store has none
 *
 * Engagement score of a channel for a customer:
 *   score = (E + prior * rate) / (S + prior)
 *   E = sum over opened/clicked/replied/converted events of weight * decay
 *   S = sum over sends (Herald's "sent", and "delivered" events that are not
 *       receipts for a Herald message, i.e. history from before Herald) of
 *       decay;  decay = 0.5 ^ (age / half_life)
 *   rate = the channel's population rate (router_population_rate).
 * The best score wins; scores within 1e-9 tie and the tie goes to the
 * preference order; a customer with no event at all (within the window) on
 * the usable channels gets the preference order.
 *
 * Variants and holdout: h = FNV-1a 64 of "CAMPAIGN_ID:CUSTOMER_ID" mixed by
 * the splitmix64 finaliser.  Held out when h % 10000 < percent * 100.
 * Otherwise the variant is picked by g = (the same hash of
 * "CAMPAIGN_ID:CUSTOMER_ID:variant") % (sum of weights), walking variants in
 * name order, so re-runs, resumed runs and reordered sections assign the
 * same, and changing the holdout percent does not reshuffle variants.
 * The holdout only applies to customers the router would message: skipped
 * customers are reported as skipped, not as held out.
 * --------------------------------------------------------------------------
 */
#ifndef HERALD_ROUTER_H
#define HERALD_ROUTER_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define ROUTER_MAX_CHANNELS 16
#define ROUTER_TRACE_MAX 1024

/* Skip reasons: stable short strings the reports group by. */
#define ROUTER_NO_USABLE_CHANNEL "no_usable_channel"
#define ROUTER_NO_CONSENT        "no_consent"
#define ROUTER_SUPPRESSED        "suppressed"
#define ROUTER_NO_ADDRESS        "no_address"
#define ROUTER_CAPPED            "capped"
#define ROUTER_NOT_IN_SEGMENT    "not_in_segment"   /* the scheduler's */
#define ROUTER_HELD_OUT          "held_out"

enum policy_kind { POLICY_PREFERENCE, POLICY_ENGAGEMENT };
enum policy_on_cap { POLICY_CAP_SHIFT, POLICY_CAP_SKIP };

/* Per channel named in the policy (channels, consent, caps, quiet_hours). */
struct policy_channel {
  char *name;
  int allowed;               /* listed in [campaign] channels */
  int implied_consent;       /* 1 implied, 0 explicit, -1 campaign default */
  long cap_n;                /* cap_period > 0: at most cap_n sends */
  int64_t cap_period;        /* seconds; 0: no cap */
  char *cap_spec;            /* the cap as written ("2/7d"), for traces */
  int quiet_start, quiet_end;  /* minutes after local midnight */
  int has_quiet;
};

struct policy_variant {
  char *name;                /* "B" for [variant.B] */
  long weight;
  char *templates;           /* NULL unless templates = DIR (as written) */
};

/* Everything a campaign says about routing.  Read-only outside router.c;
 * every string is owned by the policy and freed by policy_free. */
struct policy {
  enum policy_kind kind;
  enum policy_on_cap on_cap;
  int implied_consent_all;   /* [campaign] consent = implied */
  struct policy_channel *ch; /* channels in [campaign] channels order first,
                                then others named in any section */
  size_t n_ch;
  size_t n_allowed;          /* the first n_allowed of ch are allowed;
                                0: channels not set, every input channel is
                                allowed in input order */
  long cap_all_n;
  int64_t cap_all_period;    /* 0: no cap */
  char *cap_all_spec;        /* as written, for traces */
  int quiet_all_start, quiet_all_end, has_quiet_all;
  char *timezone;            /* [quiet_hours] timezone, NULL: UTC */
  struct policy_variant *variants;   /* sorted by name after policy_finish */
  size_t n_variants;
  double holdout_percent;
  int64_t half_life, window; /* seconds */
  double w_open, w_click, w_reply, w_convert;
  double prior, prior_rate;
};

/* Returns a policy with the defaults above; never NULL (aborts on OOM).
 * The caller frees it with policy_free. */
struct policy *policy_new (void);

/* Set one key.  SECTION is the INI section as written ("campaign", "caps",
 * "quiet_hours", "holdout", "engagement", "consent", "variant.B"); KEY and
 * VALUE as written (the config parser trims them).  Only reads its
 * arguments.  Returns 0; -1 with a message in ERR for a bad value (e.g.
 * "'2/7x' is not N/PERIOD (e.g. 2/7d)": the caller prefixes
 * "file:line: [section] key: "); -2 when this module does not know the
 * section or key (ERR untouched: the caller decides what that means). */
int policy_set (struct policy *p, const char *section, const char *key,
                const char *value, char *err, size_t errlen);

/* Cross-checks after the last policy_set: variant weights sum > 0 when
 * variants exist, caps/quiet hours/consent only name allowed channels (or
 * "all") when channels is set.  Sorts variants by name.  Returns 0, or -1
 * with a message in ERR (no file:line: the error spans sections). */
int policy_finish (struct policy *p, char *err, size_t errlen);

/* No-op on NULL. */
void policy_free (struct policy *p);

/* Caps the scheduler must count.  Returns 1 and sets *N_R and *PERIOD_R
 * when CHANNEL (NULL for the total "all" cap) has a cap, else 0.  The
 * scheduler then fills router_channel.sent (or router_input.sent_all) with
 * store_sent_count (customer, CHANNEL, now - *PERIOD_R). */
int policy_cap (const struct policy *p, const char *channel, long *n_r,
                int64_t *period_r);

/* A channel's population rate from plain counts over the engagement
 * window across all customers: weighted engagements per send, in [0, 1+].
 * Returns -1 when SENDS <= 0 (unknown: the router uses prior_rate). */
double router_population_rate (const struct policy *p, long sends,
                               long opens, long clicks, long replies,
                               long conversions);

/* One event of the customer's history, lent by the scheduler.  TYPE is the
 * event type as stored: "sent" (a message Herald sent, from the outbox),
 * "delivered", "opened", "clicked", "replied", "converted"; others
 * (bounced, complained, unsubscribed) are ignored.  HERALD_MESSAGE is 1 when
 * the event refers to a message Herald sent (it has a message id): such a
 * "delivered" is a receipt, not a second send. */
struct router_event {
  const char *channel;
  const char *type;
  int64_t at;                /* unix seconds */
  int herald_message;
};

/* What the scheduler knows of one channel for this customer and campaign.
 * Channels the campaign allows but absent from the input are unusable. */
struct router_channel {
  const char *name;          /* channel name as in [campaign] channels */
  int templates;             /* 1: the campaign has this channel's parts */
  int has_address;           /* 1: the customer has an address for it */
  int consent;               /* 1 given, 0 refused/withdrawn, -1 none recorded */
  int suppressed;            /* 1: the address is suppressed */
  int failed;                /* 1: this message already failed permanently
                                (or the address proved invalid) on this
                                channel: decide again for the fallback;
                                2: a follow-up step's channel rule (same,
                                next, a name) leaves this channel out */
  long sent;                 /* sends in this channel's cap window (see
                                policy_cap); ignored without a cap */
  double population_rate;    /* router_population_rate; < 0 unknown */
};

/* The customer, as the scheduler read it.  Everything is lent for the call
 * and only read. */
struct router_input {
  const char *campaign_id;
  const char *customer_id;
  json_t *customer;          /* the customer object, or NULL: the router
                                reads "preferred_channels" and "timezone" */
  const char *timezone;      /* overrides customer "timezone" when set */
  const struct router_channel *channels;
  size_t n_channels;
  long sent_all;             /* sends in the "all" cap window, any channel */
  const struct router_event *events;   /* any order; outside the window or
                                          after now they are ignored */
  size_t n_events;
};

enum router_outcome {
  ROUTER_SEND,               /* send now on channel */
  ROUTER_DEFER,              /* send on channel at until (quiet hours) */
  ROUTER_SKIP,               /* not messaged: reason */
  ROUTER_HOLD                /* held out: record, do not message */
};

/* The decision.  Pointers are lent from the policy (variant, templates) or
 * from the input (channel names): valid while both live. */
struct router_decision {
  enum router_outcome outcome;
  const char *reason;        /* ROUTER_SKIP: a skip reason above;
                                ROUTER_HOLD: ROUTER_HELD_OUT; else NULL */
  const char *channel;       /* SEND, DEFER (and HOLD: what it would have
                                been); NULL for SKIP */
  const char *fallback[ROUTER_MAX_CHANNELS];  /* next best usable channels,
                                for a permanent failure, best first */
  size_t n_fallback;
  const char *shifted_from;  /* the channel a cap took this message from,
                                or NULL (for the dry-run forecast) */
  const char *variant;       /* NULL when the campaign has no variants */
  const char *variant_templates;   /* the variant's templates = or NULL */
  int64_t until;             /* ROUTER_DEFER: end of quiet hours, UTC */
  double score;              /* engagement score of channel, or -1 */
  char trace[ROUTER_TRACE_MAX];    /* e.g. "sms: engagement 0.42 > email
                                0.05; push: no consent; email: capped 2/7d" */
};

/* Decide for one customer at NOW (unix seconds, when the message is due).
 * Reads P and IN only; fills *OUT completely.  Returns 0, or -1 when P or
 * IN is unusable (NULL, more than ROUTER_MAX_CHANNELS channels), with
 * OUT->trace saying why. */
int router_decide (const struct policy *p, const struct router_input *in,
                   int64_t now, struct router_decision *out);

/* "send", "defer", "skip", "held_out": stable names for logs and JSON. */
const char *router_outcome_name (enum router_outcome o);

/* Stable assignment (see the README block above).  Returns 1 when the
 * customer is in the holdout (then *VARIANT_R = NULL), else 0 with
 * *VARIANT_R = the variant (lent from P) or NULL without variants. */
int router_assign_variant (const struct policy *p, const char *campaign_id,
                           const char *customer_id, const char **variant_r);

/* End of the quiet hours covering NOW for CHANNEL in ZONE (NULL or unknown:
 * the policy's zone, then UTC): returns 1 and sets *UNTIL_R, or 0 when NOW
 * is outside quiet hours.  router_decide uses it; the scheduler may too. */
int router_quiet_until (const struct policy *p, const char *channel,
                        const char *zone, int64_t now, int64_t *until_r);

/* Uplift of a variant over the holdout: difference of conversion
 * proportions p_v - p_h, with a 95% confidence interval by the normal
 * approximation (Wald, z = 1.96).  Returns 0, or -1 when a group is empty
 * or a count is out of range. */
int router_uplift_ci (long conv_v, long n_v, long conv_h, long n_h,
                      double *uplift_r, double *lo_r, double *hi_r);

#endif
