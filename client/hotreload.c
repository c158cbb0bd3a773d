/* hotreload.c: libhotreload: follow the daemon's announcements, load new builds off the host's thread, switch at hr_update. */
#include "hotreload.h"

#include "../proto/hrp.h"
#include "symtab.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define LIB_VERSION STR(HOTRELOAD_VERSION_MAJOR) "." STR(HOTRELOAD_VERSION_MINOR) "." STR(HOTRELOAD_VERSION_PATCH)

enum { OPEN_TIMEOUT_MS = 10000, HELLO_TIMEOUT_MS = 5000, NAME_MAX_LEN = 255 };

/* One loaded build of a module. */
typedef struct build {
	struct build *next; /* in a module's retired list, or the client's list to unload */
	void *handle;
	uint64_t version;
	hrc_symtab syms;
	int (*on_load)(void *, uint64_t);
	void (*on_unload)(void *);
} build;

struct hr_module {
	hr_client *c;
	char *name;
	/* The host's side: only the thread that calls hr_update touches these. */
	build *live;
	build *old; /* retired builds, newest first */
	uint32_t nold;
	void *userdata;
	uint64_t version;
	/*
	 * The hand-over: the library's thread stores a loaded build here, and
	 * sets bit 0 when it refused one; hr_update takes both with one exchange.
	 */
	_Atomic uintptr_t pending;
	/* Under c->lock. */
	hr_module *next;
	uint64_t floor;    /* builds up to this version are not newer: the newest handed over, or the live one */
	uint64_t *refused; /* versions refused here, never tried again (the daemon offers older ones after a refusal) */
	size_t nrefused;
	uint64_t barrier;  /* hr_open: the STATUS_REQ whose answer settles it */
	int opening;       /* hr_open waits while set */
	int awaiting;      /* the daemon said a first build is under way */
	int closed;        /* hr_close ran: the library's thread frees it */
};

struct hr_client {
	int fd, wake;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* an opening module settled, or the daemon went away */
	/* Under lock. */
	hrp_buf out;        /* frames for the daemon, written by the library's thread */
	hr_module *mods;
	build *unload;      /* builds the library's thread dlcloses (never the host: dlclose takes the loader's lock) */
	uint64_t asked, answered; /* STATUS_REQs sent and answered */
	int gone;           /* the daemon closed the connection */
	int stop;
	_Atomic uint32_t window;
	hrp_reader r; /* the library's thread's own */
};

const char *hr_library_version(void)
{
	return LIB_VERSION;
}

/* ---- helpers, under c->lock unless said ---- */

static void queue(hr_client *c, const hrp_msg *m)
{
	/* Only ENOMEM can fail here, and a lost report is not worth failing the host. */
	hrp_encode(m, &c->out);
}

/* Wake the library's thread (any thread, no lock). */
static void poke(hr_client *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake, &one, sizeof one);
	(void)n; /* EAGAIN: it is awake already */
}

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
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
static void ask(hr_client *c, hr_module *m)
{
	hrp_msg q = {.type = HRP_STATUS_REQ};
	if (hrp_encode(&q, &c->out) < 0)
		settle(c, m); /* out of memory: stop waiting rather than wait for an answer that cannot come */
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

static void unload(build *b)
{
	while (b) {
		build *next = b->next;
		hrc_symtab_free(&b->syms);
		if (b->handle)
			dlclose(b->handle);
		free(b);
		b = next;
	}
}

/* dlopen path, and resolve its symbols. NULL with the reason in why. */
static build *load(const char *path, uint64_t version, char *why, size_t whysz)
{
	build *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	b->version = version;
	/* RTLD_NOW: a symbol that does not resolve refuses the build now, not a crash in a frame later. */
	b->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!b->handle) {
		const char *e = dlerror();
		snprintf(why, whysz, "%s", e ? e : "dlopen failed");
		free(b);
		return NULL;
	}
	int rc = hrc_symtab_make(&b->syms, b->handle);
	if (rc < 0) {
		snprintf(why, whysz, "cannot read the symbols of %s: %s", path, strerror(-rc));
		unload(b);
		return NULL;
	}
	*(void **)&b->on_load = hrc_symtab_find(&b->syms, "hr_on_load");
	*(void **)&b->on_unload = hrc_symtab_find(&b->syms, "hr_on_unload");
	return b;
}

/* The next open module named name after m (NULL: the first), under lock. */
static hr_module *next_named(hr_client *c, hr_module *m, const char *name)
{
	for (m = m ? m->next : c->mods; m; m = m->next)
		if (!m->closed && strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/* A BUILD: load it for every module of that name that has nothing as new. */
static void on_build(hr_client *c, const char *name, uint64_t version, const char *path)
{
	pthread_mutex_lock(&c->lock);
	for (hr_module *m = next_named(c, NULL, name); m; m = next_named(c, m, name)) {
		if (!wanted(m, version))
			continue; /* an answer to a refusal, older than what this module has, or refused already */
		pthread_mutex_unlock(&c->lock);
		/* Modules are freed only on this thread, so m outlives the unlocked load. */
		char why[1024];
		build *b = load(path, version, why, sizeof why);
		pthread_mutex_lock(&c->lock);
		if (m->closed) {
			discard(c, b);
			continue;
		}
		if (!b) {
			/* The daemon records it, and answers with the newest good build older than this one. */
			hrp_msg r = {.type = HRP_REFUSED, .u.refused = {m->name, version, why}};
			queue(c, &r);
			refuse(m, version);
			atomic_fetch_or_explicit(&m->pending, 1, memory_order_relaxed);
			if (m->opening) {
				m->awaiting = 0;
				ask(c, m);
			}
			continue;
		}
		m->floor = version;
		/* A refusal flag that was set goes: the switch to this build is what hr_update reports. */
		uintptr_t old = atomic_exchange_explicit(&m->pending, (uintptr_t)b, memory_order_release);
		discard(c, (build *)(old & ~(uintptr_t)1)); /* handed over, never taken: the host never saw it */
		settle(c, m);
	}
	pthread_mutex_unlock(&c->lock);
}

static int status_of(const hrp_msg *st, const char *name, hrp_modstat *out)
{
	size_t pos = 0;
	while (hrp_status_next(st, &pos, out))
		if (strcmp(out->module, name) == 0)
			return 1;
	return 0;
}

/* A STATUS: it answers one STATUS_REQ, after everything sent before it. */
static void on_status(hr_client *c, const hrp_msg *st)
{
	pthread_mutex_lock(&c->lock);
	c->answered++;
	for (hr_module *m = c->mods; m; m = m->next) {
		if (m->closed || !m->opening || m->barrier != c->answered)
			continue;
		hrp_modstat s;
		/* Nothing loaded yet: wait for a build under way; otherwise there is nothing to wait for. */
		if (status_of(st, m->name, &s) &&
		    (strcmp(s.status, "building") == 0 || strcmp(s.status, "queued") == 0))
			m->awaiting = 1;
		else
			settle(c, m);
	}
	pthread_mutex_unlock(&c->lock);
}

static void on_failed(hr_client *c, const char *name)
{
	pthread_mutex_lock(&c->lock);
	for (hr_module *m = next_named(c, NULL, name); m; m = next_named(c, m, name))
		if (m->awaiting)
			settle(c, m); /* the first build failed: nothing to load */
	pthread_mutex_unlock(&c->lock);
}

/* One message from the daemon. Returns 0, or -1 when the connection is over. */
static int handle(hr_client *c, const hrp_msg *m)
{
	switch (m->type) {
	case HRP_BUILD:
		on_build(c, m->u.build.module, m->u.build.version, m->u.build.path);
		return 0;
	case HRP_FAILED:
		on_failed(c, m->u.failed.module);
		return 0;
	case HRP_STATUS:
		on_status(c, m);
		return 0;
	default: /* ERROR (the daemon closes after it), or anything a daemon does not send */
		return -1;
	}
}

/* Free what hr_close and the host handed over: closed modules and old builds. */
static void collect(hr_client *c)
{
	pthread_mutex_lock(&c->lock);
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
	unload(dead);
	while (closed) {
		hr_module *m = closed;
		closed = m->next;
		unload(m->live);
		unload(m->old);
		unload((build *)(atomic_load(&m->pending) & ~(uintptr_t)1));
		free(m->refused);
		free(m->name);
		free(m);
	}
}

/* Write what is queued. Returns 0, or -1 when the daemon is gone. */
static int flush(hr_client *c, int *more)
{
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	while (c->out.len > c->out.off) {
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

static void went_away(hr_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->gone = 1;
	for (hr_module *m = c->mods; m; m = m->next)
		settle(c, m);
	pthread_mutex_unlock(&c->lock);
}

static void *run(void *arg)
{
	hr_client *c = arg;
	int live = 1;
	for (;;) {
		collect(c);
		pthread_mutex_lock(&c->lock);
		int stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		hrp_msg m;
		int rc;
		while (live && (rc = hrp_reader_next(&c->r, &m)) != 0)
			if (rc < 0 || handle(c, &m) < 0) {
				live = 0;
				went_away(c);
			}
		int more = 0;
		if (live && flush(c, &more) < 0) {
			live = 0;
			went_away(c);
		}
		struct pollfd p[2] = {{c->wake, POLLIN, 0}, {live ? c->fd : -1, POLLIN | (more ? POLLOUT : 0), 0}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			uint64_t n;
			ssize_t r = read(c->wake, &n, sizeof n);
			(void)r;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			long n = hrp_reader_read(&c->r, c->fd);
			if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR)) {
				live = 0;
				went_away(c);
			}
		}
	}
	return NULL;
}

/* ---- the client ---- */

/* $HOTRELOAD_SOCKET, else .hotreload/hotreloadd.sock in the current directory or the nearest parent that has one. */
static int find_socket(char *out, size_t outsz)
{
	const char *env = getenv("HOTRELOAD_SOCKET");
	if (env && *env) {
		snprintf(out, outsz, "%s", env);
		return 0;
	}
	char dir[PATH_MAX];
	if (!getcwd(dir, sizeof dir))
		return -errno;
	for (;;) {
		struct stat st;
		int n = snprintf(out, outsz, "%s/.hotreload/hotreloadd.sock", strcmp(dir, "/") == 0 ? "" : dir);
		if (n > 0 && (size_t)n < outsz && stat(out, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir) {
			if (strcmp(dir, "/") == 0)
				return -ENOENT;
			dir[1] = '\0';
		} else {
			*slash = '\0';
		}
	}
}

/* Connect and exchange HELLO. Returns the fd, or -errno. */
static int handshake(const char *path, hrp_reader *r)
{
	int fd = hrp_connect(path, HELLO_TIMEOUT_MS);
	if (fd < 0)
		return fd;
	char name[128];
	snprintf(name, sizeof name, "libhotreload " LIB_VERSION " in %.64s", program_invocation_short_name);
	hrp_msg h = {.type = HRP_HELLO, .u.hello = {HRP_VERSION, HRP_ROLE_LIBRARY, (uint32_t)getpid(), "", name}};
	hrp_msg a;
	int rc = hrp_send(fd, &h);
	if (rc == 0)
		rc = hrp_recv(fd, r, &a, HELLO_TIMEOUT_MS);
	if (rc == 0 && a.type == HRP_ERROR)
		rc = a.u.error.code == HRP_E_DENIED ? -EACCES : -EPROTO;
	else if (rc == 0 && (a.type != HRP_HELLO || a.u.hello.role != HRP_ROLE_DAEMON))
		rc = -EPROTO;
	else if (rc == -EPROTONOSUPPORT || rc == -EBADMSG)
		rc = -EPROTO;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

hr_client *hr_connect(const char *socket_path)
{
	char path[PATH_MAX + 32];
	int rc = 0;
	if (socket_path)
		snprintf(path, sizeof path, "%s", socket_path);
	else
		rc = find_socket(path, sizeof path);
	hr_client *c = rc < 0 ? NULL : calloc(1, sizeof *c);
	if (!c) {
		errno = rc < 0 ? -rc : ENOMEM;
		return NULL;
	}
	c->wake = -1;
	atomic_init(&c->window, HR_WINDOW_DEFAULT);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->lock, NULL);
	c->fd = handshake(path, &c->r);
	if (c->fd < 0) {
		rc = c->fd;
		goto fail;
	}
	if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0 || (c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		rc = -errno;
		goto fail;
	}
	/* The thread starts with every signal blocked: the host's handlers run on the host's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&c->thread, NULL, run, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		goto fail;
	return c;
fail:
	if (c->fd >= 0)
		close(c->fd);
	if (c->wake >= 0)
		close(c->wake);
	hrp_reader_free(&c->r);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
	errno = -rc;
	return NULL;
}

void hr_disconnect(hr_client *c)
{
	if (!c)
		return;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		hr_module *m = c->mods;
		while (m && m->closed)
			m = m->next;
		pthread_mutex_unlock(&c->lock);
		if (!m)
			break;
		hr_close(m);
	}
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_mutex_unlock(&c->lock);
	poke(c);
	pthread_join(c->thread, NULL);
	collect(c); /* what was closed after the thread's last look */
	close(c->fd);
	close(c->wake);
	hrp_reader_free(&c->r);
	hrp_buf_free(&c->out);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void hr_set_window(hr_client *c, uint32_t switches)
{
	atomic_store_explicit(&c->window, switches, memory_order_relaxed);
}

/* ---- modules ---- */

static int valid_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
	return n > 0 && n <= NAME_MAX_LEN && s[n] == '\0';
}

hr_module *hr_open(hr_client *c, const char *name)
{
	if (!c || !name || !valid_name(name)) {
		errno = EINVAL;
		return NULL;
	}
	hr_module *m = calloc(1, sizeof *m);
	if (!m || !(m->name = strdup(name))) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->c = c;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += OPEN_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&c->lock);
	if (c->gone) {
		pthread_mutex_unlock(&c->lock);
		free(m->name);
		free(m);
		errno = EPIPE;
		return NULL;
	}
	m->next = c->mods;
	c->mods = m;
	m->opening = 1;
	hrp_msg s = {.type = HRP_SUBSCRIBE, .u.sub = {m->name}};
	queue(c, &s);
	ask(c, m);
	poke(c);
	while (m->opening && pthread_cond_timedwait(&c->cond, &c->lock, &until) != ETIMEDOUT)
		;
	m->opening = m->awaiting = 0;
	int dead = c->gone && !m->floor; /* the daemon went away before it gave anything */
	m->closed = dead;
	pthread_mutex_unlock(&c->lock);
	if (dead) {
		poke(c); /* the library's thread frees it */
		errno = EPIPE;
		return NULL;
	}
	return m;
}

void hr_close(hr_module *m)
{
	if (!m)
		return;
	hr_client *c = m->c;
	if (m->live && m->live->on_unload)
		m->live->on_unload(m->userdata);
	pthread_mutex_lock(&c->lock);
	m->closed = 1;
	if (!next_named(c, NULL, m->name)) {
		hrp_msg u = {.type = HRP_UNSUBSCRIBE, .u.sub = {m->name}};
		queue(c, &u);
	}
	pthread_mutex_unlock(&c->lock);
	poke(c);
}

void hr_set_userdata(hr_module *m, void *userdata)
{
	m->userdata = userdata;
}

uint64_t hr_version(const hr_module *m)
{
	return m->version;
}

void *hr_sym(hr_module *m, const char *symbol)
{
	return m->live ? hrc_symtab_find(&m->live->syms, symbol) : NULL;
}

/* Retire the old live build; what falls out of the window goes to the library's thread. Returns that, under lock. */
static build *retire(hr_module *m, build *old)
{
	if (!old)
		return NULL;
	old->next = m->old;
	m->old = old;
	m->nold++;
	uint32_t window = atomic_load_explicit(&m->c->window, memory_order_relaxed);
	if (m->nold <= window)
		return NULL;
	build **p = &m->old;
	for (uint32_t i = 0; i < window; i++)
		p = &(*p)->next;
	build *gone = *p;
	*p = NULL;
	m->nold = window;
	return gone;
}

/* The slow path of hr_update: something was handed over. */
static int take(hr_module *m)
{
	hr_client *c = m->c;
	uintptr_t p = atomic_exchange_explicit(&m->pending, 0, memory_order_acquire);
	build *b = (build *)(p & ~(uintptr_t)1), *old = m->live;
	if (!b)
		return -ENOEXEC; /* a build that did not load here */
	uint64_t prev = old ? old->version : 0;
	if (old && old->on_unload)
		old->on_unload(m->userdata);
	int rc = b->on_load ? b->on_load(m->userdata, prev) : 0;
	char why[64];
	hrp_msg report = {.type = HRP_LOADED, .u.loaded = {m->name, b->version, now_us()}};
	build *dead = NULL;
	if (rc != 0) {
		if (old && old->on_load)
			old->on_load(m->userdata, old->version);
		snprintf(why, sizeof why, "hr_on_load returned %d", rc);
		report = (hrp_msg){.type = HRP_REFUSED, .u.refused = {m->name, b->version, why}};
		dead = b;
	} else {
		m->live = b;
		m->version = b->version;
	}
	pthread_mutex_lock(&c->lock);
	if (rc != 0) {
		refuse(m, b->version);
		if (m->floor == b->version)
			m->floor = prev; /* so that the daemon's answer, an older build, may load */
	} else {
		dead = retire(m, old);
	}
	queue(c, &report);
	discard(c, dead);
	pthread_mutex_unlock(&c->lock);
	poke(c);
	return rc != 0 ? -ECANCELED : 1;
}

int hr_update(hr_module *m)
{
	/* The per-frame cost: one load and a branch. */
	if (__builtin_expect(atomic_load_explicit(&m->pending, memory_order_relaxed) == 0, 1))
		return 0;
	return take(m);
}
