/* fuzz_gateway: libFuzzer target for the gateway INI (core/config.c):
 * inih's parse through config.c's line reader, then every check of
 * config_gateway_load.  The input is the file's bytes, written to
 * $FUZZ_TMP/herald.ini (the loader wants a path).  Besides the
 * sanitizers' findings (leaks included), it checks:
 *  - the loader either returns a gateway and leaves err empty, or returns
 *    NULL with one line of UTF-8 text in err that starts with
 *    "FILE:LINE: " (or "FILE: " for what concerns the whole file);
 *  - what it loaded is what the file says: every section name and key is
 *    in the file as written (inih cuts nothing silently), every channel
 *    has a plugin, a kind and 1 to CONFIG_MAX_LANES lanes;
 *  - [tracking] base_url and unsubscribe_mailto, which every e-mail's
 *    List-Unsubscribe header carries, are visible ASCII without '<' or
 *    '>' (what plugins/common/mime.c takes: anything else would make
 *    every e-mail fail at send time);
 *  - each warning (config_gateway_warnings) is a line like an error.
 * Built and run by tests/fuzz/fuzz.sh. */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/config.h"   /* not autoconf's config.h */
#include "../../core/util.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); \
                       abort (); } while (0)

static char fz_path[4096];

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *tmp = getenv ("FUZZ_TMP");

  (void) argc;
  (void) argv;
  snprintf (fz_path, sizeof fz_path, "%s/herald.ini", tmp ? tmp : "/tmp");
  /* No stray PGPASSWORD from a password_file the input names. */
  unsetenv ("PGPASSWORD");
  return 0;
}

/* Write the input to PATH; 0 or -1. */
int fz_write (const char *path, const uint8_t *data, size_t size);
int
fz_write (const char *path, const uint8_t *data, size_t size)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  size_t off = 0;

  if (fd < 0)
    return -1;
  while (off < size) {
    ssize_t n = write (fd, data + off, size - off);
    if (n <= 0) {
      close (fd);
      return -1;
    }
    off += (size_t) n;
  }
  return close (fd);
}

/* ERR is one line of UTF-8 text naming PATH first. */
void fz_check_error (const char *path, const char *err);
void
fz_check_error (const char *path, const char *err)
{
  size_t n = strlen (err), pl = strlen (path), i;

  if (!n)
    FAIL ("refused without a message");
  if (utf8_check (err, n) != n)
    FAIL ("error is not UTF-8: %s", err);
  for (i = 0; i < n; i++)
    if ((unsigned char) err[i] < 0x20 || err[i] == 0x7f)
      FAIL ("error has control character 0x%02x: %s", err[i], err);
  if (strncmp (err, path, pl) != 0 || err[pl] != ':')
    FAIL ("error does not start with the file name: %s", err);
  if (err[pl + 1] != ' ') {
    const char *p = err + pl + 1;
    while (*p >= '0' && *p <= '9')
      p++;
    if (p == err + pl + 1 || (*p != ':' && *p != ' '))
      FAIL ("error has no line number: %s", err);
  }
}

/* Every section name and key of INI is in the file's TEXT. */
void fz_check_names (const struct ini *ini, const uint8_t *text, size_t n);
void
fz_check_names (const struct ini *ini, const uint8_t *text, size_t n)
{
  size_t i, j;

  for (i = 0; i < ini->n; i++) {
    const struct ini_section *sec = &ini->sec[i];
    if (!memmem (text, n, sec->name, strlen (sec->name)))
      FAIL ("section [%s] is not in the file", sec->name);
    for (j = 0; j < sec->n; j++)
      if (!memmem (text, n, sec->kv[j].key, strlen (sec->kv[j].key)))
        FAIL ("[%s] key '%s' is not in the file", sec->name,
              sec->kv[j].key);
  }
}

static void
fz_check_url (const char *what, const char *u)
{
  const char *p;

  for (p = u; p && *p; p++)
    if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || *p == '<'
        || *p == '>')
      FAIL ("[tracking] %s '%s' has byte 0x%02x", what, u, (unsigned char) *p);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct gateway *gw;
  char err[1024];
  size_t i;

  if (fz_write (fz_path, data, size) < 0)
    FAIL ("cannot write %s", fz_path);
  err[0] = '\0';
  gw = config_gateway_load (fz_path, err, sizeof err);
  if (!gw) {
    fz_check_error (fz_path, err);
    return 0;
  }
  if (err[0])
    FAIL ("loaded, with the error '%s'", err);
  fz_check_names (gw->ini, data, size);
  for (i = 0; i < gw->n_channels; i++) {
    const struct channel_conf *ch = &gw->channels[i];
    if (!*ch->name || !*ch->plugin || !*ch->kind || ch->lanes < 1
        || ch->lanes > CONFIG_MAX_LANES)
      FAIL ("channel '%s': plugin '%s', kind '%s', %d lanes", ch->name,
            ch->plugin, ch->kind, ch->lanes);
    if (!config_channel (gw, ch->name))
      FAIL ("channel '%s' is not found by its name", ch->name);
  }
  fz_check_url ("base_url", gw->tracking_base_url);
  fz_check_url ("unsubscribe_mailto", gw->unsubscribe_mailto);
  {
    /* Warnings (lint prints them): lines of text naming file and line. */
    struct strbuf w = STRBUF_INIT;
    size_t n = config_gateway_warnings (gw, &w), lines = 0, start = 0, k;
    for (k = 0; k < w.len; k++)
      if (w.s[k] == '\n') {
        char line[1024];
        snprintf (line, sizeof line, "%.*s", (int) (k - start), w.s + start);
        fz_check_error (fz_path, line);
        lines++;
        start = k + 1;
      }
    if (lines != n || start != w.len)
      FAIL ("%zu warnings in %zu lines:\n%s", n, lines, w.s ? w.s : "");
    strbuf_free (&w);
  }
  config_gateway_free (gw);
  return 0;
}
