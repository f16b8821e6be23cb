/* loader: the only place that runs dlopen.  Loading a shared object runs
 * its code, so, like Postfix's load_lib, it first refuses files that others
 * could have written.  It never lets a plugin of another ABI version in. */
#include <config.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi1.h"
#include "loader.h"
#include "main.h"
#include "util.h"

static char build_dir_buf[4096];

/* The build tree's plugin directory, but only when this herald binary is
 * the one in that build tree: an installed herald must not pick up a
 * stale build tree's plugins. */
static const char *
build_tree_dir (void)
{
  char exe[4096], *slash;
  ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  size_t blen;

  if (n <= 0)
    return NULL;
  exe[n] = '\0';
  slash = strrchr (exe, '/');
  if (!slash)
    return NULL;
  *slash = '\0';
  /* HERALD_BUILD_PLUGIN_DIR is "$(abs_top_builddir)/plugins/.libs". */
  strlcpy_ (build_dir_buf, HERALD_BUILD_PLUGIN_DIR, sizeof build_dir_buf);
  blen = strlen (build_dir_buf) - strlen ("/plugins/.libs");
  if (strlen (exe) != blen || strncmp (exe, build_dir_buf, blen) != 0)
    return NULL;
  return build_dir_buf;
}

size_t
loader_dirs (const char *conf_dir, const char *dirs_r[4])
{
  size_t n = 0;
  const char *env = getenv ("HERALD_PLUGIN_DIR");
  const char *build = build_tree_dir ();

  if (conf_dir && *conf_dir)
    dirs_r[n++] = conf_dir;
  if (env && *env)
    dirs_r[n++] = env;
  if (build)
    dirs_r[n++] = build;
  dirs_r[n++] = HERALD_PKGLIBDIR;
  return n;
}

/* The folder of PATH: a directory, not writable by group or others
 * (unless sticky, as /tmp, where only owners may replace a file), owned
 * by this user or root.  0, or -1 with ERR. */
static int
check_dir (const char *path, char *err, size_t errlen)
{
  const char *slash = strrchr (path, '/');
  char *dir = slash ? xstrndup (path, slash == path ? 1 : (size_t) (slash - path))
                    : xstrdup (".");
  struct stat st;
  int rc = -1;

  if (stat (dir, &st) < 0)
    snprintf (err, errlen, "%s: %s", dir, strerror (errno));
  else if (!S_ISDIR (st.st_mode))
    snprintf (err, errlen, "%s: not a folder", dir);
  else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    snprintf (err, errlen, "%s: refused: the plugin folder %s is writable "
              "by %s (mode %04o): anyone there could replace a plugin; "
              "chmod go-w it", path, dir,
              (st.st_mode & S_IWOTH) ? "others" : "its group",
              (unsigned) (st.st_mode & 07777));
  else if (st.st_uid != geteuid () && st.st_uid != 0)
    snprintf (err, errlen, "%s: refused: the plugin folder %s is owned by uid "
              "%u, not by this user (uid %u) or root", path, dir,
              (unsigned) st.st_uid, (unsigned) geteuid ());
  else
    rc = 0;
  free (dir);
  return rc;
}

/* Whether NAME may name a kind: [a-z][a-z0-9_]*, at most 32 bytes (it
 * is a template file's prefix, a consent key and a store column value). */
static int
kind_name_ok (const char *name)
{
  size_t i;

  if (!name || !(*name >= 'a' && *name <= 'z') || strlen (name) > 32)
    return 0;
  for (i = 0; name[i]; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z')
          || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
      return 0;
  return 1;
}

/* Parts of kind NAME: each "NAME.PART" with PART [a-z0-9_]+. */
static int
kind_parts_ok (const char *name, const char *const *parts, const char **bad_r)
{
  size_t i, n = strlen (name);

  for (i = 0; parts && parts[i]; i++)
    if (strncmp (parts[i], name, n) != 0 || parts[i][n] != '.'
        || !kind_name_ok (parts[i] + n + 1)) {
      *bad_r = parts[i];
      return 0;
    }
  return 1;
}

/* Every part of LIST is one of K's required or optional parts; else 0
 * with *BAD_R the first that is not. */
static int
kind_parts_declared (const struct herald_kind *k, const char *const *list,
                     const char **bad_r)
{
  size_t i, j;

  for (i = 0; list && list[i]; i++) {
    int found = 0;
    for (j = 0; k->required_parts[j] && !found; j++)
      found = strcmp (k->required_parts[j], list[i]) == 0;
    for (j = 0; k->optional_parts && k->optional_parts[j] && !found; j++)
      found = strcmp (k->optional_parts[j], list[i]) == 0;
    if (!found) {
      *bad_r = list[i];
      return 0;
    }
  }
  return 1;
}

/* The kinds P declares are well formed: named, not a built-in kind, with
 * an address field and at least one required part, each part of the
 * kind.  0, or -1 with ERR naming PATH. */
static int
check_kinds (const struct herald_plugin *p, const char *path, char *err,
             size_t errlen)
{
  size_t i;
  const char *bad = NULL;

  for (i = 0; p->kinds && p->kinds[i]; i++) {
    const struct herald_kind *k = p->kinds[i];
    if (k->struct_size < offsetof (struct herald_kind, optional_parts)) {
      snprintf (err, errlen, "%s: refused: kind %zu: struct herald_kind too "
                "small (%u bytes; set HERALD_KIND_INIT)", path, i,
                (unsigned) k->struct_size);
      return -1;
    }
    if (!kind_name_ok (k->name)) {
      snprintf (err, errlen, "%s: refused: kind '%s' is not a kind name "
                "([a-z][a-z0-9_]*, at most 32)", path,
                k->name ? k->name : "(null)");
      return -1;
    }
    if (config_kind_builtin (k->name)) {
      snprintf (err, errlen, "%s: refused: kind '%s' is one of Herald's own "
                "(declare only new kinds)", path, k->name);
      return -1;
    }
    if (!k->address_field || !*k->address_field) {
      snprintf (err, errlen, "%s: refused: kind '%s' has no address_field",
                path, k->name);
      return -1;
    }
    if (!k->required_parts || !k->required_parts[0]) {
      snprintf (err, errlen, "%s: refused: kind '%s' has no required part",
                path, k->name);
      return -1;
    }
    if (!kind_parts_ok (k->name, k->required_parts, &bad)
        || (k->struct_size >= offsetof (struct herald_kind, optional_parts)
                              + sizeof k->optional_parts
            && !kind_parts_ok (k->name, k->optional_parts, &bad))) {
      snprintf (err, errlen, "%s: refused: kind '%s': part '%s' is not "
                "'%s.NAME'", path, k->name, bad, k->name);
      return -1;
    }
    if ((HERALD_HAS (k, json_parts)
         && !kind_parts_declared (k, k->json_parts, &bad))
        || (HERALD_HAS (k, html_parts)
            && !kind_parts_declared (k, k->html_parts, &bad))) {
      snprintf (err, errlen, "%s: refused: kind '%s': JSON or HTML part '%s' "
                "is none of its required or optional parts", path, k->name,
                bad);
      return -1;
    }
  }
  return 0;
}

struct plugin *
loader_load (const char *path, char *err, size_t errlen)
{
  struct plugin *pl = NULL;
  struct stat st;
  void *dl = NULL;
  herald_plugin_entry_fn entry;
  const struct herald_plugin *p;
  char fdpath[64];
  size_t copy;
  int fd = -1;

  /* The folder first: whoever may write in it may swap the file between
   * any check and the load. */
  if (check_dir (path, err, errlen) < 0)
    goto fail;
  /* Opened once, without following a symbolic link; the checks are made
   * on that descriptor and the loader loads that very file through
   * /proc/self/fd, so nothing can be swapped in between (the name is not
   * looked up again). */
  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP)
      snprintf (err, errlen, "%s: refused: a symbolic link (install the "
                "plugin file itself)", path);
    else
      snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto fail;
  }
  if (fstat (fd, &st) < 0) {
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
    goto fail;
  }
  if (!S_ISREG (st.st_mode)) {
    snprintf (err, errlen, "%s: refused: not a regular file", path);
    goto fail;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf (err, errlen, "%s: refused: writable by %s (mode %04o); "
              "chmod go-w it", path,
              (st.st_mode & S_IWOTH) ? "others" : "its group",
              (unsigned) (st.st_mode & 07777));
    goto fail;
  }
  if (st.st_uid != geteuid () && st.st_uid != 0) {
    snprintf (err, errlen, "%s: refused: owned by uid %u, not by this user "
              "(uid %u) or root", path, (unsigned) st.st_uid,
              (unsigned) geteuid ());
    goto fail;
  }
  snprintf (fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
  dl = dlopen (fdpath, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char *why = dlerror ();
    /* dlerror names /proc/self/fd/N: name the file instead. */
    const char *colon = why ? strstr (why, ": ") : NULL;
    snprintf (err, errlen, "%s: refused: dlopen failed: %s", path,
              colon ? colon + 2 : why ? why : "unknown error");
    goto fail;
  }
  /* The descriptor stays open as long as the process: glibc knows a
   * loaded object by its name, so a later plugin must never get the same
   * /proc/self/fd/N (it would be handed this one). */
  fd = -1;
  *(void **) (&entry) = dlsym (dl, HERALD_PLUGIN_ENTRY_NAME);
  if (!entry) {
    snprintf (err, errlen, "%s: refused: no entry point %s() (not a Herald "
              "plugin?)", path, HERALD_PLUGIN_ENTRY_NAME);
    goto fail;
  }
  p = entry ();
  if (!p) {
    snprintf (err, errlen, "%s: refused: %s() returned NULL", path,
              HERALD_PLUGIN_ENTRY_NAME);
    goto fail;
  }
  if (p->abi_version < HERALD_PLUGIN_ABI_MIN_VERSION
      || p->abi_version > HERALD_PLUGIN_ABI_VERSION) {
    snprintf (err, errlen, "%s: refused: plugin ABI version %u, this herald "
              "speaks versions %u to %u; rebuild the plugin against this "
              "herald/plugin.h", path, (unsigned) p->abi_version,
              (unsigned) HERALD_PLUGIN_ABI_MIN_VERSION,
              (unsigned) HERALD_PLUGIN_ABI_VERSION);
    goto fail;
  }
  if (p->struct_size < offsetof (struct herald_plugin, send)
                       + sizeof p->send) {
    snprintf (err, errlen, "%s: refused: plugin struct too small (%u bytes)",
              path, (unsigned) p->struct_size);
    goto fail;
  }
  pl = xcalloc (1, sizeof *pl);
  /* Members are only ever appended: copy what both sides know, leave the
   * rest zero. */
  copy = p->struct_size < sizeof pl->p ? p->struct_size : sizeof pl->p;
  /* A version 1 struct ends at inbound, whatever size it claims: what
   * follows is not ours to read as kinds or config_check. */
  if (p->abi_version < 2 && copy > offsetof (struct herald_plugin, kinds))
    copy = offsetof (struct herald_plugin, kinds);
  memcpy (&pl->p, p, copy);
  if (!pl->p.name || !*pl->p.name) {
    snprintf (err, errlen, "%s: refused: plugin has no name", path);
    goto fail;
  }
  if (!pl->p.send) {
    snprintf (err, errlen, "%s: refused: plugin %s has no send function",
              path, pl->p.name);
    goto fail;
  }
  if (check_kinds (&pl->p, path, err, errlen) < 0)
    goto fail;
  if (pl->p.thread_model != HERALD_THREAD_PARALLEL
      && pl->p.thread_model != HERALD_THREAD_SERIALIZE) {
    snprintf (err, errlen, "%s: refused: plugin %s declares thread model %d, "
              "which is neither HERALD_THREAD_PARALLEL (0) nor "
              "HERALD_THREAD_SERIALIZE (1)", path, pl->p.name,
              pl->p.thread_model);
    goto fail;
  }
  pthread_mutex_init (&pl->lock, NULL);
  pl->path = xstrdup (path);
  pl->dl = dl;
  return pl;

fail:
  free (pl);
  if (dl) {
    dlclose (dl);
    fd = -1;                   /* its name stays taken: see above */
  }
  if (fd >= 0)
    close (fd);
  return NULL;
}

void
loader_unload (struct plugin *pl)
{
  if (!pl)
    return;
  /* Plugins may have registered atexit handlers or thread-locals (libcurl,
   * OpenSSL): never dlclose them; the process exit releases the mapping. */
  pthread_mutex_destroy (&pl->lock);
  free (pl->path);
  free (pl);
}

static struct plugin **loaded;
static size_t n_loaded;

struct plugin *
loader_get (const char *conf_dir, const char *name, char *err, size_t errlen)
{
  const char *dirs[4];
  size_t n, i;
  char *path;
  struct plugin *pl;

  for (i = 0; i < n_loaded; i++)
    if (strcmp (loaded[i]->p.name, name) == 0)
      return loaded[i];
  if (!*name || strchr (name, '/') || name[0] == '.') {
    snprintf (err, errlen, "plugin name '%s' is not a plain name", name);
    return NULL;
  }
  n = loader_dirs (conf_dir, dirs);
  for (i = 0; i < n; i++) {
    path = xasprintf ("%s/%s.so", dirs[i], name);
    if (access (path, F_OK) == 0) {
      pl = loader_load (path, err, errlen);
      free (path);
      if (!pl)
        return NULL;
      if (strcmp (pl->p.name, name) != 0) {
        snprintf (err, errlen, "%s: refused: the file calls itself '%s'",
                  pl->path, pl->p.name);
        loader_unload (pl);
        return NULL;
      }
      loaded = xrealloc (loaded, (n_loaded + 1) * sizeof *loaded);
      loaded[n_loaded++] = pl;
      config_kind_register (pl->p.name, pl->p.kinds);
      return pl;
    }
    free (path);
  }
  snprintf (err, errlen, "plugin '%s' not found (looked for %s.so in", name,
            name);
  for (i = 0; i < n; i++) {
    size_t len = strlen (err);
    snprintf (err + len, errlen - len, "%s %s", i ? "," : "", dirs[i]);
  }
  {
    size_t len = strlen (err);
    snprintf (err + len, errlen - len, ")");
  }
  return NULL;
}

/* Whether a kind PL declares is KIND. */
static int
declares (const struct plugin *pl, const char *kind)
{
  size_t i;

  for (i = 0; pl->p.kinds && pl->p.kinds[i]; i++)
    if (strcmp (pl->p.kinds[i]->name, kind) == 0)
      return 1;
  return 0;
}

int
loader_find_kind (const char *conf_dir, const char *plugin, const char *kind)
{
  const char *dirs[4];
  char err[2048];
  size_t n, i;

  /* The channel's own plugin first: it normally declares its kind. */
  if (plugin && loader_get (conf_dir, plugin, err, sizeof err)
      && config_kind_valid (kind))
    return 1;
  n = loader_dirs (conf_dir, dirs);
  for (i = 0; i < n; i++) {
    DIR *d = opendir (dirs[i]);
    struct dirent *de;

    if (!d)
      continue;
    while ((de = readdir (d))) {
      size_t len = strlen (de->d_name);
      char *name;
      if (len <= 3 || strcmp (de->d_name + len - 3, ".so") != 0
          || de->d_name[0] == '.')
        continue;
      name = xstrndup (de->d_name, len - 3);
      /* A plugin that does not load declares nothing; herald plugins
       * says why. */
      (void) loader_get (conf_dir, name, err, sizeof err);
      free (name);
      if (config_kind_valid (kind)) {
        closedir (d);
        return 1;
      }
    }
    closedir (d);
  }
  return 0;
}

void
loader_unload_all (void)
{
  size_t i;

  for (i = 0; i < n_loaded; i++)
    loader_unload (loaded[i]);
  free (loaded);
  loaded = NULL;
  n_loaded = 0;
}

int loader_progress;

/* The host table's functions: what a plugin may ask of the core. */
static const char *
host_config_get (void *data, const char *key)
{
  struct channel *ch = data;
  return ini_get (ch->sec, key);
}

static const char *
host_config_path (void *data, const char *key)
{
  struct channel *ch = data;
  const char *v = ini_get (ch->sec, key), *slash;
  char *p;

  if (!v || !*v || v[0] == '/' || !ch->ini_path
      || !(slash = strrchr (ch->ini_path, '/')))
    return v;
  p = xasprintf ("%.*s/%s", (int) (slash - ch->ini_path), ch->ini_path, v);
  ch->paths = xrealloc (ch->paths, (ch->n_paths + 1) * sizeof *ch->paths);
  ch->paths[ch->n_paths++] = p;
  return p;
}

static void
channel_paths_free (struct channel *ch)
{
  size_t i;

  for (i = 0; i < ch->n_paths; i++)
    free (ch->paths[i]);
  free (ch->paths);
  ch->paths = NULL;
  ch->n_paths = 0;
}

static int
host_config_line (void *data, const char *key)
{
  struct channel *ch = data;
  return ini_line (ch->sec, key);
}

#define HOST_LOG_BURST 50
#define HOST_LOG_WINDOW 10

/* The line that says how many of CH's log lines the rate limit dropped. */
static void
host_log_dropped (struct strbuf *b, const struct channel *ch, long dropped)
{
  strbuf_addf (b, "herald: channel %s: warning: %ld more log line%s of this "
               "channel dropped (over %d in %d s)\n", ch->name, dropped,
               dropped == 1 ? "" : "s", HOST_LOG_BURST, HOST_LOG_WINDOW);
}

static void
host_log (void *data, int level, const char *fmt, ...)
{
  static const char *const names[] = { "error", "warning", "info", "debug" };
  struct channel *ch = data;
  const char *v = getenv ("HERALD_DEBUG");
  struct strbuf b = STRBUF_INIT, msg = STRBUF_INIT;
  va_list ap;
  size_t off = 0;

  if (level >= HERALD_LOG_DEBUG && !(v && *v))
    return;
  if (level < 0 || level > 3)
    level = HERALD_LOG_ERROR;
  /* A flood of requests (forged callbacks, a provider gone mad) must not
   * flood the log: at most HOST_LOG_BURST lines a channel every
   * HOST_LOG_WINDOW seconds; what is dropped is counted and said with the
   * next line written. */
  {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int64_t now = now_seconds ();
    long dropped = 0;

    pthread_mutex_lock (&lock);
    if (now - ch->log_window >= HOST_LOG_WINDOW) {
      dropped = ch->log_dropped;
      ch->log_window = now;
      ch->log_lines = 0;
      ch->log_dropped = 0;
    }
    if (ch->log_lines >= HOST_LOG_BURST) {
      ch->log_dropped++;
      pthread_mutex_unlock (&lock);
      return;
    }
    ch->log_lines++;
    pthread_mutex_unlock (&lock);
    if (dropped) {
      if (__atomic_load_n (&loader_progress, __ATOMIC_RELAXED))
        strbuf_addc (&b, '\n');
      host_log_dropped (&b, ch, dropped);
    }
  }
  va_start (ap, fmt);
  strbuf_vaddf (&msg, fmt, ap);
  va_end (ap);
  /* Plugins log from the sender threads: the line is built whole and
   * written with one write, so lines never interleave, and it starts on a
   * line of its own when run's progress line is on the terminal.  One log
   * line, whatever a provider's answer quoted in it holds: escaped. */
  if (__atomic_load_n (&loader_progress, __ATOMIC_RELAXED))
    strbuf_addc (&b, '\n');
  strbuf_addf (&b, "herald: channel %s: %s: ", ch->name, names[level]);
  strbuf_add_escaped (&b, msg.s ? msg.s : "", msg.len);
  strbuf_addc (&b, '\n');
  while (off < b.len) {
    ssize_t w = write (STDERR_FILENO, b.s + off, b.len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    off += (size_t) w;
  }
  strbuf_free (&b);
  strbuf_free (&msg);
}

static int
key_listed (const char *const *list, const char *key)
{
  size_t i;

  if (!list)
    return 0;
  for (i = 0; list[i]; i++)
    if (strcmp (list[i], key) == 0)
      return 1;
  return 0;
}

/* Append one problem, a line, to PB: what it quotes is escaped. */
static void __attribute__ ((format (printf, 2, 3)))
channel_problem (struct strbuf *pb, const char *fmt, ...)
{
  struct strbuf line = STRBUF_INIT;
  va_list ap;

  va_start (ap, fmt);
  strbuf_vaddf (&line, fmt, ap);
  va_end (ap);
  strbuf_add_escaped (pb, line.s ? line.s : "", line.len);
  strbuf_addc (pb, '\n');
  strbuf_free (&line);
}

/* The host table of CH, lent to its plugin. */
static void
host_init (struct channel *ch, const char *tracking_base_url)
{
  ch->host.struct_size = sizeof ch->host;
  ch->host.data = ch;
  ch->host.channel_name = ch->name;
  ch->host.config_file = ch->ini_path;
  ch->host.config_get = host_config_get;
  ch->host.config_line = host_config_line;
  ch->host.log = host_log;
  ch->host.tracking_base_url = tracking_base_url;
  ch->host.core_version = PACKAGE_VERSION;
  ch->host.config_path = host_config_path;
  ch->host.core_abi_version = HERALD_PLUGIN_ABI_VERSION;
}

/* Every call into a plugin that declared HERALD_THREAD_SERIALIZE takes
 * the plugin's lock: one call at a time, whatever the state. */
static void
plugin_enter (struct plugin *pl)
{
  if (pl->p.thread_model == HERALD_THREAD_SERIALIZE)
    pthread_mutex_lock (&pl->lock);
}

static void
plugin_leave (struct plugin *pl)
{
  if (pl->p.thread_model == HERALD_THREAD_SERIALIZE)
    pthread_mutex_unlock (&pl->lock);
}

/* The keys of [channel.NAME] that are the core's own, not the plugin's. */
static const char *const core_channel_keys[] = { "plugin", "kind", "lanes",
                                                 "track_links", "send_timeout", "warmup",
                                                 "warmup_start", NULL };

int
channel_check (const struct plugin *pl, const char *name, const char *kind,
               const struct ini_section *sec, const char *ini_path,
               struct strbuf *problems)
{
  size_t i;
  int bad = 0;

  if (pl->p.channels && !key_listed (pl->p.channels, kind)
      && !declares (pl, kind)) {
    channel_problem (problems, "%s:%d: [channel.%s]: plugin %s does not "
                     "carry %s messages", ini_path, sec ? sec->line : 0, name,
                     pl->p.name, kind);
    bad = 1;
  }
  for (i = 0; sec && i < sec->n; i++) {
    const char *k = sec->kv[i].key;
    if (key_listed (core_channel_keys, k))
      continue;
    if (!key_listed (pl->p.config_keys, k)) {
      channel_problem (problems, "%s:%d: [channel.%s] %s: unknown key for "
                       "plugin %s", ini_path, sec->kv[i].line, name, k,
                       pl->p.name);
      bad = 1;
    }
  }
  /* The plugin's own judgement of its values, without effects: only when
   * every key is one it knows. */
  if (!bad && pl->p.config_check) {
    struct channel tmp;
    int rc;
    char perr[1024] = "";

    memset (&tmp, 0, sizeof tmp);
    tmp.name = (char *) name;
    tmp.kind = (char *) kind;
    tmp.sec = sec;
    tmp.ini_path = ini_path;
    host_init (&tmp, NULL);
    rc = pl->p.config_check (&tmp.host, perr, sizeof perr);
    channel_paths_free (&tmp);
    if (rc < 0) {
      size_t plen = strlen (ini_path);
      if (!*perr)
        snprintf (perr, sizeof perr, "the plugin's config_check failed");
      if (strncmp (perr, ini_path, plen) == 0 && perr[plen] == ':')
        channel_problem (problems, "%s", perr);
      else
        channel_problem (problems, "%s:%d: [channel.%s]: %s", ini_path,
                         sec ? sec->line : 0, name, perr);
      bad = 1;
    }
  }
  return bad ? -1 : 0;
}

int
channel_check_gateway (const struct gateway *gw, struct strbuf *problems)
{
  char err[2048];
  size_t i;
  int bad = 0;

  for (i = 0; i < gw->n_channels; i++) {
    const struct channel_conf *cc = &gw->channels[i];
    struct plugin *pl = loader_get (gw->plugin_dir, cc->plugin, err,
                                    sizeof err);
    if (!pl) {
      /* What herald run and serve say when they cannot load it. */
      channel_problem (problems, "%s:%d: [channel.%s] plugin: %s",
                       gw->ini->path, ini_line (cc->sec, "plugin"), cc->name,
                       err);
      bad = 1;
      continue;
    }
    if (channel_check (pl, cc->name, cc->kind, cc->sec, gw->ini->path,
                       problems) < 0)
      bad = 1;
  }
  return bad ? -1 : 0;
}

struct channel *
channel_open (struct plugin *pl, const char *name, const char *kind,
              const struct ini_section *sec, const char *ini_path,
              const char *tracking_base_url, char *err, size_t errlen)
{
  struct channel *ch;
  struct strbuf pb = STRBUF_INIT;
  char perr[1024] = "";
  int rc;

  if (channel_check (pl, name, kind, sec, ini_path, &pb) < 0) {
    /* The first problem, without its line break. */
    snprintf (err, errlen, "%.*s", (int) (strchr (pb.s, '\n') - pb.s), pb.s);
    strbuf_free (&pb);
    return NULL;
  }
  strbuf_free (&pb);
  ch = xcalloc (1, sizeof *ch);
  ch->name = xstrdup (name);
  ch->kind = xstrdup (kind);
  ch->plugin = pl;
  ch->sec = sec;
  ch->ini_path = ini_path;
  host_init (ch, tracking_base_url);
  plugin_enter (pl);
  rc = pl->p.open ? pl->p.open (&ch->host, &ch->state, perr, sizeof perr) : 0;
  plugin_leave (pl);
  if (rc < 0) {
    /* A plugin quotes its values as they are: escape them here, for
     * every plugin at once. */
    snprintf (err, errlen, "%s", *perr ? perr : "plugin open failed");
    escape_in_place (err, errlen);
    channel_paths_free (ch);
    free (ch->name);
    free (ch->kind);
    free (ch);
    return NULL;
  }
  return ch;
}

void
channel_close (struct channel *ch)
{
  if (!ch)
    return;
  if (ch->log_dropped) {
    struct strbuf b = STRBUF_INIT;
    host_log_dropped (&b, ch, ch->log_dropped);
    fputs (b.s, stderr);
    strbuf_free (&b);
  }
  if (ch->plugin->p.close) {
    plugin_enter (ch->plugin);
    ch->plugin->p.close (ch->state);
    plugin_leave (ch->plugin);
  }
  channel_paths_free (ch);
  free (ch->name);
  free (ch->kind);
  free (ch);
}

/* A version 1 plugin's send: the messages and results as the arrays of
 * structures its header described, the results copied back. */
static int
send_abi1 (struct channel *ch, const struct herald_message *const *m,
           size_t n, struct herald_result *const *res)
{
  herald1_send_fn send1 = (herald1_send_fn) (void (*) (void)) ch->plugin->p.send;
  struct herald1_message *m1 = xcalloc (n ? n : 1, sizeof *m1);
  struct herald1_result *r1 = xcalloc (n ? n : 1, sizeof *r1);
  struct herald1_address **a1 = xcalloc (n ? n : 1, sizeof *a1);
  struct herald1_part **p1 = xcalloc (n ? n : 1, sizeof *p1);
  size_t i, k;
  int rc;

  for (i = 0; i < n; i++) {
    a1[i] = xcalloc (m[i]->n_to ? m[i]->n_to : 1, sizeof **a1);
    for (k = 0; k < m[i]->n_to; k++) {
      a1[i][k].type = m[i]->to[k]->type;
      a1[i][k].value = m[i]->to[k]->value;
    }
    p1[i] = xcalloc (m[i]->n_parts ? m[i]->n_parts : 1, sizeof **p1);
    for (k = 0; k < m[i]->n_parts; k++) {
      p1[i][k].name = m[i]->parts[k]->name;
      p1[i][k].data = m[i]->parts[k]->data;
      p1[i][k].len = m[i]->parts[k]->len;
    }
    m1[i].key = m[i]->key;
    m1[i].campaign = m[i]->campaign;
    m1[i].customer = m[i]->customer;
    m1[i].channel = m[i]->channel;
    m1[i].variant = m[i]->variant;
    m1[i].to = a1[i];
    m1[i].n_to = m[i]->n_to;
    m1[i].to_name = m[i]->to_name;
    m1[i].parts = p1[i];
    m1[i].n_parts = m[i]->n_parts;
    m1[i].unsubscribe_url = m[i]->unsubscribe_url;
    m1[i].unsubscribe_mailto = m[i]->unsubscribe_mailto;
    m1[i].created = m[i]->created;
    m1[i].attempt = m[i]->attempt;
    r1[i].status = res[i]->status;
    r1[i].to_invalid = res[i]->to_invalid;
  }
  rc = send1 (ch->state, m1, n, r1);
  for (i = 0; i < n; i++) {
    struct herald_result *r = res[i];
    r->status = r1[i].status;
    r->retry_after_ms = r1[i].retry_after_ms;
    /* Copied as the plugin left them: NUL-terminated within their size,
     * which the core makes sure of when it reads them. */
    memcpy (r->provider_id, r1[i].provider_id, sizeof r->provider_id);
    memcpy (r->error, r1[i].error, sizeof r->error);
    memcpy (r->detail, r1[i].detail, sizeof r->detail);
    free (a1[i]);
    free (p1[i]);
  }
  free (a1);
  free (p1);
  free (m1);
  free (r1);
  return rc;
}

int
channel_send (struct channel *ch, const struct herald_message *const *m,
              size_t n, struct herald_result *const *res)
{
  int rc;

  plugin_enter (ch->plugin);
  if (ch->plugin->p.abi_version < 2)
    rc = send_abi1 (ch, m, n, res);
  else
    rc = ch->plugin->p.send (ch->state, m, n, res);
  plugin_leave (ch->plugin);
  return rc;
}

/* A version 1 plugin's events, handed on to the core's sink. */
struct sink1 {
  const struct herald_sink *sink;
};

static int
sink1_event (void *data, const struct herald1_event *ev1)
{
  struct sink1 *s = data;
  struct herald_event ev = { HERALD_EVENT_INIT };

  ev.type = ev1->type;
  ev.provider_id = ev1->provider_id;
  ev.address = ev1->address;
  ev.at = ev1->at;
  ev.detail = ev1->detail;
  return s->sink->event (s->sink->data, &ev);
}

/* The core's sink for a version 2 plugin: the plugin's event copied into
 * a zeroed one of ours, whatever header it was built with. */
struct sink2 {
  const struct herald_sink *sink;
  struct channel *ch;
};

static int
sink2_event (void *data, const struct herald_event *ev)
{
  struct sink2 *s = data;
  struct herald_event copy;
  size_t size = ev->struct_size;

  /* A plugin that left out HERALD_EVENT_INIT (a zeroed event) still
   * filled in the members version 2 began with. */
  if (size == 0)
    size = offsetof (struct herald_event, detail) + sizeof ev->detail;
  if (size < offsetof (struct herald_event, detail) + sizeof ev->detail) {
    /* Not a version 2 event. */
    fprintf (stderr, "herald: channel %s: plugin %s reported an event whose "
             "struct_size is %zu (set it with HERALD_EVENT_INIT): not "
             "recorded\n", s->ch->name, s->ch->plugin->p.name, size);
    return -1;
  }
  memset (&copy, 0, sizeof copy);
  memcpy (&copy, ev, size < sizeof copy ? size : sizeof copy);
  copy.struct_size = sizeof copy;
  return s->sink->event (s->sink->data, &copy);
}

int
channel_inbound (struct channel *ch, const struct herald_request *req,
                 const struct herald_sink *sink, struct herald_response *resp)
{
  int rc;

  plugin_enter (ch->plugin);
  if (ch->plugin->p.abi_version < 2) {
    herald1_inbound_fn in1 = (herald1_inbound_fn) (void (*) (void))
                             ch->plugin->p.inbound;
    struct herald1_request r1;
    struct herald1_response p1;
    struct sink1 s = { sink };
    struct herald1_sink k1 = { &s, sink1_event };

    r1.method = req->method;
    r1.url = req->url;
    r1.path = req->path;
    r1.headers = req->headers;
    r1.n_headers = req->n_headers;
    r1.body = req->body;
    r1.body_len = req->body_len;
    memset (&p1, 0, sizeof p1);
    rc = in1 (ch->state, &r1, &k1, &p1);
    resp->status = p1.status;
    memcpy (resp->content_type, p1.content_type, sizeof resp->content_type);
    memcpy (resp->body, p1.body, sizeof resp->body);
    resp->body_len = p1.body_len;
  }
  else {
    struct sink2 s = { sink, ch };
    struct herald_sink k2 = { &s, sink2_event };
    rc = ch->plugin->p.inbound (ch->state, req, &k2, resp);
  }
  plugin_leave (ch->plugin);
  return rc;
}

static int
plugins_usage (FILE *fp, int rc)
{
  fprintf (fp, "Usage: herald [-c GATEWAY.ini] plugins\n\n"
           "Lists every plugin found in the plugin directories: name, version,\n"
           "ABI version, channels, the kinds it declares (with their address\n"
           "field), whether it is an ABI 1 plugin or serialises its calls, and\n"
           "its file; a refused file with the reason.\n"
           "Exit 1 when any file was refused.\n");
  return rc;
}

int
cmd_plugins (int argc, char **argv)
{
  const char *dirs[4];
  struct gateway *gw = NULL;
  char err[2048];
  size_t n, i;
  int found = 0, refused = 0;

  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    return plugins_usage (stdout, 0);
  if (argc > 1)
    return plugins_usage (stderr, EXIT_USAGE);
  /* The gateway file is optional here: without one, list the defaults. */
  if (main_config_path || access (config_gateway_path (NULL), F_OK) == 0) {
    gw = config_gateway_load (main_config_path, err, sizeof err);
    if (!gw) {
      fprintf (stderr, "herald: %s\n", err);
      return 1;
    }
  }
  n = loader_dirs (gw ? gw->plugin_dir : NULL, dirs);
  for (i = 0; i < n; i++) {
    DIR *d = opendir (dirs[i]);
    struct dirent *de;
    char **names = NULL;
    size_t nn = 0, j;

    if (!d)
      continue;
    while ((de = readdir (d))) {
      size_t len = strlen (de->d_name);
      if (len > 3 && strcmp (de->d_name + len - 3, ".so") == 0) {
        names = xrealloc (names, (nn + 1) * sizeof *names);
        names[nn++] = xstrdup (de->d_name);
      }
    }
    closedir (d);
    /* Stable output: sorted by file name. */
    for (j = 1; j < nn; j++) {
      char *t = names[j];
      size_t k = j;
      while (k > 0 && strcmp (names[k - 1], t) > 0) {
        names[k] = names[k - 1];
        k--;
      }
      names[k] = t;
    }
    printf ("%s%s:\n", dirs[i], i == 0 ? "" : " (searched after the above)");
    for (j = 0; j < nn; j++) {
      char *path = xasprintf ("%s/%s", dirs[i], names[j]);
      struct plugin *pl = loader_load (path, err, sizeof err);
      if (pl) {
        size_t c;
        printf ("  %-10s version %-8s ABI %u  channels: ", pl->p.name,
                pl->p.version ? pl->p.version : "?",
                (unsigned) pl->p.abi_version);
        if (!pl->p.channels)
          printf ("any");
        for (c = 0; pl->p.channels && pl->p.channels[c]; c++)
          printf ("%s%s", c ? "," : "", pl->p.channels[c]);
        for (c = 0; pl->p.kinds && pl->p.kinds[c]; c++)
          printf ("%s%s (address %s)", c ? ", " : "  kinds: ",
                  pl->p.kinds[c]->name, pl->p.kinds[c]->address_field);
        if (pl->p.abi_version < 2)
          printf ("  (an ABI 1 plugin: handed version 1 arrays)");
        if (pl->p.thread_model == HERALD_THREAD_SERIALIZE)
          printf ("  (calls serialised)");
        printf ("  %s\n", path);
        found++;
        loader_unload (pl);
      }
      else {
        printf ("  %-10s REFUSED: %s\n", names[j], err);
        refused++;
      }
      free (path);
      free (names[j]);
    }
    free (names);
  }
  if (!found && !refused)
    printf ("no plugins found\n");
  config_gateway_free (gw);
  /* A refused file is a problem to fix (a plugin that will not load, a
   * file that should not be there): say so in the exit status. */
  if (refused)
    fprintf (stderr, "herald plugins: %d file%s refused\n", refused,
             refused == 1 ? "" : "s");
  return refused ? 1 : 0;
}
