/* progmod.c: patch builds for the running program: queued by the library's thread, applied together at hr_update. */
#include "progmod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A patch handed over, not yet applied. */
typedef struct queued {
	char *unit;
	uint64_t version;
	uint32_t gen;
	int fd;
	hrc_preload *pre; /* loaded ahead by the library's thread (hrc_progmod_preload), or NULL */
	int tried;        /* a load ahead was started: not again */
	int part;         /* of a change whose last unit has not come: not taken before it is here */
} queued;

/* The newest version of a unit handed over: older ones are not wanted. */
typedef struct floor_ {
	char *unit;
	uint64_t version;
} floor_;

struct hrc_progmod {
	hrc_prog *prog;
	struct timespec exe_mtime;
	/* Under c->lock. */
	queued *q;
	size_t nq, capq;
	floor_ *floors;
	size_t nfloors;
	int held; /* a unit of a change came and another of it follows (HRP_KIND_MORE): hr_update is not told yet */
};

hrc_progmod *hrc_progmod_new(hrc_prog *p)
{
	hrc_progmod *pm = calloc(1, sizeof *pm);
	if (!pm) {
		hrc_prog_close(p);
		return NULL;
	}
	pm->prog = p;
	struct stat st;
	/* the file the program was started from: a patch older than it is of an earlier build */
	if (stat("/proc/self/exe", &st) == 0)
		pm->exe_mtime = st.st_mtim;
	return pm;
}

static void drop_queue(queued *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(q[i].unit);
		hrc_preload_drop(q[i].pre);
		if (q[i].fd >= 0)
			close(q[i].fd);
	}
}

void hrc_progmod_free(hrc_progmod *pm)
{
	if (!pm)
		return;
	drop_queue(pm->q, pm->nq);
	free(pm->q);
	for (size_t i = 0; i < pm->nfloors; i++)
		free(pm->floors[i].unit);
	free(pm->floors);
	hrc_prog_close(pm->prog); /* kept for the process: patched code and its tables stay */
	free(pm);
}

static int newer(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Whether version is newer than what pm had of unit; if so it becomes the floor. */
static int raise_floor(hrc_progmod *pm, const char *unit, uint64_t version)
{
	for (size_t i = 0; i < pm->nfloors; i++) {
		if (strcmp(pm->floors[i].unit, unit))
			continue;
		if (version <= pm->floors[i].version)
			return 0;
		pm->floors[i].version = version;
		return 1;
	}
	floor_ *f = realloc(pm->floors, (pm->nfloors + 1) * sizeof *f);
	char *u = strdup(unit);
	if (f)
		pm->floors = f;
	if (!f || !u) {
		free(u);
		return 1; /* without memory to remember it, still worth applying */
	}
	pm->floors[pm->nfloors].unit = u;
	pm->floors[pm->nfloors++].version = version;
	return 1;
}

/* What is queued goes to the next hr_update of each program module, but for a change not complete yet. */
static void publish(hr_client *c)
{
	for (hr_module *m = c->mods; m; m = m->next)
		if (m->prog && m->prog->nq && !m->prog->held)
			atomic_fetch_or_explicit(&m->pending, 2, memory_order_release);
}

void hrc_progmod_on_build(hr_client *c, const char *unit, uint64_t version, int fd, int more)
{
	struct stat st;
	/* held back until the last unit of one change is here: a saved header's units are applied together
	 * (hrc_progmod_preload tells hr_update once none is held) */
	for (hr_module *m = c->mods; m; m = m->next) {
		if (!m->prog)
			continue;
		m->prog->held = more;
		for (size_t i = 0; !more && i < m->prog->nq; i++)
			m->prog->q[i].part = 0; /* the change is whole: its units may go */
	}
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	for (hr_module *m = c->mods; m; m = m->next) {
		hrc_progmod *pm = m->prog;
		if (!pm || m->closed || !hrc_prog_has_unit(pm->prog, unit))
			continue; /* a unit of another program: not an error */
		if (!newer(&st.st_mtim, &pm->exe_mtime))
			continue; /* the executable was built after this patch: it has the change already */
		if (!raise_floor(pm, unit, version))
			continue;
		int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		char *u = strdup(unit);
		queued *q = pm->nq == pm->capq ? realloc(pm->q, (pm->capq ? pm->capq * 2 : 8) * sizeof *q) : pm->q;
		if (own < 0 || !u || !q) {
			if (own >= 0)
				close(own);
			free(u);
			if (q && q != pm->q) {
				pm->q = q;
				pm->capq = pm->capq ? pm->capq * 2 : 8;
			}
			continue;
		}
		if (q != pm->q) {
			pm->q = q;
			pm->capq = pm->capq ? pm->capq * 2 : 8;
		}
		/* a newer one of a unit still queued replaces it */
		size_t i = 0;
		while (i < pm->nq && strcmp(pm->q[i].unit, unit))
			i++;
		if (i < pm->nq)
			drop_queue(&pm->q[i], 1);
		else
			pm->nq++;
		pm->q[i] = (queued){ u, version, c->gen, own, NULL, 0, more };
		/* hr_update is told once hrc_progmod_preload has loaded it ahead (or could not), not before: an
		 * hr_update meanwhile would wait for that load and then load it again itself */
	}
}

void hrc_progmod_unhold(hr_client *c)
{
	for (hr_module *m = c->mods; m; m = m->next) {
		if (!m->prog)
			continue;
		m->prog->held = 0;
		for (size_t i = 0; i < m->prog->nq; i++)
			m->prog->q[i].part = 0;
	}
	publish(c);
}

int hrc_progmod_has_unit(hr_client *c, const char *unit)
{
	for (hr_module *m = c->mods; m; m = m->next)
		if (m->prog && !m->closed && hrc_prog_has_unit(m->prog->prog, unit))
			return 1;
	return 0;
}

/*
 * The units of a change whose last one has not come stay queued, whatever
 * else is taken: taking them now would apply the change in two hr_updates.
 * q's other entries are moved to its front; their count is returned. Under
 * c->lock, with pm's queue just swapped out into q.
 */
static size_t keep_parts(hrc_progmod *pm, queued *q, size_t n)
{
	size_t nparts = 0, k = 0;
	for (size_t i = 0; i < n; i++)
		nparts += q[i].part != 0;
	if (!nparts)
		return n;
	queued *rest = malloc(nparts * sizeof *rest);
	if (!rest) { /* all of it stays for a later hr_update: applied whole then */
		pm->q = q;
		pm->nq = pm->capq = n;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (q[i].part)
			rest[pm->nq++] = q[i];
		else
			q[k++] = q[i];
	}
	pm->q = rest;
	pm->capq = nparts;
	return k;
}

int hrc_progmod_take(hr_module *m)
{
	hr_client *c = m->c;
	hrc_progmod *pm = m->prog;
	atomic_exchange_explicit(&m->pending, 0, memory_order_acquire);
	pthread_mutex_lock(&c->lock);
	queued *q = pm->q;
	size_t n = pm->nq;
	pm->q = NULL;
	pm->nq = pm->capq = 0;
	n = keep_parts(pm, q, n);
	if (pm->q == q)
		q = NULL; /* all of it put back */
	pthread_mutex_unlock(&c->lock);
	if (!n) {
		free(q);
		return 0;
	}
	int fds[64], rc = 0;
	hrc_preload *pres[64];
	char why[1024] = "";
	unsigned before = hrc_prog_version(pm->prog);
	/* all units together, so that a change across them (a shared header) lands at once */
	int *f = n <= 64 ? fds : malloc(n * sizeof *f);
	hrc_preload **pre = n <= 64 ? pres : malloc(n * sizeof *pre);
	if (!f || !pre) {
		rc = -ENOMEM;
		snprintf(why, sizeof why, "out of memory");
	} else {
		for (size_t i = 0; i < n; i++) {
			f[i] = q[i].fd;
			pre[i] = q[i].pre;
			q[i].pre = NULL;
		}
		rc = hrc_prog_apply_loaded(pm->prog, f, pre, n, why, sizeof why);
	}
	if (f != fds)
		free(f);
	if (pre != pres)
		free(pre);
	uint64_t at_us = hrc_now_ns(CLOCK_REALTIME) / 1000u;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		if (rc < 0) {
			hrp_msg r = {.type = HRP_REFUSED, .u.refused = {q[i].unit, q[i].version, why}};
			hrc_report(c, q[i].gen, &r);
			c->stats.refusals++;
			hrc_notes_post(&c->notes, HR_NOTE_REFUSED, q[i].unit, q[i].version, "%s v%llu refused: %s", q[i].unit,
				       (unsigned long long)q[i].version, why);
		} else {
			hrp_msg r = {.type = HRP_LOADED, .u.loaded = {q[i].unit, q[i].version, at_us}};
			hrc_report(c, q[i].gen, &r);
			hrc_notes_post(&c->notes, HR_NOTE_LOADED, q[i].unit, q[i].version, "%s v%llu live", q[i].unit,
				       (unsigned long long)q[i].version);
		}
	}
	pthread_mutex_unlock(&c->lock);
	/* wake the library's thread to send the reports: a patch is rare, a write is cheap beside it */
	uint64_t one = 1;
	ssize_t w = write(c->wake, &one, sizeof one);
	(void)w; /* EAGAIN: awake already */
	drop_queue(q, n);
	free(q);
	m->version += hrc_prog_version(pm->prog) - before;
	return rc < 0 ? rc : rc > 0;
}

/* The first queued patch not yet loaded ahead, of any program module: its module, unit, version and a copy of
 * its descriptor (the queue's own may be closed by an hr_update meanwhile). Under c->lock. 0, or -1 for none. */
static int next_to_load(hr_client *c, hr_module **mod, char **unit, uint64_t *version, int *fd)
{
	for (hr_module *m = c->mods; m; m = m->next) {
		if (!m->prog || m->closed)
			continue;
		for (size_t i = 0; i < m->prog->nq; i++) {
			queued *q = &m->prog->q[i];
			if (q->tried)
				continue;
			q->tried = 1;
			*fd = fcntl(q->fd, F_DUPFD_CLOEXEC, 3);
			*unit = strdup(q->unit);
			if (*fd < 0 || !*unit) {
				if (*fd >= 0)
					close(*fd);
				free(*unit);
				continue; /* hr_update loads it, told by hrc_progmod_preload's publish once no change is held */
			}
			*mod = m;
			*version = q->version;
			return 0;
		}
	}
	return -1;
}

void hrc_progmod_preload(hr_client *c)
{
	for (;;) {
		hr_module *m = NULL;
		char *unit = NULL;
		uint64_t version = 0;
		int fd = -1;
		pthread_mutex_lock(&c->lock);
		int none = next_to_load(c, &m, &unit, &version, &fd);
		pthread_mutex_unlock(&c->lock);
		if (none) {
			/* everything queued is loaded ahead (or left to hr_update): tell it, unless a change is incomplete */
			pthread_mutex_lock(&c->lock);
			publish(c);
			pthread_mutex_unlock(&c->lock);
			return;
		}
		hrc_progmod *pm = m->prog;
		/* Modules are freed only on this thread, so pm outlives the unlocked load. */
		hrc_preload *pl = hrc_prog_preload(pm->prog, fd);
		close(fd);
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; pl && i < pm->nq; i++) {
			queued *q = &pm->q[i];
			if (q->version == version && !q->pre && !strcmp(q->unit, unit)) {
				q->pre = pl;
				pl = NULL;
			}
		}
		if (!pm->held)
			atomic_fetch_or_explicit(&m->pending, 2, memory_order_release);
		pthread_mutex_unlock(&c->lock);
		hrc_preload_drop(pl); /* taken by an hr_update meanwhile, or replaced by a newer one */
		free(unit);
	}
}
