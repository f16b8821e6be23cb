/* campaign: a campaign INI and its templates, loaded and checked.
 * Everything that can be wrong with a campaign is found here, before a
 * single customer is looked at: lint and run share this code. */
#ifndef HERALD_CAMPAIGN_H
#define HERALD_CAMPAIGN_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "liquid/liquid.h"
#include "router.h"
#include "util.h"

/* One template file: CHANNEL.PART.liquid. */
struct tmpl_part {
  char *name;                /* "email.subject" */
  char *path;
  liquid_template *t;
  int may_unsubscribe;       /* its text could read unsubscribe_url */
};

/* The templates of one folder (the campaign's, or a variant's own). */
/* A partial of the folder's reach, read when the campaign is loaded. */
struct tmpl_partial {
  char *name;                /* "footer", or "emails/footer" */
  char *path;
  char *src;
  size_t len;
  int shared;                /* from the shared folder (../_partials) */
};

struct tmpl_set {
  char *dir;
  struct tmpl_part *parts;
  size_t n;
  /* Every partial the set's templates can reach, dynamically named ones
   * included: rendering reads them from here, never from a file. */
  struct tmpl_partial *partials;
  size_t n_partials;
};

/* A channel the campaign may use: a gateway [channel.NAME] instance. */
struct campaign_channel {
  const struct channel_conf *conf;   /* lent from the gateway */
  const char *kind;                  /* conf->kind */
};

/* [trigger]: herald serve runs the campaign for each such event. */
struct campaign_trigger {
  char *event;               /* the event type, or NULL: not triggered */
  int64_t delay;             /* seconds after the event's time */
  char **cancel_on;          /* event types that cancel a waiting entry */
  size_t n_cancel_on;
  int64_t reenter;           /* -1: a customer enters once (reenter = no);
                                else seconds after the last entry */
};

/* How a follow-up step picks its channel. */
enum step_channel {
  STEP_SAME,                 /* the channel the previous step used */
  STEP_NEXT,                 /* the best usable one other than that */
  STEP_NAMED                 /* one channel of the campaign */
};

/* Human events by which a customer ends a journey ([step.N] unless). */
#define UNLESS_MAX 4
extern const char *const campaign_unless_types[];   /* NULL-terminated */

/* [step.N], N = 2, 3, ...: a follow-up after the previous step's message
 * was sent.  The campaign itself is step 1. */
struct campaign_step {
  int n;
  int64_t after;             /* seconds after the previous step was sent */
  const char *unless[UNLESS_MAX + 1];  /* static strings, NULL-terminated */
  enum step_channel channel;
  int channel_idx;           /* STEP_NAMED: index into channels */
  struct tmpl_set set;       /* its own templates (dir NULL: none) */
};

struct campaign {
  struct ini *ini;
  char *id;
  char *name;
  int step;                  /* 1 until multi-step campaigns exist */
  struct campaign_channel *channels;
  size_t n_channels;
  char *segment;             /* as written, or NULL */
  liquid_expr *segment_expr;
  struct policy *policy;
  int at_least_once;         /* delivery = at_least_once (default) */
  int max_attempts;          /* retries before a message is dead */
  int64_t retry_horizon;     /* herald run waits for retries due within */
  int strict;                /* strict variables when rendering */
  int track_opens;           /* the open pixel in email.html (default) */
  int fallback;              /* a rejected or dead message goes on to the
                                next usable channel (default) */
  struct tmpl_set base;      /* [campaign] templates */
  struct tmpl_set *variant_sets;     /* parallel to policy->variants; a
                                        set with dir NULL uses base */
  int64_t start;             /* [campaign] start: unix seconds, or the
                                wall-clock time read as UTC when
                                start_local; 0 when not set */
  int start_local;           /* no offset: that time in each customer's
                                own zone */
  struct campaign_trigger trigger;
  struct campaign_step *steps;       /* steps[0] is [step.2] */
  size_t n_steps;
};

/* The parts each channel kind needs: returns 1 when SET (with BASE as the
 * fallback for a variant set) can render KIND. */
int campaign_has_parts (const struct campaign *c, const struct tmpl_set *set,
                        const char *kind);

/* The template for PART of VARIANT (NULL = none), or NULL when absent. */
const struct tmpl_part *campaign_part (const struct campaign *c,
                                       const char *variant, const char *part);

/* The same for step STEP (1 = the campaign's own templates): the step's
 * folder first, then the variant's and the campaign's. */
const struct tmpl_part *campaign_step_part (const struct campaign *c,
                                            int step, const char *variant,
                                            const char *part);

/* [step.STEP], or NULL (step 1, or past the last). */
const struct campaign_step *campaign_step (const struct campaign *c,
                                           int step);

/* Whether the campaign takes event type TYPE as its trigger or as one of
 * its cancel_on events. */
int campaign_cancels (const struct campaign *c, const char *type);

/* Load PATH against the gateway GW.  Every problem found is appended to
 * PROBLEMS as one "file:line[:col]: message" line; returns NULL when there
 * was any.  Free with campaign_free. */
struct campaign *campaign_load (const char *path, const struct gateway *gw,
                                struct strbuf *problems);
void campaign_free (struct campaign *c);

/* Whether PART ("email.html") is rendered with HTML autoescape, and
 * whether it must render to JSON. */
int campaign_part_autoescape (const char *part);
int campaign_part_json (const char *part);

/* herald lint CAMPAIGN.ini */
int cmd_lint (int argc, char **argv);

#endif
