/* fuzz_campaign: libFuzzer target for the campaign INI (core/campaign.c):
 * inih's parse, the [campaign] keys, the routing policy's sections
 * (router.c: caps, quiet hours, variants, holdout), [trigger] and
 * [step.N], the segment condition, and the templates it names, against a
 * fixed gateway.  The input is the file's bytes, written to
 * $FUZZ_TMP/c.ini next to a folder of templates (tpl/, with _partials,
 * and tpl-b/ for a variant) and the gateway gw.ini, made once.  Besides
 * the sanitizers' findings (leaks included), it checks:
 *  - campaign_load returns a campaign and no problem, or NULL and at
 *    least one problem;
 *  - each problem is one line of UTF-8 text without control characters,
 *    that starts with a file name and a colon;
 *  - a campaign it returns has an id, at least one channel (each of the
 *    gateway's, once per kind) and the templates every channel needs.
 * Built and run by tests/fuzz/fuzz.sh. */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/campaign.h"
#include "../../core/config.h"
#include "../../core/util.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
                       abort (); } while (0)

static char fz_dir[4096], fz_path[4200];
static struct gateway *fz_gw;

static void
fz_put (const char *name, const char *text)
{
  char path[8192];
  FILE *fp;

  snprintf (path, sizeof path, "%s/%s", fz_dir, name);
  if (!(fp = fopen (path, "w")) || fputs (text, fp) < 0 || fclose (fp) != 0)
    FAIL ("cannot write %s", path);
}

static void
fz_mkdir (const char *name)
{
  char path[8192];

  snprintf (path, sizeof path, "%s/%s", fz_dir, name);
  if (mkdir (path, 0700) < 0 && access (path, F_OK) != 0)
    FAIL ("cannot make %s", path);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *tmp = getenv ("FUZZ_TMP");
  char err[1024], path[8192];

  (void) argc;
  (void) argv;
  snprintf (fz_dir, sizeof fz_dir, "%s", tmp ? tmp : "/tmp");
  snprintf (fz_path, sizeof fz_path, "%s/c.ini", fz_dir);
  fz_put ("gw.ini",
          "[store]\npath = h.db\n"
          "[tracking]\nbase_url = https://t.example.com\n"
          "secret = fuzz-secret-0123456789\n"
          "[channel.email]\nplugin = outbox\nfrom = H <h@example.com>\n"
          "[channel.mail2]\nplugin = outbox\nkind = email\n"
          "[channel.sms]\nplugin = outbox\n"
          "[channel.push]\nplugin = outbox\n"
          "[channel.webhook]\nplugin = outbox\n");
  fz_mkdir ("tpl");
  fz_mkdir ("tpl/_partials");
  fz_mkdir ("tpl-b");
  fz_mkdir ("_partials");
  fz_put ("tpl/email.subject.liquid", "Hello {{ customer.name | default: 'you' }}\n");
  fz_put ("tpl/email.html.liquid",
          "<p>{% render 'footer' %} <a href=\"{{ unsubscribe_url }}\">x</a></p>\n");
  fz_put ("tpl/email.text.liquid", "Hi {{ customer.id }}\n");
  fz_put ("tpl/sms.body.liquid", "Hi {% include 'shared' %}\n");
  fz_put ("tpl/push.title.liquid", "T\n");
  fz_put ("tpl/push.body.liquid", "B {{ campaign.id }}\n");
  fz_put ("tpl/push.data.liquid", "{\"a\": {{ customer.id | json }}}\n");
  fz_put ("tpl/webhook.body.liquid", "{\"id\": {{ customer.id | json }}}\n");
  fz_put ("tpl/_partials/footer.liquid", "-- {{ 'x' | upcase }}\n");
  fz_put ("_partials/shared.liquid", "shared\n");
  fz_put ("tpl-b/email.subject.liquid", "B: {{ customer.name }}\n");
  snprintf (path, sizeof path, "%s/gw.ini", fz_dir);
  if (!(fz_gw = config_gateway_load (path, err, sizeof err)))
    FAIL ("the harness's gateway: %s", err);
  return 0;
}

static void
fz_check_problems (const char *s, size_t n)
{
  size_t i, start = 0;

  if (utf8_check (s, n) != n)
    FAIL ("problems are not UTF-8:\n%s", s);
  for (i = 0; i < n; i++) {
    if (s[i] == '\n') {
      const char *line = s + start, *colon = memchr (line, ':', i - start);
      if (i == start || !colon || colon == line)
        FAIL ("problem line without a file name: '%.*s'", (int) (i - start),
              line);
      start = i + 1;
    }
    else if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
      FAIL ("control character 0x%02x in the problems:\n%s", s[i], s);
  }
  if (start != n)
    FAIL ("the last problem does not end in a line break");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct strbuf pb = STRBUF_INIT;
  struct campaign *c;
  FILE *fp;
  size_t i, j;

  if (!(fp = fopen (fz_path, "w")) || fwrite (data, 1, size, fp) != size
      || fclose (fp) != 0)
    FAIL ("cannot write %s", fz_path);
  c = campaign_load (fz_path, fz_gw, &pb);
  if (!c) {
    if (!pb.len)
      FAIL ("refused without a problem");
    fz_check_problems (pb.s, pb.len);
  }
  else {
    if (pb.len)
      FAIL ("loaded, with problems:\n%s", pb.s);
    if (!c->id || !*c->id || !c->n_channels || !c->policy)
      FAIL ("loaded without an id or a channel");
    for (i = 0; i < c->n_channels; i++) {
      if (!campaign_has_parts (c, NULL, c->channels[i].kind))
        FAIL ("channel %s without its templates", c->channels[i].conf->name);
      for (j = 0; j < i; j++)
        if (!strcmp (c->channels[i].kind, c->channels[j].kind))
          FAIL ("two channels of kind %s", c->channels[i].kind);
    }
  }
  campaign_free (c);
  strbuf_free (&pb);
  return 0;
}
