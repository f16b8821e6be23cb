/* loader: finds channel plugins, checks them before dlopen, loads them,
 * and opens channel instances ([channel.NAME] sections) on top of them. */
#ifndef HERALD_LOADER_H
#define HERALD_LOADER_H
#include <pthread.h>
#include <stddef.h>

#include "config.h"
#include "herald/plugin.h"

struct plugin {
  char *path;
  void *dl;
  struct herald_plugin p;    /* zero-extended copy of the plugin's struct */
  pthread_mutex_t lock;      /* its calls take turns: HERALD_THREAD_SERIALIZE */
};

/* The directories searched for plugins, in order: [plugins] dir (CONF_DIR,
 * may be NULL), $HERALD_PLUGIN_DIR, the build tree (only for the herald
 * binary of that build tree), $(pkglibdir).  Returns how many were set. */
size_t loader_dirs (const char *conf_dir, const char *dirs_r[4]);

/* Check and load the plugin file PATH.  Refuses (NULL, reason in err,
 * naming the file) a file that is not regular, is group- or
 * world-writable, is owned by another user, lacks the entry point, has
 * another ABI version or no name/send.  Free with loader_unload. */
struct plugin *loader_load (const char *path, char *err, size_t errlen);
void loader_unload (struct plugin *pl);

/* Find NAME.so in the search directories and load it.  Loaded plugins are
 * kept until loader_unload_all, so instances share one copy. */
struct plugin *loader_get (const char *conf_dir, const char *name,
                           char *err, size_t errlen);
void loader_unload_all (void);

/* config_kind_finder of the herald program: loads PLUGIN, then every
 * plugin of the plugin directories, until one declares KIND (their kinds
 * are registered as they load).  Non-zero when one does. */
int loader_find_kind (const char *conf_dir, const char *plugin,
                      const char *kind);

/* An open channel instance. */
struct channel {
  char *name;                 /* NAME of [channel.NAME] */
  char *kind;                 /* email, sms, push, webhook */
  struct plugin *plugin;
  void *state;
  const struct ini_section *sec;
  const char *ini_path;
  struct herald_host host;
  int64_t log_window;         /* host->log's rate limit: its window, */
  int log_lines;              /* the lines written in it, */
  long log_dropped;           /* and those dropped */
  char **paths;               /* host->config_path's answers, freed with */
  size_t n_paths;             /* the channel */
  int broken;                 /* set after HERALD_CHANNEL_ERROR */
  char broken_reason[512];
};

/* Whether PL can carry the channel [channel.NAME] of kind KIND with the
 * keys of SEC, without opening it: the plugin carries KIND, and every key
 * is the core's (plugin, kind, lanes, track_links) or one the plugin
 * declares in config_keys.  0, or -1 with each problem appended to
 * PROBLEMS as a line: "INI:LINE: [channel.NAME] KEY: unknown key for
 * plugin P".  It cannot judge the values of the plugin's keys: only the
 * plugin's open does, and open has effects (the outbox creates its
 * folders, the email plugin reads its password file). */
struct strbuf;
int channel_check (const struct plugin *pl, const char *name,
                   const char *kind, const struct ini_section *sec,
                   const char *ini_path, struct strbuf *problems);

/* channel_check for every [channel.NAME] of GW, after loading its plugin
 * (a plugin that cannot be loaded is a problem naming [channel.NAME]
 * plugin).  What herald lint checks of the gateway; nothing is opened or
 * connected.  0, or -1 with the problems appended to PROBLEMS. */
int channel_check_gateway (const struct gateway *gw, struct strbuf *problems);

/* Open an instance of PL with the keys of SEC (which must stay alive
 * until channel_close).  channel_check first: its first problem is the
 * error.  NULL + err. */
struct channel *channel_open (struct plugin *pl, const char *name,
                              const char *kind, const struct ini_section *sec,
                              const char *ini_path,
                              const char *tracking_base_url,
                              char *err, size_t errlen);
void channel_close (struct channel *ch);

/* Hand messages to CH's plugin, or a provider's callback: through these
 * only, which take the plugin's lock when it declared
 * HERALD_THREAD_SERIALIZE and adapt the arrays and structures for a
 * version 1 plugin.  RES[i] are the core's, status HERALD_NO_RESULT. */
int channel_send (struct channel *ch, const struct herald_message *const *m,
                  size_t n, struct herald_result *const *res);
int channel_inbound (struct channel *ch, const struct herald_request *req,
                     const struct herald_sink *sink,
                     struct herald_response *resp);

/* herald plugins */
int cmd_plugins (int argc, char **argv);

/* Non-zero while herald run keeps a progress line (no line feed) on
 * stderr: plugin log lines then start on a line of their own. */
extern int loader_progress;

#endif
