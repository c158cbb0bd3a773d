/* watch_inotify.c: the inotify backend, through libinotifytools on a thread of its own. */
#include "log.h"
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/*
 * libinotifytools has no pollable descriptor, keeps its state in statics
 * (one instance per process, not thread-safe) and waits with select(). So
 * every call into it after hrd_watch_inotify_open happens on this backend's
 * thread, which blocks in inotifytools_next_event(0) (0 waits forever),
 * queues what it sees, and wakes the loop through an eventfd. It is stopped
 * with pthread_cancel, enabled only while it waits. Its descriptor is not
 * CLOEXEC: the builder closes every inherited descriptor in the child.
 */
#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
              IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct event {
	struct event *next;
	int kind;
	char path[];
};

typedef struct inw {
	hrd_watch base;
	char *root;
	size_t rootlen;
	const char **exclude; /* owned copies, and root/.git; NULL-terminated */
	int efd;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	struct event *head, **tail;
} inw;

static int in_use; /* libinotifytools is a process-wide singleton */

static void post(inw *w, int kind, const char *path)
{
	size_t n = strlen(path);
	struct event *e = malloc(sizeof *e + n + 1);
	if (!e) {
		/* Dropping one event silently would miss a save: ask for a rescan instead. */
		hrd_error("watcher: out of memory; the next event rescans");
		return;
	}
	e->next = NULL;
	e->kind = kind;
	memcpy(e->path, path, n + 1);
	pthread_mutex_lock(&w->mu);
	*w->tail = e;
	w->tail = &e->next;
	pthread_mutex_unlock(&w->mu);
	uint64_t one = 1;
	(void)!write(w->efd, &one, sizeof one);
}

static int excluded(const inw *w, const char *path)
{
	const char *base = strrchr(path, '/');
	if (base && strcmp(base + 1, ".git") == 0)
		return 1;
	for (const char **x = w->exclude; *x; x++)
		if (strcmp(*x, path) == 0)
			return 1;
	return 0;
}

static int watch_tree(inw *w, const char *path)
{
	if (inotifytools_watch_recursively_with_exclude(path, MASK, w->exclude))
		return 0;
	errno = inotifytools_error();
	return -1;
}

/* Start over: fresh instance, fresh watches. The caller posts a rescan. */
static int rewatch(inw *w)
{
	inotifytools_cleanup();
	if (!inotifytools_initialize() || watch_tree(w, w->root) < 0) {
		hrd_error("watcher: cannot watch %s again: %s", w->root, strerror(inotifytools_error()));
		return -1;
	}
	return 0;
}

/* Report every file under a folder that appeared after its watch was added. */
static void scan_new(inw *w, const char *path, int depth)
{
	DIR *d = opendir(path);
	if (!d || depth > 64) {
		if (d)
			closedir(d);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *full;
		if (asprintf(&full, "%s/%s", path, e->d_name) < 0)
			continue;
		if (e->d_type == DT_DIR && !excluded(w, full))
			scan_new(w, full, depth + 1);
		else if (e->d_type != DT_DIR)
			post(w, HRD_WATCH_CHANGED, full + w->rootlen + 1);
		free(full);
	}
	closedir(d);
}

static void handle(inw *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		hrd_warn("watcher: the kernel's event queue overflowed; rescanning");
		rewatch(w);
		post(w, HRD_WATCH_RESCAN, "");
		return;
	}
	const char *dir = inotifytools_filename_from_wd(ev->wd);
	if (!dir || strncmp(dir, w->root, w->rootlen) != 0)
		return;
	char *full;
	if (asprintf(&full, "%s%s", dir, ev->len ? ev->name : "") < 0)
		return;
	size_t n = strlen(full);
	if (n > w->rootlen && full[n - 1] == '/')
		full[--n] = '\0';
	const char *rel = n > w->rootlen ? full + w->rootlen + 1 : "";
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		/* A folder inside reports its own removal to its parent as well. */
		if (!*rel) {
			hrd_error("watcher: the root %s was moved or removed", w->root);
			post(w, HRD_WATCH_RESCAN, "");
		}
	} else if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))) {
		/* A moved folder changes the path of every watch under it. */
		if (!excluded(w, full) && rewatch(w) == 0)
			post(w, HRD_WATCH_RESCAN, "");
	} else if ((ev->mask & IN_ISDIR) && (ev->mask & IN_CREATE)) {
		/* Watch first, then look: nothing written in between is missed. */
		if (!excluded(w, full)) {
			if (watch_tree(w, full) < 0 && errno != ENOENT)
				hrd_error("watcher: cannot watch %s: %s", full, strerror(errno));
			post(w, HRD_WATCH_CHANGED, rel);
			scan_new(w, full, 0);
		}
	} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) {
		if (*rel)
			post(w, HRD_WATCH_CHANGED, rel);
	}
	free(full);
}

static void *run(void *arg)
{
	inw *w = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		struct inotify_event *ev = inotifytools_next_event(0);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (ev) {
			handle(w, ev);
			continue;
		}
		int e = inotifytools_error();
		if (e == EINTR)
			continue;
		hrd_error("watcher: cannot read events (%s); watching again from scratch", strerror(e));
		if (rewatch(w) < 0)
			return NULL;
		post(w, HRD_WATCH_RESCAN, "");
	}
}

static int fd_of(hrd_watch *base)
{
	return ((inw *)base)->efd;
}

static int take(hrd_watch *base, void (*fn)(void *arg, int kind, const char *path), void *arg)
{
	inw *w = (inw *)base;
	uint64_t count;
	(void)!read(w->efd, &count, sizeof count);
	pthread_mutex_lock(&w->mu);
	struct event *e = w->head;
	w->head = NULL;
	w->tail = &w->head;
	pthread_mutex_unlock(&w->mu);
	while (e) {
		struct event *next = e->next;
		fn(arg, e->kind, e->path);
		free(e);
		e = next;
	}
	return 0;
}

static void close_inw(hrd_watch *base)
{
	inw *w = (inw *)base;
	if (w->started) {
		pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
	}
	inotifytools_cleanup();
	in_use = 0;
	for (struct event *e = w->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	if (w->efd >= 0)
		close(w->efd);
	for (const char **x = w->exclude; x && *x; x++)
		free((char *)*x);
	free(w->exclude);
	free(w->root);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static const struct hrd_watch_ops ops = {fd_of, take, close_inw};

int hrd_watch_inotify_open(const char *root, const char *const *exclude, hrd_watch **out,
                           char *err, size_t errsz)
{
	if (in_use) {
		snprintf(err, errsz, "inotify: libinotifytools serves one watcher per process");
		return -1;
	}
	inw *w = calloc(1, sizeof *w);
	size_t nx = 0;
	while (exclude && exclude[nx])
		nx++;
	if (!w)
		goto nomem;
	w->base.ops = &ops;
	w->base.backend = "inotify";
	w->efd = -1;
	pthread_mutex_init(&w->mu, NULL);
	w->tail = &w->head;
	w->root = strdup(root);
	w->rootlen = strlen(root);
	w->exclude = calloc(nx + 2, sizeof *w->exclude);
	if (!w->root || !w->exclude)
		goto nomem;
	for (size_t i = 0; i < nx; i++)
		if (!(w->exclude[i] = strdup(exclude[i])))
			goto nomem;
	if (asprintf((char **)&w->exclude[nx], "%s/.git", root) < 0) {
		w->exclude[nx] = NULL;
		goto nomem;
	}
	in_use = 1;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0 || !inotifytools_initialize()) {
		snprintf(err, errsz, "inotify: cannot start: %s", strerror(w->efd < 0 ? errno : inotifytools_error()));
		goto fail;
	}
	if (watch_tree(w, root) < 0) {
		int e = errno;
		if (e == ENOSPC)
			snprintf(err, errsz, "inotify: cannot watch %s: the limit of watches is reached "
			         "(fs.inotify.max_user_watches = %d); raise it with sysctl",
			         root, inotifytools_get_max_user_watches());
		else
			snprintf(err, errsz, "inotify: cannot watch %s: %s", root, strerror(e));
		goto fail;
	}
	int rc = pthread_create(&w->thread, NULL, run, w);
	if (rc) {
		snprintf(err, errsz, "inotify: cannot start the watcher thread: %s", strerror(rc));
		goto fail;
	}
	w->started = 1;
	*out = &w->base;
	return 0;
nomem:
	snprintf(err, errsz, "inotify: out of memory");
fail:
	if (w)
		close_inw(&w->base);
	return -1;
}
