/* badkind: declares a kind named after a built-in one; refused. */
#include <herald/plugin.h>

static int
bk_send (void *state, const struct herald_message *const *m,
         size_t n, struct herald_result *const *r)
{
  (void) state; (void) m; (void) n; (void) r;
  return 0;
}

static const char *const bk_parts[] = { "sms.text", NULL };
static const struct herald_kind bk_kind = {
  HERALD_KIND_INIT,
  .name = "sms",
  .address_field = "phone",
  .required_parts = bk_parts,
};
static const struct herald_kind *const bk_kinds[] = { &bk_kind, NULL };

static const struct herald_plugin bk_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "badkind",
  .send = bk_send,
  .kinds = bk_kinds,
};

HERALD_REGISTER_PLUGIN (bk_plugin)
