/* abi1: a plugin as built against ABI version 1, from that version's
 * header (tests/plugins/abi1/herald/plugin.h, frozen): its send takes
 * arrays of structures, its struct ends at inbound.  The loader must still
 * load it, hand it version 1 arrays, and read its results and events.
 *
 * Its key "log" names a file that gets one line per message: key,
 * attempt, every address (type:value) and every part (name=data, line
 * feeds as '|').  A
 * message to an address starting "optout" is an invalid address with
 * {"opt_out":true} in its detail, the version 1 way of saying the
 * recipient opted out; others are sent with provider id "a1-KEY".  A
 * callback's body "EVENT PROVIDER_ID ADDRESS" is reported as one event.
 *
 * Past the end of its struct lie a kinds pointer naming a built-in kind,
 * as a version 2 struct would have there, and a struct_size that claims
 * it: the loader must not read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <herald/plugin.h>

#if HERALD_PLUGIN_ABI_VERSION != 1
# error "abi1 is built against the version 1 header"
#endif

struct a1_state {
  FILE *log;
};

static const char *const a1_keys[] = { "log", NULL };

static int
a1_open (const struct herald_host *host, void **state_r, char *err,
         size_t errlen)
{
  const char *log = host->config_get (host->data, "log");
  struct a1_state *s = calloc (1, sizeof *s);

  if (!s)
    return -1;
  if (log && !(s->log = fopen (log, "a"))) {
    snprintf (err, errlen, "log: %s: cannot open", log);
    free (s);
    return -1;
  }
  *state_r = s;
  return 0;
}

static void
a1_close (void *state)
{
  struct a1_state *s = state;
  if (s->log)
    fclose (s->log);
  free (s);
}

static int
a1_send (void *state, const struct herald_message *m, size_t n,
         struct herald_result *r)
{
  struct a1_state *s = state;
  size_t i, k;

  for (i = 0; i < n; i++) {
    if (s->log) {
      fprintf (s->log, "%s %u", m[i].key, m[i].attempt);
      for (k = 0; k < m[i].n_to; k++)
        fprintf (s->log, " %s:%s", m[i].to[k].type, m[i].to[k].value);
      for (k = 0; k < m[i].n_parts; k++) {
        size_t j;
        fprintf (s->log, " %s=", m[i].parts[k].name);
        for (j = 0; j < m[i].parts[k].len; j++)   /* a line a message */
          fputc (m[i].parts[k].data[j] == '\n' ? '|' : m[i].parts[k].data[j],
                 s->log);
      }
      fprintf (s->log, "\n");
    }
    if (m[i].n_to && strncmp (m[i].to[0].value, "optout", 6) == 0) {
      r[i].status = HERALD_INVALID_ADDRESS;
      snprintf (r[i].error, sizeof r[i].error, "recipient opted out");
      snprintf (r[i].detail, sizeof r[i].detail, "{\"opt_out\":true}");
      continue;
    }
    r[i].status = HERALD_SENT;
    snprintf (r[i].provider_id, sizeof r[i].provider_id, "a1-%s", m[i].key);
  }
  if (s->log)
    fflush (s->log);
  return 0;
}

static int
a1_inbound (void *state, const struct herald_request *req,
            const struct herald_sink *sink, struct herald_response *resp)
{
  char type[32], id[128], addr[128];
  struct herald_event ev;
  char body[512];
  size_t len = req->body_len < sizeof body - 1 ? req->body_len
                                               : sizeof body - 1;

  (void) state;
  memcpy (body, req->body, len);
  body[len] = '\0';
  if (sscanf (body, "%31s %127s %127s", type, id, addr) != 3) {
    resp->status = 400;
    resp->body_len = (size_t) snprintf (resp->body, sizeof resp->body,
                                        "abi1: want EVENT ID ADDRESS\n");
    return 0;
  }
  memset (&ev, 0, sizeof ev);
  ev.type = type;
  ev.provider_id = id;
  ev.address = addr;
  resp->status = sink->event (sink->data, &ev) < 0 ? 503 : 200;
  snprintf (resp->content_type, sizeof resp->content_type, "text/plain");
  resp->body_len = (size_t) snprintf (resp->body, sizeof resp->body,
                                      "abi1: %s %s\n", type, id);
  return 0;
}

/* A version 2 struct's kinds, where a version 1 struct has ended. */
static const char *const a1_parts[] = { "email.body", NULL };
struct a1_kind {
  uint32_t struct_size;
  const char *name, *address_field;
  const char *const *required_parts, *const *optional_parts;
};
static const struct a1_kind a1_kind = {
  sizeof (struct a1_kind), "email", "email", a1_parts, NULL
};
static const struct a1_kind *const a1_kinds[] = { &a1_kind, NULL };

static const struct {
  struct herald_plugin p;
  const struct a1_kind *const *kinds;
} a1_plugin = {
  {
    .abi_version = 1,
    .struct_size = sizeof a1_plugin,
    .name = "abi1",
    .version = "0.9",
    .config_keys = a1_keys,
    .open = a1_open,
    .close = a1_close,
    .send = a1_send,
    .inbound = a1_inbound,
  },
  a1_kinds,
};

HERALD_REGISTER_PLUGIN (a1_plugin.p)
