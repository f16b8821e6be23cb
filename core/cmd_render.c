/*
 * cmd_render.c: `herald render`, the Liquid engine on the command line.
 *
 * Renders one template against one JSON context (--data) or, with --each,
 * once per line of a JSON Lines file (parse once, render many: previews and
 * speed measurements).  Writes exactly the rendered text to stdout; errors
 * go to stderr as file:line:col: message.  Exit 0 ok, 1 template or data
 * error, 2 usage error.  Never writes anywhere but stdout and stderr.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "liquid/liquid.h"
#include "tz.h"
#include "util.h"

int cmd_render(int argc, char **argv);

static const char render_usage[] =
	"usage: herald render TEMPLATE_FILE [--data FILE.json] [--each FILE.jsonl]\n"
	"                     [--partials DIR] [--autoescape] [--strict]\n"
	"                     [--timezone ZONE] [--now EPOCH_SECONDS]\n"
	"\n"
	"Renders a Liquid template to standard output, exactly.\n"
	"  --data FILE.json    the context (a JSON object); default {}\n"
	"  --each FILE.jsonl   parse once, render once per line (each line is the\n"
	"                      whole context), each result followed by a newline\n"
	"  --partials DIR      {%% render 'x' %%} and {%% include 'x' %%} read DIR/x.liquid\n"
	"                      (default: _partials beside the template)\n"
	"  --autoescape        HTML-escape every {{ }} output (email.html parts)\n"
	"  --strict            undefined variables and unknown filters are errors\n"
	"  --timezone ZONE     IANA zone for the date filter (default: the\n"
	"                      context's customer.timezone, else UTC)\n"
	"  --now SECONDS       fixed time for 'now' (reproducible output)\n";

/* Reads a whole file; returns a malloc'ed buffer (caller frees) or NULL
 * with errno set. */
static char *render_slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[len] = 0;
	*len_r = len;
	return buf;
}

struct render_partials {
	char dir[PATH_MAX];
};

/* Partial names are file names inside DIR: refuse anything that could
 * climb out of it. */
static int render_name_ok(const char *name)
{
	if (!*name || name[0] == '/' || name[0] == '.')
		return 0;
	if (strstr(name, "..") || strchr(name, '\\'))
		return 0;
	return 1;
}

static char *render_loader(void *ud, const char *name, size_t *len_r,
			   char **filename_r)
{
	struct render_partials *rp = ud;
	char path[PATH_MAX + 256];
	char *src;
	int n;

	if (!rp->dir[0] || !render_name_ok(name))
		return NULL;
	n = snprintf(path, sizeof(path), "%s/%s.liquid", rp->dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	src = render_slurp(path, len_r);
	if (src)
		*filename_r = strdup(path);
	return src;
}

/* One --each line: render it and write the result and a newline.
 * Returns 0 or -1 (reported). */
static int render_line(const liquid_template *t, const char *line, size_t n,
		       long lineno, const char *each_path,
		       const struct liquid_render_options *ro,
		       struct liquid_buf *out);

static int render_write(const char *p, size_t n)
{
	if (n && fwrite(p, 1, n, stdout) != n)
		return -1;
	return 0;
}

static void render_report(const struct liquid_error *err)
{
	char msg[1024];

	liquid_error_format(err, msg, sizeof(msg));
	escape_in_place(msg, sizeof(msg));	/* it may quote the input */
	fprintf(stderr, "%s\n", msg);
}

static int render_line(const liquid_template *t, const char *line, size_t n,
		       long lineno, const char *each_path,
		       const struct liquid_render_options *ro,
		       struct liquid_buf *out)
{
	struct liquid_error err;

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n == 0)
		return 0;
	/* JSON text straight into the engine: no json_t per line (the
	 * measured bottleneck of --each) */
	liquid_buf_reset(out);
	if (liquid_render_json(t, line, n, ro, out, &err)) {
		if (!strcmp(err.filename, "<context>")) {
			char msg[sizeof err.message];

			snprintf(msg, sizeof msg, "%s", err.message);
			escape_in_place(msg, sizeof msg);
			fprintf(stderr, "%s:%ld:%d: %s\n", each_path, lineno,
				err.column, msg);
		}
		else
			render_report(&err);
		return -1;
	}
	if (render_write(out->data, out->len) || fputc('\n', stdout) == EOF) {
		fprintf(stderr, "herald render: write error: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

/* stdout's buffer in --each mode (static: stdout outlives cmd_render) */
static char render_obuf[1 << 16];

/* --each: read(2) into one big buffer and hand every line to render_line
 * where it lies (no copy per line, as getline made; stdio read 4 KiB per
 * system call: 27 000 reads for 110 MB).  Returns 0 or -1 (reported). */
static int render_each(const liquid_template *t, int fd, const char *each_path,
		       const struct liquid_render_options *ro,
		       struct liquid_buf *out)
{
	size_t cap = 1 << 18, have = 0, start, i;
	char *buf = malloc(cap), *nb, *nl;
	long lineno = 0;
	ssize_t n;
	int ret = -1, eof = 0;

	if (!buf) {
		fprintf(stderr, "herald render: out of memory\n");
		return -1;
	}
	while (!eof) {
		if (have == cap) {
			/* one line longer than the buffer */
			nb = realloc(buf, cap * 2);
			if (!nb) {
				fprintf(stderr, "herald render: out of memory\n");
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + have, cap - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "herald render: cannot read '%s': %s\n",
				each_path, strerror(errno));
			goto out;
		}
		if (n == 0) {
			eof = 1;
			if (have && buf[have - 1] != '\n') {
				/* last line without its newline */
				if (have == cap) {
					nb = realloc(buf, cap + 1);
					if (!nb) {
						fprintf(stderr, "herald render: "
								"out of memory\n");
						goto out;
					}
					buf = nb;
					cap++;
				}
				buf[have++] = '\n';
			}
		}
		have += (size_t)n;
		start = 0;
		while (start < have &&
		       (nl = memchr(buf + start, '\n', have - start))) {
			i = (size_t)(nl - buf) + 1;
			if (render_line(t, buf + start, i - start, ++lineno,
					each_path, ro, out))
				goto out;
			start = i;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int cmd_render(int argc, char **argv)
{
	const char *tpl_path = NULL, *data_path = NULL, *each_path = NULL;
	const char *partials = NULL, *zone = NULL;
	struct liquid_options o;
	struct liquid_render_options ro;
	struct liquid_error err;
	struct liquid_buf out;
	struct render_partials rp;
	liquid_template *t = NULL;
	json_t *ctx = NULL;
	char *src = NULL;
	size_t len = 0;
	FILE *each = NULL;
	int i, ret = 1;
	long long now = 0;
	int has_now = 0;

	liquid_options_init(&o);
	liquid_buf_init(&out);
	memset(&err, 0, sizeof(err));
	memset(&rp, 0, sizeof(rp));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int takes = !strcmp(a, "--data") || !strcmp(a, "--each") ||
			    !strcmp(a, "--partials") || !strcmp(a, "--timezone") ||
			    !strcmp(a, "--now");

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(render_usage, stdout);
			return 0;
		}
		if (takes && i + 1 >= argc) {
			fprintf(stderr, "herald render: %s needs a value\n%s", a,
				render_usage);
			return 2;
		}
		if (!strcmp(a, "--data")) {
			data_path = argv[++i];
		} else if (!strcmp(a, "--each")) {
			each_path = argv[++i];
		} else if (!strcmp(a, "--partials")) {
			partials = argv[++i];
		} else if (!strcmp(a, "--timezone")) {
			zone = argv[++i];
		} else if (!strcmp(a, "--now")) {
			char *end;

			errno = 0;
			now = strtoll(argv[++i], &end, 10);
			if (errno || *end || end == argv[i]) {
				fprintf(stderr, "herald render: --now '%s' is not "
						"a number of seconds\n", argv[i]);
				return 2;
			}
			has_now = 1;
		} else if (!strcmp(a, "--autoescape")) {
			o.autoescape = 1;
		} else if (!strcmp(a, "--strict")) {
			o.strict_variables = 1;
			o.strict_filters = 1;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "herald render: unknown option '%s'\n%s",
				a, render_usage);
			return 2;
		} else if (!tpl_path) {
			tpl_path = a;
		} else {
			fprintf(stderr, "herald render: unexpected argument '%s'\n%s",
				a, render_usage);
			return 2;
		}
	}
	if (!tpl_path) {
		fprintf(stderr, "herald render: no template file\n%s", render_usage);
		return 2;
	}
	if (data_path && each_path) {
		fprintf(stderr, "herald render: --data and --each exclude each other\n");
		return 2;
	}
	if (zone && !tz_valid(zone)) {
		fprintf(stderr, "herald render: unknown time zone '%s'\n", zone);
		return 2;
	}
	if (partials) {
		snprintf(rp.dir, sizeof(rp.dir), "%s", partials);
	} else {
		/* default: _partials beside the template */
		const char *slash = strrchr(tpl_path, '/');
		struct stat sb;

		if (slash)
			snprintf(rp.dir, sizeof(rp.dir), "%.*s/_partials",
				 (int)(slash - tpl_path), tpl_path);
		else
			snprintf(rp.dir, sizeof(rp.dir), "_partials");
		if (stat(rp.dir, &sb) || !S_ISDIR(sb.st_mode))
			rp.dir[0] = 0;
	}

	src = render_slurp(tpl_path, &len);
	if (!src) {
		fprintf(stderr, "herald render: cannot read '%s': %s\n", tpl_path,
			strerror(errno));
		goto out;
	}
	o.loader = render_loader;
	o.loader_data = &rp;
	o.tz_offset = tz_offset;
	o.has_now = has_now;
	o.fixed_now = now;
	t = liquid_parse(src, len, tpl_path, &o, &err);
	if (!t) {
		render_report(&err);
		goto out;
	}
	memset(&ro, 0, sizeof(ro));
	/* --timezone, else the customer's own zone, else UTC */
	ro.timezone = zone;
	ro.customer_zone = 1;

	if (!each_path) {
		json_error_t je;

		if (data_path) {
			ctx = json_load_file(data_path, JSON_DECODE_ANY, &je);
			if (!ctx) {
				fprintf(stderr, "%s:%d:%d: %s\n", data_path, je.line,
					je.column, je.text);
				goto out;
			}
			if (!json_is_object(ctx)) {
				fprintf(stderr, "%s:1:1: the data must be a JSON object\n",
					data_path);
				goto out;
			}
		}
		if (liquid_render_ex(t, ctx, &ro, &out, &err)) {
			render_report(&err);
			goto out;
		}
		if (render_write(out.data, out.len) || fflush(stdout)) {
			fprintf(stderr, "herald render: write error: %s\n",
				strerror(errno));
			goto out;
		}
		ret = 0;
		goto out;
	}

	each = strcmp(each_path, "-") ? fopen(each_path, "r") : stdin;
	if (!each) {
		fprintf(stderr, "herald render: cannot read '%s': %s\n", each_path,
			strerror(errno));
		goto out;
	}
	/* a real buffer: setvbuf with a NULL buffer keeps glibc's 4 KiB one
	 * (strace: one write(2) per 4 KiB of output) */
	setvbuf(stdout, render_obuf, _IOFBF, sizeof(render_obuf));
	if (render_each(t, fileno(each), each_path, &ro, &out))
		goto out;
	if (fflush(stdout)) {
		fprintf(stderr, "herald render: write error: %s\n", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (each && each != stdin)
		fclose(each);
	json_decref(ctx);
	liquid_template_free(t);
	liquid_buf_free(&out);
	free(src);
	return ret;
}
