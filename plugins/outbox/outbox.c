/* outbox: the embedded default channel plugin, for demos and dry runs.
 * Writes every message it is handed into a directory instead of sending
 * it: e-mail as a Maildir message (the same bytes the email plugin would
 * send), and one JSON line per message of any channel in messages.jsonl.
 * It reports "sent" only after the bytes are on disk (fsync), so the core's
 * bookkeeping never claims more than the files hold. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <herald/plugin.h>
#include "../../lib/address.h"
#include "../common/mime.h"

#define OUTBOX_VERSION "1.0"

struct outbox {
  char *dir;
  char *from;
  int fsync;
  int jsonl_fd;
};

static const char *const outbox_keys[] = { "dir", "from", "fsync", NULL };
static const char *const outbox_secret_keys[] = { NULL };

/* The messages hold customers' names, addresses and texts: what this
 * plugin creates is its owner's alone, folders 0700 and files 0600,
 * whatever the umask (chmod after creating).  What exists keeps its mode. */
static int
outbox_mkdir (const char *path, char *err, size_t errlen)
{
  if (mkdir (path, 0700) == 0) {
    if (chmod (path, 0700) == 0)
      return 0;
  }
  else if (errno == EEXIST)
    return 0;
  snprintf (err, errlen, "%s: cannot create directory: %s", path,
            strerror (errno));
  return -1;
}

/* mkdir -p for the configured directory (it is usually under var/). */
static int
outbox_mkdirs (const char *dir, char *err, size_t errlen)
{
  char *p = strdup (dir), *s;
  int rc = 0;

  if (!p) {
    snprintf (err, errlen, "out of memory");
    return -1;
  }
  for (s = p + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      if (outbox_mkdir (p, err, errlen) < 0) {
        rc = -1;
        goto out;
      }
      *s = '/';
    }
  rc = outbox_mkdir (p, err, errlen);
out:
  free (p);
  return rc;
}

static char *
outbox_join (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  char *p = malloc (la + lb + 2);

  if (!p)
    return NULL;
  memcpy (p, a, la);
  p[la] = '/';
  memcpy (p + la + 1, b, lb + 1);
  return p;
}

static void outbox_close (void *state);

static int
outbox_open (const struct herald_host *host, void **state_r, char *err,
             size_t errlen)
{
  struct outbox *ob = calloc (1, sizeof *ob);
  const char *dir = host->config_get (host->data, "dir");
  const char *from = host->config_get (host->data, "from");
  const char *fs = host->config_get (host->data, "fsync");
  struct mime_mailbox mb;
  char merr[256];
  char *path = NULL;
  const char *subdirs[] = { "tmp", "new", "cur" };
  int i;

  if (!ob) {
    snprintf (err, errlen, "out of memory");
    return -1;
  }
  ob->jsonl_fd = -1;
  ob->fsync = 1;
  if (!dir || !*dir) {
    snprintf (err, errlen, "%s: [channel.%s]: missing key 'dir'",
              host->config_file, host->channel_name);
    goto fail;
  }
  if (!from || !*from)
    from = "Herald <herald@localhost>";
  if (mime_parse_mailbox (from, &mb, merr, sizeof merr) != MIME_OK) {
    snprintf (err, errlen, "%s:%d: [channel.%s] from: %s", host->config_file,
              host->config_line (host->data, "from"), host->channel_name,
              merr);
    goto fail;
  }
  if (fs && *fs) {
    if (strcmp (fs, "yes") == 0)
      ob->fsync = 1;
    else if (strcmp (fs, "no") == 0)
      ob->fsync = 0;
    else {
      snprintf (err, errlen, "%s:%d: [channel.%s] fsync: '%s' is not yes or "
                "no", host->config_file, host->config_line (host->data, "fsync"),
                host->channel_name, fs);
      goto fail;
    }
  }
  /* Paths are relative to the gateway INI, like every path in it. */
  if (dir[0] != '/' && host->config_file && strrchr (host->config_file, '/')) {
    const char *slash = strrchr (host->config_file, '/');
    size_t dl = (size_t) (slash - host->config_file), fl = strlen (dir);
    ob->dir = malloc (dl + fl + 2);
    if (ob->dir) {
      memcpy (ob->dir, host->config_file, dl);
      ob->dir[dl] = '/';
      memcpy (ob->dir + dl + 1, dir, fl + 1);
    }
  }
  else
    ob->dir = strdup (dir);
  ob->from = strdup (from);
  if (!ob->dir || !ob->from) {
    snprintf (err, errlen, "out of memory");
    goto fail;
  }
  if (outbox_mkdirs (ob->dir, err, errlen) < 0)
    goto fail;
  for (i = 0; i < 3; i++) {
    path = outbox_join (ob->dir, subdirs[i]);
    if (!path || outbox_mkdir (path, err, errlen) < 0)
      goto fail;
    free (path);
  }
  path = outbox_join (ob->dir, "messages.jsonl");
  if (!path)
    goto fail;
  ob->jsonl_fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
                       0600);
  if (ob->jsonl_fd >= 0 && fchmod (ob->jsonl_fd, 0600) < 0) {
    close (ob->jsonl_fd);
    ob->jsonl_fd = -1;
  }
  else if (ob->jsonl_fd < 0 && errno == EEXIST)
    ob->jsonl_fd = open (path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (ob->jsonl_fd < 0) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto fail;
  }
  free (path);
  *state_r = ob;
  return 0;

fail:
  free (path);
  outbox_close (ob);
  return -1;
}

static void
outbox_close (void *state)
{
  struct outbox *ob = state;

  if (!ob)
    return;
  if (ob->jsonl_fd >= 0)
    close (ob->jsonl_fd);
  free (ob->dir);
  free (ob->from);
  free (ob);
}

static int
outbox_write_all (int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write (fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t) w;
  }
  return 0;
}

/* The Maildir file name of a message: stable for its key, so a resend
 * after a crash replaces the file instead of adding a second copy.  The
 * name avoids ':' (Maildir's info separator) and '/'. */
static void
outbox_maildir_name (const struct herald_message *m, char *buf, size_t len)
{
  unsigned long long h = 1469598103934665603ULL;
  const unsigned char *p;

  for (p = (const unsigned char *) m->key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  snprintf (buf, len, "%lld.H%016llx.herald", (long long) m->created, h);
}

/* Write the e-mail as dir/tmp/NAME, fsync, rename to dir/new/NAME (the
 * Maildir delivery protocol: readers never see a partial file). */
static int
outbox_maildir (struct outbox *ob, const struct herald_message *m,
                char *err, size_t errlen)
{
  struct mime_buf b;
  char name[128], *tmp = NULL, *new = NULL, *sub;
  int fd = -1, rc = -1;

  mime_buf_init (&b);
  /* errno 0 tells the caller the MIME builder refused the message (no
   * system call failed): a stale value from an earlier call must not. */
  errno = 0;
  if (mime_build (m, ob->from, &b, err, errlen) != MIME_OK) {
    errno = 0;
    goto out;
  }
  outbox_maildir_name (m, name, sizeof name);
  sub = outbox_join ("tmp", name);
  tmp = sub ? outbox_join (ob->dir, sub) : NULL;
  free (sub);
  sub = outbox_join ("new", name);
  new = sub ? outbox_join (ob->dir, sub) : NULL;
  free (sub);
  if (!tmp || !new) {
    snprintf (err, errlen, "out of memory");
    goto out;
  }
  /* fchmod: a tmp file left by a crash keeps its mode through O_TRUNC. */
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || fchmod (fd, 0600) < 0
      || outbox_write_all (fd, b.data, b.len) < 0
      || (ob->fsync && fsync (fd) < 0)) {
    snprintf (err, errlen, "%s: %s", tmp, strerror (errno));
    goto out;
  }
  if (close (fd) < 0) {
    fd = -1;
    snprintf (err, errlen, "%s: %s", tmp, strerror (errno));
    goto out;
  }
  fd = -1;
  if (rename (tmp, new) < 0) {
    snprintf (err, errlen, "%s: %s", new, strerror (errno));
    goto out;
  }
  rc = 0;
out:
  if (fd >= 0)
    close (fd);
  free (tmp);
  free (new);
  mime_buf_free (&b);
  return rc;
}

static json_t *
outbox_json (const struct herald_message *m)
{
  json_t *o = json_object (), *parts = json_object ();
  size_t i;

  json_object_set_new (o, "id", json_string (m->key));
  json_object_set_new (o, "campaign", json_string (m->campaign));
  json_object_set_new (o, "customer", json_string (m->customer));
  json_object_set_new (o, "channel", json_string (m->channel));
  if (m->n_to == 1)
    json_object_set_new (o, "to", json_string (m->to[0]->value));
  else {
    json_t *a = json_array ();
    for (i = 0; i < m->n_to; i++)
      json_array_append_new (a, json_string (m->to[i]->value));
    json_object_set_new (o, "to", a);
  }
  json_object_set_new (o, "variant", json_string (m->variant ? m->variant : ""));
  for (i = 0; i < m->n_parts; i++)
    json_object_set_new (parts, m->parts[i]->name,
                         json_stringn (m->parts[i]->data, m->parts[i]->len));
  json_object_set_new (o, "parts", parts);
  json_object_set_new (o, "created", json_integer (m->created));
  json_object_set_new (o, "attempt", json_integer (m->attempt));
  return o;
}

static void
outbox_fail (struct herald_result *r, int status, const char *msg)
{
  size_t n = strlen (msg);

  r->status = status;
  if (n >= sizeof r->error)
    n = sizeof r->error - 1;
  memcpy (r->error, msg, n);
  r->error[n] = '\0';
}

/* 1 when the first address of M is not one its kind's plugin would take
 * (an e-mail address, an E.164 number, a webhook URL; push tokens are the
 * push service's to judge), with the message in ERR. */
static int
outbox_address_bad (const struct herald_message *m, char *err, size_t errlen)
{
  const char *a = m->to[0]->value, *what;
  char why[128];
  int ok;

  if (strcmp (m->channel, "email") == 0)
    ok = address_email_ok (a, why, sizeof why), what = "an e-mail address";
  else if (strcmp (m->channel, "sms") == 0)
    ok = address_e164_ok (a, why, sizeof why), what = "an E.164 number";
  else if (strcmp (m->channel, "webhook") == 0)
    ok = address_url_ok (a, why, sizeof why), what = "an http:// or https:// URL";
  else
    return 0;
  if (!ok)
    snprintf (err, errlen, "'%.200s' is not %s: %s", a, what, why);
  return !ok;
}

static int
outbox_send (void *state, const struct herald_message *const *msgs,
             size_t n, struct herald_result *const *results)
{
  struct outbox *ob = state;
  char err[512];
  size_t i;
  int *ok = calloc (n ? n : 1, sizeof *ok);
  int dirty = 0;

  if (!ok)
    return -1;
  for (i = 0; i < n; i++) {
    const struct herald_message *m = msgs[i];
    json_t *o;
    char *line;
    int bad;

    if (m->n_to == 0 || !m->to[0]->value || !*m->to[0]->value) {
      outbox_fail (results[i], HERALD_INVALID_ADDRESS, "no address");
      continue;
    }
    /* It stands in for the channel's plugin: it refuses what that
     * plugin refuses, with the same check (address.h). */
    if (outbox_address_bad (m, err, sizeof err)) {
      outbox_fail (results[i], HERALD_INVALID_ADDRESS, err);
      if (results[i]->to_invalid)
        results[i]->to_invalid[0] = 1;
      continue;
    }
    if (strcmp (m->channel, "email") == 0) {
      if (outbox_maildir (ob, m, err, sizeof err) < 0) {
        /* A message the MIME builder refuses will never build: permanent.
         * An I/O error may pass: retry. */
        outbox_fail (results[i],
                     errno == 0 ? HERALD_REJECTED : HERALD_RETRY, err);
        continue;
      }
    }
    o = outbox_json (m);
    line = json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref (o);
    bad = !line;
    if (line) {
      size_t len = strlen (line);
      line[len] = '\n';   /* json_dumps' NUL: the buffer holds len+1 */
      bad = outbox_write_all (ob->jsonl_fd, line, len + 1) < 0;
      free (line);
    }
    if (bad) {
      snprintf (err, sizeof err, "%s/messages.jsonl: %s", ob->dir,
                strerror (errno));
      outbox_fail (results[i], HERALD_RETRY, err);
      continue;
    }
    dirty = 1;
    ok[i] = 1;
  }
  /* Durable before we say sent: one fsync for the whole batch. */
  if (dirty && ob->fsync && fdatasync (ob->jsonl_fd) < 0) {
    snprintf (err, sizeof err, "%s/messages.jsonl: fsync: %s", ob->dir,
              strerror (errno));
    for (i = 0; i < n; i++)
      if (ok[i]) {
        outbox_fail (results[i], HERALD_RETRY, err);
        ok[i] = 0;
      }
  }
  for (i = 0; i < n; i++)
    if (ok[i]) {
      results[i]->status = HERALD_SENT;
      snprintf (results[i]->provider_id, sizeof results[i]->provider_id,
                "outbox:%s", msgs[i]->key);
    }
  free (ok);
  return 0;
}

static const struct herald_plugin outbox_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "outbox",
  .version = OUTBOX_VERSION,
  .description = "writes messages to a directory (Maildir + messages.jsonl)",
  .channels = NULL,
  .config_keys = outbox_keys,
  .secret_keys = outbox_secret_keys,
  .open = outbox_open,
  .close = outbox_close,
  .send = outbox_send,
};

HERALD_REGISTER_PLUGIN (outbox_plugin)
