/* plugin-run: drives one channel plugin without the rest of the core, for
 * tests: loads it through the real loader, opens an instance with the
 * keys given on the command line, sends JSON-lines messages in batches and
 * prints one JSON line per result (or calls its inbound entry). */
#include <config.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

static const char *status_names[] = { "sent", "retry", "rejected",
                                      "invalid_address", "channel_error" };

static void
usage (void)
{
  fprintf (stderr,
           "Usage: plugin-run PLUGIN.so [-k KEY=VALUE]... [-n NAME] [-K KIND]\n"
           "                  [-b BATCH] [-t TRACKING_BASE_URL] < messages.jsonl\n"
           "       plugin-run PLUGIN.so [-k ...] --inbound METHOD URL BODY_FILE\n"
           "                  [-H 'Name: value']...\n");
  exit (2);
}

static const char *
jstr (json_t *o, const char *k)
{
  json_t *v = json_object_get (o, k);
  return json_is_string (v) ? json_string_value (v) : NULL;
}

struct msgbuf {
  struct herald_message m;
  struct herald_address *to;
  struct herald_part *parts;
  unsigned char *invalid;
  json_t *j;
};

static int
msg_from_json (json_t *j, struct msgbuf *mb, const char *kind)
{
  json_t *to = json_object_get (j, "to"), *parts = json_object_get (j, "parts"), *v;
  const char *k;
  size_t i, n;

  memset (mb, 0, sizeof *mb);
  mb->j = j;
  mb->m.key = jstr (j, "key") ? jstr (j, "key") : "test:1:c1";
  mb->m.campaign = jstr (j, "campaign") ? jstr (j, "campaign") : "test";
  mb->m.customer = jstr (j, "customer") ? jstr (j, "customer") : "c1";
  mb->m.channel = jstr (j, "channel") ? jstr (j, "channel") : kind;
  mb->m.variant = jstr (j, "variant") ? jstr (j, "variant") : "";
  mb->m.to_name = jstr (j, "to_name");
  mb->m.unsubscribe_url = jstr (j, "unsubscribe_url");
  mb->m.unsubscribe_mailto = jstr (j, "unsubscribe_mailto");
  v = json_object_get (j, "created");
  mb->m.created = json_is_integer (v) ? json_integer_value (v) : 1767225600;
  v = json_object_get (j, "attempt");
  mb->m.attempt = json_is_integer (v) ? (unsigned) json_integer_value (v) : 1;
  if (json_is_string (to)) {
    mb->to = xcalloc (1, sizeof *mb->to);
    mb->to[0].type = mb->m.channel;
    mb->to[0].value = json_string_value (to);
    n = 1;
  }
  else if (json_is_array (to)) {
    n = json_array_size (to);
    mb->to = xcalloc (n ? n : 1, sizeof *mb->to);
    json_array_foreach (to, i, v) {
      mb->to[i].type = jstr (v, "type") ? jstr (v, "type") : mb->m.channel;
      mb->to[i].value = jstr (v, "value") ? jstr (v, "value") : "";
    }
  }
  else
    return -1;
  mb->m.to = mb->to;
  mb->m.n_to = n;
  mb->invalid = xcalloc (n ? n : 1, 1);
  n = json_object_size (parts);
  mb->parts = xcalloc (n ? n : 1, sizeof *mb->parts);
  i = 0;
  json_object_foreach (parts, k, v) {
    mb->parts[i].name = k;
    mb->parts[i].data = json_string_value (v) ? json_string_value (v) : "";
    mb->parts[i].len = json_string_length (v);
    i++;
  }
  mb->m.parts = mb->parts;
  mb->m.n_parts = i;
  return 0;
}

static void
flush_batch (struct channel *ch, struct msgbuf *mbs, size_t n)
{
  struct herald_message *msgs = xcalloc (n, sizeof *msgs);
  struct herald_result *res = xcalloc (n, sizeof *res);
  size_t i, k;
  int rc;

  for (i = 0; i < n; i++) {
    msgs[i] = mbs[i].m;
    res[i].to_invalid = mbs[i].invalid;
  }
  rc = ch->plugin->p.send (ch->state, msgs, n, res);
  for (i = 0; i < n; i++) {
    json_t *o = json_object (), *inv = json_array ();
    char *line;
    int st = rc < 0 ? HERALD_RETRY : res[i].status;

    json_object_set_new (o, "key", json_string (msgs[i].key));
    json_object_set_new (o, "status", json_string (st >= 0 && st <= 4 ? status_names[st] : "bad-status"));
    json_object_set_new (o, "provider_id", json_string (res[i].provider_id));
    json_object_set_new (o, "error", json_string (res[i].error));
    json_object_set_new (o, "retry_after_ms", json_integer (res[i].retry_after_ms));
    json_object_set_new (o, "detail", json_string (res[i].detail));
    for (k = 0; k < msgs[i].n_to; k++)
      json_array_append_new (inv, json_integer (mbs[i].invalid[k]));
    json_object_set_new (o, "to_invalid", inv);
    line = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf ("%s\n", line);
    free (line);
    json_decref (o);
  }
  fflush (stdout);
  for (i = 0; i < n; i++) {
    free (mbs[i].to);
    free (mbs[i].parts);
    free (mbs[i].invalid);
    json_decref (mbs[i].j);
  }
  free (msgs);
  free (res);
}

static int
sink_event (void *data, const struct herald_event *ev)
{
  json_t *o = json_object (), *e = json_object ();
  char *line;

  json_object_set_new (e, "type", json_string (ev->type ? ev->type : ""));
  json_object_set_new (e, "provider_id", ev->provider_id ? json_string (ev->provider_id) : json_null ());
  json_object_set_new (e, "address", ev->address ? json_string (ev->address) : json_null ());
  json_object_set_new (e, "at", json_integer (ev->at));
  json_object_set_new (e, "detail", ev->detail ? json_string (ev->detail) : json_null ());
  json_object_set_new (o, "event", e);
  line = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
  printf ("%s\n", line);
  free (line);
  json_decref (o);
  return 0;
}

int
main (int argc, char **argv)
{
  struct ini_section sec = { 0 };
  const char *name = "test", *kind = NULL, *tracking = NULL;
  const char *in_method = NULL, *in_url = NULL, *in_body = NULL;
  struct herald_header hdrs[32];
  size_t n_hdrs = 0, batch = 1000, n = 0, i;
  struct plugin *pl;
  struct channel *ch;
  struct msgbuf *mbs;
  char err[2048], line[1 << 16];
  int a, rc = 0, lineno = 0;
  int64_t v;

  signal (SIGPIPE, SIG_IGN);
  if (argc < 2)
    usage ();
  sec.name = xstrdup ("channel.test");
  sec.line = 1;
  for (a = 2; a < argc; a++) {
    if (strcmp (argv[a], "-k") == 0 && a + 1 < argc) {
      char *eq = strchr (argv[++a], '=');
      if (!eq)
        usage ();
      sec.kv = xrealloc (sec.kv, (sec.n + 1) * sizeof *sec.kv);
      sec.kv[sec.n].key = xstrndup (argv[a], (size_t) (eq - argv[a]));
      sec.kv[sec.n].value = xstrdup (eq + 1);
      sec.kv[sec.n].line = (int) sec.n + 2;
      sec.n++;
    }
    else if (strcmp (argv[a], "-n") == 0 && a + 1 < argc)
      name = argv[++a];
    else if (strcmp (argv[a], "-K") == 0 && a + 1 < argc)
      kind = argv[++a];
    else if (strcmp (argv[a], "-t") == 0 && a + 1 < argc)
      tracking = argv[++a];
    else if (strcmp (argv[a], "-b") == 0 && a + 1 < argc) {
      if (parse_int64 (argv[++a], 1, 1000000, &v) < 0)
        usage ();
      batch = (size_t) v;
    }
    else if (strcmp (argv[a], "-H") == 0 && a + 1 < argc && n_hdrs < 32) {
      char *c = strchr (argv[++a], ':');
      if (!c)
        usage ();
      hdrs[n_hdrs].name = xstrndup (argv[a], (size_t) (c - argv[a]));
      for (c++; *c == ' '; c++)
        ;
      hdrs[n_hdrs++].value = c;
    }
    else if (strcmp (argv[a], "--inbound") == 0 && a + 3 < argc) {
      in_method = argv[++a];
      in_url = argv[++a];
      in_body = argv[++a];
    }
    else
      usage ();
  }
  pl = loader_load (argv[1], err, sizeof err);
  if (!pl) {
    fprintf (stderr, "plugin-run: %s\n", err);
    return 1;
  }
  if (!kind)
    kind = pl->p.channels && pl->p.channels[0] ? pl->p.channels[0] : "email";
  ch = channel_open (pl, name, kind, &sec, "test.ini", tracking, err, sizeof err);
  if (!ch) {
    fprintf (stderr, "plugin-run: %s\n", err);
    return 1;
  }

  if (in_method) {
    struct herald_request req = { 0 };
    struct herald_response resp = { 0 };
    struct herald_sink sink = { NULL, sink_event };
    FILE *fp = fopen (in_body, "rb");
    struct strbuf body = STRBUF_INIT;
    const char *path;
    json_t *o, *r;
    char *s;
    size_t got;

    if (!fp) {
      fprintf (stderr, "plugin-run: %s: %s\n", in_body, strerror (errno));
      return 1;
    }
    while ((got = fread (line, 1, sizeof line, fp)) > 0)
      strbuf_add (&body, line, got);
    fclose (fp);
    if (!ch->plugin->p.inbound) {
      fprintf (stderr, "plugin-run: plugin has no inbound entry\n");
      return 1;
    }
    path = strstr (in_url, "/inbound/");
    if (path) {
      path = strchr (path + 9, '/');
    }
    req.method = in_method;
    req.url = in_url;
    req.path = path ? path : "/";
    req.headers = hdrs;
    req.n_headers = n_hdrs;
    req.body = body.s ? body.s : "";
    req.body_len = body.len;
    resp.status = 200;
    rc = ch->plugin->p.inbound (ch->state, &req, &sink, &resp);
    o = json_object ();
    r = json_object ();
    json_object_set_new (r, "rc", json_integer (rc));
    json_object_set_new (r, "status", json_integer (resp.status));
    json_object_set_new (r, "content_type", json_string (resp.content_type));
    json_object_set_new (r, "body", json_stringn (resp.body, resp.body_len < sizeof resp.body ? resp.body_len : sizeof resp.body));
    json_object_set_new (o, "response", r);
    s = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf ("%s\n", s);
    free (s);
    json_decref (o);
    strbuf_free (&body);
    goto done;
  }

  mbs = xcalloc (batch, sizeof *mbs);
  while (fgets (line, sizeof line, stdin)) {
    json_error_t jerr;
    json_t *j;

    lineno++;
    if (line[0] == '\n')
      continue;
    j = json_loads (line, 0, &jerr);
    if (!j || msg_from_json (j, &mbs[n], kind) < 0) {
      fprintf (stderr, "plugin-run: stdin:%d: bad message: %s\n", lineno,
               j ? "'to' missing" : jerr.text);
      rc = 1;
      json_decref (j);
      break;
    }
    if (++n == batch) {
      flush_batch (ch, mbs, n);
      n = 0;
    }
  }
  if (n)
    flush_batch (ch, mbs, n);
  free (mbs);
done:
  channel_close (ch);
  loader_unload (pl);
  for (i = 0; i < n_hdrs; i++)
    free ((char *) hdrs[i].name);
  for (i = 0; i < sec.n; i++) {
    free (sec.kv[i].key);
    free (sec.kv[i].value);
  }
  free (sec.kv);
  free (sec.name);
  return rc;
}
