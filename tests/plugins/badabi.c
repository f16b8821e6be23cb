/* badabi: a plugin built for another ABI version; the loader must refuse it. */
#include <herald/plugin.h>

static int
ba_send (void *state, const struct herald_message *const *m,
         size_t n, struct herald_result *const *r)
{
  (void) state; (void) m; (void) n; (void) r;
  return 0;
}

static const struct herald_plugin ba_plugin = {
  .abi_version = HERALD_PLUGIN_ABI_VERSION + 98,
  .struct_size = sizeof (struct herald_plugin),
  .name = "badabi",
  .send = ba_send,
};

HERALD_REGISTER_PLUGIN (ba_plugin)
