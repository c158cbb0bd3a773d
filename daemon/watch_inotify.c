/* watch_inotify.c: the inotify backend, through libinotifytools on a thread of its own. */
#include "log.h"
#include "watch_impl.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>
#include <limits.h>
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
 *   a tree while walking it) and keeps deleted folders (it cannot be made to
 *   forget one the kernel dropped): a moved folder, a thousand deleted ones, a
 *   queue overflow or a read error start a new instance instead, after
 *   draining the old one's buffered events (they stay in a static buffer
 *   across instances), and the engine rescans. Folder moves are rare in a
 *   source tree; a rescan compares content, so nothing in between is missed.
 */
/* No IN_EXCL_UNLINK: an O_TMPFILE file is never linked while written, and
 * its close is how its save is seen. */
#define STALE_MAX 1000
#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
              IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

typedef struct inw {
	hrd_watch base;
	pthread_t thread;
	int started;
	int live;         /* the library holds an instance (the watcher thread's to change) */
	int poll_ms;      /* for the folders no watch is left for */
	int root_wd;      /* the root's watch */
	int stale;        /* removed folders the library still holds a record of */
	int start_failing; /* the thread starts by trying again: the root could not be watched */
	char *parent;     /* the root's folder, as the library names it ("/src/"), and the root's name in it */
	const char *name;
	hrd_poller *poll; /* made on the watcher thread when the first such folder is met */
} inw;

static int in_use; /* libinotifytools is a process-wide singleton */

static void post(inw *w, int kind, const char *rel)
{
	hrd_watch_post(&w->base, kind, rel);
}

static void lose(inw *w)
{
	pthread_mutex_lock(&w->base.mu);
	w->base.lost = 1;
	pthread_mutex_unlock(&w->base.mu);
	hrd_watch_post(&w->base, HRD_WATCH_RESCAN, "");
}

/* No watch is left for path: poll it, and say so loudly, rather than stop seeing it. */
static int poll_instead(inw *w, const char *path, int e)
{
	char err[256];
	if (!w->poll && !(w->poll = hrd_poller_start(&w->base, w->poll_ms, err, sizeof err))) {
		hrd_error("watcher: %s", err);
		return -1;
	}
	if (hrd_poller_add(w->poll, hrd_watch_rel(&w->base, path)) < 0)
		return -1;
	if (!w->base.polled++)
		hrd_error("watcher: cannot watch %s: %s; polling it and every folder after it that cannot be watched "
		          "(every %d ms)%s", path, e == ENOSPC ? "the limit of inotify watches is reached" : strerror(e),
		          w->poll_ms > 0 ? w->poll_ms : 500,
		          e == ENOSPC ? "; raise fs.inotify.max_user_watches with sysctl to watch them all" : "");
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
	if (hrd_watch_skipped(&w->base, path) || depth > 64)
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
	if (depth == 0 && ok && w->parent) {
		/* The root's own removal is told only once nothing holds it open, and
		 * the engine does: its folder tells at once. Only its entries are watched. */
		char named[PATH_MAX + 2];
		snprintf(named, sizeof named, "%s/", path); /* how the library names a folder */
		w->root_wd = inotifytools_wd_from_filename(named);
		inotifytools_watch_file(w->parent, IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR);
	}
	if (!ok) {
		int e = rc = inotifytools_error();
		if (e == ENOENT || e == ENOTDIR)
			return rc;
		if ((e == ENOSPC || e == EMFILE || e == ENFILE || e == ENOMEM) && poll_instead(w, path, e) == 0) {
			/* The poller took its own look at the subtree: what was
			 * written before that look, only a rescan can tell. */
			if (post_files)
				post(w, HRD_WATCH_RESCAN, "");
			return 0;
		}
		w->base.unwatched++;
		hrd_error("watcher: cannot watch %s: %s; saves in it are missed until the daemon's user may read it",
		          path, strerror(e));
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
		if (type == DT_LNK && depth == 0 && stat(full, &st) == 0 && S_ISDIR(st.st_mode) &&
		    hrd_watch_follows(&w->base, full))
			type = DT_DIR;
		if (type == DT_DIR)
			add_tree(w, full, post_files, depth + 1);
		else if (post_files)
			post(w, HRD_WATCH_CHANGED, hrd_watch_rel(&w->base, full));
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
	if (w->poll)
		hrd_poller_clear(w->poll); /* first: it counts its unreadable folders out */
	w->base.unwatched = w->base.polled = w->stale = 0;
	int rc = (w->live = inotifytools_initialize()) ? add_tree(w, w->base.root, 0, 0) : inotifytools_error();
	if (rc) {
		hrd_error("watcher: cannot watch %s: %s; trying again in a second", w->base.root, strerror(rc));
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
		w->base.overflows++;
		hrd_warn("watcher: the kernel's event queue overflowed; rescanning");
		return 1;
	}
	/* The library keeps its record of a watch the kernel dropped, and cannot
	 * be made to let go of it: past a bound, a new instance does. */
	if ((ev->mask & IN_IGNORED) && ev->wd != w->root_wd && ++w->stale >= STALE_MAX) {
		hrd_info("watcher: %d removed folders' watches are held by libinotifytools; starting over to let go "
		         "of them", w->stale);
		return 1;
	}
	const char *dir = inotifytools_filename_from_wd(ev->wd);
	int in_parent = dir && w->parent && strcmp(dir, w->parent) == 0;
	if (in_parent && (!ev->len || strcmp(ev->name, w->name) != 0))
		return 0; /* another entry of the root's folder */
	if (in_parent && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
		hrd_warn("watcher: the root %s is there again; watching it again", w->base.root);
		return 1;
	}
	if (in_parent || (ev->wd == w->root_wd && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)))) {
		hrd_error("watcher: the root %s was moved or removed; watching it again once it is back", w->base.root);
		return 1;
	}
	if (!dir || strncmp(dir, w->base.root, w->base.rootlen) != 0 || (dir[w->base.rootlen] != '/' && dir[w->base.rootlen]))
		return 0;
	char *full;
	if (asprintf(&full, "%s%s", dir, ev->len ? ev->name : "") < 0) {
		lose(w);
		return 0;
	}
	size_t n = strlen(full);
	if (n > w->base.rootlen && full[n - 1] == '/')
		full[--n] = '\0';
	int again = 0;
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
		/* A folder inside reports its own removal to its parent as well. */
		if (!*hrd_watch_rel(&w->base, full)) {
			hrd_error("watcher: the root %s was moved or removed", w->base.root);
			again = 1;
		}
	} else if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))) {
		again = !hrd_watch_skipped(&w->base, full); /* every watch under it has a new path */
	} else if ((ev->mask & IN_ISDIR) && (ev->mask & IN_CREATE)) {
		post(w, HRD_WATCH_CHANGED, hrd_watch_rel(&w->base, full));
		add_tree(w, full, 1, strchr(hrd_watch_rel(&w->base, full), '/') ? 2 : 1);
	} else if ((ev->mask & IN_CLOSE_WRITE) && ev->len && ev->name[0] == '#' &&
	           strspn(ev->name + 1, "0123456789") == strlen(ev->name + 1)) {
		/* An O_TMPFILE file linked into place: its close names no path, so
		 * look at its whole folder. */
		if (*hrd_watch_rel(&w->base, full) && strchr(hrd_watch_rel(&w->base, full), '/')) {
			char *slash = strrchr(full, '/');
			*slash = '\0';
			post(w, HRD_WATCH_CHANGED, hrd_watch_rel(&w->base, full));
		} else {
			post(w, HRD_WATCH_RESCAN, "");
		}
	} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) ||
	           ((ev->mask & IN_CREATE) && appeared_whole(full))) {
		/* A link to a folder made at the top: a module folder linked in. */
		struct stat st;
		if ((ev->mask & IN_CREATE) && !strchr(hrd_watch_rel(&w->base, full), '/') && stat(full, &st) == 0 &&
		    S_ISDIR(st.st_mode) && hrd_watch_follows(&w->base, full))
			add_tree(w, full, 1, 1);
		if (*hrd_watch_rel(&w->base, full))
			post(w, HRD_WATCH_CHANGED, hrd_watch_rel(&w->base, full));
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
	for (int failing = w->start_failing;;) {
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

static void close_inw(hrd_watch *base)
{
	inw *w = (inw *)base;
	if (w->started) {
		hrd_watch_thread_ending(&w->base, w->thread);
		pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
	}
	hrd_poller_stop(w->poll);
	if (w->live)
		inotifytools_cleanup();
	if (in_use == 1)
		in_use = 0;
	hrd_watch_fini(&w->base);
	free(w->parent);
	free(w);
}

static void pause_inw(hrd_watch *base)
{
	inw *w = (inw *)base;
	if (w->started) {
		hrd_watch_thread_ending(&w->base, w->thread);
		pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
	hrd_poller_stop(w->poll);
	w->poll = NULL;
}

static void resume_inw(hrd_watch *base)
{
	inw *w = (inw *)base;
	w->start_failing = restart(w) < 0;
	int rc = pthread_create(&w->thread, NULL, run, w);
	if (rc)
		hrd_error("watcher: cannot start the watcher thread again (%s): saves are missed until hotreloadd starts "
		          "again", strerror(rc));
	else
		hrd_watch_thread_started(&w->base, w->thread);
	w->started = rc == 0;
}

static const struct hrd_watch_ops ops = {NULL, close_inw, pause_inw, resume_inw};

int hrd_watch_inotify_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                           hrd_watch **out, char *err, size_t errsz)
{
	if (in_use) {
		snprintf(err, errsz, "inotify: libinotifytools serves one watcher per process");
		return -1;
	}
	inw *w = calloc(1, sizeof *w);
	int rc;
	if (!w) {
		snprintf(err, errsz, "inotify: out of memory");
		return -1;
	}
	in_use = 1;
	w->poll_ms = o->poll_interval_ms;
	if (hrd_watch_init(&w->base, &ops, o, root, exclude, err, errsz) < 0)
		goto fail;
	const char *slash = strrchr(root, '/');
	if (slash && slash[1] && asprintf(&w->parent, "%.*s/", (int)(slash - root), root) < 0)
		w->parent = NULL; /* then a removed root is seen once the engine lets go of it */
	w->name = slash ? slash + 1 : root;
	if (!(w->live = inotifytools_initialize())) {
		snprintf(err, errsz, "inotify: cannot start: %s", strerror(inotifytools_error()));
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
	hrd_watch_thread_started(&w->base, w->thread);
	*out = &w->base;
	return 0;
fail:
	close_inw(&w->base);
	return -1;
}
