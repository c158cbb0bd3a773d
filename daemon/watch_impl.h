/* watch_impl.h: the watcher's insides, for watch.c and the backends (one file each) only. */
#ifndef HRD_WATCH_IMPL_H
#define HRD_WATCH_IMPL_H

#include "watch.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hrd_poller hrd_poller;

/* What a backend provides, behind the handle. */
struct hrd_watch_ops {
	/* Called by take() before the queue is handed out, for a backend that
	 * reads its own descriptor on the loop (fanotify); NULL for the others. */
	void (*read)(hrd_watch *w);
	void (*close)(hrd_watch *w);
	/* Stop every thread of the backend (NULL: it has none), then start its watches over, with a rescan. */
	void (*pause)(hrd_watch *w);
	void (*resume)(hrd_watch *w);
};

struct hrd_watch_event {
	struct hrd_watch_event *next;
	int kind;
	char path[];
};

/* The part every backend shares: its root, what it skips, and the queue of events for the loop. */
struct hrd_watch {
	const struct hrd_watch_ops *ops;
	const char *backend;   /* "inotify", "fanotify", "poll" */
	char reason[512];      /* why this backend, for status */
	_Atomic int unwatched; /* folders that could not be watched at all (the log says why) */
	_Atomic int polled;    /* folders polled because kernel events could not cover them */
	int follow_links;      /* a link at the top to a folder outside the root is followed (--follow-links) */
	char *root;
	size_t rootlen;
	char **exclude; /* absolute paths, NULL-terminated: those given at open, then hotreload.conf's */
	size_t nfixed;  /* how many were given at open */
	int fd;         /* readable when events wait: an eventfd, or the backend's own */
	int efd;
	pthread_mutex_t mu; /* guards the queue and lost: backends post from threads of their own */
	struct hrd_watch_event *head, **tail;
	size_t queued; /* bytes the queue holds, up to HRD_WATCH_QUEUE_MAX */
	int lost;      /* an event could not be queued: take() starts with a rescan, and nothing is queued until then */
	/* What it says of itself (hrd_watch_report): counted, never estimated. */
	_Atomic uint64_t overflows; /* the kernel's event queue overflowed (from a backend's thread) */
	uint64_t events, rescans;   /* changes handed to the loop, and batches that asked for a rescan: take() counts */
	uint64_t cpu_ns;            /* under mu: the loop thread's time in the watcher, and that of its threads that ended */
	pthread_t threads[4];       /* under mu: its threads running now */
	int nthreads;
};

/* What the queue may hold while the loop is busy; past it, it is dropped for a rescan, as for a kernel queue's overflow. */
#define HRD_WATCH_QUEUE_MAX (4u << 20)

/* ---- for the backends ---- */

/* Fill in the shared part (with an eventfd as its fd). Returns 0, or -1 with a message in err. */
int hrd_watch_init(hrd_watch *w, const struct hrd_watch_ops *ops, const struct hrd_watch_options *o, const char *root,
                   const char *const *exclude, char *err, size_t errsz);
void hrd_watch_fini(hrd_watch *w);
/* Queue an event for the loop, from any thread; paths of ignored files are dropped. A queue
 * that would pass HRD_WATCH_QUEUE_MAX is dropped whole, and the loop told to rescan. */
void hrd_watch_post(hrd_watch *w, int kind, const char *rel);
/* Root-relative form of an absolute path under the root ("" for the root itself). */
const char *hrd_watch_rel(const hrd_watch *w, const char *full);
/* 1 when the folder full (absolute) is not to be watched: excluded, or a ".git". */
int hrd_watch_skipped(const hrd_watch *w, const char *full);
/*
 * 1 when full, a link at the top of the root to a folder, is to be walked:
 * it is not skipped, its folder is outside the root (and does not hold it),
 * and links are followed. Else 0, and the log says why when the folder goes unwatched.
 */
int hrd_watch_follows(hrd_watch *w, const char *full);
/* A thread of the backend started; it is about to be stopped (call it before, while its CPU time can be read). */
void hrd_watch_thread_started(hrd_watch *w, pthread_t t);
void hrd_watch_thread_ending(hrd_watch *w, pthread_t t);
/* 1 when a file named name is an editor's temporary file: never a save of its own. */
int hrd_watch_ignored(const char *name);

/* The backends, one file each. */
int hrd_watch_inotify_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                           hrd_watch **out, char *err, size_t errsz);
int hrd_watch_poll_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                        hrd_watch **out, char *err, size_t errsz);
int hrd_watch_fanotify_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                            hrd_watch **out, char *err, size_t errsz);

/*
 * The sweeper behind the poll backend, and behind the inotify backend for
 * folders it has no watch left for. It runs on a thread of its own and posts
 * to w. Folders are root-relative ("" is the root).
 */
hrd_poller *hrd_poller_start(hrd_watch *w, int interval_ms, char *err, size_t errsz);
int hrd_poller_add(hrd_poller *p, const char *rel); /* poll rel and everything under it; 0 or -1 */
void hrd_poller_clear(hrd_poller *p);                 /* poll nothing (the watches start over) */
void hrd_poller_stop(hrd_poller *p);                  /* NULL is a no-op */

#endif
