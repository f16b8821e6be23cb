/* cmd_bounces: 'herald bounces import MAILDIR|MBOX|FILE...'.  Reads what
 * the bounce mailbox collected (core/bounce.c classifies each message),
 * maps each bounce and complaint to the message it is about, and records
 * it in the store:
 *  - a hard bounce (5.x.x): a "bounced" event, which suppresses the
 *    message's address;
 *  - a soft bounce (4.x.x, given up on): a "soft_bounced" event; once
 *    [bounces] soft_limit of them fall within soft_window, the address is
 *    suppressed;
 *  - a complaint (ARF abuse or fraud): a "complained" event, which
 *    suppresses the address, and the customer's consent for the channel
 *    withdrawn.
 * Those effects are feedback_record's (feedback.h), which herald serve's
 * inbound sink uses too for the bounces of providers' webhooks.
 *
 * A bounce names its message by the signed VERP address it was sent to
 * (lib/verp.h), checked with the verp_secret of each email channel; with
 * no VERP address at all, by the returned message's Herald Message-ID.  It
 * must never guess: a forged or unknown token, two tokens that disagree,
 * a report it cannot read, are listed with the file and why, and nothing
 * is recorded for them.  Each event's time is the report's own Date, so a
 * second import of the same mailbox finds every event already recorded
 * and changes nothing.  The mailbox itself is never changed. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "bounce.h"
#include "config.h"
#include "feedback.h"
#include "import.h"
#include "main.h"
#include "store.h"
#include "util.h"
#include "../lib/verp.h"

/* Events recorded per transaction: one commit (an fsync) per this many,
 * and no write lock held for a whole large mailbox. */
#define BOUNCES_BATCH 256

/* An email channel of the gateway: what a token is checked with, and the
 * From domain its Message-IDs (the provider ids) carry. */
struct bchan {
  const char *name;          /* lent by the gateway */
  char *from_domain;         /* NULL when its from has none */
  int keyed;                 /* has verp_secret: key is set */
  struct verp_key key;
};

struct bctx {
  const char *gateway_path;
  struct store *st;
  struct bchan *ch;
  size_t n_ch;
  int soft_limit;
  int64_t soft_window;
  int verbose;
  int in_tx, pending, store_failed;
  long files, messages, hard, soft, complaints, ignored, unmatched;
  long unparseable, already, soft_suppressed, unreadable;
};

static void
usage (FILE *fp)
{
  fprintf (fp,
           "Usage: herald bounces import [--store PATH] [--verbose] "
           "MAILDIR|MBOX|FILE...\n"
           "\n"
           "Read the bounces and complaints that the bounce mailbox of the\n"
           "email channels collected: a Maildir folder (cur/ and new/), an\n"
           "mbox file, or single message files.  Delivery status reports\n"
           "(RFC 3464), complaint reports (ARF, RFC 5965) and the common\n"
           "bounces in prose (qmail, Yahoo, Gmail...) are read.  Each names\n"
           "its message by its VERP address b+TOKEN@bounce_domain, checked\n"
           "with the channel's verp_secret.\n"
           "\n"
           "  a hard bounce (5.x.x)  records 'bounced' and suppresses the "
           "address\n"
           "  a soft bounce (4.x.x)  records 'soft_bounced'; [bounces] "
           "soft_limit of\n"
           "                         them within soft_window suppress the "
           "address\n"
           "  a complaint (ARF)      records 'complained', suppresses the "
           "address\n"
           "                         and withdraws the e-mail consent\n"
           "\n"
           "What is unmatched (a forged or unknown token) or unparseable is\n"
           "listed with its file and why, and never recorded.  Importing the\n"
           "same mailbox again changes nothing.  The mailbox is not changed.\n"
           "\n"
           "  --store PATH  the store file (default: [store] path of the\n"
           "                gateway configuration)\n"
           "  --verbose     also list each bounce recorded\n"
           "  --help        this text\n"
           "\n"
           "Exit status: 0, 1 when a file could not be read or the store\n"
           "failed, 2 usage.\n");
}

/* "7d", "36h", "90m" or "45s" for SECONDS. */
static void
format_window (int64_t s, char *buf, size_t len)
{
  if (s % 86400 == 0)
    snprintf (buf, len, "%lldd", (long long) (s / 86400));
  else if (s % 3600 == 0)
    snprintf (buf, len, "%lldh", (long long) (s / 3600));
  else if (s % 60 == 0)
    snprintf (buf, len, "%lldm", (long long) (s / 60));
  else
    snprintf (buf, len, "%llds", (long long) s);
}

/* Print "NAME: WHAT: WHY" on stderr (or stdout), NAME and WHY escaped:
 * both come from the mailbox. */
static void
say (FILE *fp, const char *name, const char *what, const char *why)
{
  struct strbuf b = STRBUF_INIT;

  strbuf_add_escaped (&b, name, strlen (name));
  strbuf_addf (&b, ": %s: ", what);
  if (why)
    strbuf_add_escaped (&b, why, strlen (why));
  fprintf (fp, "%s\n", b.s);
  strbuf_free (&b);
}

/* The domain of the address of a From value ("Name <local@domain>",
 * "local@domain"), as the email plugin writes it into the Message-ID
 * (plugins/common/mime.c: after the last '@'); NULL when none. */
static char *
from_domain (const char *from)
{
  const char *lt = strrchr (from, '<'), *start, *end, *at = NULL, *p;

  start = lt ? lt + 1 : from;
  end = lt ? strchr (lt, '>') : from + strlen (from);
  if (!end)
    return NULL;
  for (p = start; p < end; p++)
    if (*p == '@')
      at = p;
  while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (!at || end <= at + 1)
    return NULL;
  return xstrndup (at + 1, (size_t) (end - at - 1));
}

static void
hexify (const unsigned char *h, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < n; i++) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 15];
  }
  out[2 * n] = '\0';
}

/* ---- transactions ------------------------------------------------------ */

static int
tx_open (struct bctx *c)
{
  if (c->in_tx)
    return 0;
  if (store_begin (c->st) < 0)
    return -1;
  c->in_tx = 1;
  c->pending = 0;
  return 0;
}

static int
tx_flush (struct bctx *c)
{
  if (!c->in_tx)
    return 0;
  c->in_tx = 0;
  if (store_commit (c->st) < 0) {
    store_rollback (c->st);
    return -1;
  }
  return 0;
}

/* ---- which message ------------------------------------------------------ */

/* The message of outbox row provider id "HEX.herald@DOMAIN" when its key
 * hashes to H (the signed hash, or the Message-ID's): 1 with *ROW_R, 0
 * none, -1 store error. */
static int
row_by_hash (struct bctx *c, const unsigned char h[VERP_HASH_LEN],
             const char *domain, struct outbox_row **row_r)
{
  unsigned char kh[VERP_HASH_LEN];
  char hex[2 * VERP_HASH_LEN + 1], *pid;
  struct outbox_row *row = NULL;
  int r;

  *row_r = NULL;
  hexify (h, VERP_HASH_LEN, hex);
  pid = xasprintf ("%s.herald@%s", hex, domain);
  r = store_outbox_by_provider (c->st, "email", pid, &row);
  free (pid);
  if (r < 0)
    return -1;
  if (!row)
    return 0;
  /* The provider id is the store's word; the hash of the key is ours. */
  if (verp_key_hash (row->key, kh) < 0
      || memcmp (kh, h, VERP_HASH_LEN) != 0) {
    store_row_free (row);
    return 0;
  }
  *row_r = row;
  return 1;
}

/* Read a Herald Message-ID "HEX32.herald@DOMAIN" (mime.h) into H and
 * *DOMAIN_R (pointing into ID).  0, or -1 when ID is not one. */
static int
herald_message_id (const char *id, unsigned char h[VERP_HASH_LEN],
                   const char **domain_r)
{
  size_t i;

  if (!id || strlen (id) < 2 * VERP_HASH_LEN + 9
      || strncmp (id + 2 * VERP_HASH_LEN, ".herald@", 8) != 0
      || !id[2 * VERP_HASH_LEN + 8])
    return -1;
  for (i = 0; i < 2 * VERP_HASH_LEN; i++) {
    char ch = id[i];
    int v = ch >= '0' && ch <= '9' ? ch - '0'
            : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    if (v < 0)
      return -1;
    if (i % 2 == 0)
      h[i / 2] = (unsigned char) (v << 4);
    else
      h[i / 2] |= (unsigned char) v;
  }
  *domain_r = id + 2 * VERP_HASH_LEN + 8;
  return 0;
}

/* Find the message B is about: 1 with *ROW_R (free with store_row_free)
 * and how ("verp" or "message-id") in *HOW_R; 0 when it names none of
 * this store's, with why in WHY; -1 on a store error. */
static int
match (struct bctx *c, const struct bounce *b, struct outbox_row **row_r,
       const char **how_r, struct strbuf *why)
{
  unsigned char h[VERP_HASH_LEN], hk[VERP_HASH_LEN], hm[VERP_HASH_LEN];
  const char *forged = NULL, *first = NULL, *mid_domain = NULL;
  size_t i, k;
  int have = 0, keyed = 0, r = 0;

  *row_r = NULL;
  for (k = 0; k < c->n_ch; k++)
    keyed += c->ch[k].keyed;
  for (i = 0; i < b->n_tokens; i++) {
    int ok = 0;
    for (k = 0; k < c->n_ch && !ok; k++) {
      if (!c->ch[k].keyed || verp_check (&c->ch[k].key, b->tokens[i], hk) < 0)
        continue;
      ok = 1;
      if (!have) {
        memcpy (h, hk, sizeof h);
        have = 1;
        first = b->tokens[i];
      } else if (memcmp (h, hk, sizeof h) != 0) {
        strbuf_addf (why, "%s and %s: two signed VERP addresses naming two "
                     "messages", first, b->tokens[i]);
        return 0;
      }
    }
    if (!ok && !forged)
      forged = b->tokens[i];
  }
  if (have) {
    /* The provider id is HEX.herald@ the From domain: the channels'
     * today, or the one the returned Message-ID shows (a from changed
     * since the message was sent). */
    if (herald_message_id (b->message_id, hm, &mid_domain) == 0
        && memcmp (hm, h, sizeof h) == 0
        && (r = row_by_hash (c, h, mid_domain, row_r)) != 0)
      goto found;
    for (k = 0; k < c->n_ch; k++)
      if (c->ch[k].from_domain
          && (r = row_by_hash (c, h, c->ch[k].from_domain, row_r)) != 0)
        goto found;
    {
      char hex[2 * VERP_HASH_LEN + 1];
      hexify (h, sizeof h, hex);
      strbuf_addf (why, "%s: signed, but no message of this store is "
                   "%s.herald@ the From domain of an email channel (sent "
                   "from another store, or from another From?)", first, hex);
    }
    return 0;
  }
  if (forged) {
    if (keyed)
      strbuf_addf (why, "%s: not signed with the verp_secret of any email "
                   "channel of %s (a forged bounce, or another gateway's)",
                   forged, c->gateway_path);
    else
      strbuf_addf (why, "%s: no email channel of %s has a verp_secret to "
                   "check it with", forged, c->gateway_path);
    return 0;
  }
  /* No VERP address at all (an ARF report that removed it, an MTA that
   * bounced to the From address): the returned message's Message-ID. */
  if (herald_message_id (b->message_id, hm, &mid_domain) == 0) {
    r = row_by_hash (c, hm, mid_domain, row_r);
    if (r < 0)
      return -1;
    if (r > 0) {
      *how_r = "message-id";
      return 1;
    }
    strbuf_addf (why, "no VERP address, and the Message-ID <%s> of the "
                 "returned message is no message of this store",
                 b->message_id);
    return 0;
  }
  if (b->message_id)
    strbuf_addf (why, "no VERP address (b+TOKEN@), and the returned "
                 "message's Message-ID <%s> is not Herald's", b->message_id);
  else
    strbuf_addf (why, "names no message: no VERP address (b+TOKEN@) in its "
                 "headers, and no returned message with a Message-ID");
  return 0;
found:
  if (r < 0)
    return -1;
  *how_r = "verp";
  return 1;
}

/* ---- recording ---------------------------------------------------------- */

/* The event's detail: what the report said (never the file name, which
 * a Maildir reader changes). */
static char *
detail_json (const struct bounce *b, const char *how)
{
  json_t *d = json_object ();
  char *s;

  json_object_set_new (d, "source", json_string ("bounces import"));
  json_object_set_new (d, "format", json_string (b->format));
  json_object_set_new (d, "matched_by", json_string (how));
  if (b->status[0])
    json_object_set_new (d, "status", json_string (b->status));
  if (b->action)
    json_object_set_new (d, "action", json_string (b->action));
  if (b->recipient)
    json_object_set_new (d, "recipient", json_string (b->recipient));
  if (b->diagnostic)
    json_object_set_new (d, "diagnostic", json_string (b->diagnostic));
  if (b->feedback_type)
    json_object_set_new (d, "feedback_type", json_string (b->feedback_type));
  s = json_dumps (d, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref (d);
  if (!s)
    abort ();                   /* only out of memory: bounce.h's strings
                                   are UTF-8 */
  return s;
}

/* Record B about ROW through feedback_record, as a webhook's bounce is
 * (feedback.h).  0 or -1 (store error). */
static int
record (struct bctx *c, const char *name, const struct bounce *b,
        const struct outbox_row *row, const char *how)
{
  struct feedback_policy policy = { c->soft_limit, c->soft_window };
  struct feedback f;
  const char *what;
  char *detail = NULL, *line;
  int r = -1, k = 0;

  memset (&f, 0, sizeof f);
  switch (b->kind) {
  case BOUNCE_HARD:
    f.kind = FEEDBACK_HARD;
    what = "hard bounce";
    break;
  case BOUNCE_SOFT:
    f.kind = FEEDBACK_SOFT;
    what = "soft bounce";
    break;
  default:
    f.kind = FEEDBACK_COMPLAINT;
    what = "complaint";
    break;
  }
  if (tx_open (c) < 0)
    return -1;
  detail = detail_json (b, how);
  f.customer = row->customer;
  f.channel = row->channel ? row->channel : "email";
  f.campaign = row->campaign;
  f.message_key = row->key;
  f.address_json = row->address;
  f.at = b->date;
  f.detail = detail;
  r = feedback_record (c->st, &policy, &f, &k);
  if (r < 0)
    goto out;
  if (r == 1)
    c->already++;
  else if (b->kind == BOUNCE_HARD)
    c->hard++;
  else if (b->kind == BOUNCE_SOFT)
    c->soft++;
  else
    c->complaints++;
  if (c->verbose) {
    line = xasprintf ("%s%s%s%s of %s%s: %s", what,
                      b->status[0] || b->feedback_type ? " (" : "",
                      b->status[0] ? b->status
                                   : b->feedback_type ? b->feedback_type : "",
                      b->status[0] || b->feedback_type ? ")" : "", row->key,
                      strcmp (how, "verp") == 0 ? ""
                                                : ", found by its Message-ID",
                      r == 1 ? "already recorded" : "recorded");
    say (stdout, name, "matched", line);
    free (line);
  }
  if (k > 0) {
    char w[32], *msg;
    c->soft_suppressed += k;
    format_window (c->soft_window, w, sizeof w);
    msg = xasprintf ("%d soft bounces within %s: address suppressed",
                     c->soft_limit, w);
    if (c->verbose)
      say (stdout, name, "soft bounces", msg);
    free (msg);
  }
  r = 0;
  if (++c->pending >= BOUNCES_BATCH)
    r = tx_flush (c);
out:
  free (detail);
  return r;
}

static int
each_item (void *data, const struct bounce_item *it)
{
  struct bctx *c = data;
  const struct bounce *b = it->b;
  struct strbuf why = STRBUF_INIT;
  struct outbox_row *row = NULL;
  const char *how = NULL;
  int r;

  if (it->error) {
    struct strbuf e = STRBUF_INIT;
    strbuf_add_escaped (&e, it->name, strlen (it->name));
    fprintf (stderr, "herald: %s: %s\n", e.s, it->error);
    strbuf_free (&e);
    c->unreadable++;
    return 0;
  }
  c->messages++;
  if (b->kind == BOUNCE_UNPARSEABLE) {
    c->unparseable++;
    say (stderr, it->name, "unparseable", b->why);
    return 0;
  }
  if (b->kind == BOUNCE_IGNORED) {
    c->ignored++;
    say (stderr, it->name, "not a bounce", b->why);
    return 0;
  }
  if (b->date <= 0) {
    c->unparseable++;
    say (stderr, it->name, "unparseable", "no Date, and no arrival time "
         "(Maildir file name, mbox From line): its time would be a guess");
    return 0;
  }
  r = match (c, b, &row, &how, &why);
  if (r == 0) {
    c->unmatched++;
    say (stderr, it->name, "unmatched", why.s);
  } else if (r > 0)
    r = record (c, it->name, b, row, how);
  store_row_free (row);
  strbuf_free (&why);
  if (r < 0) {
    c->store_failed = 1;
    return 1;                   /* stop reading */
  }
  return 0;
}

/* ---- the command ------------------------------------------------------- */

int
cmd_bounces (int argc, char **argv)
{
  const char *opt_store = NULL;
  const char **paths = NULL;
  struct gateway *gw = NULL;
  struct bctx c;
  char err[1024], *store_path = NULL, w[32];
  size_t i, n_paths = 0;
  int only_files = 0, ret = 1, gmime = 0;

  memset (&c, 0, sizeof c);
  if (argc < 2) {
    usage (stderr);
    return EXIT_USAGE;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    usage (stdout);
    return 0;
  }
  if (strcmp (argv[1], "import") != 0) {
    fprintf (stderr, "herald bounces: unknown subcommand '%s'\n", argv[1]);
    usage (stderr);
    return EXIT_USAGE;
  }
  paths = xcalloc ((size_t) argc, sizeof *paths);
  for (i = 2; i < (size_t) argc; i++) {
    const char *a = argv[i];
    if (!only_files && strcmp (a, "--") == 0)
      only_files = 1;
    else if (!only_files && (strcmp (a, "--help") == 0
                             || strcmp (a, "-h") == 0)) {
      usage (stdout);
      free (paths);
      return 0;
    }
    else if (!only_files && (strcmp (a, "--verbose") == 0
                             || strcmp (a, "-v") == 0))
      c.verbose = 1;
    else if (!only_files && strcmp (a, "--store") == 0) {
      if (++i >= (size_t) argc) {
        fprintf (stderr, "herald bounces import: --store needs a path\n");
        free (paths);
        return EXIT_USAGE;
      }
      opt_store = argv[i];
    }
    else if (!only_files && strncmp (a, "--store=", 8) == 0)
      opt_store = a + 8;
    else if (!only_files && a[0] == '-' && a[1]) {
      fprintf (stderr, "herald bounces import: unknown option '%s'\n", a);
      usage (stderr);
      free (paths);
      return EXIT_USAGE;
    }
    else
      paths[n_paths++] = a;
  }
  if (n_paths == 0) {
    fprintf (stderr, "herald bounces import: which mailbox (a Maildir "
             "folder, an mbox file or message files)?\n");
    usage (stderr);
    free (paths);
    return EXIT_USAGE;
  }

  /* The gateway: the email channels' verp_secret and From domain, and
   * [bounces]. */
  if (!(gw = config_gateway_load (main_config_path, err, sizeof err))) {
    fprintf (stderr, "herald: %s\n", err);
    goto out;
  }
  c.gateway_path = gw->ini->path;
  c.soft_limit = gw->bounces_soft_limit;
  c.soft_window = gw->bounces_soft_window;
  c.ch = xcalloc (gw->n_channels + 1, sizeof *c.ch);
  for (i = 0; i < gw->n_channels; i++) {
    const struct channel_conf *cc = &gw->channels[i];
    const char *from = ini_get (cc->sec, "from");
    const char *secret = ini_get (cc->sec, "verp_secret");
    struct bchan *b = &c.ch[c.n_ch];
    if (strcmp (cc->kind, "email") != 0)
      continue;
    b->name = cc->name;
    b->from_domain = from ? from_domain (from) : NULL;
    if (secret && *secret) {
      if (verp_key_init (&b->key, secret) < 0) {
        fprintf (stderr, "herald: [channel.%s] verp_secret: OpenSSL could "
                 "not derive the key\n", cc->name);
        free (b->from_domain);
        goto out;
      }
      b->keyed = 1;
    }
    c.n_ch++;
  }
  /* The same store as the other commands: --store, else [store] (a file
   * whose folder is created, or a PostgreSQL URL). */
  if (!(store_path = import_store_path (opt_store)))
    goto out;
  if (!(c.st = store_open (store_path, err, sizeof err))) {
    fprintf (stderr, "herald: %s\n", err);
    goto out;
  }

  bounce_global_init ();
  gmime = 1;
  for (i = 0; i < n_paths && !c.store_failed; i++)
    bounce_read (paths[i], &c.files, each_item, &c);
  if (c.store_failed || tx_flush (&c) < 0) {
    if (c.in_tx)
      store_rollback (c.st);
    fprintf (stderr, "herald: %s\nherald: the bounces of the last batch "
             "(up to %d) were not recorded: import again, nothing is "
             "recorded twice\n", store_error (c.st), BOUNCES_BATCH);
    c.store_failed = 1;
  }

  printf ("read %ld file%s (%ld message%s): %ld hard, %ld soft, %ld "
          "complaint%s, %ld unmatched, %ld unparseable, %ld %s, "
          "%ld already recorded", c.files, c.files == 1 ? "" : "s",
          c.messages, c.messages == 1 ? "" : "s", c.hard, c.soft,
          c.complaints, c.complaints == 1 ? "" : "s", c.unmatched,
          c.unparseable, c.ignored,
          c.ignored == 1 ? "not a bounce" : "not bounces", c.already);
  if (c.soft_suppressed) {
    format_window (c.soft_window, w, sizeof w);
    printf ("; %ld address%s suppressed after %d soft bounces within %s",
            c.soft_suppressed, c.soft_suppressed == 1 ? "" : "es",
            c.soft_limit, w);
  }
  if (c.unreadable)
    printf ("; %ld could not be read", c.unreadable);
  printf ("\n");
  ret = c.store_failed || c.unreadable ? 1 : 0;
out:
  if (gmime)
    bounce_global_shutdown ();
  store_close (c.st);
  for (i = 0; i < c.n_ch; i++) {
    free (c.ch[i].from_domain);
    if (c.ch[i].keyed)
      verp_key_free (&c.ch[i].key);
  }
  free (c.ch);
  free (store_path);
  free (paths);
  config_gateway_free (gw);
  return ret;
}
