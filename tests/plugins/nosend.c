/* nosend: a plugin without a send function; the loader refuses it. */
#include <herald/plugin.h>

static const struct herald_plugin ns_plugin = {
  HERALD_PLUGIN_INIT,
  .name = "nosend",
};

HERALD_REGISTER_PLUGIN (ns_plugin)
