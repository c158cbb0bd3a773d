/* watch.c: the one place that chooses a watcher backend, and what the backends share: the queue, the skip rules. */
#include "log.h"
#include "fsinfo.h"
#include "watch_impl.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* CPU time of the calling thread, or of thread t, in ns (0 if it cannot be read). */
static uint64_t cpu_ns(pthread_t t, int self)
{
	clockid_t id = CLOCK_THREAD_CPUTIME_ID;
	struct timespec ts;
	if ((!self && pthread_getcpuclockid(t, &id) != 0) || clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The loop thread's time in the watcher since t0 counts as the watcher's. */
static void spent(hrd_watch *w, uint64_t t0)
{
	uint64_t t = cpu_ns(pthread_self(), 1);
	pthread_mutex_lock(&w->mu);
	w->cpu_ns += t > t0 ? t - t0 : 0;
	pthread_mutex_unlock(&w->mu);
}

/* The backends, in the order auto would fall back through them (it falls back to poll only). */
static const struct {
	const char *name;
	int (*open)(const struct hrd_watch_options *o, const char *root, const char *const *exclude, hrd_watch **out,
	            char *err, size_t errsz);
} backends[] = {
	{"inotify", hrd_watch_inotify_open},
	{"fanotify", hrd_watch_fanotify_open},
	{"poll", hrd_watch_poll_open},
};

/* Which backend o asks for, and why: itself, or for auto what the root's filesystem calls for. */
static const char *choose(const struct hrd_watch_options *o, const char *root, char *why, size_t n)
{
	if (strcmp(o->backend, "auto") != 0) {
		snprintf(why, n, "chosen with --watcher %s", o->backend);
		return o->backend;
	}
	hrd_fsfacts probed;
	const hrd_fsfacts *f = o->facts;
	if (!f && hrd_fs_probe(root, 1, &probed) == 0)
		f = &probed;
	if (f)
		return hrd_fs_watcher(f, root, why, n);
	snprintf(why, n, "the filesystem of %s cannot be told (%s)", root, strerror(errno));
	return "inotify";
}

static int open_named(const char *name, const struct hrd_watch_options *o, const char *root,
                      const char *const *exclude, hrd_watch **out, char *err, size_t errsz)
{
	for (size_t i = 0; i < sizeof backends / sizeof *backends; i++)
		if (strcmp(backends[i].name, name) == 0)
			return backends[i].open(o, root, exclude, out, err, errsz);
	snprintf(err, errsz, "unknown watcher '%s': use auto, inotify, fanotify or poll", name);
	return -1;
}

int hrd_watch_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                   hrd_watch **out, char *err, size_t errsz)
{
	uint64_t t0 = cpu_ns(pthread_self(), 1);
	char why[sizeof (*out)->reason];
	struct hrd_watch_options chosen = *o; /* the backend named: what status shows */
	chosen.backend = choose(o, root, why, sizeof why);
	int rc = open_named(chosen.backend, &chosen, root, exclude, out, err, errsz);
	if (rc < 0 && strcmp(o->backend, "auto") == 0 && strcmp(chosen.backend, "poll") != 0) {
		/* Out of inotify instances (max_user_instances), say: polling misses nothing, at a cost. */
		snprintf(why, sizeof why, "polling: %s could not start (%.400s)", chosen.backend, err);
		hrd_warn("%s", why);
		chosen.backend = "poll";
		rc = open_named(chosen.backend, &chosen, root, exclude, out, err, errsz);
	}
	if (rc < 0)
		return -1;
	snprintf((*out)->reason, sizeof (*out)->reason, "%s", why);
	spent(*out, t0); /* its first walk */
	return 0;
}

const char *hrd_watch_backend(const hrd_watch *w)
{
	return w->backend;
}

const char *hrd_watch_reason(const hrd_watch *w)
{
	return w->reason;
}

int hrd_watch_unwatched(const hrd_watch *w)
{
	return w->unwatched;
}

int hrd_watch_polled(const hrd_watch *w)
{
	return w->polled;
}

int hrd_watch_follows_links(const hrd_watch *w)
{
	return w->follow_links;
}

void hrd_watch_report(hrd_watch *w, struct hrd_watch_report *r)
{
	pthread_mutex_lock(&w->mu);
	uint64_t ns = w->cpu_ns;
	for (int i = 0; i < w->nthreads; i++)
		ns += cpu_ns(w->threads[i], 0);
	pthread_mutex_unlock(&w->mu);
	*r = (struct hrd_watch_report){ns / 1000000u, w->events, w->overflows, w->rescans};
}

void hrd_watch_thread_started(hrd_watch *w, pthread_t t)
{
	pthread_mutex_lock(&w->mu);
	if (w->nthreads < (int)(sizeof w->threads / sizeof *w->threads))
		w->threads[w->nthreads++] = t;
	pthread_mutex_unlock(&w->mu);
}

void hrd_watch_thread_ending(hrd_watch *w, pthread_t t)
{
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		if (pthread_equal(w->threads[i], t)) {
			w->cpu_ns += cpu_ns(t, 0);
			w->threads[i] = w->threads[--w->nthreads];
			break;
		}
	pthread_mutex_unlock(&w->mu);
}

int hrd_watch_fd(hrd_watch *w)
{
	return w->fd;
}

static void free_events(struct hrd_watch_event *e)
{
	while (e) {
		struct hrd_watch_event *next = e->next;
		free(e);
		e = next;
	}
}

int hrd_watch_take(hrd_watch *w, void (*fn)(void *arg, int kind, const char *path), void *arg)
{
	uint64_t count;
	if (w->ops->read) {
		uint64_t t0 = cpu_ns(pthread_self(), 1);
		w->ops->read(w);
		spent(w, t0);
	} else {
		(void)!read(w->efd, &count, sizeof count);
	}
	pthread_mutex_lock(&w->mu);
	struct hrd_watch_event *e = w->head;
	int lost = w->lost;
	w->head = NULL;
	w->tail = &w->head;
	w->queued = 0;
	w->lost = 0;
	pthread_mutex_unlock(&w->mu);
	int rescan = lost;
	if (lost)
		fn(arg, HRD_WATCH_RESCAN, "");
	while (e) {
		struct hrd_watch_event *next = e->next;
		w->events += e->kind == HRD_WATCH_CHANGED;
		rescan |= e->kind == HRD_WATCH_RESCAN;
		fn(arg, e->kind, e->path);
		free(e);
		e = next;
	}
	w->rescans += rescan; /* the engine compares everything once per batch */
	return 0;
}

void hrd_watch_close(hrd_watch *w)
{
	if (w)
		w->ops->close(w);
}

/* The excludes given at open, then root/each of skip: a new list, or NULL. */
static char **excludes(const hrd_watch *w, char *const *skip)
{
	size_t n = 0, i = 0;
	while (skip && skip[n])
		n++;
	char **x = calloc(w->nfixed + n + 1, sizeof *x);
	if (!x)
		return NULL;
	for (; i < w->nfixed + n; i++) {
		if (i < w->nfixed)
			x[i] = strdup(w->exclude[i]);
		else if (asprintf(&x[i], "%s/%s", w->root, skip[i - w->nfixed]) < 0)
			x[i] = NULL;
		if (!x[i])
			break;
	}
	if (i == w->nfixed + n)
		return x;
	while (i--)
		free(x[i]);
	free(x);
	return NULL;
}

int hrd_watch_skip(hrd_watch *w, char *const *skip)
{
	char **x = excludes(w, skip);
	if (!x)
		return -1;
	size_t i = 0;
	while (x[i] && w->exclude[i] && strcmp(x[i], w->exclude[i]) == 0)
		i++;
	int same = !x[i] && !w->exclude[i];
	char **old = same ? x : w->exclude;
	if (!same) {
		/* No thread reads the list while it changes hands. */
		uint64_t t0 = cpu_ns(pthread_self(), 1);
		if (w->ops->pause)
			w->ops->pause(w);
		w->exclude = x;
		hrd_info("watcher: hotreload.conf's exclusions changed; watching again");
		w->ops->resume(w);
		spent(w, t0);
	}
	for (char **p = old; *p; p++)
		free(*p);
	free(old);
	return 0;
}

int hrd_watch_init(hrd_watch *w, const struct hrd_watch_ops *ops, const struct hrd_watch_options *o, const char *root,
                   const char *const *exclude, char *err, size_t errsz)
{
	const char *backend = o->backend;
	w->follow_links = o->follow_links;
	size_t nx = 0, ns = 0;
	while (exclude && exclude[nx])
		nx++;
	while (o->skip && o->skip[ns])
		ns++;
	w->nfixed = nx;
	w->ops = ops;
	w->backend = backend;
	w->fd = w->efd = -1;
	pthread_mutex_init(&w->mu, NULL);
	w->tail = &w->head;
	w->root = strdup(root);
	w->rootlen = strlen(root);
	w->exclude = calloc(nx + ns + 1, sizeof *w->exclude);
	if (!w->root || !w->exclude)
		goto nomem;
	for (size_t i = 0; i < nx; i++)
		if (!(w->exclude[i] = strdup(exclude[i])))
			goto nomem;
	for (size_t i = 0; i < ns; i++)
		if (asprintf(&w->exclude[nx + i], "%s/%s", root, o->skip[i]) < 0) {
			w->exclude[nx + i] = NULL;
			goto nomem;
		}
	if ((w->fd = w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		snprintf(err, errsz, "%s: cannot make an eventfd: %s", backend, strerror(errno));
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errsz, "%s: out of memory", backend);
	return -1;
}

void hrd_watch_fini(hrd_watch *w)
{
	free_events(w->head);
	if (w->efd >= 0)
		close(w->efd);
	for (char **x = w->exclude; x && *x; x++)
		free(*x);
	free(w->exclude);
	free(w->root);
	pthread_mutex_destroy(&w->mu);
}

void hrd_watch_post(hrd_watch *w, int kind, const char *rel)
{
	const char *base = strrchr(rel, '/');
	if (kind == HRD_WATCH_CHANGED && hrd_watch_ignored(base ? base + 1 : rel))
		return;
	size_t n = strlen(rel), size = sizeof(struct hrd_watch_event) + n + 1, dropped = 0;
	struct hrd_watch_event *e = malloc(size), *drop = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->lost) {
		/* the rescan to come covers this one too */
	} else if (!e) {
		w->lost = 1; /* dropping one event silently would miss a save */
	} else if (w->queued + size > HRD_WATCH_QUEUE_MAX) {
		/* The loop is busy (a long scan, a slow disk) while a checkout writes on:
		 * a rescan compares every module's content, for a bounded cost. */
		drop = w->head;
		dropped = w->queued;
		w->head = NULL;
		w->tail = &w->head;
		w->queued = 0;
		w->lost = 1;
	} else {
		e->next = NULL;
		e->kind = kind;
		memcpy(e->path, rel, n + 1);
		*w->tail = e;
		w->tail = &e->next;
		w->queued += size;
		e = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	free(e);
	free_events(drop);
	if (dropped)
		hrd_warn("watcher: %zu bytes of events waited for a busy loop; dropped for a rescan", dropped);
	if (w->efd >= 0) {
		uint64_t one = 1;
		(void)!write(w->efd, &one, sizeof one);
	}
}

const char *hrd_watch_rel(const hrd_watch *w, const char *full)
{
	return full[w->rootlen] == '/' ? full + w->rootlen + 1 : "";
}

int hrd_watch_skipped(const hrd_watch *w, const char *full)
{
	const char *base = strrchr(full, '/');
	if (base && strcmp(base + 1, ".git") == 0)
		return 1;
	for (char **x = w->exclude; *x; x++)
		if (strcmp(*x, full) == 0)
			return 1;
	return 0;
}

int hrd_watch_follows(hrd_watch *w, const char *full)
{
	if (hrd_watch_skipped(w, full))
		return 0; /* the state dir's own link, an excluded folder: not a word about it */
	char *to = realpath(full, NULL);
	size_t n = to ? strlen(to) : 0;
	/* Inside the root, it is watched under its own name already (two names
	 * for one folder would see its saves under one of them only); a folder
	 * that holds the root would be walked into the root again. */
	int inside = to && strncmp(to, w->root, w->rootlen) == 0 && (!to[w->rootlen] || to[w->rootlen] == '/');
	int holds = to && !inside && strncmp(w->root, to, n) == 0 && (w->root[n] == '/' || n == 1);
	int follow = to && !inside && !holds && w->follow_links;
	if (holds)
		hrd_warn("%s is a link to %s, which holds the root: never followed", full, to);
	else if (to && !inside && !follow)
		hrd_warn("%s is a link to %s, outside the root: not followed (start hotreloadd with --follow-links "
		         "to watch and build it)", full, to);
	free(to);
	return follow;
}

int hrd_watch_ignored(const char *name)
{
	/* vim's swap files and its write test, backups, emacs' locks and auto-saves, JetBrains' safe write. */
	static const char *const pat[] = {"*.sw[a-p]", "*.swx", "*~", "4913", ".#*", "#*#", "*___jb_tmp___", "*___jb_old___"};
	for (size_t i = 0; i < sizeof pat / sizeof *pat; i++)
		if (fnmatch(pat[i], name, 0) == 0)
			return 1;
	return 0;
}
