/* report: 'herald report CAMPAIGN_ID [--json]', what a campaign did, per
 * channel and variant: outcomes from the outbox, engagement from events.
 * Read-only: it never changes the store. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "import.h"
#include "main.h"
#include "router.h"
#include "store.h"
#include "util.h"

static const char *const engagement_types[] = {
  "delivered", "opened", "clicked", "replied", "converted", "unsubscribed",
  "bounced", "complained", "soft_bounced", NULL
};
/* The events the tracking server may flag as a machine's. */
static const char *const machine_types[] = { "opened", "clicked", NULL };

/* Columns of the text table (bounces, soft bounces and complaints are in
 * --json). */
#define N_TEXT_ENGAGEMENT 6

static const char *const outcome_states[] = {
  "sent", "failed", "dead", "skipped", "held_out", "pending", "sending",
  "retry", "deferred", NULL
};

static void
usage (FILE *fp)
{
  fprintf (fp,
           "Usage: herald report [--store PATH] [--json] CAMPAIGN_ID\n"
           "\n"
           "What campaign CAMPAIGN_ID did, per channel and variant: messages\n"
           "sent, failed, skipped (by reason), and engagement from events\n"
           "(delivered, opened, clicked, replied, converted, unsubscribed),\n"
           "counted once per message.  Opens and clicks that the tracking\n"
           "server took for machines' (mail scanners, prefetching proxies)\n"
           "are shown apart and left out of the rates.\n"
           "\n"
           "  --store PATH  the store file (default: [store] path of the\n"
           "                gateway configuration)\n"
           "  --json        one JSON object instead of a table\n"
           "  --help        this text\n"
           "\n"
           "Exit status: 0, 1 unknown campaign or store error, 2 usage.\n");
}

/* The group for (CHANNEL, VARIANT) in GROUPS (an object keyed
 * "channel\tvariant"), created with zero counts. */
static json_t *
group_for (json_t *groups, json_t *channel, json_t *variant)
{
  const char *c = json_is_string (channel) ? json_string_value (channel) : "";
  const char *v = json_is_string (variant) ? json_string_value (variant) : "";
  char *k = xasprintf ("%s\t%s", c, v);
  json_t *g = json_object_get (groups, k), *eng;
  int i;

  if (!g) {
    g = json_object ();
    json_object_set (g, "channel", channel);
    json_object_set (g, "variant", variant);
    for (i = 0; outcome_states[i]; i++)
      json_object_set_new (g, outcome_states[i], json_integer (0));
    json_object_set_new (g, "skipped_by_reason", json_object ());
    eng = json_object ();
    for (i = 0; engagement_types[i]; i++) {
      json_t *e = json_object ();
      json_object_set_new (e, "messages", json_integer (0));
      json_object_set_new (e, "events", json_integer (0));
      json_object_set_new (eng, engagement_types[i], e);
    }
    json_object_set_new (g, "engagement", eng);
    /* What the tracking server took for machines (scanners, proxies):
     * counted apart, never in the rates. */
    eng = json_object ();
    for (i = 0; machine_types[i]; i++) {
      json_t *e = json_object ();
      json_object_set_new (e, "messages", json_integer (0));
      json_object_set_new (e, "events", json_integer (0));
      json_object_set_new (eng, machine_types[i], e);
    }
    json_object_set_new (g, "machine", eng);
    json_object_set_new (groups, k, g);
  }
  free (k);
  return g;
}

static void
add_int (json_t *o, const char *k, json_int_t n)
{
  json_object_set_new (o, k, json_integer (json_integer_value (
                                             json_object_get (o, k)) + n));
}

static int
cmp_keys (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Build the report object (new reference) from counts and engagement. */
/* The experiment: each variant's conversion rate against the holdout's,
 * with the uplift (difference of proportions) and its 95% confidence
 * interval.  CONV is store_campaign_conversions' list. */
static json_t *
experiment (json_t *conv)
{
  json_t *out = json_object (), *vars = json_array (), *row, *hold = NULL;
  size_t i;
  long nh = 0, ch = 0;

  json_array_foreach (conv, i, row)
    if (json_is_true (json_object_get (row, "held_out"))) {
      nh += (long) json_integer_value (json_object_get (row, "customers"));
      ch += (long) json_integer_value (json_object_get (row, "converted"));
    }
  if (nh > 0) {
    hold = json_pack ("{s:I, s:I, s:f}", "customers", (json_int_t) nh,
                      "converted", (json_int_t) ch, "rate",
                      (double) ch / (double) nh);
    json_object_set_new (out, "holdout", hold);
  }
  else
    json_object_set_new (out, "holdout", json_null ());
  json_array_foreach (conv, i, row) {
    long n = (long) json_integer_value (json_object_get (row, "customers"));
    long c = (long) json_integer_value (json_object_get (row, "converted"));
    json_t *v;
    double up, lo, hi;

    if (json_is_true (json_object_get (row, "held_out")) || n <= 0)
      continue;
    v = json_pack ("{s:O, s:I, s:I, s:f}", "variant",
                   json_object_get (row, "variant"), "customers",
                   (json_int_t) n, "converted", (json_int_t) c, "rate",
                   (double) c / (double) n);
    if (nh > 0 && router_uplift_ci (c, n, ch, nh, &up, &lo, &hi) == 0)
      json_object_set_new (v, "uplift", json_pack ("{s:f, s:f, s:f}", "value",
                                                   up, "ci95_low", lo,
                                                   "ci95_high", hi));
    json_array_append_new (vars, v);
  }
  json_object_set_new (out, "variants", vars);
  return out;
}

static json_t *
build (const char *id, json_t *campaign, json_t *counts, json_t *engagement,
       json_t *conv)
{
  json_t *groups = json_object (), *out = json_object (), *list, *row;
  const char *k;
  const char **keys;
  size_t i, n;
  json_t *v;

  json_array_foreach (json_object_get (counts, "rows"), i, row) {
    json_t *g = group_for (groups, json_object_get (row, "channel"),
                           json_object_get (row, "variant"));
    const char *state = json_string_value (json_object_get (row, "state"));
    json_int_t c = json_integer_value (json_object_get (row, "count"));
    add_int (g, state, c);
    if (strcmp (state, "skipped") == 0) {
      json_t *reason = json_object_get (row, "reason");
      add_int (json_object_get (g, "skipped_by_reason"),
               json_is_string (reason) ? json_string_value (reason)
                                       : "(no reason)", c);
    }
  }
  json_array_foreach (engagement, i, row) {
    json_t *g = group_for (groups, json_object_get (row, "channel"),
                           json_object_get (row, "variant"));
    int machine = json_is_true (json_object_get (row, "machine"));
    json_t *e = json_object_get (json_object_get (g, machine ? "machine"
                                                             : "engagement"),
                                 json_string_value (json_object_get (row,
                                                                     "type")));
    if (!e)
      continue;
    add_int (e, "messages",
             json_integer_value (json_object_get (row, "messages")));
    add_int (e, "events", json_integer_value (json_object_get (row, "count")));
  }

  /* Sorted by channel then variant (the "channel\tvariant" keys). */
  n = json_object_size (groups);
  keys = xcalloc (n ? n : 1, sizeof *keys);
  i = 0;
  json_object_foreach (groups, k, v)
    keys[i++] = k;
  qsort (keys, n, sizeof *keys, cmp_keys);
  list = json_array ();
  for (i = 0; i < n; i++) {
    json_t *g = json_object_get (groups, keys[i]);
    json_int_t sent = json_integer_value (json_object_get (g, "sent"));
    json_t *rates = json_object ();
    const char *const rated[] = { "delivered", "opened", "clicked", "replied",
                                  "converted", "unsubscribed", "bounced",
                                  "complained", NULL };
    size_t j;

    /* Rates are distinct messages with the event over messages sent
     * (the people's events: machines' ones are in "machine"). */
    for (j = 0; sent > 0 && rated[j]; j++) {
      json_t *e = json_object_get (json_object_get (g, "engagement"), rated[j]);
      json_object_set_new (rates, rated[j],
                           json_real ((double) json_integer_value (
                                        json_object_get (e, "messages"))
                                      / (double) sent));
    }
    json_object_set_new (g, "rates", rates);
    json_array_append (list, g);
  }
  free (keys);

  json_object_set_new (out, "campaign", json_string (id));
  if (campaign) {
    json_object_set (out, "name", json_object_get (campaign, "name"));
    json_object_set (out, "status", json_object_get (campaign, "status"));
    json_object_set (out, "runs", json_object_get (campaign, "runs"));
  }
  json_object_set (out, "total", json_object_get (counts, "total"));
  json_object_set (out, "states", json_object_get (counts, "states"));
  json_object_set_new (out, "groups", list);
  json_object_set_new (out, "experiment", experiment (conv));
  json_decref (groups);
  return out;
}

static json_int_t
geti (json_t *o, const char *k)
{
  return json_integer_value (json_object_get (o, k));
}

static const char *
label (json_t *v)
{
  return json_is_string (v) ? json_string_value (v) : "-";
}

static void
print_text (json_t *r)
{
  json_t *groups = json_object_get (r, "groups"), *g, *name, *v;
  json_int_t tot[5 + N_TEXT_ENGAGEMENT] = { 0 };
  const char *k;
  size_t i;
  int j, any_skipped = 0, any_pending = 0;

  name = json_object_get (r, "name");
  printf ("Campaign %s", json_string_value (json_object_get (r, "campaign")));
  if (json_is_string (name) && *json_string_value (name))
    printf (" (%s)", json_string_value (name));
  if (json_is_string (json_object_get (r, "status")))
    printf (": %s, %lld run%s", json_string_value (json_object_get (r,
                                                                     "status")),
            (long long) geti (r, "runs"), geti (r, "runs") == 1 ? "" : "s");
  printf (", %lld message%s\n\n", (long long) geti (r, "total"),
          geti (r, "total") == 1 ? "" : "s");

  printf ("%-8s %-10s %7s %7s %7s %8s %9s %7s %7s %7s %9s %6s\n", "CHANNEL",
          "VARIANT", "SENT", "FAILED", "SKIPPED", "HELD_OUT", "DELIVERED",
          "OPENED", "CLICKED", "REPLIED", "CONVERTED", "UNSUB");
  json_array_foreach (groups, i, g) {
    json_t *eng = json_object_get (g, "engagement");
    json_int_t row[5 + N_TEXT_ENGAGEMENT];

    row[0] = geti (g, "sent");
    row[1] = geti (g, "failed") + geti (g, "dead");
    row[2] = geti (g, "skipped");
    row[3] = geti (g, "held_out");
    row[4] = geti (g, "pending") + geti (g, "sending") + geti (g, "retry")
             + geti (g, "deferred") + geti (g, "reroute");
    for (j = 0; j < N_TEXT_ENGAGEMENT; j++)
      row[5 + j] = geti (json_object_get (eng, engagement_types[j]),
                         "messages");
    printf ("%-8s %-10s %7lld %7lld %7lld %8lld", label (json_object_get (g,
                                                                      "channel")),
            label (json_object_get (g, "variant")), (long long) row[0],
            (long long) row[1], (long long) row[2], (long long) row[3]);
    printf (" %9lld %7lld %7lld %7lld %9lld %6lld\n", (long long) row[5],
            (long long) row[6], (long long) row[7], (long long) row[8],
            (long long) row[9], (long long) row[10]);
    for (j = 0; j < 5 + N_TEXT_ENGAGEMENT; j++)
      tot[j] += row[j];
    if (row[2])
      any_skipped = 1;
    if (row[4])
      any_pending = 1;
  }
  printf ("%-8s %-10s %7lld %7lld %7lld %8lld", "total", "",
          (long long) tot[0], (long long) tot[1], (long long) tot[2],
          (long long) tot[3]);
  printf (" %9lld %7lld %7lld %7lld %9lld %6lld\n", (long long) tot[5],
          (long long) tot[6], (long long) tot[7], (long long) tot[8],
          (long long) tot[9], (long long) tot[10]);

  if (any_skipped) {
    printf ("\nSkipped, by reason:\n");
    json_array_foreach (groups, i, g)
      json_object_foreach (json_object_get (g, "skipped_by_reason"), k, v)
        printf ("  %-8s %-10s %-28s %7lld\n",
                label (json_object_get (g, "channel")),
                label (json_object_get (g, "variant")), k,
                (long long) json_integer_value (v));
  }
  if (any_pending) {
    printf ("\nNot finished: %lld pending, %lld sending, %lld retry, "
            "%lld deferred\n",
            (long long) geti (json_object_get (r, "states"), "pending"),
            (long long) geti (json_object_get (r, "states"), "sending"),
            (long long) geti (json_object_get (r, "states"), "retry"),
            (long long) geti (json_object_get (r, "states"), "deferred"));
  }
  printf ("\nRates (messages with the event / messages sent):\n");
  printf ("%-8s %-10s %9s %7s %7s %7s %9s %6s %7s %10s\n", "CHANNEL",
          "VARIANT", "DELIVERED", "OPENED", "CLICKED", "REPLIED", "CONVERTED",
          "UNSUB", "BOUNCED", "COMPLAINED");
  json_array_foreach (groups, i, g) {
    json_t *rates = json_object_get (g, "rates");
    const char *const rated[] = { "delivered", "opened", "clicked", "replied",
                                  "converted", "unsubscribed", "bounced",
                                  "complained" };
    static const int width[] = { 8, 6, 6, 6, 8, 5, 6, 9 };
    if (json_object_size (rates) == 0)
      continue;
    printf ("%-8s %-10s", label (json_object_get (g, "channel")),
            label (json_object_get (g, "variant")));
    for (j = 0; j < 8; j++)
      printf (" %*.1f%%", width[j],
              100.0 * json_real_value (json_object_get (rates, rated[j])));
    printf ("\n");
  }
  {
    int any = 0;
    json_array_foreach (groups, i, g)
      for (j = 0; machine_types[j]; j++)
        any |= geti (json_object_get (json_object_get (g, "machine"),
                                      machine_types[j]), "messages") > 0;
    if (any) {
      printf ("\nLeft out of the rates: opened and clicked by machines (mail "
              "scanners,\nprefetching proxies; messages):\n");
      printf ("%-8s %-10s %7s %7s\n", "CHANNEL", "VARIANT", "OPENED",
              "CLICKED");
      json_array_foreach (groups, i, g) {
        json_t *m = json_object_get (g, "machine");
        json_int_t o = geti (json_object_get (m, "opened"), "messages");
        json_int_t c = geti (json_object_get (m, "clicked"), "messages");
        if (o || c)
          printf ("%-8s %-10s %7lld %7lld\n",
                  label (json_object_get (g, "channel")),
                  label (json_object_get (g, "variant")), (long long) o,
                  (long long) c);
      }
    }
  }
  {
    json_t *ex = json_object_get (r, "experiment");
    json_t *hold = json_object_get (ex, "holdout");
    json_t *vars = json_object_get (ex, "variants");

    if (json_array_size (vars) && (hold && !json_is_null (hold))) {
      printf ("\nConversion (customers with a 'converted' event after their "
              "message):\n");
      printf ("  %-12s %9lld customers %7lld converted %6.2f%%\n", "holdout",
              (long long) geti (hold, "customers"),
              (long long) geti (hold, "converted"),
              100.0 * json_real_value (json_object_get (hold, "rate")));
      json_array_foreach (vars, i, g) {
        json_t *up = json_object_get (g, "uplift");
        printf ("  %-12s %9lld customers %7lld converted %6.2f%%",
                label (json_object_get (g, "variant")),
                (long long) geti (g, "customers"),
                (long long) geti (g, "converted"),
                100.0 * json_real_value (json_object_get (g, "rate")));
        if (up)
          printf ("   uplift %+.2f pts (95%% CI %+.2f .. %+.2f)",
                  100.0 * json_real_value (json_object_get (up, "value")),
                  100.0 * json_real_value (json_object_get (up, "ci95_low")),
                  100.0 * json_real_value (json_object_get (up, "ci95_high")));
        printf ("\n");
      }
    }
  }
  {
    json_t *steps = json_object_get (r, "steps");
    json_int_t timers = 0;

    json_array_foreach (steps, i, g)
      timers += geti (g, "waiting") + geti (g, "fired") + geti (g, "exited")
                + geti (g, "cancelled");
    if (json_array_size (steps) > 1 || timers) {
      printf ("\nJourney steps (entered: journeys that reached the step; "
              "engaged: its messages\na person opened, clicked, replied to "
              "or converted on):\n");
      printf ("%-5s %8s %8s %8s %8s %8s %8s\n", "STEP", "ENTERED", "SENT",
              "ENGAGED", "EXITED", "CANCELED", "WAITING");
      json_array_foreach (steps, i, g)
        printf ("%-5lld %8lld %8lld %8lld %8lld %8lld %8lld\n",
                (long long) geti (g, "step"), (long long) geti (g, "entered"),
                (long long) geti (g, "sent"), (long long) geti (g, "engaged"),
                (long long) geti (g, "exited"),
                (long long) geti (g, "cancelled"),
                (long long) geti (g, "waiting"));
    }
  }
  printf ("\nEngagement counts each message once (see --json for event "
          "totals).\n");
}

int
cmd_report (int argc, char **argv)
{
  const char *opt_store = NULL, *id = NULL;
  char *store_path = NULL, err[1024];
  struct store *st = NULL;
  json_t *campaign = NULL, *counts = NULL, *engagement = NULL, *r = NULL;
  json_t *conv = NULL, *steps = NULL;
  int i, json = 0, ret = 1, known;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
      usage (stdout);
      return 0;
    }
    else if (strcmp (a, "--json") == 0)
      json = 1;
    else if (strcmp (a, "--store") == 0) {
      if (++i >= argc) {
        fprintf (stderr, "herald report: --store needs a path\n");
        return EXIT_USAGE;
      }
      opt_store = argv[i];
    }
    else if (strncmp (a, "--store=", 8) == 0)
      opt_store = a + 8;
    else if (a[0] == '-' && a[1]) {
      fprintf (stderr, "herald report: unknown option '%s'\n", a);
      usage (stderr);
      return EXIT_USAGE;
    }
    else if (id) {
      fprintf (stderr, "herald report: one campaign at a time\n");
      return EXIT_USAGE;
    }
    else
      id = a;
  }
  if (!id) {
    fprintf (stderr, "herald report: which campaign?\n");
    usage (stderr);
    return EXIT_USAGE;
  }
  if (!(store_path = import_store_path (opt_store)))
    goto out;
  if (!(st = store_open (store_path, err, sizeof err))) {
    fprintf (stderr, "herald: %s\n", err);
    goto out;
  }
  if ((known = store_campaign_get (st, id, &campaign)) < 0
      || store_campaign_counts (st, id, &counts) < 0
      || store_campaign_engagement (st, id, &engagement) < 0
      || store_campaign_conversions (st, id, &conv) < 0
      || store_step_funnel (st, id, &steps) < 0) {
    fprintf (stderr, "herald: %s\n", store_error (st));
    goto out;
  }
  if (known == 1 && geti (counts, "total") == 0) {
    fprintf (stderr, "herald report: unknown campaign '%s': the store %s has "
             "never run it\n", id, store_name (st));
    goto out;
  }
  r = build (id, campaign, counts, engagement, conv);
  json_object_set (r, "steps", steps);
  if (json) {
    if (json_dumpf (r, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER) < 0) {
      fprintf (stderr, "herald report: cannot write the report\n");
      goto out;
    }
    printf ("\n");
  }
  else
    print_text (r);
  if (fflush (stdout) != 0) {
    perror ("herald report: stdout");
    goto out;
  }
  ret = 0;
out:
  json_decref (r);
  json_decref (campaign);
  json_decref (counts);
  json_decref (engagement);
  json_decref (conv);
  json_decref (steps);
  store_close (st);
  free (store_path);
  return ret;
}
