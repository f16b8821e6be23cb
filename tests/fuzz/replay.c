/* replay: the normal suite's side of a libFuzzer target.  Linked with one
 * tests/fuzz/fuzz_TARGET.c (FUZZ_TARGET names it), it runs the target's
 * LLVMFuzzerTestOneInput once on every file of tests/fuzz/corpus/TARGET:
 * the seeds and every input that once crashed (named regress-*), so a bug
 * the fuzzer found stays fixed in every build, sanitized or not.  A broken
 * invariant aborts, which the TAP driver reports.  Prints TAP. */
#include <config.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static int
cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
main (int argc, char **argv)
{
  const char *src = getenv ("HERALD_SRCDIR");
  char dir[4096], path[8192];
  char **names = NULL;
  size_t n = 0, i;
  struct dirent *e;
  DIR *d;

  char tmp[] = "/tmp/herald-replay.XXXXXX";
  int made_tmp = 0;

  snprintf (dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : ".",
            FUZZ_TARGET);
  /* The targets that need files write them under FUZZ_TMP. */
  if (!getenv ("FUZZ_TMP")) {
    if (!mkdtemp (tmp)) {
      perror ("mkdtemp");
      return 1;
    }
    setenv ("FUZZ_TMP", tmp, 1);
    made_tmp = 1;
  }
  if (!(d = opendir (dir))) {
    printf ("1..0 # SKIP %s: cannot open\n", dir);
    return 0;
  }
  while ((e = readdir (d)))
    if (e->d_name[0] != '.') {
      names = realloc (names, (n + 1) * sizeof *names);
      if (!names)
        abort ();
      names[n++] = strdup (e->d_name);
    }
  closedir (d);
  qsort (names, n, sizeof *names, cmp);
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  printf ("1..%zu\n", n);
  for (i = 0; i < n; i++) {
    FILE *fp;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;

    snprintf (path, sizeof path, "%s/%s", dir, names[i]);
    if (!(fp = fopen (path, "rb"))) {
      printf ("not ok %zu - %s: cannot open\n", i + 1, names[i]);
      continue;
    }
    do {
      if (len == cap) {
        cap = cap ? 2 * cap : 4096;
        if (!(buf = realloc (buf, cap)))
          abort ();
      }
      got = fread (buf + len, 1, cap - len, fp);
      len += got;
    } while (got > 0);
    fclose (fp);
    fflush (stdout);
    LLVMFuzzerTestOneInput (buf, len);
    printf ("ok %zu - %s %s\n", i + 1, FUZZ_TARGET, names[i]);
    free (buf);
    free (names[i]);
  }
  free (names);
  if (made_tmp) {
    snprintf (path, sizeof path, "rm -rf '%s'", tmp);
    if (system (path) != 0)
      fprintf (stderr, "replay: could not remove %s\n", tmp);
  }
  return 0;
}
