/* deps.h: a module's dependencies besides its sources (its headers): a sorted set of root-relative or absolute paths. */
#ifndef HRD_DEPS_H
#define HRD_DEPS_H

/*
 * Errors: -1 with errno.
 */

#include <stddef.h>

typedef struct hrd_deps {
	char **path; /* sorted, unique, NULL-terminated (NULL itself while empty) */
	size_t n;
} hrd_deps;

/* Add path, made root-relative when it lies under root ("./" and "x/.." taken out). 0, or -1 out of memory. */
int hrd_deps_add(hrd_deps *d, const char *root, const char *path);
/* 1 when path (root-relative, as the watcher gives it) is in d. */
int hrd_deps_has(const hrd_deps *d, const char *path);
/* 1 when some member of d other than path has path's file name: path may shadow it on an include path. */
int hrd_deps_shadowed(const hrd_deps *d, const char *path);
/* Every member of from added to d. 0 or -1. */
int hrd_deps_merge(hrd_deps *d, const hrd_deps *from);
/* 1 when both hold the same paths. */
int hrd_deps_equal(const hrd_deps *a, const hrd_deps *b);
void hrd_deps_free(hrd_deps *d);

/*
 * Add the prerequisites of the dependency file at path (read through dirfd)
 * to d, but for the module's own sources (n of them). 0; -1 with errno when
 * it cannot be read, is longer than HRD_DEPFILE_MAX (EFBIG) or is not a
 * dependency file.
 */
#define HRD_DEPFILE_MAX (16u << 20)
int hrd_deps_read(hrd_deps *d, int dirfd, const char *path, const char *root, char *const *sources, size_t n);
/* The same for a compile run in the absolute folder dir: the prerequisites it names relative to dir are taken there. */
int hrd_deps_read_in(hrd_deps *d, int dirfd, const char *path, const char *root, const char *dir, char *const *sources,
                     size_t n);

#endif
