/* config: the gateway INI (herald.ini) and the generic INI reader that
 * remembers where every key was, so each error can name file and line.
 * Campaign files are read by campaign.c on top of the same reader. */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H
#include <stddef.h>
#include <stdint.h>

struct strbuf;

struct ini_kv {
  char *key;
  char *value;
  int line;
};

struct ini_section {
  char *name;
  int line;
  struct ini_kv *kv;
  size_t n;
};

struct ini {
  char *path;                /* as given */
  char *dir;                 /* directory of path, for relative paths */
  struct ini_section *sec;
  size_t n;
};

/* Read PATH.  Returns NULL with "FILE:LINE: message" in err for a syntax
 * error, a too-long line, a duplicate key or section, or I/O failure.
 * Free with ini_free. */
struct ini *ini_load (const char *path, char *err, size_t errlen);
void ini_free (struct ini *ini);
const struct ini_section *ini_section (const struct ini *ini, const char *name);
/* Value / line of KEY in SEC, NULL / 0 when absent (SEC may be NULL). */
const char *ini_get (const struct ini_section *sec, const char *key);
int ini_line (const struct ini_section *sec, const char *key);
/* PATH relative to the INI's directory, unless absolute.  Caller frees. */
char *ini_path (const struct ini *ini, const char *path);

/* Most instances of one channel that send at the same time. */
#define CONFIG_MAX_LANES 16
#define CONFIG_SEND_TIMEOUT 300   /* [channel.NAME] send_timeout default, s */

struct channel_conf {
  char *name;                /* NAME of [channel.NAME] */
  char *plugin;              /* plugin name */
  char *kind;                /* email, sms, push, webhook */
  int lanes;                 /* plugin instances sending in parallel, >= 1 */
  int64_t send_timeout;      /* seconds a send call may take; past it the
                                run gives the batch up as in flight */
  int track_links;           /* sms only: sms.body's URLs become short
                                links under [tracking] base_url */
  /* [channel.NAME] warmup = N/d [doubling | xF | +M], warmup_start =
   * DATE: a new sending domain's daily volume, N on the first day, then
   * doubled, multiplied by F or increased by M each UTC day. */
  long warmup_n;             /* 0: no warm-up */
  double warmup_factor;      /* 1 flat; 2 doubling */
  long warmup_step;          /* added each day */
  int64_t warmup_start;      /* UTC midnight of day one */
  char *warmup_spec;         /* as written */
  const struct ini_section *sec;
};

/* The warm-up volume of CC for the UTC day holding NOW (LONG_MAX without
 * warm-up, or once it has grown past it). */
long config_warmup_cap (const struct channel_conf *cc, int64_t now);

struct gateway {
  struct ini *ini;
  char *store_path;          /* SQLite: a file, absolute or relative to
                                cwd; PostgreSQL: a URL ([store] url; a
                                libpq keyword string as "pg:...") */
  int64_t store_lease;       /* [store] lease, seconds (shared stores) */
  char *plugin_dir;          /* [plugins] dir, or NULL */
  char *tracking_base_url;   /* no trailing slash, or NULL */
  char *tracking_secret;
  char *unsubscribe_mailto;
  int tracking_text_links;   /* [tracking] text_links: track email.text too */
  int64_t tracking_machine_window;   /* seconds: a click or open sooner
                                        after the send is a machine's */
  int64_t tracking_per_client;       /* [tracking] connections_per_client,
                                        -1 when not set (serve's default) */
  char *tracking_metrics_token;      /* herald serve's GET /metrics needs
                                        it as a bearer token; NULL: open */
  int bounces_soft_limit;            /* [bounces] soft_limit: this many soft
                                        bounces of an address within
                                        soft_window suppress it; 0 never */
  int64_t bounces_soft_window;       /* [bounces] soft_window, seconds */
  double max_complaint_rate;         /* [bounces] max_complaint_rate and */
  double max_bounce_rate;            /* max_bounce_rate, fractions: herald
                                        run refuses to start past them */
  struct channel_conf *channels;
  size_t n_channels;
};

/* The gateway file to use: PATH when given, else etc/herald.ini when it
 * exists in the current directory, else the installed one. */
const char *config_gateway_path (const char *path);

/* Load and validate the gateway INI.  NULL with "FILE:LINE: message". */
struct gateway *config_gateway_load (const char *path, char *err, size_t errlen);
void config_gateway_free (struct gateway *gw);
const struct channel_conf *config_channel (const struct gateway *gw,
                                           const char *name);

/* Append to OUT one line "FILE:LINE: warning: ..." for each thing in GW
 * that works but hurts deliverability; returns how many.  Today: a channel
 * whose dkim_domain is not aligned with the domain of its from address
 * (DMARC relaxed alignment, RFC 7489 section 3.1.1: one is the other or a
 * subdomain of it). */
size_t config_gateway_warnings (const struct gateway *gw, struct strbuf *out);

/* Channel kinds Herald knows: its own (email, sms, push, webhook) and
 * those plugins declared (struct herald_kind, ABI 2) in the plugins
 * loaded so far.  Non-zero when KIND is one. */
int config_kind_valid (const char *kind);
int config_kind_builtin (const char *kind);

/* A kind a plugin declared: the registry's own copy (never freed; the
 * process keeps its plugins loaded). */
struct config_kind {
  char *name;
  char *plugin;              /* the plugin that declared it first */
  char *address_field;       /* customer addresses.FIELD or attributes.FIELD */
  char **required;           /* NULL-terminated part names */
  char **optional;
  char **json;               /* of those, the parts that must be JSON */
  char **html;               /* and those rendered as HTML (autoescape) */
};

/* The plugin kind KIND, or NULL (a built-in kind or unknown). */
const struct config_kind *config_kind_find (const char *kind);

/* Record the kinds PLUGIN declares (KINDS, NULL-terminated, may be NULL).
 * A kind already recorded is kept as it was.  Called by the loader once a
 * plugin is loaded; it checked the declarations (loader_check_kinds). */
struct herald_kind;
void config_kind_register (const char *plugin,
                           const struct herald_kind *const *kinds);

/* Append "email, sms, push, webhook[, KIND...]" to OUT. */
void config_kinds_list (struct strbuf *out);

/* Append ", PART" for each template part of the plugin kinds to OUT. */
void config_kind_parts_list (struct strbuf *out);

/* Non-zero when PART ("chat.text") is a template part of a plugin kind. */
int config_kind_part (const char *part);
/* ... one that kind declared JSON, or HTML. */
int config_kind_part_json (const char *part);
int config_kind_part_html (const char *part);

/* Set by the herald program (main): finds a plugin declaring KIND among
 * the plugin PLUGIN and then every plugin of the plugin directories
 * (PLUGIN_DIR first), loading them, which registers their kinds.  Non-zero
 * when found.  NULL in programs without the loader: only the kinds
 * registered so far are known. */
extern int (*config_kind_finder) (const char *plugin_dir, const char *plugin,
                                  const char *kind);

#endif
