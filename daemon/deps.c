/* deps.c: a module's dependencies besides its sources (its headers), as the compiler's dependency files name them. */
#include "deps.h"
#include "depfile.h"
#include "readfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* path with "./" and "x/.." taken out (lexically); a leading ".." stays. */
static char *lexical(const char *path)
{
	size_t n = strlen(path);
	char *out = malloc(n + 2);
	size_t *starts = malloc((n / 2 + 2) * sizeof *starts), depth = 0, o = 0;
	if (!out || !starts) {
		free(out);
		free(starts);
		return NULL;
	}
	int abs = path[0] == '/';
	if (abs)
		out[o++] = '/';
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");
		int up = len == 2 && p[0] == '.' && p[1] == '.';
		if (up && depth) {
			o = starts[--depth]; /* back over the last component */
		} else if ((len && !(len == 1 && p[0] == '.')) && !(up && abs)) {
			if (o > (size_t)abs)
				out[o++] = '/';
			if (!up) /* a leading ".." stays, and is never taken back */
				starts[depth++] = o - (o > (size_t)abs);
			memcpy(out + o, p, len);
			o += len;
		}
		p += len + (p[len] == '/');
	}
	out[o] = '\0';
	free(starts);
	return out;
}

/*
 * path as the watchers name it: under root, relative; above it (a header
 * beside the host's sources, "../game.h"), absolute, as the folder watched
 * for it outside the root (outside.h) names it.
 */
static char *normal(const char *root, const char *path)
{
	size_t rl = strlen(root);
	if (path[0] == '/' && strncmp(path, root, rl) == 0 && path[rl] == '/')
		path += rl + 1;
	char *out = lexical(path), *joined = NULL;
	if (out && out[0] == '.' && out[1] == '.' && (out[2] == '/' || !out[2]) && root[0] == '/') {
		if (asprintf(&joined, "%s/%s", root, out) < 0)
			joined = NULL;
		free(out);
		out = joined ? lexical(joined) : NULL;
		free(joined);
	}
	return out;
}

static size_t find(const hrd_deps *d, const char *path, int *found)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(d->path[mid], path);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static int insert(hrd_deps *d, char *p)
{
	int found;
	size_t at = find(d, p, &found);
	if (found) {
		free(p);
		return 0;
	}
	char **grown = realloc(d->path, (d->n + 2) * sizeof *grown);
	if (!grown) {
		free(p);
		return -1;
	}
	d->path = grown;
	memmove(&grown[at + 1], &grown[at], (d->n - at) * sizeof *grown);
	grown[at] = p;
	grown[++d->n] = NULL;
	return 0;
}

int hrd_deps_add(hrd_deps *d, const char *root, const char *path)
{
	char *p = normal(root, path);
	if (p && !*p) {
		free(p); /* "x/..": no file */
		return 0;
	}
	return p ? insert(d, p) : -1;
}

int hrd_deps_has(const hrd_deps *d, const char *path)
{
	int found;
	find(d, path, &found);
	return found;
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int hrd_deps_shadowed(const hrd_deps *d, const char *path)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(base(d->path[i]), base(path)) == 0 && strcmp(d->path[i], path) != 0)
			return 1;
	return 0;
}

int hrd_deps_merge(hrd_deps *d, const hrd_deps *from)
{
	for (size_t i = 0; i < from->n; i++) {
		char *p = strdup(from->path[i]);
		if (!p || insert(d, p) < 0)
			return -1;
	}
	return 0;
}

int hrd_deps_equal(const hrd_deps *a, const hrd_deps *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->path[i], b->path[i]) != 0)
			return 0;
	return 1;
}

void hrd_deps_free(hrd_deps *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->path[i]);
	free(d->path);
	d->path = NULL;
	d->n = 0;
}

struct reading {
	hrd_deps *d;
	const char *root, *dir;
	char *const *sources;
	size_t n;
};

static int take(void *arg, const char *path)
{
	struct reading *r = arg;
	char *joined = NULL;
	/* a compile run in a folder of its own names its inputs relative to that folder */
	if (r->dir && path[0] != '/') {
		if (asprintf(&joined, "%s/%s", r->dir, path) < 0)
			return -2;
		path = joined;
	}
	char *p = normal(r->root, path);
	free(joined);
	if (!p)
		return -2;
	if (!*p) {
		free(p);
		return 0;
	}
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(p, r->sources[i]) == 0) {
			free(p);
			return 0;
		}
	return insert(r->d, p) < 0 ? -2 : 0;
}

int hrd_deps_read(hrd_deps *d, int dirfd, const char *path, const char *root, char *const *sources, size_t n)
{
	return hrd_deps_read_in(d, dirfd, path, root, NULL, sources, n);
}

int hrd_deps_read_in(hrd_deps *d, int dirfd, const char *path, const char *root, const char *dir, char *const *sources,
                     size_t n)
{
	size_t len;
	/* a compiler's list of headers: long, but not without end */
	char *text = hrd_readfile(dirfd, path, HRD_DEPFILE_MAX, &len);
	if (!text)
		return -1;
	struct reading r = {d, root, dir, sources, n};
	int rc = hrd_depfile_parse(text, len, take, &r);
	free(text);
	if (rc != 0)
		errno = rc == -2 ? ENOMEM : EINVAL;
	return rc == 0 ? 0 : -1;
}
