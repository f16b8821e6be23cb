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
 *    crosses the boundary starts with its size (struct_size), and arrays
 *    of them are passed as arrays of pointers, so no stride is ever
 *    compiled into a plugin:
 *    - what a plugin fills in for the core (struct herald_plugin, its
 *      kinds, events) the core copies min(its size, our size) of into a
 *      zeroed copy: an older plugin keeps working under a newer core, the
 *      members it does not know read as 0;
 *    - what the core lends a plugin (host, messages, parts, addresses,
 *      results, requests, responses) carries the core's size: a plugin
 *      built against a newer header reads or writes a member the core may
 *      lack only after HERALD_HAS (ptr, member) says it is there.
 *  - Set abi_version and struct_size with HERALD_PLUGIN_INIT (and the
 *    other *_INIT macros), never by hand.
 *  - A version 1 plugin (whose send took arrays of structures) still
 *    loads: the core hands it the version 1 layout it was built for.
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
 * no unguarded mutable globals (use pthread_once for library set-up), or
 * declare thread_model = HERALD_THREAD_SERIALIZE and the core makes every
 * call into the plugin (all its states) take turns.  A
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

/* Whether the structure P (which starts with struct_size) has MEMBER:
 * true when the side that filled it in knows that member.  A plugin
 * checks a member its header has and an older core may lack:
 *   if (HERALD_HAS (r, opt_out)) r->opt_out = 1; */
#define HERALD_HAS(p, member) \
  ((size_t) (p)->struct_size \
   >= (size_t) ((const char *) &(p)->member - (const char *) (p)) \
      + sizeof (p)->member)

/* 2: struct herald_plugin gained kinds, config_check and thread_model;
 * every structure the core lends starts with struct_size, and send takes
 * arrays of pointers (the loader still loads a version 1 plugin, whose
 * struct ends at inbound, and hands it version 1 arrays). */
#define HERALD_PLUGIN_ABI_VERSION 2
/* The oldest version this header's core still loads. */
#define HERALD_PLUGIN_ABI_MIN_VERSION 1

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

  /* ABI 2 members (check with HERALD_HAS under an older core). */
  const char *core_version;      /* Herald's version, "0.4.0" */
  uint32_t core_abi_version;     /* HERALD_PLUGIN_ABI_VERSION of the core */

  /* The value of KEY as a file's path: an absolute one as it is, a
   * relative one resolved against the folder of the gateway file, as the
   * core's own paths are (not against the current directory, which
   * depends on where herald was started); NULL when absent.  Use it for
   * every key that names a file.  Valid as long as config_get's values. */
  const char *(*config_path) (void *data, const char *key);
};

/* The host table is valid from open until close (a plugin may keep the
 * pointer); the one config_check receives is valid for that call only. */

/* One rendered part of a message: "email.subject", "email.html",
 * "email.text", "sms.body", "push.title", "push.body", "push.data",
 * "webhook.body", or a part of a kind a plugin declares ("chat.text").
 * data is not NUL-terminated in general: use len. */
struct herald_part {
  uint32_t struct_size;   /* the core's sizeof (struct herald_part) */
  const char *name;
  const char *data;
  size_t len;
};

/* One destination of a message.  type is the channel kind for email, sms,
 * webhook and the kinds plugins declare ("email", "sms", "webhook",
 * "chat"); for push it is the platform ("ios", "android", "web").  value is the address: an e-mail address, an
 * E.164 number, a device token, a URL. */
struct herald_address {
  uint32_t struct_size;   /* the core's sizeof (struct herald_address) */
  const char *type;
  const char *value;
};

/* One message handed to send(). */
struct herald_message {
  uint32_t struct_size;   /* the core's sizeof (struct herald_message) */
  const char *key;        /* idempotency key "campaign:step:customer", stable
                           * across retries */
  const char *campaign;   /* campaign id */
  const char *customer;   /* customer id */
  const char *channel;    /* channel kind: "email", "sms", "push", "webhook",
                           * or a declared kind ("chat") */
  const char *variant;    /* variant name, or "" */
  const struct herald_address *const *to;   /* at least one */
  size_t n_to;
  const char *to_name;    /* recipient display name (UTF-8) or NULL */
  const struct herald_part *const *parts;
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
  uint32_t struct_size;               /* the core's sizeof (struct herald_result) */
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
  /* ABI 2: with HERALD_REJECTED or HERALD_INVALID_ADDRESS, 1 when the
   * recipient opted out at the provider (an SMS STOP, Twilio's 21610):
   * the core withdraws the customer's consent for the channel's kind, so
   * a later opt-in lifts it, besides the suppression. */
  int opt_out;
};

/* An HTTP request addressed to a plugin by the tracking server
 * (POST {base_url}/inbound/CHANNEL_NAME/...). */
struct herald_header {
  const char *name;
  const char *value;
};

struct herald_request {
  uint32_t struct_size;   /* the core's sizeof (struct herald_request) */
  const char *method;
  const char *url;        /* the full public URL, as the provider signed it */
  const char *path;       /* path below /inbound/CHANNEL_NAME */
  const struct herald_header *headers;   /* a plain array: struct
                                          * herald_header never grows */
  size_t n_headers;
  const char *body;
  size_t body_len;
};

/* An event a plugin reports from an inbound request. */
struct herald_event {
  uint32_t struct_size;    /* HERALD_EVENT_INIT */
  const char *type;        /* delivered, failed, opened, clicked, replied,
                            * unsubscribed, resubscribed, bounced (hard),
                            * soft_bounced, complained.  The last three do
                            * what `herald bounces import` does: suppress
                            * the address (a soft bounce at [bounces]
                            * soft_limit), and a complaint withdraws
                            * consent; give at the provider's own time
                            * for the event, so a retried callback is a
                            * repeat and changes nothing */
  const char *provider_id; /* the provider's message id, or NULL */
  const char *address;     /* the customer's address (phone...), or NULL */
  int64_t at;              /* unix seconds, 0 = now */
  const char *detail;      /* JSON object text, or NULL */
};

#define HERALD_EVENT_INIT .struct_size = sizeof (struct herald_event)

struct herald_sink {
  void *data;
  /* Record one event; returns 0, or -1 when it could not be stored (the
   * plugin then answers 5xx so the provider retries). */
  int (*event) (void *data, const struct herald_event *ev);
};

struct herald_response {
  uint32_t struct_size;    /* the core's sizeof (struct herald_response) */
  int status;              /* HTTP status to answer */
  char content_type[64];
  char body[1024];
  size_t body_len;
};

/* A channel kind a plugin serves beyond the core's own (email, sms, push,
 * webhook), e.g. "chat" (ABI 2).  With it, a gateway may say
 * `kind = chat` in a [channel.NAME] section; the core then routes, asks
 * consent ("consent": {"chat": true}), caps, suppresses and reports chat
 * messages like its own kinds.  Set struct_size with HERALD_KIND_INIT. */
struct herald_kind {
  uint32_t struct_size;          /* sizeof (struct herald_kind) */
  const char *name;              /* [a-z][a-z0-9_]*, at most 32 bytes, not
                                  * a built-in kind */
  /* The customer field holding the address: the core reads
   * addresses.FIELD of the customer record, else attributes.FIELD (a
   * string, or an integer taken as its digits), and hands it to send()
   * as to[0] = {type: name, value}.  A customer without it has no
   * address on this kind (the router falls back to the next channel). */
  const char *address_field;
  /* NULL-terminated template parts, each "NAME.PART" ("chat.text"): a
   * campaign offers the kind only when it has every required part. */
  const char *const *required_parts;
  const char *const *optional_parts;
  /* Appended (a kind whose struct_size ends before them has none): parts
   * among the above whose rendered text must be JSON, checked as
   * webhook.body is (a message whose part is not JSON fails, its error
   * naming the template, line and column, and never reaches send); and
   * parts that are HTML, rendered with output escaped as email.html is
   * ({{ x }} writes &lt; for <). */
  const char *const *json_parts;
  const char *const *html_parts;
};

#define HERALD_KIND_INIT .struct_size = sizeof (struct herald_kind)

enum herald_thread_model {
  /* The states of the plugin are independent: each may be in a call on
   * its own thread at the same time (a channel with lanes = N). */
  HERALD_THREAD_PARALLEL = 0,
  /* One call at a time into the whole plugin, whatever the state: the
   * core serialises open, send, inbound and close across all its states
   * (lanes = N still opens N states, which then take turns). */
  HERALD_THREAD_SERIALIZE = 1
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
   * the core reports with file and line.  secret_keys names the keys that
   * hold secrets: the core prints no plugin's values anyway (only key
   * names, lines and the plugin's own messages), so a plugin must never
   * quote them in its errors or logs; documentation marks them. */
  const char *const *config_keys;
  const char *const *secret_keys;

  /* Read the configuration, allocate state.  Return 0 and set *state_r, or
   * -1 after writing a message (naming the key) into err. */
  int (*open) (const struct herald_host *host, void **state_r,
               char *err, size_t errlen);

  /* Release everything open allocated. */
  void (*close) (void *state);

  /* Required.  Send n messages; fill *results[i] for every i.  Return 0,
   * or -1 if the call failed as a whole (then every result is taken as
   * HERALD_RETRY with its error).  May block up to the plugin's timeouts;
   * the core gives up on a call that outlasts the channel's send_timeout
   * (the batch is then in flight, as at a crash, and the run stops). */
  int (*send) (void *state, const struct herald_message *const *messages,
               size_t n, struct herald_result *const *results);

  /* Optional: handle a provider callback.  Fill resp. Return 0 or -1. */
  int (*inbound) (void *state, const struct herald_request *req,
                  const struct herald_sink *sink,
                  struct herald_response *resp);

  /* ABI 2 members: a version 1 plugin reads as NULL here. */

  /* NULL-terminated list of the kinds this plugin declares (see struct
   * herald_kind).  A declared kind needs no entry in channels. */
  const struct herald_kind *const *kinds;

  /* Optional: check the channel's keys without connecting anywhere or
   * writing anything (reading a key file to check it is fine): herald
   * lint, run --dry-run, and before open.  Read
   * them through host->config_get as open does; host is lent for this
   * call only, and its tracking_base_url is NULL here.  Return 0, or -1 after
   * writing into err one message naming the key, ideally
   * "FILE:LINE: [channel.NAME] KEY: ..." with host->config_file and
   * host->config_line (the core prefixes "FILE:LINE: [channel.NAME]: "
   * when it does not start with the file name). */
  int (*config_check) (const struct herald_host *host, char *err,
                       size_t errlen);

  /* enum herald_thread_model: how the core may call this plugin from
   * several threads (0, HERALD_THREAD_PARALLEL, by default). */
  int thread_model;
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
    const char *a = m->parts[i]->name;
    for (j = 0; a[j] && a[j] == name[j]; j++)
      ;
    if (a[j] == '\0' && name[j] == '\0')
      return m->parts[i];
  }
  return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* HERALD_PLUGIN_H */
