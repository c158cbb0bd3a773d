/* watch.h: the watcher interface: changed paths under the root, from one backend chosen in one place (the handle is opaque: watch_impl.h). */
#ifndef HRD_WATCH_H
#define HRD_WATCH_H

/*
 * Errors: constructors return -1 with a message for the user in err; the backends' threads log what
 * they cannot watch and carry on.
 */

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hrd_watch hrd_watch;

enum hrd_watch_kind {
	HRD_WATCH_CHANGED = 1, /* path (root-relative) settled: closed after writing, renamed into place, removed, created as a folder */
	HRD_WATCH_RESCAN = 2,  /* events were lost or the tree moved: compare everything */
};

/* What the watcher says of itself, for status. */
struct hrd_watch_report {
	uint64_t cpu_ms;    /* CPU time since it started: its threads', and the loop thread's inside it */
	uint64_t events;    /* changed paths it handed to the loop */
	uint64_t overflows; /* times the kernel's event queue overflowed */
	uint64_t rescans;   /* times it asked for everything to be compared again (lost events, moved folders) */
};

struct hrd_fsfacts;

struct hrd_watch_options {
	const char *backend;  /* "auto", "inotify", "fanotify" or "poll" */
	int poll_interval_ms; /* 0: the default, 500 */
	int follow_links;     /* a link at the top of the root to a folder outside it is followed (--follow-links) */
	char *const *skip;    /* root-relative folders not to watch (hotreload.conf's exclude), or NULL */
	const struct hrd_fsfacts *facts; /* what hrd_fs_probe said of the root, for auto; NULL: it is probed here */
};

/*
 * Watch root (an absolute, resolved path), recursively, skipping the folders
 * in exclude (absolute paths, NULL-terminated), every ".git" and editors'
 * temporary files. This is the one place that chooses the backend: auto
 * takes what the root's filesystem calls for (fsinfo.h: poll where kernel
 * events miss writers, fanotify for a huge local tree, else inotify), and
 * polls, saying so, when the kernel backend it chose cannot start.
 * hrd_watch_reason says which and why. When it returns, the watches are in
 * place: a scan made after it misses nothing. On failure returns -1 with a
 * message in err.
 */
int hrd_watch_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                   hrd_watch **out, char *err, size_t errsz);
/* Readable when events wait: then call hrd_watch_take. */
int hrd_watch_fd(hrd_watch *w);
/* Hand every waiting event to fn, in order. Returns 0 or -1. */
int hrd_watch_take(hrd_watch *w, void (*fn)(void *arg, int kind, const char *path), void *arg);
void hrd_watch_close(hrd_watch *w); /* NULL is a no-op */
/*
 * Not watch the root-relative folders in skip (NULL-terminated; NULL for
 * none) from now on, instead of the ones before, besides those given at
 * open. When that changes anything, the watches start over and a rescan is
 * posted. Call it on the loop's thread. Returns 0, or -1 (out of memory: the
 * old ones stay).
 */
int hrd_watch_skip(hrd_watch *w, char *const *skip);

void hrd_watch_report(hrd_watch *w, struct hrd_watch_report *r);
/* The backend in use ("inotify", "fanotify", "poll"), and why, for status. */
const char *hrd_watch_backend(const hrd_watch *w);
const char *hrd_watch_reason(const hrd_watch *w);
/* Folders that could not be watched at all (the log says why), and those polled for want of kernel watches. */
int hrd_watch_unwatched(const hrd_watch *w);
int hrd_watch_polled(const hrd_watch *w);
/* Whether links at the top of the root to folders outside it are followed. */
int hrd_watch_follows_links(const hrd_watch *w);

#endif
