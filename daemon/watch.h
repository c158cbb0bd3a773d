/* watch.h: the watcher interface: changed paths under the root, from one backend chosen in one place. */
#ifndef HRD_WATCH_H
#define HRD_WATCH_H

#include <stddef.h>

typedef struct hrd_watch hrd_watch;

enum hrd_watch_kind {
	HRD_WATCH_CHANGED = 1, /* path (root-relative) settled: closed after writing, renamed into place, removed, created as a folder */
	HRD_WATCH_RESCAN = 2,  /* events were lost or the tree moved: compare everything */
};

/* What each backend provides, behind the handle. */
struct hrd_watch_ops {
	int (*fd)(hrd_watch *w);
	int (*take)(hrd_watch *w, void (*fn)(void *arg, int kind, const char *path), void *arg);
	void (*close)(hrd_watch *w);
};

struct hrd_watch {
	const struct hrd_watch_ops *ops;
	const char *backend; /* "inotify" */
	char reason[256];    /* why this backend, for status */
	_Atomic int unwatched; /* folders that could not be watched (the log says why), for status */
};

/*
 * Watch root (an absolute, resolved path), recursively, skipping the folders
 * in exclude (absolute paths, NULL-terminated) and every ".git". backend is
 * "auto" or a backend's name. When it returns, the watches are in place: a
 * scan made after it misses nothing. On failure returns -1 with a message in err.
 */
int hrd_watch_open(const char *backend, const char *root, const char *const *exclude,
                   hrd_watch **out, char *err, size_t errsz);
/* Readable when events wait: then call hrd_watch_take. */
int hrd_watch_fd(hrd_watch *w);
/* Hand every waiting event to fn, in order. Returns 0 or -1. */
int hrd_watch_take(hrd_watch *w, void (*fn)(void *arg, int kind, const char *path), void *arg);
void hrd_watch_close(hrd_watch *w); /* NULL is a no-op */

/* The backends, one file each. */
int hrd_watch_inotify_open(const char *root, const char *const *exclude, hrd_watch **out,
                           char *err, size_t errsz);

#endif
