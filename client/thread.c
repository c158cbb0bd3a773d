/* thread.c: libhotreload's own thread: the connection to the daemon, loading builds ahead of time, freeing old ones. */
#include "client.h"
#include "elfcheck.h"
#include "elfvars.h"
#include "progmod.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the client's state, under c->lock unless said ---- */

/*
 * A report about build b for the daemon (LOADED, REFUSED): made while it is
 * away, it is held for its return; one in flight when it went is lost. About a
 * build of a history that is gone, it means nothing to the daemon now.
 */
void hrc_report(hr_client *c, uint32_t gen, const hrp_msg *m)
{
	if (gen != c->gen)
		return;
	/* Only ENOMEM can fail here, and a lost report is not worth failing the host. */
	hrp_encode(m, c->state == HRC_UP ? &c->out : &c->held);
}

/* A request that only means something on this connection (SUBSCRIBE...): dropped while there is none. */
int hrc_queue(hr_client *c, const hrp_msg *m)
{
	return c->state == HRC_UP && hrp_encode(m, &c->out) >= 0 ? 0 : -1;
}

uint64_t hrc_now_ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t hrc_now_ms(void)
{
	return hrc_now_ns(CLOCK_MONOTONIC) / 1000000u;
}

/* Settle an opening module, so that hr_open returns. */
static void settle(hr_client *c, hr_module *m)
{
	if (m->opening) {
		m->opening = m->awaiting = 0;
		pthread_cond_broadcast(&c->cond);
	}
}

/* Ask for the daemon's status: its answer comes after the answers to everything sent before. */
void hrc_ask(hr_client *c, hr_module *m)
{
	hrp_msg q = {.type = HRP_STATUS_REQ};
	if (hrc_queue(c, &q) < 0)
		settle(c, m); /* no daemon, or out of memory: an answer cannot come */
	else
		m->barrier = ++c->asked;
}

/* Hand builds (a list) to the library's thread, which unloads them. */
static void discard(hr_client *c, build *b)
{
	if (!b)
		return;
	build *last = b;
	while (last->next)
		last = last->next;
	last->next = c->unload;
	c->unload = b;
}

/* Remember that m refused version v, so that no later offer of it is tried. */
static void refuse(hr_module *m, uint64_t v)
{
	uint64_t *grown = realloc(m->refused, (m->nrefused + 1) * sizeof *grown);
	if (grown) {
		m->refused = grown;
		m->refused[m->nrefused++] = v;
	}
}

/*
 * Version of m, of history gen, was refused here (did not load, or its
 * hr_on_load failed) because of why: told to the daemon, noted, and
 * (for_good) never tried again. The caller counts it.
 */
static void refused(hr_client *c, hr_module *m, uint32_t gen, uint64_t version, int for_good, const char *why)
{
	hrp_msg r = {.type = HRP_REFUSED, .u.refused = {m->name, version, why}};
	hrc_report(c, gen, &r);
	if (gen == c->gen && for_good) /* numbers of a history that is gone say nothing about this one's */
		refuse(m, version);
	hrc_notes_post(&c->notes, HR_NOTE_REFUSED, m->name, version, "%s v%llu refused: %s", m->name,
	               (unsigned long long)version, why);
}

/* Whether version v is worth loading for m: newer than what it has, and not refused before. */
static int wanted(const hr_module *m, uint64_t v)
{
	if (v <= m->floor)
		return 0;
	for (size_t i = 0; i < m->nrefused; i++)
		if (m->refused[i] == v)
			return 0;
	return 1;
}

/* ---- the library's thread ---- */

/*
 * The name glibc knows a build by: /proc/PID/fd/FD (not /proc/self, which gdb
 * would open in its own process), PID as the /proc mounted here counts it. In
 * a PID namespace that sees its parent's /proc (unshare --pid without
 * --mount-proc), getpid() there is another process, often init: /proc/self
 * says which number is ours. -errno when there is no /proc.
 */
static int fd_name(int fd, char *out, size_t n)
{
	char self[32];
	ssize_t len = readlink("/proc/self", self, sizeof self - 1);
	if (len <= 0)
		return len < 0 ? -errno : -ENOENT;
	self[len] = '\0';
	snprintf(out, n, "/proc/%s/fd/%d", self, fd);
	return 0;
}

/*
 * glibc matches a dlopen's name against what it has loaded before it opens
 * anything: a descriptor whose build is still loaded (dlclose does not always
 * unload) must stay open, or the next build given that number would get the
 * old one. Close those that are gone now; keep the others for a later look.
 */
static void close_unloaded(int *fds, size_t *n)
{
	size_t kept = 0;
	for (size_t i = 0; i < *n; i++) {
		char name[64] = "";
		void *h = fd_name(fds[i], name, sizeof name) < 0 ? NULL : dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
		if (h || !name[0]) { /* no name, no look: kept */
			if (h)
				dlclose(h);
			fds[kept++] = fds[i];
		} else {
			close(fds[i]);
		}
	}
	*n = kept;
}

static void unload(hr_client *c, build *b)
{
	while (b) {
		build *next = b->next;
		hrc_symtab_free(&b->syms);
		if (b->handle)
			dlclose(b->handle);
		if (b->fd >= 0) {
			int *grown = realloc(c->linger, (c->nlinger + 1) * sizeof *grown);
			if (grown) {
				c->linger = grown;
				c->linger[c->nlinger++] = b->fd;
			} /* else it stays open: a descriptor lost is better than a build mistaken for another */
		}
		free(b);
		b = next;
	}
	close_unloaded(c->linger, &c->nlinger);
}

/* ---- a build's pages, made present before it is offered ---- */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#define MADV_POPULATE_WRITE 23
#endif

static uintptr_t page_size(void)
{
	static _Atomic uintptr_t size;
	uintptr_t n = atomic_load_explicit(&size, memory_order_relaxed);
	if (!n) {
		long got = sysconf(_SC_PAGESIZE);
		n = got > 0 ? (uintptr_t)got : 4096;
		atomic_store_explicit(&size, n, memory_order_relaxed);
	}
	return n;
}

/* Touch each page of [from, to), within it: a read, or a write that changes nothing (atomic, so that it cannot undo
 * another thread's). */
static void touch(uintptr_t from, uintptr_t to, int write)
{
	for (uintptr_t a = from; a < to; a = (a & ~(page_size() - 1)) + page_size())
		if (write)
			__atomic_fetch_add((char *)a, 0, __ATOMIC_RELAXED);
		else
			(void)*(volatile const char *)a;
}

/* Make [from, to) present in the page tables, which the process's threads share: for writing, a private page is
 * copied now, not at the host's first write. By the kernel when it can, else page by page. */
static void populate(uintptr_t from, uintptr_t to, int write)
{
	if (from >= to)
		return;
	if (madvise((void *)from, to - from, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
		return;
	if (errno == EINVAL) /* a kernel without them */
		touch(from, to, write);
	/* Anything else (ENOMEM, EFAULT): the host's thread takes the faults, as it would without this. */
}

/* dl_iterate_phdr's callback: prefault the object loaded at *arg (its load bias): each segment for reading, and
 * the writable ones, past the part that turned read-only after relocation (RELRO), for writing. */
static int prefault_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (info->dlpi_addr != *(const ElfW(Addr) *)arg)
		return 0;
	uintptr_t pg = page_size(), base = info->dlpi_addr, relro_end = 0;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO)
			relro_end = (base + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz) & ~(pg - 1);
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t from = (base + ph->p_vaddr) & ~(pg - 1), to = (base + ph->p_vaddr + ph->p_memsz + pg - 1) & ~(pg - 1);
		uintptr_t writable = !(ph->p_flags & PF_W) ? to : relro_end > from && relro_end <= to ? relro_end : from;
		populate(from, writable, 0);
		populate(writable, to, 1);
	}
	return 1;
}

/*
 * A switch must take no page fault on the host's thread: a first touch of a
 * page costs a fault (a minor one, the page in memory), and a first write to
 * one of the object's data pages a copy. Both happen here instead, on this
 * thread, before the build is offered; threads share page tables. What the
 * build allocates in its hooks is not covered.
 */
static void prefault(void *handle)
{
	struct link_map *lm;
	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0)
		dl_iterate_phdr(prefault_object, &lm->l_addr);
}

/* Copy the object behind fd into a memfd: for one this process may read through fd, but not open again. */
static int copy_to_memfd(int fd, uint64_t version, char *why, size_t whysz)
{
	char name[64];
	snprintf(name, sizeof name, "hotreload-v%llu", (unsigned long long)version);
	int m = memfd_create(name, MFD_CLOEXEC);
	if (m < 0) {
		snprintf(why, whysz, "cannot make a memfd for it: %s", strerror(errno));
		return -1;
	}
	char buf[65536];
	for (off_t at = 0;;) {
		ssize_t n = pread(fd, buf, sizeof buf, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return m;
		if (n < 0 || write(m, buf, (size_t)n) != n) {
			snprintf(why, whysz, "cannot copy it into a memfd: %s", strerror(errno));
			close(m);
			return -1;
		}
		at += n;
	}
}

/*
 * Load the object that the daemon handed over as fd (taken: closed on
 * failure, else kept by the build), and resolve its symbols. NULL with the
 * reason in why.
 */
static build *load(hr_client *c, int fd, uint64_t version, char *why, size_t whysz)
{
	build *b = calloc(1, sizeof *b);
	struct stat st;
	char name[64];
	if (!b) {
		snprintf(why, whysz, "out of memory");
		goto fail;
	}
	b->fd = -1;
	b->version = version;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whysz, "what the daemon handed over is not a file");
		goto fail;
	}
	/* Another machine's object (a daemon with the wrong cc): said plainly, where dlopen would say "No such file". */
	if (hrc_elf_check(fd, why, whysz) < 0)
		goto fail;
	if (fd_name(fd, name, sizeof name) < 0) {
		snprintf(why, whysz, "cannot name it for dlopen: no /proc in this process's mount namespace (builds "
		         "load as /proc/PID/fd/N): mount /proc there, as container engines do");
		goto fail;
	}
	/* dlopen opens the name again: refused for an object of another user's that we may only read through fd. */
	struct stat named;
	int again = open(name, O_RDONLY | O_CLOEXEC);
	if (again >= 0 && (fstat(again, &named) < 0 || named.st_dev != st.st_dev || named.st_ino != st.st_ino)) {
		snprintf(why, whysz, "%s is not the build the daemon handed over: /proc is not this process's", name);
		close(again);
		goto fail;
	}
	if (again < 0) {
		int m = copy_to_memfd(fd, version, why, whysz);
		if (m < 0)
			goto fail;
		close(fd);
		fd = m;
		if (fd_name(fd, name, sizeof name) < 0) {
			snprintf(why, whysz, "cannot name its copy for dlopen: %s", strerror(errno));
			goto fail;
		}
	} else {
		close(again);
	}
	/* RTLD_NOW: a symbol that does not resolve refuses the build now, not a crash in a frame later. */
	b->handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!b->handle) {
		const char *e = dlerror();
		snprintf(why, whysz, "%s", e ? e : "dlopen failed");
		goto fail;
	}
	b->fd = fd;
	int rc = hrc_symtab_make(&b->syms, b->handle);
	if (rc < 0) {
		snprintf(why, whysz, "cannot read the symbols of v%llu: %s", (unsigned long long)version, strerror(-rc));
		unload(c, b);
		return NULL;
	}
	*(void **)&b->on_load = hrc_symtab_find(&b->syms, "hr_on_load");
	*(void **)&b->on_unload = hrc_symtab_find(&b->syms, "hr_on_unload");
	b->keep = hrc_symtab_prefixed(&b->syms, KEEP_PREFIX, &b->nkeep);
	prefault(b->handle);
	/* The host's thread writes the switch's outcome into b: calloc may have given pages never touched. */
	touch((uintptr_t)b, (uintptr_t)(b + 1), 1);
	return b;
fail:
	free(b);
	close(fd);
	return NULL;
}

/*
 * Name the globals of m's build v that a reload starts afresh, at its first
 * load and whenever they change: a silent reset of a game's state is a bug
 * found late. Under the lock.
 */
static void note_unkept(hr_client *c, hr_module *m, uint64_t v, const char *names, size_t n)
{
	if (m->unkept ? strcmp(m->unkept, names) == 0 : n == 0)
		return;
	char *copy = strdup(names);
	if (!copy)
		return;
	free(m->unkept);
	m->unkept = copy;
	if (n)
		hrc_notes_post(&c->notes, HR_NOTE_GLOBALS, m->name, v,
		               "%s: %zu global%s restart%s at each reload: %s (HR_KEEP keeps them; HR_FRESH(name) says one "
		               "is meant to)", m->name, n, n == 1 ? "" : "s", n == 1 ? "s" : "", names);
}

/* The next open module named name after m (NULL: the first), under lock. */
hr_module *hrc_next_named(hr_client *c, hr_module *m, const char *name)
{
	for (m = m ? m->next : c->mods; m; m = m->next)
		if (!m->closed && strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/*
 * A BUILD, with the descriptor of its object (or -1: none came, or it was
 * cut off; or fail says why it cannot be had): load it for every module of
 * that name that has nothing as new. fd is taken.
 */
static void on_build(hr_client *c, const char *name, uint64_t version, uint32_t kind, int fd, int cut, const char *fail)
{
	pthread_mutex_lock(&c->lock);
	if (name[0] == '/') { /* a unit's patch: module names never start with '/' */
		hrc_progmod_on_build(c, name, version, fd, (kind & HRP_KIND_MORE) != 0);
		pthread_mutex_unlock(&c->lock);
		if (fd >= 0)
			close(fd);
		hrc_progmod_preload(c);
		return;
	}
	for (hr_module *m = hrc_next_named(c, NULL, name); m; m = hrc_next_named(c, m, name)) {
		if (!wanted(m, version))
			continue; /* an answer to a refusal, older than what this module has, or refused already */
		pthread_mutex_unlock(&c->lock);
		/* Modules are freed only on this thread, so m outlives the unlocked load. */
		char why[1024];
		build *b = NULL;
		int for_good = 1; /* a build that does not load here; not one whose descriptor did not come through */
		/* Each build keeps a descriptor of its own: open while it is mapped. */
		int own = fd >= 0 && !fail ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
		if (own >= 0)
			b = load(c, own, version, why, sizeof why);
		else if (fail)
			snprintf(why, sizeof why, "%s", fail);
		else if (fd >= 0)
			snprintf(why, sizeof why, "cannot keep its descriptor: %s", strerror(errno));
		else
			snprintf(why, sizeof why, "%s", cut ? "its descriptor was cut off (is the program out of descriptors?)"
			                                    : "it came without its object's descriptor");
		if (own < 0)
			for_good = 0; /* offered again, it may come through: never passed over for good */
		char unkept[120]; /* a note holds 256 bytes, and the advice comes after the names */
		size_t nunkept = 0;
		if (b && hrc_elfvars(b->fd, unkept, sizeof unkept, &nunkept) < 0)
			nunkept = 0; /* a build whose symbols cannot be read says nothing of them */
		pthread_mutex_lock(&c->lock);
		if (b && !m->closed)
			note_unkept(c, m, version, unkept, nunkept);
		if (b)
			b->gen = c->gen; /* only this thread changes gen, so it is the one of the BUILD */
		if (m->closed) {
			discard(c, b);
			continue;
		}
		if (!b) {
			/* The daemon records it, and answers with the newest good build older than this one. */
			c->stats.refusals++;
			refused(c, m, c->gen, version, for_good, why);
			atomic_fetch_or_explicit(&m->pending, 1, memory_order_relaxed);
			if (m->opening) {
				m->awaiting = 0;
				hrc_ask(c, m);
			}
			continue;
		}
		m->floor = version;
		b->m = m;
		/* A refusal flag that was set goes: the switch to this build is what hr_update reports. */
		uintptr_t old = atomic_exchange_explicit(&m->pending, (uintptr_t)b, memory_order_release);
		build *unseen = (build *)(old & ~(uintptr_t)1);
		discard(c, unseen); /* handed over, never taken: the host never saw it */
		if (!unseen)
			c->offered++;
		c->poll_ms = TAKE_POLL_MIN_MS;
		settle(c, m);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
}

static int status_of(const hrp_msg *st, const char *name, hrp_modstat *out)
{
	size_t pos = 0;
	while (hrp_status_next(st, &pos, out))
		if (strcmp(out->module, name) == 0)
			return 1;
	return 0;
}

/*
 * A STATUS frame. A reply answers one STATUS_REQ, after everything sent
 * before it; a long one comes in several frames, and only its last (more 0)
 * completes the answer. A module may be in any of them.
 */
static void on_status(hr_client *c, const hrp_msg *st)
{
	pthread_mutex_lock(&c->lock);
	uint64_t reply = c->answered + 1;
	for (hr_module *m = c->mods; m; m = m->next) {
		if (m->closed || !m->opening || m->barrier != reply)
			continue;
		hrp_modstat s;
		/* Nothing loaded yet: wait for a build under way; otherwise there is nothing to wait for. */
		if (status_of(st, m->name, &s) &&
		    (strcmp(s.status, "building") == 0 || strcmp(s.status, "queued") == 0))
			m->awaiting = 1;
		else if (!st->u.status.more && !m->awaiting)
			settle(c, m);
	}
	if (!st->u.status.more)
		c->answered = reply;
	pthread_mutex_unlock(&c->lock);
}

static void on_failed(hr_client *c, const char *name, const char *message)
{
	pthread_mutex_lock(&c->lock);
	/* a unit's patch: no module has its name, the program module that has the unit shows it */
	hr_module *m = name[0] == '/' ? NULL : hrc_next_named(c, NULL, name);
	if (m || (name[0] == '/' && hrc_progmod_has_unit(c, name)))
		hrc_notes_post(&c->notes, HR_NOTE_FAILED, name, 0, "%s build failed: %s", name, message);
	for (; m; m = hrc_next_named(c, m, name))
		if (m->awaiting)
			settle(c, m); /* the first build failed: nothing to load */
	pthread_mutex_unlock(&c->lock);
}

/*
 * The daemon's HELLO: the connection is up. Subscribe every open module
 * again: the daemon answers with what is newer. A new database is a new
 * history, whose numbers say nothing against ours.
 */
static int on_hello(hr_client *c, const hrp_msg *h)
{
	if (h->type == HRP_ERROR) {
		/* Denied, or another protocol version: said once, as it comes back at every attempt. */
		pthread_mutex_lock(&c->lock);
		if (!c->turned_away)
			hrc_notes_post(&c->notes, HR_NOTE_DISCONNECTED, "", 0, "hotreloadd does not take this client: %s",
			               h->u.error.message);
		c->turned_away = 1;
		pthread_mutex_unlock(&c->lock);
	}
	if (h->type != HRP_HELLO || h->u.hello.role != HRP_ROLE_DAEMON)
		return -1;
	pthread_mutex_lock(&c->lock);
	c->turned_away = c->distrusted = 0;
	int replaced = c->db_id[0] && strcmp(c->db_id, h->u.hello.db_id) != 0;
	snprintf(c->db_id, sizeof c->db_id, "%s", h->u.hello.db_id);
	c->bytes = h->u.hello.bytes != 0; /* only this thread reads it */
	c->state = HRC_UP;
	c->asked = c->answered = 0;
	if (replaced)
		c->gen++;
	else
		hrp_buf_append(&c->out, c->held.data + c->held.off, c->held.len - c->held.off);
	hrp_buf_free(&c->held);
	hrc_progmod_unhold(c);
	for (hr_module *m = c->mods; m; m = m->next) {
		if (m->closed)
			continue;
		if (replaced) {
			m->floor = 0;
			m->nrefused = 0;
		}
		if (hrc_next_named(c, NULL, m->name) == m) {
			hrp_msg s = {.type = HRP_SUBSCRIBE, .u.sub = {m->name}};
			hrc_queue(c, &s);
		}
	}
	if (c->was_up)
		c->stats.reconnects++;
	hrc_notes_post(&c->notes, HR_NOTE_CONNECTED, "", 0, "%s hotreloadd%s", c->was_up ? "reconnected to" : "connected to",
	               replaced ? ": its history is new" : "");
	c->was_up = 1;
	pthread_mutex_unlock(&c->lock);
	c->up_since = hrc_now_ms();
	return 0;
}

/* ---- objects that come as bytes (no descriptor reaches this process) ---- */

/* Whether any open module of that name would take version (under no lock: takes it). */
static int anyone_wants(hr_client *c, const char *name, uint64_t version)
{
	int want = 0;
	pthread_mutex_lock(&c->lock);
	for (hr_module *m = hrc_next_named(c, NULL, name); m && !want; m = hrc_next_named(c, m, name))
		want = wanted(m, version);
	pthread_mutex_unlock(&c->lock);
	return want;
}

/* Whether this connection asked for the bytes of (name, version): its answer is the BUILD they follow. Forgets it. */
static int was_asked(hr_client *c, const char *name, uint64_t version)
{
	for (size_t i = 0; i < c->nbytes_asked && i < ASKED_MAX; i++)
		if (c->bytes_asked[i].version == version && strcmp(c->bytes_asked[i].module, name) == 0) {
			c->bytes_asked[i].version = 0;
			return 1;
		}
	return 0;
}

/* A BUILD came without its descriptor, and no bytes follow it: ask for them, rather than refuse it. */
static void ask_bytes(hr_client *c, const char *name, uint64_t version)
{
	if (!anyone_wants(c, name, version))
		return;
	size_t i = c->nbytes_asked++ % ASKED_MAX;
	snprintf(c->bytes_asked[i].module, sizeof c->bytes_asked[i].module, "%s", name);
	c->bytes_asked[i].version = version;
	hrp_msg r = {.type = HRP_OBJECT_REQ, .u.object_req = {name, version}};
	pthread_mutex_lock(&c->lock);
	hrc_queue(c, &r);
	pthread_mutex_unlock(&c->lock);
}

/* What came of an object's bytes is over: the memfd (if any) is closed, and nothing was handed over but by on_build. */
static void incoming_end(hr_client *c)
{
	if (c->in.fd >= 0)
		close(c->in.fd);
	c->in.fd = -1;
	c->in.active = 0;
}

/* Nothing of the object comes (any longer): refused, not for good (sent again, it may come through). */
static void incoming_fail(hr_client *c, const char *why)
{
	char name[HRP_NAME_MAX + 1];
	snprintf(name, sizeof name, "%s", c->in.module);
	if (c->in.fd >= 0)
		on_build(c, name, c->in.version, c->in.kind, -1, 0, why);
	if (c->in.fd >= 0)
		close(c->in.fd);
	c->in.fd = -1; /* its bytes still come: read and let go */
}

static int incoming_chunk(hr_client *c, const hrp_msg *m);

/* A BUILD whose object follows as bytes: a memfd to write them into, if a module wants it. */
static void incoming_begin(hr_client *c, const hrp_msg *m)
{
	struct hrc_incoming *in = &c->in;
	*in = (struct hrc_incoming){.active = 1, .fd = -1, .version = m->u.build.version, .size = m->u.build.size,
	                            .kind = m->u.build.kind};
	snprintf(in->module, sizeof in->module, "%s", m->u.build.module);
	snprintf(in->sha256, sizeof in->sha256, "%s", m->u.build.sha256);
	hrp_sha256_init(&in->sum);
	if (in->size > HRP_OBJECT_MAX || strlen(m->u.build.sha256) != 64) {
		/* Said before its bytes are read: a daemon cannot make this process take more than the bound. */
		char why[160];
		snprintf(why, sizeof why, "its object was to come as %llu bytes%s: refused (at most %llu, with its SHA-256)",
		         (unsigned long long)in->size, strlen(m->u.build.sha256) != 64 ? " without its SHA-256" : "",
		         (unsigned long long)HRP_OBJECT_MAX);
		on_build(c, in->module, in->version, in->kind, -1, 0, why);
		return; /* its bytes, if any come, are read and let go */
	}
	if (anyone_wants(c, in->module, in->version)) {
		char name[HRP_NAME_MAX + 32];
		snprintf(name, sizeof name, "hotreload-%s-v%llu", in->module, (unsigned long long)in->version);
		in->fd = memfd_create(name, MFD_CLOEXEC);
		if (in->fd < 0) {
			char why[160];
			snprintf(why, sizeof why, "cannot make a memfd for its bytes: %s", strerror(errno));
			on_build(c, in->module, in->version, in->kind, -1, 0, why);
		}
	}
	if (in->size == 0)
		incoming_chunk(c, &(hrp_msg){.type = HRP_OBJECT,
		                             .u.object = {in->module, in->version, 0, {NULL, 0}}});
}

/*
 * One OBJECT frame: the next bytes of the object on its way, in order, no
 * more than its BUILD said. The last one checks its SHA-256, then loads it.
 * Returns 0, or -1 for bytes that are no such part (the connection goes).
 */
static int incoming_chunk(hr_client *c, const hrp_msg *m)
{
	struct hrc_incoming *in = &c->in;
	const hrp_bytes *d = &m->u.object.data;
	if (!in->active || in->version != m->u.object.version || strcmp(in->module, m->u.object.module) != 0 ||
	    m->u.object.offset != in->got || d->len > in->size - in->got)
		return -1;
	for (uint32_t done = 0; in->fd >= 0 && done < d->len;) {
		ssize_t n = write(in->fd, d->data + done, d->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			char why[160];
			snprintf(why, sizeof why, "cannot write its bytes into a memfd: %s", n < 0 ? strerror(errno) : "full");
			incoming_fail(c, why);
			break;
		}
		done += (uint32_t)n;
	}
	hrp_sha256_update(&in->sum, d->data, d->len);
	in->got += d->len;
	if (in->got < in->size)
		return 0;
	char got[65];
	hrp_sha256_hex(&in->sum, got);
	if (in->fd >= 0 && strcmp(got, in->sha256) != 0) {
		char why[256];
		snprintf(why, sizeof why, "its bytes' SHA-256 is %s, not %s as announced: changed on the way", got,
		         in->sha256);
		incoming_fail(c, why);
	}
	if (in->fd >= 0) {
		pthread_mutex_lock(&c->lock);
		c->stats.byte_builds++;
		pthread_mutex_unlock(&c->lock);
		int fd = in->fd;
		in->fd = -1;
		on_build(c, in->module, in->version, in->kind, fd, 0, NULL); /* takes fd */
	}
	incoming_end(c);
	return 0;
}

/* One message from the daemon. Returns 0, or -1 when the connection is over. */
static int handle(hr_client *c, const hrp_msg *m)
{
	if (c->state == HRC_HELLO)
		return on_hello(c, m);
	/* An object's bytes come right after its BUILD, nothing between: anything else cuts them (nothing is loaded). */
	if (c->in.active && m->type != HRP_OBJECT)
		return -1;
	switch (m->type) {
	case HRP_BUILD:
		/* The descriptor that came with this frame is its object's; the path is the daemon's, never opened here. */
		if (c->frame_fd >= 0)
			on_build(c, m->u.build.module, m->u.build.version, m->u.build.kind, c->frame_fd, c->frame_cut, NULL);
		else if (c->bytes || was_asked(c, m->u.build.module, m->u.build.version))
			incoming_begin(c, m);
		else
			ask_bytes(c, m->u.build.module, m->u.build.version);
		c->frame_fd = -1;
		return 0;
	case HRP_OBJECT:
		return incoming_chunk(c, m);
	case HRP_FAILED:
		on_failed(c, m->u.failed.module, m->u.failed.message);
		return 0;
	case HRP_STATUS:
		on_status(c, m);
		return 0;
	default: /* ERROR (the daemon closes after it), or anything a daemon does not send */
		return -1;
	}
}

/*
 * The switches the host's thread made since the last look (hr_client.taken),
 * oldest first: reported to the daemon and noted, and the builds they let go
 * of handed to unload, ahead of the reports (see flush). Under lock.
 */
static void switched(hr_client *c)
{
	build *b = atomic_exchange_explicit(&c->taken, NULL, memory_order_acquire), *oldest = NULL;
	while (b) {
		build *newer = b->taken_next;
		b->taken_next = oldest;
		oldest = b;
		b = newer;
	}
	for (b = oldest; b; b = oldest) {
		oldest = b->taken_next;
		hr_module *m = b->m;
		c->offered--;
		if (b->unload_crash[0])
			hrc_notes_post(&c->notes, HR_NOTE_CRASHED, m->name, b->prev_version, "%s v%llu: hr_on_unload crashed: %s",
			               m->name, (unsigned long long)b->prev_version, b->unload_crash);
		if (b->why[0]) {
			refused(c, m, b->gen, b->version, 1, b->why);
			if (b->gen == c->gen && m->floor == b->version) /* so that the daemon's answer, an older build, may load */
				m->floor = b->had_prev && b->prev_gen == c->gen ? b->prev_version : 0;
			discard(c, b);
			continue;
		}
		hrp_msg r = {.type = HRP_LOADED, .u.loaded = {m->name, b->version, b->at_us}};
		hrc_report(c, b->gen, &r);
		discard(c, b->dropped);
		b->dropped = NULL;
		hrc_notes_post(&c->notes, HR_NOTE_LOADED, m->name, b->version, "%s v%llu live", m->name,
		               (unsigned long long)b->version);
		if (b->nreset)
			hrc_notes_post(&c->notes, HR_NOTE_RESET, m->name, b->version,
			               "%s v%llu: kept global '%s'%s started afresh: its size changed", m->name,
			               (unsigned long long)b->version, b->reset, b->nreset > 1 ? " and others" : "");
	}
}

/* Free what hr_close and the host handed over (closed modules, old builds); give the sink its notes. */
void hrc_collect(hr_client *c)
{
	pthread_mutex_lock(&c->lock);
	/* Before the closed modules are freed: a switch of one closed since is in c->taken, and names it. */
	switched(c);
	build *dead = c->unload;
	c->unload = NULL;
	hr_module *closed = NULL;
	for (hr_module **p = &c->mods; *p;) {
		hr_module *m = *p;
		if (m->closed) {
			*p = m->next;
			m->next = closed;
			closed = m;
		} else {
			p = &m->next;
		}
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->sink_lock);
	for (;;) {
		hr_note note;
		pthread_mutex_lock(&c->lock);
		int more = hrc_notes_next(&c->notes, &note);
		hr_note_fn *sink = c->sink;
		void *arg = c->sink_arg;
		pthread_mutex_unlock(&c->lock);
		if (!more)
			break;
		if (sink)
			sink(&note, arg);
	}
	pthread_mutex_unlock(&c->sink_lock);
	unload(c, dead);
	while (closed) {
		hr_module *m = closed;
		closed = m->next;
		unload(c, m->live);
		unload(c, m->old);
		build *unseen = m->prog ? NULL : (build *)(atomic_load(&m->pending) & ~(uintptr_t)1);
		hrc_progmod_free(m->prog);
		if (unseen)
			c->offered--;
		unload(c, unseen);
		free(m->refused);
		free(m->unkept);
		free(m->name);
		free(m);
	}
}

/* Write what is queued. Returns 0, or -1 when the daemon is gone. */
static int flush(hr_client *c, int *more)
{
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	/* Builds handed over since the last collect go first: a LOADED report never overtakes an unmapping. */
	while (!c->unload && c->out.len > c->out.off) {
		ssize_t n = send(c->fd, c->out.data + c->out.off, c->out.len - c->out.off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = errno == EAGAIN ? 0 : -1;
			break;
		}
		hrp_buf_consume(&c->out, (size_t)n);
	}
	*more = c->out.len > c->out.off;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void hrc_retry_later(hr_client *c)
{
	c->retry_at = hrc_now_ms() + c->backoff;
	c->backoff = c->backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->backoff * 2;
}

/* The connection is over: what was on its way is dropped; try again after the backoff. */
static void lost(hr_client *c)
{
	/* Quick again only after a connection that lasted: one that the daemon keeps dropping backs off. */
	if (c->state == HRC_UP && hrc_now_ms() - c->up_since >= RETRY_MAX_MS)
		c->backoff = RETRY_MIN_MS;
	close(c->fd);
	c->fd = -1;
	hrp_reader_free(&c->r);
	if (c->frame_fd >= 0)
		close(c->frame_fd);
	c->frame_fd = -1;
	c->frame_cut = 0;
	incoming_end(c); /* bytes cut mid-way: the partial memfd goes, what is live stays */
	c->bytes = 0;
	c->nbytes_asked = 0;
	pthread_mutex_lock(&c->lock);
	if (c->state == HRC_UP)
		hrc_notes_post(&c->notes, HR_NOTE_DISCONNECTED, "", 0,
		               "hotreloadd went away: what is live stays live until it is back");
	c->state = HRC_DOWN;
	hrp_buf_free(&c->out);
	for (hr_module *m = c->mods; m; m = m->next)
		settle(c, m);
	pthread_mutex_unlock(&c->lock);
	hrc_retry_later(c);
}

/* hello: what this process says it is. */
hrp_msg hrc_hello(char *name, size_t namesz)
{
	snprintf(name, namesz, "libhotreload " LIB_VERSION " in %.64s", program_invocation_short_name);
	return (hrp_msg){.type = HRP_HELLO, .u.hello = {HRP_VERSION, HRP_ROLE_LIBRARY, (uint32_t)getpid(), "", name}};
}

/* Connect again without blocking: HELLO goes first; the rest waits for the daemon's. */
static void redial(hr_client *c)
{
	char found[PATH_MAX + 32], why[2048];
	const char *path = c->path;
	if (!path && hrc_find_socket(c, found, sizeof found, why, sizeof why) == 0)
		path = found;
	else if (!path && !c->unfound) {
		/* Said once: it comes back at every attempt. */
		pthread_mutex_lock(&c->lock);
		hrc_notes_post(&c->notes, HR_NOTE_DISCONNECTED, "", 0, "%s", why);
		c->unfound = 1;
		pthread_mutex_unlock(&c->lock);
	}
	int fd = path ? hrp_connect(path, 1) : -1;
	uint32_t uid;
	int rc = fd >= 0 ? hrc_check_peer(c, fd, &uid) : 0;
	if (rc == -EACCES) {
		/* Said once: it comes back at every attempt. */
		pthread_mutex_lock(&c->lock);
		if (!c->distrusted)
			hrc_notes_post(&c->notes, HR_NOTE_DISCONNECTED, "", 0,
			               "hotreloadd on %.120s runs as uid %u, which this program (uid %u) does not trust: "
			               "set HOTRELOAD_TRUST_UID=%u to trust it",
			               path, uid, (unsigned)geteuid(), uid);
		c->distrusted = 1;
		pthread_mutex_unlock(&c->lock);
	}
	if (fd >= 0 && (rc < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0)) {
		close(fd);
		fd = -1;
	}
	char name[128];
	hrp_msg h = hrc_hello(name, sizeof name);
	hrp_buf out = {0};
	pthread_mutex_lock(&c->lock);
	if (fd >= 0 && hrp_encode(&h, &out) >= 0) {
		/* With a descriptor on its first byte: whether it reaches the daemon says how our objects come. */
		long k = hrp_send_hello(fd, out.data, out.len);
		if (k > 0)
			hrp_buf_consume(&out, (size_t)k);
		hrp_buf_free(&c->out);
		c->out = out;
		c->state = HRC_HELLO;
		c->fd = fd;
		fd = -1;
		c->hello_by = hrc_now_ms() + HELLO_TIMEOUT_MS;
	} else {
		hrp_buf_free(&out);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0 || c->state == HRC_DOWN) {
		if (fd >= 0)
			close(fd);
		hrc_retry_later(c);
	}
}

/*
 * How long poll may wait: until the next attempt, or the HELLO's deadline,
 * or for ever; and while a build is on offer, until the next look at whether
 * the host took it.
 */
static int wait_ms(const hr_client *c)
{
	uint64_t until = c->state == HRC_DOWN ? c->retry_at : c->state == HRC_HELLO ? c->hello_by : 0;
	uint64_t now = hrc_now_ms();
	int ms = !until ? -1 : until > now ? (int)(until - now) : 0;
	if (c->offered && (ms < 0 || (int)c->poll_ms < ms))
		ms = (int)c->poll_ms;
	return ms;
}

void *hrc_run(void *arg)
{
	hr_client *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		int stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		/* Only this thread changes the state, so it reads it without the lock. */
		if (c->state == HRC_DOWN && hrc_now_ms() >= c->retry_at)
			redial(c);
		else if (c->state == HRC_HELLO && hrc_now_ms() >= c->hello_by)
			lost(c); /* a daemon that does not answer */
		hrp_msg m;
		int rc;
		while (c->state != HRC_DOWN && (rc = hrp_reader_next(&c->r, &m)) != 0) {
			if (rc < 0 || handle(c, &m) < 0)
				lost(c);
			/* What came with this frame was for it alone. */
			if (c->frame_fd >= 0)
				close(c->frame_fd);
			c->frame_fd = -1;
			c->frame_cut = 0;
		}
		hrc_collect(c); /* after the messages: the notes they posted go to the sink before the wait */
		int more = 0;
		if (c->state != HRC_DOWN && flush(c, &more) < 0)
			lost(c);
		/*
		 * A switch does not wake this thread: it would cost the host's
		 * thread a system call. While a build is on offer this thread looks
		 * for its switch itself, 1 ms after the offer, then at doubling
		 * intervals up to 64 ms (a host whose frames are long, or paused);
		 * once every offer was taken it blocks with no timeout, idle.
		 */
		struct pollfd p[2] = {{c->wake, POLLIN, 0}, {c->fd, POLLIN | (more ? POLLOUT : 0), 0}};
		int ms = wait_ms(c);
		if (c->offered && ms == (int)c->poll_ms)
			c->poll_ms = c->poll_ms * 2 > TAKE_POLL_MAX_MS ? TAKE_POLL_MAX_MS : c->poll_ms * 2;
		if (poll(p, 2, ms) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			uint64_t n;
			ssize_t r = read(c->wake, &n, sizeof n);
			(void)r;
		}
		if (c->fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			/* recvmsg, a frame at a time: read() would drop the descriptors that come with BUILDs. */
			long n = hrp_reader_recv(&c->r, c->fd, &c->frame_fd, &c->frame_cut);
			if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
				lost(c);
		}
	}
	return NULL;
}
