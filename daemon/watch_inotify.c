/* watch_inotify.c: the inotify backend, through libinotifytools on a thread of its own. */
#include "log.h"
#include "watch.h"

#include <dirent.h>
#include <dlfcn.h>
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * libinotifytools 3.22 and how each of its flaws is worked around:
 * - No pollable descriptor, state in statics, not thread-safe: every call
 *   into it after hrd_watch_inotify_open is made on this backend's thread,
 *   which blocks in inotifytools_next_event(0) (0 waits forever), queues what
 *   it sees and wakes the loop through an eventfd. pthread_cancel stops it,
 *   enabled only while it waits.
 * - It waits with select(): its descriptor must stay below FD_SETSIZE. The
 *   daemon keeps fewer than 1024 descriptors open (bounded clients and jobs),
 *   so the lowest free one, which a new instance gets, always is.
 * - Its descriptor is not CLOEXEC: the builder closes all others in a child.
 * - Its recursive watch gives up on a subtree when an entry vanishes during
 *   the walk: the walk here is our own, and skips what is gone.
 * - Its path table goes stale when a folder moves (its rename of paths edits
 *   a tree while walking it) and keeps deleted folders: a moved folder, a
 *   queue overflow or a read error start a new instance instead, after
 *   draining the old one's buffered events (they stay in a static buffer
 *   across instances), and the engine rescans. Folder moves are rare in a
 *   source tree; a rescan compares content, so nothing in between is missed.
 */
/* No IN_EXCL_UNLINK: an O_TMPFILE file is never linked while written, and
 * its close is how its save is seen. */
#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
              IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

struct event {
	struct event *next;
	int kind;
	char path[];
};

typedef struct inw {
	hrd_watch base;
	char *root;
	size_t rootlen;
	const char **exclude; /* owned copies; NULL-terminated */
	int efd;
	pthread_t thread;
	int started;
	pthread_mutex_t mu; /* guards the queue and lost */
	struct event *head, **tail;
	int lost; /* an event could not be queued: take() starts with a rescan */
	int live; /* the library holds an instance (the watcher thread's to change) */
} inw;

static int in_use; /* libinotifytools is a process-wide singleton */

static void wake(inw *w)
{
	uint64_t one = 1;
	(void)!write(w->efd, &one, sizeof one);
}

static void post(inw *w, int kind, const char *path)
{
	size_t n = strlen(path);
	struct event *e = malloc(sizeof *e + n + 1);
	pthread_mutex_lock(&w->mu);
	if (e) {
		e->next = NULL;
		e->kind = kind;
		memcpy(e->path, path, n + 1);
		*w->tail = e;
		w->tail = &e->next;
	} else {
		w->lost = 1; /* dropping one event silently would miss a save */
	}
	pthread_mutex_unlock(&w->mu);
	wake(w);
}

static const char *rel(const inw *w, const char *full)
{
	return full[w->rootlen] == '/' ? full + w->rootlen + 1 : "";
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

/*
 * Watch path and every folder under it, each before it is listed, so that
 * nothing created meanwhile is missed; with post_files, report every file
 * found (they appeared before their folder's watch). What vanished is skipped.
 * A symbolic link to a folder is followed at the top level only (a module
 * folder linked into the root), never below it, so no link loop is walked.
 * Returns 0, or the error that kept path itself from being watched.
 */
static int add_tree(inw *w, const char *path, int post_files, int depth)
{
	if (excluded(w, path) || depth > 64)
		return 0;
	int rc = 0;
	struct stat st;
	char *through = NULL;
	if (depth == 1 && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && asprintf(&through, "%s/", path) < 0)
		return ENOMEM;
	/* Through a link: a trailing slash makes both the kernel and the library
	 * take the folder it names, under the link's path. */
	int ok = through ? inotifytools_watch_file(through, MASK & ~IN_DONT_FOLLOW) : inotifytools_watch_file(path, MASK);
	free(through);
	if (!ok) {
		int e = rc = inotifytools_error();
		if (e == ENOENT || e == ENOTDIR)
			return rc;
		w->base.unwatched++;
		if (e == ENOSPC)
			hrd_error("watcher: cannot watch %s: the limit of watches is reached "
			          "(fs.inotify.max_user_watches = %d); raise it with sysctl",
			          path, inotifytools_get_max_user_watches());
		else
			hrd_error("watcher: cannot watch %s: %s", path, strerror(e));
	}
	DIR *d = opendir(path);
	if (!d)
		return rc;
	struct dirent *ent;
	while ((ent = readdir(d))) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		char *full;
		if (asprintf(&full, "%s/%s", path, ent->d_name) < 0)
			continue;
		int type = ent->d_type;
		if (type == DT_UNKNOWN && lstat(full, &st) == 0)
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
		if (type == DT_LNK && depth == 0 && stat(full, &st) == 0 && S_ISDIR(st.st_mode))
			type = DT_DIR;
		if (type == DT_DIR)
			add_tree(w, full, post_files, depth + 1);
		else if (post_files)
			post(w, HRD_WATCH_CHANGED, rel(w, full));
		free(full);
	}
	closedir(d);
	return rc;
}

/* A fresh instance and fresh watches, then a rescan. Returns 0, or -1 when the root cannot be watched. */
static int restart(inw *w)
{
	/* Events left in the library's static buffer would be read against the
	 * new instance's table. Only a live instance can be drained: the library
	 * would FD_SET(-1) otherwise. */
	if (w->live) {
		while (inotifytools_next_events(0, 1))
			;
		inotifytools_cleanup();
		w->live = 0;
	}
	w->base.unwatched = 0;
	int rc = (w->live = inotifytools_initialize()) ? add_tree(w, w->root, 0, 0) : inotifytools_error();
	if (rc) {
		hrd_error("watcher: cannot watch %s: %s; trying again in a second", w->root, strerror(rc));
		return -1;
	}
	post(w, HRD_WATCH_RESCAN, "");
	return 0;
}

/* A file that appears by link() or symlink() is complete at once: no close follows. */
static int appeared_whole(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1));
}

/* Handle one event. Returns 1 when the watches must start over. */
static int handle(inw *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		hrd_warn("watcher: the kernel's event queue overflowed; rescanning");
		return 1;
	}
	const char *dir = inotifytools_filename_from_wd(ev->wd);
	if (!dir || strncmp(dir, w->root, w->rootlen) != 0 || (dir[w->rootlen] != '/' && dir[w->rootlen]))
		return 0;
	char *full;
	if (asprintf(&full, "%s%s", dir, ev->len ? ev->name : "") < 0) {
		pthread_mutex_lock(&w->mu);
		w->lost = 1;
		pthread_mutex_unlock(&w->mu);
		wake(w);
		return 0;
	}
	size_t n = strlen(full);
	if (n > w->rootlen && full[n - 1] == '/')
		full[--n] = '\0';
	int again = 0;
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
		/* A folder inside reports its own removal to its parent as well. */
		if (!*rel(w, full)) {
			hrd_error("watcher: the root %s was moved or removed", w->root);
			again = 1;
		}
	} else if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))) {
		again = !excluded(w, full); /* every watch under it has a new path */
	} else if ((ev->mask & IN_ISDIR) && (ev->mask & IN_CREATE)) {
		post(w, HRD_WATCH_CHANGED, rel(w, full));
		add_tree(w, full, 1, strchr(rel(w, full), '/') ? 2 : 1);
	} else if ((ev->mask & IN_CLOSE_WRITE) && ev->len && ev->name[0] == '#' &&
	           strspn(ev->name + 1, "0123456789") == strlen(ev->name + 1)) {
		/* An O_TMPFILE file linked into place: its close names no path, so
		 * look at its whole folder. */
		if (*rel(w, full) && strchr(rel(w, full), '/')) {
			char *slash = strrchr(full, '/');
			*slash = '\0';
			post(w, HRD_WATCH_CHANGED, rel(w, full));
		} else {
			post(w, HRD_WATCH_RESCAN, "");
		}
	} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) ||
	           ((ev->mask & IN_CREATE) && appeared_whole(full))) {
		/* A link to a folder made at the top: a module folder linked in. */
		struct stat st;
		if ((ev->mask & IN_CREATE) && !strchr(rel(w, full), '/') && stat(full, &st) == 0 && S_ISDIR(st.st_mode))
			add_tree(w, full, 1, 1);
		if (*rel(w, full))
			post(w, HRD_WATCH_CHANGED, rel(w, full));
	}
	free(full);
	return again;
}

/*
 * Not instrumented by ASan: cancellation unwinds this frame without its
 * epilogue, which would leave its shadow poisoned under the thread's own
 * teardown (a false stack-use-after-scope). Everything it calls returns normally.
 */
__attribute__((no_sanitize("address"))) static void *run(void *arg)
{
	inw *w = arg;
	struct timespec second = {1, 0};
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (int failing = 0;;) {
		if (failing) {
			/* Cannot watch (the root is gone, out of watches): try again, slowly. */
			pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
			nanosleep(&second, NULL);
			pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
			failing = restart(w) < 0;
			continue;
		}
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		struct inotify_event *ev = inotifytools_next_event(0);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (ev) {
			if (handle(w, ev))
				failing = restart(w) < 0;
			continue;
		}
		int e = inotifytools_error();
		if (e == EINTR)
			continue;
		hrd_error("watcher: cannot read events (%s); watching again from scratch", strerror(e));
		failing = restart(w) < 0;
	}
	return NULL;
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
	int lost = w->lost;
	w->head = NULL;
	w->tail = &w->head;
	w->lost = 0;
	pthread_mutex_unlock(&w->mu);
	if (lost)
		fn(arg, HRD_WATCH_RESCAN, "");
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
	if (w->live)
		inotifytools_cleanup();
	if (in_use == 1)
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
	int rc;
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
	w->exclude = calloc(nx + 1, sizeof *w->exclude);
	if (!w->root || !w->exclude)
		goto nomem;
	for (size_t i = 0; i < nx; i++)
		if (!(w->exclude[i] = strdup(exclude[i])))
			goto nomem;
	in_use = 1;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0 || !(w->live = inotifytools_initialize())) {
		snprintf(err, errsz, "inotify: cannot start: %s", strerror(w->efd < 0 ? errno : inotifytools_error()));
		goto fail;
	}
	if ((rc = add_tree(w, root, 0, 0))) {
		if (rc == ENOSPC)
			snprintf(err, errsz, "inotify: cannot watch %s: the limit of watches is reached "
			         "(fs.inotify.max_user_watches = %d); raise it with sysctl",
			         root, inotifytools_get_max_user_watches());
		else
			snprintf(err, errsz, "inotify: cannot watch %s: %s", root, strerror(rc));
		goto fail;
	}
	/* pthread_cancel loads libgcc_s for its unwinding at the first cancel,
	 * which aborts the process when no descriptor is left to open it then:
	 * load it now, while there are. */
	dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE);
	if ((rc = pthread_create(&w->thread, NULL, run, w))) {
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
