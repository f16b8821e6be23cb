/*
 * conformance.c: runs every case of the golden-liquid suite
 * ($HERALD_SRCDIR/../shared/conformance/golden_liquid.json, or argv[1])
 * through the engine and prints TAP.  Cases listed in known-failures.txt
 * (name TAB reason) are the expected failures, reported as TODO; that list
 * is the only one (a strict2 tag excuses nothing).  The run exits 1 when
 * any other case fails, when a known failure starts passing (XPASS: take
 * it off the list), when the list names a case the suite does not have,
 * or when fewer than 99% of the non-strict2 cases pass.
 * LIQUID_CONF_VERBOSE=1 prints diffs.
 * Every case runs twice: context as a json_t (liquid_render) and as JSON
 * text (liquid_render_json, the engine's own objects); both must pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "liquid.h"

struct known {
	char **names;
	size_t n;
};

static void load_known(struct known *k, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	k->names = NULL;
	k->n = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');

		if (line[0] == '#' || !tab)
			continue;
		*tab = 0;
		k->names = realloc(k->names, (k->n + 1) * sizeof(char *));
		if (!k->names)
			abort();
		k->names[k->n++] = strdup(line);
	}
	fclose(f);
}

/* 1 when NAME is on the list; marks its entry as seen in SEEN */
static int is_known(const struct known *k, const char *name, char *seen)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (!strcmp(k->names[i], name)) {
			seen[i] = 1;
			return 1;
		}
	return 0;
}

static char *loader(void *ud, const char *name, size_t *len_r, char **fn_r)
{
	json_t *tpls = ud, *s;

	(void)fn_r;
	if (!tpls || !(s = json_object_get(tpls, name)) || !json_is_string(s))
		return NULL;
	*len_r = json_string_length(s);
	return strndup(json_string_value(s), *len_r);
}

static int has_tag(json_t *c, const char *tag)
{
	json_t *tags = json_object_get(c, "tags"), *t;
	size_t i;

	json_array_foreach(tags, i, t)
		if (json_is_string(t) && !strcmp(json_string_value(t), tag))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	char path[4096], kpath[4096];
	const char *srcdir = getenv("HERALD_SRCDIR");
	const char *verbose = getenv("LIQUID_CONF_VERBOSE");
	json_t *root, *tests, *c;
	json_error_t jerr;
	struct known known;
	size_t i, total = 0, passed = 0, n, unexpected = 0, stale = 0;
	struct liquid_buf out;
	char *seen;
	int rc = 0;

	if (!srcdir)
		srcdir = ".";
	if (argc > 1)
		snprintf(path, sizeof(path), "%s", argv[1]);
	else
		snprintf(path, sizeof(path),
			 "%s/../shared/conformance/golden_liquid.json", srcdir);
	snprintf(kpath, sizeof(kpath), "%s/tests/liquid/known-failures.txt",
		 srcdir);
	root = json_load_file(path, 0, &jerr);
	if (!root) {
		printf("1..0 # SKIP golden_liquid.json not found (%s)\n", path);
		return 0;
	}
	load_known(&known, kpath);
	seen = calloc(known.n ? known.n : 1, 1);
	if (!seen)
		abort();
	tests = json_object_get(root, "tests");
	n = json_array_size(tests);
	printf("1..%zu\n", n + 2);
	liquid_buf_init(&out);
	json_array_foreach(tests, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		json_t *tpl = json_object_get(c, "template");
		json_t *data = json_object_get(c, "data");
		json_t *tpls = json_object_get(c, "templates");
		int invalid = json_is_true(json_object_get(c, "invalid"));
		int strict2 = has_tag(c, "strict2");
		struct liquid_options o;
		struct liquid_error err;
		liquid_template *t;
		int ok = 0, r = -1, pass, known_fail;
		char emsg[1024] = "";
		char *dtext = data ? json_dumps(data, JSON_COMPACT) : strdup("{}");

		liquid_options_init(&o);
		o.loader = loader;
		o.loader_data = tpls;
		o.timezone = "UTC";
		o.has_now = 1;
		o.fixed_now = 1700000000;
		memset(&err, 0, sizeof(err));
		t = liquid_parse(json_string_value(tpl), json_string_length(tpl),
				 "golden", &o, &err);
		for (pass = 0; pass < 2; pass++) {
			int pok = 0;

			liquid_buf_reset(&out);
			if (t && pass == 0)
				r = liquid_render(t, data ? data : NULL, &out, &err);
			else if (t)
				r = liquid_render_json(t, dtext, strlen(dtext), NULL,
						       &out, &err);
			if (!t || r)
				liquid_error_format(&err, emsg, sizeof(emsg));
			if (invalid) {
				pok = !t || r != 0;
			} else if (t && r == 0) {
				json_t *res = json_object_get(c, "result");
				json_t *results = json_object_get(c, "results"), *x;
				size_t k;

				if (res)
					pok = json_string_length(res) == out.len &&
					      !memcmp(json_string_value(res), out.data,
						      out.len);
				json_array_foreach(results, k, x)
					if (json_string_length(x) == out.len &&
					    !memcmp(json_string_value(x), out.data,
						    out.len))
						pok = 1;
			}
			ok = pass == 0 ? pok : ok && pok;
			if (!pok)
				break;
		}
		free(dtext);
		if (!strict2) {
			total++;
			passed += ok;
		}
		known_fail = is_known(&known, name, seen);
		if (ok != !known_fail)
			unexpected++;
		if (ok) {
			printf("ok %zu - %s%s\n", i + 1, name,
			       known_fail ? " # TODO known failure passes now" : "");
		} else {
			printf("not ok %zu - %s%s\n", i + 1, name,
			       known_fail ? " # TODO known failure" : "");
			if (verbose) {
				char *d = data ? json_dumps(data, JSON_COMPACT) : NULL;

				printf("#   template: %s\n", json_string_value(tpl));
				printf("#   data:     %s\n", d ? d : "{}");
				if (invalid)
					printf("#   expected an error, got: %.*s\n",
					       (int)out.len, out.data);
				else
					printf("#   expected: %s\n#   got:      %.*s %s\n",
					       json_dumps(json_object_get(c, "result") ?
							  json_object_get(c, "result") :
							  json_object_get(c, "results"),
							  JSON_ENCODE_ANY),
					       (int)out.len, out.data ? out.data : "", emsg);
				free(d);
			}
		}
		liquid_template_free(t);
	}
	for (i = 0; i < known.n; i++)
		if (!seen[i]) {
			printf("#   known-failures.txt: no case named '%s'\n",
			       known.names[i]);
			stale++;
		}
	printf("%s %zu - known-failures.txt names only cases of the suite "
	       "(%zu stale)\n", stale ? "not ok" : "ok", n + 1, stale);
	printf("%s %zu - conformance %zu/%zu non-strict2 cases pass (%.2f%%, "
	       "need 99%%)\n",
	       passed * 100 < total * 99 ? "not ok" : "ok", n + 2, passed, total,
	       total ? 100.0 * (double)passed / (double)total : 0.0);
	if (unexpected || stale || passed * 100 < total * 99) {
		printf("# %zu unexpected result(s), %zu stale known failure(s)\n",
		       unexpected, stale);
		rc = 1;
	}
	liquid_buf_free(&out);
	json_decref(root);
	for (i = 0; i < known.n; i++)
		free(known.names[i]);
	free(known.names);
	free(seen);
	return rc;
}
