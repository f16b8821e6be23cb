/* herald/plugin.h: the channel plugin ABI of Herald.
 *
 * This is the only header a Herald channel plugin includes.  A plugin is a
 * shared object that exports exactly one symbol, HERALD_PLUGIN_ENTRY, a
 * function returning a pointer to a static `struct herald_plugin`.
 *
 * ABI policy (after nbdkit):
 *  - HERALD_PLUGIN_ABI_VERSION changes only when an existing member changes
 *    meaning or layout.  The loader refuses any other version.
 *  - Structures only ever grow by appending members.  Every structure that
 *    crosses the boundary starts with (or carries) its size, so the core
 *    copies min(its size, our size) into a zeroed copy and an older plugin
 *    keeps working under a newer core: members it does not know read as 0.
 *  - Set abi_version and struct_size with HERALD_PLUGIN_INIT, never by hand.
 *
 * Ownership:
 *  - Everything the core passes to a plugin (config strings, messages, parts,
 *    addresses, requests) is lent for the duration of the call only.  A
 *    plugin copies what it keeps.
 *  - Results and responses are written into memory the core owns, in fixed
 *    size buffers: nothing is ever freed across the boundary.
 *
 * Threads: the core calls open, send and close of one state from one thread
 * at a time, not always the same thread (send runs on a sender thread while
 * the core plans the next batch).  A channel with `lanes = N` has N states
 * of the same plugin, each sending on its own thread at the same time: keep
 * no unguarded mutable globals (use pthread_once for library set-up).  A
 * plugin must not block signals, fork, exit, or change the process's
 * current directory, locale or signal handlers (SIGPIPE is already ignored
 * by the core).
 *
 * Build a plugin outside Herald's tree with
 *   cc -shared -fPIC $(pkg-config --cflags herald-plugin) -o NAME.so NAME.c
 * and drop NAME.so into the plugin directory.
 */
#ifndef HERALD_PLUGIN_H
#define HERALD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

/* Compiler attributes, where the compiler has them (GCC, Clang). */
#if defined (__GNUC__) || defined (__clang__)
# define HERALD_ATTR_PRINTF(f, a) __attribute__ ((format (printf, f, a)))
# define HERALD_ATTR_EXPORT __attribute__ ((visibility ("default")))
#else
# define HERALD_ATTR_PRINTF(f, a)
# define HERALD_ATTR_EXPORT
#endif

/* The entry point has C linkage in a C++ plugin too. */
#ifdef __cplusplus
# define HERALD_EXTERN_C extern "C"
#else
# define HERALD_EXTERN_C
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define HERALD_PLUGIN_ABI_VERSION 1

/* The one exported symbol.  Its type is herald_plugin_entry_fn. */
#define HERALD_PLUGIN_ENTRY herald_plugin_entry
#define HERALD_PLUGIN_ENTRY_NAME "herald_plugin_entry"

/* Log levels for herald_host.log. */
enum herald_log_level {
  HERALD_LOG_ERROR = 0,
  HERALD_LOG_WARNING = 1,
  HERALD_LOG_INFO = 2,
  HERALD_LOG_DEBUG = 3,
};

/* What the core lends a plugin when it opens a channel instance. */
struct herald_host {
  uint32_t struct_size;          /* sizeof (struct herald_host) of the core */
  void *data;                    /* the core's; pass back to the functions */
  const char *channel_name;      /* NAME of [channel.NAME] */
  const char *config_file;       /* gateway INI path, for messages */

  /* Value of KEY in this channel's section, or NULL when absent.  Valid
   * until close.  Keys not listed in herald_plugin.config_keys are refused
   * by the core before open is called. */
  const char *(*config_get) (void *data, const char *key);

  /* Line of KEY in the gateway INI (0 when absent), so a plugin can report
   * "FILE:LINE: [channel.NAME] KEY: message" for a bad value. */
  int (*config_line) (void *data, const char *key);

  /* printf-like logging; the core prefixes the channel name. Never log a
   * secret. */
  void (*log) (void *data, int level, const char *fmt, ...)
    HERALD_ATTR_PRINTF (3, 4);

  /* [tracking] base_url of the gateway (no trailing slash), or NULL. */
  const char *tracking_base_url;
};

/* One rendered part of a message: "email.subject", "email.html",
 * "email.text", "sms.body", "push.title", "push.body", "push.data",
 * "webhook.body".  data is not NUL-terminated in general: use len. */
struct herald_part {
  const char *name;
  const char *data;
  size_t len;
};

/* One destination of a message.  type is the channel kind for email, sms
 * and webhook ("email", "sms", "webhook"); for push it is the platform
 * ("ios", "android", "web").  value is the address: an e-mail address, an
 * E.164 number, a device token, a URL. */
struct herald_address {
  const char *type;
  const char *value;
};

/* One message handed to send(). */
struct herald_message {
  const char *key;        /* idempotency key "campaign:step:customer", stable
                           * across retries */
  const char *campaign;   /* campaign id */
  const char *customer;   /* customer id */
  const char *channel;    /* channel kind: "email", "sms", "push", "webhook" */
  const char *variant;    /* variant name, or "" */
  const struct herald_address *to;   /* at least one */
  size_t n_to;
  const char *to_name;    /* recipient display name (UTF-8) or NULL */
  const struct herald_part *parts;
  size_t n_parts;
  const char *unsubscribe_url;     /* one-click unsubscribe https URL, or NULL */
  const char *unsubscribe_mailto;  /* mailto: address for List-Unsubscribe, or NULL */
  int64_t created;        /* unix seconds the message was recorded; use it as
                           * the Date so a resend produces the same bytes */
  unsigned attempt;       /* 1 for the first attempt */
};

/* The outcome of one message. */
enum herald_status {
  HERALD_SENT = 0,            /* the provider accepted it; provider_id set */
  HERALD_RETRY = 1,           /* temporary failure: try again later,
                               * after retry_after_ms when > 0 */
  HERALD_REJECTED = 2,        /* permanent failure for this message */
  HERALD_INVALID_ADDRESS = 3, /* the address is dead: the core suppresses it */
  HERALD_CHANNEL_ERROR = 4,   /* the channel itself is misconfigured (bad
                               * credentials, 530 on MAIL FROM): the core
                               * stops using this channel and keeps the
                               * message for later */
  HERALD_NO_RESULT = -1       /* what the core puts in every result before
                               * send: a result the plugin leaves so means
                               * "not handled", and the core tries the
                               * message again later (never "sent") */
};

#define HERALD_ID_MAX 256
#define HERALD_ERROR_MAX 512
#define HERALD_DETAIL_MAX 256

struct herald_result {
  int status;                         /* enum herald_status; HERALD_NO_RESULT
                                       * until the plugin sets it */
  int64_t retry_after_ms;             /* HERALD_RETRY: minimum delay, 0 = core's backoff */
  char provider_id[HERALD_ID_MAX];    /* HERALD_SENT: provider's message id */
  char error[HERALD_ERROR_MAX];       /* otherwise: provider code and text */
  char detail[HERALD_DETAIL_MAX];     /* optional JSON object kept with the
                                       * message, e.g. {"segments":2} */
  unsigned char *to_invalid;          /* lent by the core, n_to entries, all
                                       * 0: set entry i to 1 when address i is
                                       * dead (push: one token of several) */
};

/* An HTTP request addressed to a plugin by the tracking server
 * (POST {base_url}/inbound/CHANNEL_NAME/...). */
struct herald_header {
  const char *name;
  const char *value;
};

struct herald_request {
  const char *method;
  const char *url;        /* the full public URL, as the provider signed it */
  const char *path;       /* path below /inbound/CHANNEL_NAME */
  const struct herald_header *headers;
  size_t n_headers;
  const char *body;
  size_t body_len;
};

/* An event a plugin reports from an inbound request. */
struct herald_event {
  const char *type;        /* delivered, failed, opened, clicked, replied,
                            * unsubscribed, resubscribed, bounced, complained */
  const char *provider_id; /* the provider's message id, or NULL */
  const char *address;     /* the customer's address (phone...), or NULL */
  int64_t at;              /* unix seconds, 0 = now */
  const char *detail;      /* JSON object text, or NULL */
};

struct herald_sink {
  void *data;
  /* Record one event; returns 0, or -1 when it could not be stored (the
   * plugin then answers 5xx so the provider retries). */
  int (*event) (void *data, const struct herald_event *ev);
};

struct herald_response {
  int status;              /* HTTP status to answer */
  char content_type[64];
  char body[1024];
  size_t body_len;
};

struct herald_plugin {
  uint32_t abi_version;    /* HERALD_PLUGIN_ABI_VERSION */
  uint32_t struct_size;    /* sizeof (struct herald_plugin) */

  const char *name;        /* required: the plugin name, [channel.X] plugin = name */
  const char *version;     /* the plugin's own version */
  const char *description;

  /* NULL-terminated list of channel kinds the plugin carries ("email",
   * "sms", ...); NULL means any kind (the outbox). */
  const char *const *channels;

  /* NULL-terminated list of the keys the plugin reads from its section
   * ("plugin" itself is implied).  Any other key is a configuration error
   * the core reports with file and line.  Keys named in secret_keys are
   * never printed. */
  const char *const *config_keys;
  const char *const *secret_keys;

  /* Read the configuration, allocate state.  Return 0 and set *state_r, or
   * -1 after writing a message (naming the key) into err. */
  int (*open) (const struct herald_host *host, void **state_r,
               char *err, size_t errlen);

  /* Release everything open allocated. */
  void (*close) (void *state);

  /* Required.  Send n messages; fill results[i] for every i.  Return 0, or
   * -1 if the call failed as a whole (then every result is taken as
   * HERALD_RETRY with its error). May block up to the plugin's timeouts. */
  int (*send) (void *state, const struct herald_message *messages, size_t n,
               struct herald_result *results);

  /* Optional: handle a provider callback.  Fill resp. Return 0 or -1. */
  int (*inbound) (void *state, const struct herald_request *req,
                  const struct herald_sink *sink,
                  struct herald_response *resp);
};

#define HERALD_PLUGIN_INIT \
  .abi_version = HERALD_PLUGIN_ABI_VERSION, \
  .struct_size = sizeof (struct herald_plugin)

typedef const struct herald_plugin *(*herald_plugin_entry_fn) (void);

/* Declare and define the entry point of a plugin, exported with C linkage
 * (from C or C++):
 *   static const struct herald_plugin plugin = { HERALD_PLUGIN_INIT, ... };
 *   HERALD_REGISTER_PLUGIN (plugin)
 */
#define HERALD_REGISTER_PLUGIN(p) \
  HERALD_EXTERN_C HERALD_ATTR_EXPORT \
  const struct herald_plugin *herald_plugin_entry (void); \
  HERALD_EXTERN_C HERALD_ATTR_EXPORT \
  const struct herald_plugin *herald_plugin_entry (void) { return &(p); }

/* Find a part by name in a message; NULL when absent. */
static inline const struct herald_part *
herald_message_part (const struct herald_message *m, const char *name)
{
  size_t i, j;
  for (i = 0; i < m->n_parts; i++) {
    const char *a = m->parts[i].name;
    for (j = 0; a[j] && a[j] == name[j]; j++)
      ;
    if (a[j] == '\0' && name[j] == '\0')
      return &m->parts[i];
  }
  return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* HERALD_PLUGIN_H */
