/* plugin-keys: print the keys a built plugin accepts, for the manual
 * pages' test (tests/core/manpages.sh).  It reads them from the plugin
 * itself, as the core does, so the list cannot drift from the code.
 * Never used to send anything: no plugin function but the entry point is
 * called.
 *
 * Usage: plugin-keys PLUGIN.so
 * Prints "name NAME", then "key KEY" for each of config_keys and
 * "secret KEY" for each of secret_keys.  Exit 1 when the file does not
 * load or is not a Herald plugin. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "herald/plugin.h"

int
main (int argc, char **argv)
{
  const struct herald_plugin *p;
  herald_plugin_entry_fn entry;
  void *dl;
  size_t i;

  if (argc != 2) {
    fprintf (stderr, "usage: plugin-keys PLUGIN.so\n");
    return 2;
  }
  dl = dlopen (argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    fprintf (stderr, "plugin-keys: %s\n", dlerror ());
    return 1;
  }
  *(void **) (&entry) = dlsym (dl, HERALD_PLUGIN_ENTRY_NAME);
  p = entry ? entry () : NULL;
  if (!p || !p->name) {
    fprintf (stderr, "plugin-keys: %s: not a Herald plugin\n", argv[1]);
    return 1;
  }
  printf ("name %s\n", p->name);
  for (i = 0; p->config_keys && p->config_keys[i]; i++)
    printf ("key %s\n", p->config_keys[i]);
  for (i = 0; p->secret_keys && p->secret_keys[i]; i++)
    printf ("secret %s\n", p->secret_keys[i]);
  /* Plugins are never dlclose'd by the core either (see loader.c). */
  return 0;
}
