/* abi1: a plugin as built against ABI version 1 (the struct ended at
 * inbound).  The loader must still load it, and must not read what lies
 * past a version 1 struct even when struct_size claims more: its kinds
 * here name a built-in kind, which the loader would refuse if it read
 * them. */
#include <stddef.h>
#include <herald/plugin.h>

static int
a1_send (void *state, const struct herald_message *m, size_t n,
         struct herald_result *r)
{
  size_t i;
  (void) state; (void) m;
  for (i = 0; i < n; i++)
    r[i].status = HERALD_SENT;
  return 0;
}

static const char *const a1_parts[] = { "email.body", NULL };
static const struct herald_kind a1_kind = {
  HERALD_KIND_INIT,
  .name = "email",
  .address_field = "email",
  .required_parts = a1_parts,
};
static const struct herald_kind *const a1_kinds[] = { &a1_kind, NULL };

static const struct herald_plugin a1_plugin = {
  .abi_version = 1,
  .struct_size = sizeof (struct herald_plugin),
  .name = "abi1",
  .version = "0.9",
  .send = a1_send,
  .kinds = a1_kinds,
};

HERALD_REGISTER_PLUGIN (a1_plugin)
