/* watch_poll.c: the polling backend: a tiered sweep of stamps (ns mtime, ctime, size, inode), on a thread of its own. */
#include "log.h"
#include "watch_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Where kernel events miss writers (network and FUSE filesystems, 9p), the
 * stamps of files are compared instead, at little cost:
 * - Every tick (half the interval) looks again at the hot files: those
 *   changed lately, and those waiting to settle. A change is posted once its
 *   stamp holds across two looks, so a file still being written is never
 *   built (the engine's lease check guards local files too).
 * - Each tick also sweeps an eighth of the folders and their files, so that
 *   every file is looked at within four intervals (2 s by default).
 * - A folder is listed again only when its own stamp changed: a creation,
 *   removal or rename in it.
 * - A stamp read within RACY_NS of its mtime could be followed by a write in
 *   the same clock tick that leaves it equal (what git calls racily clean;
 *   a tick is a second on some filesystems): such a file's content is hashed
 *   then, and again once its mtime is old enough, and posted if the two
 *   differ (or if it cannot be hashed). Such a folder is listed again at each
 *   of its sweeps until its mtime is old enough.
 * - A folder with more files than a tick's share is swept over several ticks.
 */
#define HOT_MAX 256
#define HOT_MS (10 * 60 * 1000)
#define RACY_NS 2000000000LL
#define RACY_HASH_MAX (4 << 20)

typedef struct node {
	char *path; /* root-relative; "" is the root */
	int64_t mtime, ctime, size;
	uint64_t ino;
	int isdir, depth, pending, racy, gone;
	uint64_t hash;    /* racy: the content when the stamp was taken */
	int64_t since;    /* ms, monotonic: when the stamp was taken */
	int64_t hot_till; /* ms, monotonic */
	const char *name;      /* the last part of path */
	struct node *parent;   /* the folder listing it, or NULL for a top */
	struct node **kids;    /* a folder's entries as last listed, by name */
	size_t nkids;
} node;

struct hrd_poller {
	hrd_watch *w;
	int period_ms, rootfd, stopfd; /* a tick: half the interval */
	uint64_t root_ino;
	pthread_t thread;
	int started;
	pthread_mutex_t mu; /* guards everything below: add() comes from another thread */
	node **tab;         /* open addressing by path */
	size_t cap, count, nfiles;
	node **dirs; /* the folders, in sweep order */
	size_t ndirs, dcap, cursor;
	size_t kidpos; /* where in dirs[cursor]'s files the sweep goes on (a large folder takes several ticks) */
	node *kiddir;  /* the folder kidpos is in */
	node *hot[HOT_MAX];
	size_t nhot;
	char **tops; /* the folders added, for a root that comes back */
	size_t ntops;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

/* ---- the table of nodes by path: linear probing, deletion by backward shift ---- */

static node **slot(hrd_poller *p, const char *path)
{
	size_t i = hash_str(path) & (p->cap - 1);
	while (p->tab[i] && strcmp(p->tab[i]->path, path) != 0)
		i = (i + 1) & (p->cap - 1);
	return &p->tab[i];
}

static node *find(hrd_poller *p, const char *path)
{
	return p->cap ? *slot(p, path) : NULL;
}

static int grow(hrd_poller *p)
{
	if (2 * (p->count + 1) <= p->cap)
		return 0;
	size_t old = p->cap, cap = old ? 2 * old : 1024;
	node **t = calloc(cap, sizeof *t), **was = p->tab;
	if (!t)
		return -1;
	p->tab = t;
	p->cap = cap;
	for (size_t i = 0; i < old; i++)
		if (was[i])
			*slot(p, was[i]->path) = was[i];
	free(was);
	return 0;
}

static void unlink_node(hrd_poller *p, node *n)
{
	size_t i = (size_t)(slot(p, n->path) - p->tab), j = i;
	p->tab[i] = NULL;
	for (;;) { /* move back the entries that probed past the hole */
		j = (j + 1) & (p->cap - 1);
		if (!p->tab[j])
			break;
		size_t home = hash_str(p->tab[j]->path) & (p->cap - 1);
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			p->tab[i] = p->tab[j];
			p->tab[j] = NULL;
			i = j;
		}
	}
	p->count--;
}


/* ---- stamps ---- */

/* A hash of a regular file's content, or 0 when it cannot be had (not a regular file, too large to read each tick). */
static uint64_t content_hash(hrd_poller *p, const char *path)
{
	uint64_t h = 1469598103934665603ULL;
	char buf[8192];
	struct stat st;
	int fd = openat(p->rootfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > RACY_HASH_MAX) {
		close(fd); /* a FIFO's data is not ours to read */
		return 0;
	}
	for (ssize_t r; (r = read(fd, buf, sizeof buf)) > 0;)
		for (ssize_t i = 0; i < r; i++)
			h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
	close(fd);
	return h ? h : 1;
}

/*
 * The stamp of path under dirfd: 0, or -1 when it is gone. A link is
 * followed, so that saves to what it names are seen. From the folder's own
 * descriptor, a sweep spares the kernel a walk of the whole path per file.
 */
static int stamp_at(int dirfd, const char *path, struct stat *st)
{
	const char *at = *path ? path : ".";
	if (fstatat(dirfd, at, st, 0) == 0 || fstatat(dirfd, at, st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	return -1;
}

static int stamp(hrd_poller *p, const char *path, struct stat *st)
{
	return stamp_at(p->rootfd, path, st);
}

static int same(const node *n, const struct stat *st)
{
	return n->mtime == st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec &&
	       n->ctime == st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec && n->size == st->st_size &&
	       n->ino == st->st_ino;
}

static void take_stamp(hrd_poller *p, node *n, const struct stat *st)
{
	n->mtime = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	n->ctime = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	n->size = st->st_size;
	n->ino = st->st_ino;
	n->since = now_ms();
	n->racy = real_ns() - n->mtime < RACY_NS;
	if (n->racy && !n->isdir)
		n->hash = content_hash(p, n->path);
}

static void make_hot(hrd_poller *p, node *n)
{
	n->hot_till = now_ms() + HOT_MS;
	for (size_t i = 0; i < p->nhot; i++)
		if (p->hot[i] == n)
			return;
	if (p->nhot == HOT_MAX) { /* the one that cools first makes room */
		size_t old = 0;
		for (size_t i = 1; i < p->nhot; i++)
			if (p->hot[i]->hot_till < p->hot[old]->hot_till)
				old = i;
		if (p->hot[old]->pending)
			return; /* all are settling: the sweep still sees this one */
		p->hot[old] = p->hot[--p->nhot];
	}
	p->hot[p->nhot++] = n;
}

/* ---- the tree ---- */

static node *add_node(hrd_poller *p, const char *path, int isdir, int depth)
{
	node *n = calloc(1, sizeof *n);
	if (!n || !(n->path = strdup(path)) || grow(p) < 0)
		goto fail;
	n->isdir = isdir;
	n->depth = depth;
	n->name = strrchr(n->path, '/') ? strrchr(n->path, '/') + 1 : n->path;
	if (isdir) {
		if (p->ndirs == p->dcap) {
			size_t cap = p->dcap ? 2 * p->dcap : 64;
			node **d = realloc(p->dirs, cap * sizeof *d);
			if (!d)
				goto fail;
			p->dirs = d;
			p->dcap = cap;
		}
		p->dirs[p->ndirs++] = n;
	} else {
		p->nfiles++;
	}
	*slot(p, path) = n;
	p->count++;
	return n;
fail:
	if (n)
		free(n->path);
	free(n);
	pthread_mutex_lock(&p->w->mu);
	p->w->lost = 1; /* cannot remember it: the engine looks at everything */
	pthread_mutex_unlock(&p->w->mu);
	return NULL;
}

/* Forget n and, for a folder, everything under it; post each file that went. */
static void drop(hrd_poller *p, node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		n->kids[i]->parent = NULL; /* n's list goes with it */
		drop(p, n->kids[i]);
	}
	free(n->kids);
	if (n->parent) {
		node *d = n->parent;
		for (size_t i = 0; i < d->nkids; i++)
			if (d->kids[i] == n) {
				memmove(&d->kids[i], &d->kids[i + 1], (d->nkids - i - 1) * sizeof *d->kids);
				d->nkids--;
				break;
			}
	}
	hrd_watch_post(p->w, HRD_WATCH_CHANGED, n->path);
	if (n->gone)
		p->w->unwatched--;
	unlink_node(p, n);
	for (size_t i = 0; i < p->nhot; i++)
		if (p->hot[i] == n) {
			p->hot[i] = p->hot[--p->nhot];
			break;
		}
	if (n->isdir) {
		for (size_t i = 0; i < p->ndirs; i++)
			if (p->dirs[i] == n) {
				p->dirs[i] = p->dirs[--p->ndirs];
				break;
			}
	} else {
		p->nfiles--;
	}
	free(n->path);
	free(n);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(hrd_poller *p, node *d, int report);

/* A new entry (depth 1 is in the root): its stamp, and, for a folder, its own entries. NULL when it is not followed. */
static node *found(hrd_poller *p, const char *path, int report, int depth)
{
	struct stat st;
	char full[4096];
	snprintf(full, sizeof full, "%s%s%s", p->w->root, *path ? "/" : "", path);
	if (stamp(p, path, &st) < 0)
		return NULL;
	int isdir = S_ISDIR(st.st_mode);
	if (isdir) {
		struct stat l;
		/* Folders are followed through a link at the top only, as the
		 * inotify backend does, so that no link loop is walked. */
		if (hrd_watch_skipped(p->w, full) || depth > 64)
			return NULL;
		if (fstatat(p->rootfd, path, &l, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(l.st_mode) &&
		    (depth > 1 || !hrd_watch_follows(p->w, full)))
			return NULL;
	}
	node *n = add_node(p, path, isdir, depth);
	if (!n)
		return NULL;
	take_stamp(p, n, &st);
	if (isdir) {
		list(p, n, report);
		if (report)
			hrd_watch_post(p->w, HRD_WATCH_CHANGED, path);
	} else if (report) {
		n->pending = 1; /* it may still be being written: posted once it holds */
		make_hot(p, n);
	}
	return n;
}

/* The entries of folder d now, sorted, editors' temporary files left out; -1 when it cannot be listed. */
static int names_of(hrd_poller *p, node *d, char ***out, size_t *count)
{
	DIR *dir = NULL;
	int fd = openat(p->rootfd, *d->path ? d->path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int err = 0;
	for (errno = 0; (e = readdir(dir)); errno = 0) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    (e->d_type != DT_DIR && hrd_watch_ignored(e->d_name)))
			continue;
		if (n == cap) {
			char **g = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *g);
			if (!g)
				break;
			names = g;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	err = errno; /* a listing cut short must not read as files removed */
	closedir(dir);
	if (err) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		errno = err;
		return -1;
	}
	if (n)
		qsort(names, n, sizeof *names, by_name);
	*out = names;
	*count = n;
	return 0;
}

/* List folder d again, and take in what came and went. */
static void list(hrd_poller *p, node *d, int report)
{
	char **names = NULL;
	size_t n = 0;
	if (names_of(p, d, &names, &n) < 0) {
		if (errno != ENOENT && errno != ENOTDIR && !d->gone) {
			hrd_error("watcher: cannot list %s%s%s: %s; saves in it are missed until the daemon's user may read "
			          "it", p->w->root, *d->path ? "/" : "", d->path, strerror(errno));
			d->gone = 1; /* said once, until it can be listed */
			p->w->unwatched++;
		}
		return;
	}
	if (d->gone)
		p->w->unwatched--;
	d->gone = 0;
	/* Merge the old listing with the new: what went, what came, what stays. */
	node **kids = calloc(n ? n : 1, sizeof *kids), **old = d->kids;
	size_t i = 0, j = 0, k = 0, had = d->nkids;
	char path[4096];
	if (!kids) {
		pthread_mutex_lock(&p->w->mu);
		p->w->lost = 1;
		pthread_mutex_unlock(&p->w->mu);
		goto out;
	}
	d->kids = NULL; /* what goes is dropped without looking for itself in it */
	d->nkids = 0;
	while (i < had || j < n) {
		int c = i == had ? 1 : j == n ? -1 : strcmp(old[i]->name, names[j]);
		if (c < 0) {
			old[i]->parent = NULL;
			drop(p, old[i]);
		} else if (c == 0) {
			kids[k++] = old[i];
		} else {
			snprintf(path, sizeof path, "%s%s%s", d->path, *d->path ? "/" : "", names[j]);
			node *f = find(p, path) ? NULL : found(p, path, report, d->depth + 1);
			if (f) {
				f->parent = d;
				kids[k++] = f;
			}
		}
		i += c <= 0;
		j += c >= 0;
	}
	free(old);
	d->kids = kids;
	d->nkids = k;
out:
	for (size_t x = 0; x < n; x++)
		free(names[x]);
	free(names);
}

/* Look at file n again: by name from its folder's descriptor in a sweep (dirfd), else by path. */
static void look(hrd_poller *p, node *n, int dirfd)
{
	struct stat st;
	if (dirfd >= 0 ? stamp_at(dirfd, n->name, &st) < 0 : stamp(p, n->path, &st) < 0) {
		drop(p, n); /* removed: settled at once */
		return;
	}
	if (!same(n, &st)) {
		take_stamp(p, n, &st);
		n->pending = 1;
		make_hot(p, n);
		return;
	}
	if (n->pending) {
		if (now_ms() - n->since < p->period_ms)
			return; /* looked at twice in one tick: not yet a second look */
		n->pending = 0;
		hrd_watch_post(p->w, HRD_WATCH_CHANGED, n->path);
	} else if (n->racy && real_ns() - n->mtime >= RACY_NS) {
		n->racy = 0;
		uint64_t now_hash = content_hash(p, n->path);
		if (!now_hash || !n->hash || now_hash != n->hash)
			hrd_watch_post(p->w, HRD_WATCH_CHANGED, n->path);
	}
}

/*
 * Look at folder d (at the start of its sweep) and its files, from where the
 * last tick stopped (p->kidpos - 1), until budget stamps are taken (at least
 * one file, so that a sweep always moves on). Returns how many were;
 * p->kidpos is 0 once d is done.
 */
static size_t sweep_dir(hrd_poller *p, node *d, size_t budget)
{
	struct stat st;
	size_t cost = 1, looked = 0, i = p->kidpos ? p->kidpos - 1 : 0;
	int start = !p->kidpos;
	int fd = openat(p->rootfd, *d->path ? d->path : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	p->kidpos = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		if (*d->path)
			drop(p, d);
		return 1; /* the root gone: tick() waits for it */
	}
	if (start && (!same(d, &st) || d->racy)) {
		take_stamp(p, d, &st);
		list(p, d, 1);
	}
	while (i < d->nkids && (cost < budget || !looked)) {
		size_t had = d->nkids;
		if (d->kids[i]->isdir) {
			i++;
			continue;
		}
		look(p, d->kids[i], fd);
		cost++;
		looked++;
		i += d->nkids == had; /* else it went, and the next one took its place */
	}
	p->kidpos = i < d->nkids ? i + 1 : 0;
	close(fd);
	return cost;
}

static void reset(hrd_poller *p)
{
	for (size_t i = 0; i < p->cap; i++)
		if (p->tab[i]) {
			if (p->tab[i]->gone)
				p->w->unwatched--;
			free(p->tab[i]->kids);
			free(p->tab[i]->path);
			free(p->tab[i]);
		}
	free(p->tab);
	free(p->dirs);
	p->tab = p->dirs = NULL;
	p->cap = p->count = p->nfiles = p->ndirs = p->dcap = p->cursor = p->nhot = p->kidpos = 0;
}

static void add_top(hrd_poller *p, const char *rel)
{
	int depth = 0;
	for (const char *c = rel; *rel && c; c = strchr(c + 1, '/'))
		depth++;
	if (!find(p, rel))
		found(p, rel, 0, depth);
}

/* One tick: the hot files, then the next part of the sweep. */
static void tick(hrd_poller *p)
{
	struct stat st, had;
	if (p->ntops && !*p->tops[0]) {
		/* The root itself, by its path: a descriptor of one removed still
		 * stats, with no links, and its inode number may be taken again. */
		if (stat(p->w->root, &st) < 0 || !S_ISDIR(st.st_mode))
			return;
		if (st.st_ino != p->root_ino || fstat(p->rootfd, &had) < 0 || had.st_nlink == 0) {
			int fd = open(p->w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				return;
			hrd_warn("watcher: the root %s is back; looking at everything again", p->w->root);
			close(p->rootfd);
			p->rootfd = fd;
			p->root_ino = st.st_ino;
			reset(p);
			add_top(p, "");
			hrd_watch_post(p->w, HRD_WATCH_RESCAN, "");
			return;
		}
	}
	int64_t now = now_ms();
	for (size_t i = 0; i < p->nhot;) {
		node *n = p->hot[i];
		size_t before = p->nhot;
		look(p, n, -1);
		if (p->nhot < before)
			continue; /* dropped: another took its place */
		if (!n->pending && !n->racy && n->hot_till < now) {
			p->hot[i] = p->hot[--p->nhot];
			continue;
		}
		i++;
	}
	size_t budget = (p->nfiles + p->ndirs) / 8 + 1, done = 0;
	for (size_t visited = 0; done < budget && visited <= p->ndirs; visited++) {
		if (p->cursor >= p->ndirs)
			p->cursor = 0;
		if (!p->ndirs)
			break;
		node *d = p->dirs[p->cursor];
		if (d != p->kiddir)
			p->kidpos = 0; /* the folder it was in went, or moved in dirs[] */
		size_t before = p->ndirs;
		done += sweep_dir(p, d, budget - done);
		p->kiddir = p->kidpos ? d : NULL;
		if (p->ndirs != before)
			continue; /* d or folders under it went: what is at the cursor now is next */
		if (p->kidpos)
			break; /* the tick's share is spent inside d: on from there next tick */
		p->cursor++;
	}
}

static void *run(void *arg)
{
	hrd_poller *p = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	struct pollfd pf = {p->stopfd, POLLIN, 0};
	for (;;) {
		int rc = poll(&pf, 1, p->period_ms);
		if (rc > 0)
			break; /* told to stop */
		if (rc < 0 && errno != EINTR) {
			struct timespec second = {1, 0};
			hrd_error("watcher: polling cannot wait (%s); going on in a second", strerror(errno));
			nanosleep(&second, NULL);
		}
		pthread_mutex_lock(&p->mu);
		tick(p);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

hrd_poller *hrd_poller_start(hrd_watch *w, int interval_ms, char *err, size_t errsz)
{
	hrd_poller *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errsz, "poll: out of memory");
		return NULL;
	}
	p->w = w;
	p->period_ms = interval_ms > 1 ? interval_ms / 2 : 250;
	p->stopfd = eventfd(0, EFD_CLOEXEC);
	p->rootfd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (p->rootfd >= 0 && fstat(p->rootfd, &st) == 0)
		p->root_ino = st.st_ino;
	pthread_mutex_init(&p->mu, NULL);
	int rc = 0;
	if (p->stopfd < 0 || p->rootfd < 0 || (rc = pthread_create(&p->thread, NULL, run, p))) {
		snprintf(err, errsz, "poll: cannot start on %s: %s", w->root, strerror(rc ? rc : errno));
		hrd_poller_stop(p);
		return NULL;
	}
	p->started = 1;
	hrd_watch_thread_started(w, p->thread);
	return p;
}

int hrd_poller_add(hrd_poller *p, const char *rel)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	size_t i = 0;
	while (i < p->ntops && strcmp(p->tops[i], rel) != 0)
		i++;
	if (i == p->ntops) {
		char *top = strdup(rel), **t = realloc(p->tops, (p->ntops + 1) * sizeof *t);
		if (t)
			p->tops = t;
		if (top && t)
			p->tops[p->ntops++] = top;
		else {
			free(top);
			rc = -1;
		}
	}
	if (rc == 0)
		add_top(p, rel); /* also when it is back after it went */
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void hrd_poller_clear(hrd_poller *p)
{
	pthread_mutex_lock(&p->mu);
	reset(p);
	for (size_t i = 0; i < p->ntops; i++)
		free(p->tops[i]);
	p->ntops = 0;
	pthread_mutex_unlock(&p->mu);
}

void hrd_poller_stop(hrd_poller *p)
{
	if (!p)
		return;
	if (p->started) {
		uint64_t one = 1;
		hrd_watch_thread_ending(p->w, p->thread);
		(void)!write(p->stopfd, &one, sizeof one);
		pthread_join(p->thread, NULL);
	}
	reset(p);
	for (size_t i = 0; i < p->ntops; i++)
		free(p->tops[i]);
	free(p->tops);
	if (p->stopfd >= 0)
		close(p->stopfd);
	if (p->rootfd >= 0)
		close(p->rootfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- the backend: a poller on the whole root ---- */

typedef struct pollw {
	hrd_watch base;
	hrd_poller *poll;
	int interval_ms;
} pollw;

static void close_poll(hrd_watch *base)
{
	pollw *w = (pollw *)base;
	hrd_poller_stop(w->poll);
	hrd_watch_fini(&w->base);
	free(w);
}

static void pause_poll(hrd_watch *base)
{
	pollw *w = (pollw *)base;
	hrd_poller_stop(w->poll);
	w->poll = NULL;
}

static void resume_poll(hrd_watch *base)
{
	pollw *w = (pollw *)base;
	char err[256];
	if (!(w->poll = hrd_poller_start(&w->base, w->interval_ms, err, sizeof err)) || hrd_poller_add(w->poll, "") < 0)
		hrd_error("watcher: cannot poll again (%s): saves are missed until hotreloadd starts again",
		          w->poll ? "out of memory" : err);
	hrd_watch_post(&w->base, HRD_WATCH_RESCAN, "");
}

static const struct hrd_watch_ops ops = {NULL, close_poll, pause_poll, resume_poll};

int hrd_watch_poll_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                        hrd_watch **out, char *err, size_t errsz)
{
	pollw *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errsz, "poll: out of memory");
		return -1;
	}
	w->interval_ms = o->poll_interval_ms;
	if (hrd_watch_init(&w->base, &ops, o, root, exclude, err, errsz) < 0 ||
	    !(w->poll = hrd_poller_start(&w->base, o->poll_interval_ms, err, errsz)))
		goto fail;
	if (hrd_poller_add(w->poll, "") < 0) {
		snprintf(err, errsz, "poll: out of memory");
		goto fail;
	}
	*out = &w->base;
	return 0;
fail:
	close_poll(&w->base);
	return -1;
}
