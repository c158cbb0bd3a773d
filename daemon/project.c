/* project.c: module names and sources from the root's layout, and the key of a build's inputs. */
#include "project.h"
#include "config.h"
#include "../proto/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_c(const char *name)
{
	size_t n = strlen(name);
	return n > 2 && strcmp(name + n - 2, ".c") == 0;
}

/* A source in a module's folder: a .c file that is not hidden. */
static int is_source(const char *name)
{
	return name[0] != '.' && is_c(name);
}

/* An excluded path, or one inside an excluded folder. */
static int excluded(const hrd_project *p, const char *path)
{
	return p->conf && hrd_config_excluded(p->conf, path);
}

int hrd_project_module_of(const hrd_project *p, const char *path, char *name, size_t n)
{
	const char *slash = strchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : strlen(path);
	if (len == 0 || len >= n)
		return 0;
	if ((len == 1 && path[0] == '.') || (len == 2 && memcmp(path, "..", 2) == 0) ||
	    (len == 4 && memcmp(path, ".git", 4) == 0))
		return 0;
	if ((p->skip && strlen(p->skip) == len && memcmp(p->skip, path, len) == 0) || excluded(p, path))
		return 0;
	if (slash) {
		/* ROOT/NAME/file.c: only .c files directly in the folder count. */
		if (strchr(slash + 1, '/') || !is_source(slash + 1))
			return 0;
	} else if (is_c(path)) {
		len -= 2;
	}
	memcpy(name, path, len);
	name[len] = '\0';
	return 1;
}

void hrd_sources_free(hrd_sources *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->path[i]);
	free(s->path);
	s->path = NULL;
	s->n = 0;
}

static int add(hrd_sources *s, const char *dir, const char *file)
{
	char **grown = realloc(s->path, (s->n + 1) * sizeof *grown);
	if (!grown)
		return -1;
	s->path = grown;
	if (asprintf(&s->path[s->n], "%s%s%s", dir, *dir ? "/" : "", file) < 0)
		return -1;
	s->n++;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .c files directly in ROOT/name, sorted; none when it is no folder. */
static int folder_sources(const hrd_project *p, const char *name, hrd_sources *out)
{
	int fd = openat(p->rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	struct stat st;
	char rel[512];
	while (rc == 0 && (e = readdir(d)))
		if (is_source(e->d_name) && fstatat(fd, e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
		    (snprintf(rel, sizeof rel, "%s/%s", name, e->d_name), !excluded(p, rel)))
			rc = add(out, name, e->d_name);
	closedir(d);
	if (rc == 0 && out->n)
		qsort(out->path, out->n, sizeof *out->path, cmp);
	return rc;
}

struct globbing {
	const hrd_project *p;
	hrd_sources *out;
	int rc;
};

/* The .c files a pattern matches under the root, root-relative. */
static int glob_one(void *arg, const char *pattern)
{
	struct globbing *g = arg;
	glob_t gl;
	size_t rl = strlen(g->p->root);
	/* The root is a path, not a pattern: its own *, ?, [ and \ are escaped. */
	char *full = malloc(2 * rl + strlen(pattern) + 2), *o = full;
	if (!full)
		return g->rc = -1;
	for (const char *s = g->p->root; *s; s++) {
		if (strchr("*?[]\\", *s))
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '/';
	strcpy(o, pattern);
	int rc = glob(full, GLOB_NOSORT, NULL, &gl);
	free(full);
	if (rc == GLOB_NOMATCH)
		return 0;
	if (rc != 0)
		return g->rc = -1;
	for (size_t i = 0; i < gl.gl_pathc && g->rc == 0; i++) {
		const char *rel = gl.gl_pathv[i] + rl + 1, *base = strrchr(rel, '/');
		struct stat st;
		if (!is_source(base ? base + 1 : rel) || excluded(g->p, rel) ||
		    fstatat(g->p->rootfd, rel, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		int dup = 0;
		for (size_t k = 0; k < g->out->n && !dup; k++)
			dup = strcmp(g->out->path[k], rel) == 0;
		if (!dup && add(g->out, "", rel) < 0)
			g->rc = -1;
	}
	globfree(&gl);
	return g->rc;
}

/* 1 when the top-level entry is a link to a place outside the root, which is not to be followed. */
static int outside(const hrd_project *p, const char *entry)
{
	struct stat st;
	if (p->follow || !p->root || fstatat(p->rootfd, entry, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
		return 0;
	char *full, *to = NULL;
	if (asprintf(&full, "%s/%s", p->root, entry) < 0)
		return 0;
	size_t n = strlen(p->root);
	int out = (to = realpath(full, NULL)) && !(strncmp(to, p->root, n) == 0 && to[n] == '/');
	free(full);
	free(to);
	return out;
}

int hrd_project_resolve(const hrd_project *p, const char *name, hrd_sources *out)
{
	out->path = NULL;
	out->n = 0;
	if (p->skip && strcmp(name, p->skip) == 0)
		return HRD_KIND_NONE;
	if (p->conf && p->root && hrd_config_has_sources(p->conf, name)) {
		/* Sources of its own: what its patterns match now, whatever the folders say. */
		struct globbing g = {p, out, 0};
		hrd_config_words(p->conf, name, HRD_SOURCES, glob_one, &g);
		if (g.rc < 0) {
			hrd_sources_free(out);
			return -1;
		}
		if (out->n)
			qsort(out->path, out->n, sizeof *out->path, cmp);
		return out->n ? HRD_KIND_DIR : HRD_KIND_NONE;
	}
	char file[256];
	struct stat st;
	snprintf(file, sizeof file, "%s.c", name);
	int has_file = !excluded(p, file) && fstatat(p->rootfd, file, &st, 0) == 0 && S_ISREG(st.st_mode);
	if (!excluded(p, name) && folder_sources(p, name, out) < 0) {
		hrd_sources_free(out);
		return -1;
	}
	if (has_file && out->n) {
		hrd_sources_free(out);
		return HRD_KIND_CONFLICT;
	}
	if (out->n || has_file) {
		if (outside(p, out->n ? name : file)) {
			hrd_sources_free(out);
			return HRD_KIND_OUTSIDE;
		}
	}
	if (out->n)
		return HRD_KIND_DIR;
	if (!has_file)
		return HRD_KIND_NONE;
	if (add(out, "", file) < 0) {
		hrd_sources_free(out);
		return -1;
	}
	return HRD_KIND_FILE;
}

struct matching {
	const char *path;
	int hit;
};

static int match_one(void *arg, const char *pattern)
{
	struct matching *m = arg;
	m->hit |= fnmatch(pattern, m->path, FNM_PATHNAME | FNM_PERIOD) == 0;
	return m->hit;
}

void hrd_project_matching(const hrd_project *p, const char *path, void (*fn)(void *arg, const char *name), void *arg)
{
	for (size_t i = 0; p->conf && i < p->conf->nmods; i++) {
		struct matching m = {path, 0};
		const char *name = p->conf->mods[i].name;
		if (hrd_config_has_sources(p->conf, name))
			hrd_config_words(p->conf, name, HRD_SOURCES, match_one, &m);
		if (m.hit)
			fn(arg, name);
	}
}

int hrd_project_scan(const hrd_project *p, void (*fn)(void *arg, const char *name), void *arg)
{
	int fd = openat(p->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct dirent *e;
	char name[256];
	while ((e = readdir(d)))
		if (hrd_project_module_of(p, e->d_name, name, sizeof name))
			fn(arg, name);
	closedir(d);
	for (size_t i = 0; p->conf && i < p->conf->nmods; i++)
		if (hrd_config_has_sources(p->conf, p->conf->mods[i].name))
			fn(arg, p->conf->mods[i].name);
	return 0;
}

static void stamp_of(const struct stat *st, hrd_stamp *out)
{
	*out = (hrd_stamp){(unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (long long)st->st_size,
	                   (long long)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
	                   (long long)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec};
}

static int hash_file(hrp_sha256 *c, int dirfd, const char *path, hrd_stamp *stamp)
{
	/* O_NONBLOCK: a header that became a fifo must not hang the daemon (for a file it changes nothing). */
	int fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* Before reading: a write after this changes what the stamp is compared with. Only a
	 * regular file, and only as much as it held then: a dependency file may name
	 * /dev/zero, and a file that keeps growing is seen to have changed by its stamp. */
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (stamp)
		stamp_of(&st, stamp);
	char buf[65536];
	ssize_t n = 0;
	uint64_t size = 0, left = (uint64_t)st.st_size;
	while (left && (n = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf)) > 0) {
		hrp_sha256_update(c, buf, (size_t)n);
		size += (uint64_t)n;
		left -= (uint64_t)n;
	}
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	/* The length closes each file, so that no two inputs run together. */
	hrp_sha256_update(c, &size, sizeof size);
	return 0;
}

#define TOOL_WORDS 4 /* a compiler behind wrappers: "ccache gcc", "env X=1 distcc cc" */

/*
 * Into c, which file exec runs for word (from dirfd, where the compiler runs),
 * found as posix_spawnp finds it (the daemon's PATH), by its device, inode,
 * size and mtime: a compiler upgraded or swapped under the same name is
 * another input, told without running it. Not found: zeros.
 */
static void hash_tool(hrp_sha256 *c, int dirfd, const char *word)
{
	struct stat st;
	int found = 0;
	if (strchr(word, '/')) {
		found = fstatat(dirfd, word, &st, 0) == 0 && S_ISREG(st.st_mode);
	} else if (*word) {
		const char *path = getenv("PATH");
		for (const char *dir = path ? path : "/bin:/usr/bin"; !found;) {
			const char *end = strchrnul(dir, ':');
			char full[4096];
			/* An empty entry is the folder the compiler runs in, as exec has it. */
			int n = snprintf(full, sizeof full, "%.*s/%s", end > dir ? (int)(end - dir) : 1, end > dir ? dir : ".", word);
			found = n > 0 && (size_t)n < sizeof full && fstatat(dirfd, full, &st, 0) == 0 && S_ISREG(st.st_mode) &&
			        faccessat(dirfd, full, X_OK, AT_EACCESS) == 0;
			if (!*end)
				break;
			dir = end + 1;
		}
	}
	uint64_t id[5] = {0};
	if (found) {
		id[0] = 1;
		id[1] = (uint64_t)st.st_dev;
		id[2] = (uint64_t)st.st_ino;
		id[3] = (uint64_t)st.st_size;
		id[4] = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
	}
	hrp_sha256_update(c, id, sizeof id);
}

int hrd_project_key(const hrd_project *p, const hrd_sources *s, const hrd_deps *d, char *const argv[], char out[65],
                    hrd_stamp *stamps)
{
	hrp_sha256 c;
	hrp_sha256_init(&c);
	for (size_t i = 0; argv[i]; i++)
		hrp_sha256_update(&c, argv[i], strlen(argv[i]) + 1);
	/* The compiler's identity: its first words before the flags (a wrapper, and the compiler it names). */
	hrp_sha256_update(&c, "\0tools", 7);
	for (size_t i = 0; i < TOOL_WORDS && argv[i] && argv[i][0] != '-'; i++)
		hash_tool(&c, p->rootfd, argv[i]);
	for (size_t i = 0; i < s->n; i++) {
		hrp_sha256_update(&c, s->path[i], strlen(s->path[i]) + 1);
		if (hash_file(&c, p->rootfd, s->path[i], stamps ? &stamps[i] : NULL) < 0)
			return -1;
	}
	/* Then the headers: after a marker, so that no source list reads as one with headers. */
	hrp_sha256_update(&c, "\0deps", 5);
	for (size_t i = 0; d && i < d->n; i++) {
		hrd_stamp *st = stamps ? &stamps[s->n + i] : NULL;
		hrp_sha256_update(&c, d->path[i], strlen(d->path[i]) + 1);
		if (hash_file(&c, p->rootfd, d->path[i], st) < 0) {
			/* A header that is gone, or is no longer a file: the compile will say whether it matters. */
			hrp_sha256_update(&c, "\0gone", 5);
			if (st)
				*st = (hrd_stamp){0};
		}
	}
	hrp_sha256_hex(&c, out);
	return 0;
}

int hrd_project_busy(const hrd_project *p, const hrd_sources *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int fd = openat(p->rootfd, s->path[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* The lease is held for an instant; a writer that opens meanwhile
		 * waits that instant (the daemon ignores the SIGIO of the break). */
		int busy = fcntl(fd, F_SETLEASE, F_RDLCK) < 0 && errno == EAGAIN;
		if (!busy)
			fcntl(fd, F_SETLEASE, F_UNLCK);
		close(fd);
		if (busy)
			return 1;
	}
	return 0;
}

int hrd_project_unchanged(const hrd_project *p, const hrd_sources *s, const hrd_deps *d, const hrd_stamp *stamps)
{
	size_t n = s->n + (d ? d->n : 0);
	for (size_t i = 0; i < n; i++) {
		const char *path = i < s->n ? s->path[i] : d->path[i - s->n];
		struct stat st;
		hrd_stamp now = {0};
		if (fstatat(p->rootfd, path, &st, 0) == 0 && (i < s->n || S_ISREG(st.st_mode)))
			stamp_of(&st, &now);
		else if (i < s->n)
			return 0; /* a header that is not a file counts as gone, as the key has it */
		if (memcmp(&now, &stamps[i], sizeof now) != 0)
			return 0;
	}
	return 1;
}
