/*
 * regress.c: replays every input in tests/liquid/regressions/ (crashes the
 * fuzzer found, hostile templates) through the fuzz harness.  Passing
 * means no crash; run under a sanitizer or valgrind wrapper to also catch
 * memory errors.  Prints TAP.
 */
#include <dirent.h>
#include <stdio.h>
#include "fuzz_harness.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	const char *srcdir = getenv("HERALD_SRCDIR");
	char dir[4096], path[8192];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tests/liquid/regressions",
		 srcdir ? srcdir : ".");
	d = opendir(dir);
	if (!d) {
		printf("1..0 # SKIP %s not found\n", dir);
		return 0;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names)
			abort();
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		FILE *f;
		char *buf;
		long len;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f = fopen(path, "rb");
		if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
		    fseek(f, 0, SEEK_SET)) {
			printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
			if (f)
				fclose(f);
			continue;
		}
		buf = malloc((size_t)len + 1);
		if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
			printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
		} else {
			liquid_fuzz_one((const uint8_t *)buf, (size_t)len);
			printf("ok %zu - %s\n", i + 1, names[i]);
		}
		fflush(stdout);
		free(buf);
		fclose(f);
		free(names[i]);
	}
	free(names);
	return 0;
}
