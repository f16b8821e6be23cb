/* abi1.h: the layouts of plugin ABI version 1, frozen, for the loader's
 * adapter (channel_send, channel_inbound): a version 1 plugin is handed
 * arrays of these, as the header it was built against said.  Never
 * change them. */
#ifndef HERALD_ABI1_H
#define HERALD_ABI1_H
#include <stddef.h>
#include <stdint.h>

struct herald1_part {
  const char *name;
  const char *data;
  size_t len;
};

struct herald1_address {
  const char *type;
  const char *value;
};

struct herald1_message {
  const char *key;
  const char *campaign;
  const char *customer;
  const char *channel;
  const char *variant;
  const struct herald1_address *to;
  size_t n_to;
  const char *to_name;
  const struct herald1_part *parts;
  size_t n_parts;
  const char *unsubscribe_url;
  const char *unsubscribe_mailto;
  int64_t created;
  unsigned attempt;
};

struct herald1_result {
  int status;
  int64_t retry_after_ms;
  char provider_id[256];
  char error[512];
  char detail[256];
  unsigned char *to_invalid;
};

struct herald1_request {
  const char *method;
  const char *url;
  const char *path;
  const void *headers;         /* struct herald_header: unchanged */
  size_t n_headers;
  const char *body;
  size_t body_len;
};

struct herald1_event {
  const char *type;
  const char *provider_id;
  const char *address;
  int64_t at;
  const char *detail;
};

struct herald1_sink {
  void *data;
  int (*event) (void *data, const struct herald1_event *ev);
};

struct herald1_response {
  int status;
  char content_type[64];
  char body[1024];
  size_t body_len;
};

typedef int (*herald1_send_fn) (void *state,
                                const struct herald1_message *messages,
                                size_t n, struct herald1_result *results);
typedef int (*herald1_inbound_fn) (void *state,
                                   const struct herald1_request *req,
                                   const struct herald1_sink *sink,
                                   struct herald1_response *resp);

#endif
