/* kindplug: a plugin declaring a channel kind of its own (ABI 2): "chat",
 * addressed by the customer's chat_id, with the parts chat.text
 * (required), chat.title, chat.card (JSON, which the core checks) and
 * chat.html (HTML, which the core renders escaped), all optional.  Key
 * "file" (required, checked by config_check) gets one JSON line per
 * message: key, customer, type, address, text, title, card, html.  Key
 * "invalid" names a chat_id it answers
 * HERALD_INVALID_ADDRESS for (the core then suppresses it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <herald/plugin.h>

struct kp_state {
  FILE *fp;
  char *invalid;
};

static const char *const kp_keys[] = { "file", "invalid", NULL };
static const char *const kp_required[] = { "chat.text", NULL };
static const char *const kp_optional[] = { "chat.title", "chat.card",
                                           "chat.html", NULL };
static const char *const kp_json[] = { "chat.card", NULL };
static const char *const kp_html[] = { "chat.html", NULL };
static const struct herald_kind kp_chat = {
  HERALD_KIND_INIT,
  .name = "chat",
  .address_field = "chat_id",
  .required_parts = kp_required,
  .optional_parts = kp_optional,
  .json_parts = kp_json,
  .html_parts = kp_html,
};

/* S[0..LEN) as a JSON string (UTF-8 passes as is). */
static void
kp_json_string (FILE *fp, const char *s, size_t len)
{
  size_t i;

  fputc ('"', fp);
  for (i = 0; s && i < len; i++) {
    unsigned char c = (unsigned char) s[i];
    if (c == '"' || c == '\\')
      fprintf (fp, "\\%c", c);
    else if (c < 0x20)
      fprintf (fp, "\\u%04x", c);
    else
      fputc (c, fp);
  }
  fputc ('"', fp);
}

static void
kp_field (FILE *fp, const char *name, const struct herald_message *m,
          const char *part)
{
  const struct herald_part *p = herald_message_part (m, part);

  fprintf (fp, ", \"%s\": ", name);
  kp_json_string (fp, p ? p->data : "", p ? p->len : 0);
}
static const struct herald_kind *const kp_kinds[] = { &kp_chat, NULL };

static int
kp_config_check (const struct herald_host *h, char *err, size_t errlen)
{
  const char *f = h->config_get (h->data, "file");

  if (!f || f[0] != '/') {
    snprintf (err, errlen, "%s:%d: [channel.%s] file: %s", h->config_file,
              f ? h->config_line (h->data, "file") : 0, h->channel_name,
              f ? "must be an absolute path" : "required");
    return -1;
  }
  return 0;
}

static int
kp_open (const struct herald_host *h, void **state_r, char *err,
         size_t errlen)
{
  struct kp_state *s;
  const char *inv = h->config_get (h->data, "invalid");

  if (kp_config_check (h, err, errlen) < 0)
    return -1;
  s = calloc (1, sizeof *s);
  if (!s)
    return -1;
  s->fp = fopen (h->config_get (h->data, "file"), "a");
  if (!s->fp) {
    snprintf (err, errlen, "file: cannot open");
    free (s);
    return -1;
  }
  s->invalid = inv ? strdup (inv) : NULL;
  *state_r = s;
  return 0;
}

static void
kp_close (void *vs)
{
  struct kp_state *s = vs;
  if (!s)
    return;
  fclose (s->fp);
  free (s->invalid);
  free (s);
}

static int
kp_send (void *vs, const struct herald_message *const *m,
         size_t n, struct herald_result *const *r)
{
  struct kp_state *s = vs;
  size_t i;

  for (i = 0; i < n; i++) {
    fprintf (s->fp, "{\"key\": \"%s\", \"customer\": \"%s\", \"channel\": "
             "\"%s\", \"type\": \"%s\", \"address\": \"%s\"", m[i]->key,
             m[i]->customer, m[i]->channel, m[i]->to[0]->type,
             m[i]->to[0]->value);
    kp_field (s->fp, "text", m[i], "chat.text");
    kp_field (s->fp, "title", m[i], "chat.title");
    kp_field (s->fp, "card", m[i], "chat.card");
    kp_field (s->fp, "html", m[i], "chat.html");
    fprintf (s->fp, "}\n");
    if (s->invalid && strcmp (m[i]->to[0]->value, s->invalid) == 0) {
      r[i]->status = HERALD_INVALID_ADDRESS;
      snprintf (r[i]->error, sizeof r[i]->error, "chat gone");
    }
    else {
      r[i]->status = HERALD_SENT;
      snprintf (r[i]->provider_id, sizeof r[i]->provider_id, "kp-%s", m[i]->key);
    }
  }
  fflush (s->fp);
  return 0;
}

static const struct herald_plugin kp_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "kindplug",
  .version = "1.0",
  .config_keys = kp_keys,
  .open = kp_open,
  .close = kp_close,
  .send = kp_send,
  .kinds = kp_kinds,
  .config_check = kp_config_check,
};

HERALD_REGISTER_PLUGIN (kp_plugin)
