/* hotreload.c: libhotreload: follow the daemon's announcements, load new builds off the host's thread, switch at hr_update. */
#include "hotreload.h"

#include "../proto/hrp.h"
#include "guard.h"
#include "notes.h"
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

enum { OPEN_TIMEOUT_MS = 10000, HELLO_TIMEOUT_MS = 5000, RETRY_MIN_MS = 50, RETRY_MAX_MS = 2000 };

#define KEEP_PREFIX "hr_keep."

/* The faults the guard catches: the library's thread leaves them unblocked. */
static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

/* One loaded build of a module. */
typedef struct build {
	struct build *next; /* in a module's retired list, or the client's list to unload */
	void *handle;
	uint64_t version;
	hrc_symtab syms;
	int (*on_load)(void *, uint64_t);
	void (*on_unload)(void *);
	const hrc_sym *keep; /* its HR_KEEP globals, in syms */
	size_t nkeep;
	uint32_t gen;        /* the daemon's history it belongs to (see hr_client.gen) */
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

/* The connection: DOWN (no daemon; retry at retry_at), HELLO (ours sent, waiting for its), UP. */
enum { DOWN, HELLO, UP };

struct hr_client {
	int fd, wake;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* an opening module settled, or the daemon went away */
	char *path;          /* the socket; NULL: looked for at each attempt */
	pthread_mutex_t sink_lock; /* held while the sink runs, so that hr_set_note_sink can wait it out */
	/* Under lock. */
	int state;
	char db_id[64];     /* the daemon's database: a new one means a new history */
	uint32_t gen;       /* which history: one more at each new database, so that no version number crosses over */
	hrp_buf out;        /* frames for the daemon on this connection, written by the library's thread */
	hrp_buf held;       /* reports made while it was away: sent if it comes back with the same history */
	hr_module *mods;
	build *unload;      /* builds the library's thread dlcloses (never the host: dlclose takes the loader's lock) */
	uint64_t asked, answered; /* STATUS_REQs sent and answered on this connection */
	int stop;
	hrc_notes notes;
	hr_note_fn *sink;
	void *sink_arg;
	hr_stats stats;     /* refusals, crashes, reconnects; the switches' figures are below */
	/* The switches' figures: the host's thread adds to them after it let go of the lock. */
	_Atomic uint64_t switches, switch_ns, last_switch_ns, last_switch_at_us;
	_Atomic uint32_t window;
	/* The library's thread's own. */
	hrp_reader r;
	uint64_t retry_at, hello_by, up_since; /* monotonic ms */
	uint32_t backoff;
	int was_up;         /* the daemon answered once: the next loss is a disconnection */
	int turned_away;    /* the daemon answered our HELLO with an ERROR, and the note said so */
};

const char *hr_library_version(void)
{
	return LIB_VERSION;
}

/* ---- helpers, under c->lock unless said ---- */

/*
 * A report about build b for the daemon (LOADED, REFUSED): made while it is
 * away, it is held for its return; one in flight when it went is lost. About a
 * build of a history that is gone, it means nothing to the daemon now.
 */
static void report(hr_client *c, const build *b, const hrp_msg *m)
{
	if (b->gen != c->gen)
		return;
	/* Only ENOMEM can fail here, and a lost report is not worth failing the host. */
	hrp_encode(m, c->state == UP ? &c->out : &c->held);
}

/* A request that only means something on this connection (SUBSCRIBE...): dropped while there is none. */
static int queue(hr_client *c, const hrp_msg *m)
{
	return c->state == UP && hrp_encode(m, &c->out) >= 0 ? 0 : -1;
}

/* Wake the library's thread (any thread, no lock). */
static void poke(hr_client *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake, &one, sizeof one);
	(void)n; /* EAGAIN: it is awake already */
}

static uint64_t now_ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t now_ms(void)
{
	return now_ns(CLOCK_MONOTONIC) / 1000000u;
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
	if (queue(c, &q) < 0)
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
	b->keep = hrc_symtab_prefixed(&b->syms, KEEP_PREFIX, &b->nkeep);
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
		if (b)
			b->gen = c->gen; /* only this thread changes gen, so it is the one of the BUILD */
		if (m->closed) {
			discard(c, b);
			continue;
		}
		if (!b) {
			/* The daemon records it, and answers with the newest good build older than this one. */
			hrp_msg r = {.type = HRP_REFUSED, .u.refused = {m->name, version, why}};
			build now = {.gen = c->gen};
			report(c, &now, &r);
			refuse(m, version);
			c->stats.refusals++;
			hrc_notes_post(&c->notes, HR_NOTE_REFUSED, m->name, version, "%s v%llu refused: %s", m->name,
			               (unsigned long long)version, why);
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

static void on_failed(hr_client *c, const char *name, const char *message)
{
	pthread_mutex_lock(&c->lock);
	hr_module *m = next_named(c, NULL, name);
	if (m)
		hrc_notes_post(&c->notes, HR_NOTE_FAILED, name, 0, "%s build failed: %s", name, message);
	for (; m; m = next_named(c, m, name))
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
	c->turned_away = 0;
	int replaced = c->db_id[0] && strcmp(c->db_id, h->u.hello.db_id) != 0;
	snprintf(c->db_id, sizeof c->db_id, "%s", h->u.hello.db_id);
	c->state = UP;
	c->asked = c->answered = 0;
	if (replaced)
		c->gen++;
	else
		hrp_buf_append(&c->out, c->held.data + c->held.off, c->held.len - c->held.off);
	hrp_buf_free(&c->held);
	c->held = (hrp_buf){0};
	for (hr_module *m = c->mods; m; m = m->next) {
		if (m->closed)
			continue;
		if (replaced) {
			m->floor = 0;
			m->nrefused = 0;
		}
		if (next_named(c, NULL, m->name) == m) {
			hrp_msg s = {.type = HRP_SUBSCRIBE, .u.sub = {m->name}};
			queue(c, &s);
		}
	}
	if (c->was_up)
		c->stats.reconnects++;
	hrc_notes_post(&c->notes, HR_NOTE_CONNECTED, "", 0, "%s hotreloadd%s", c->was_up ? "reconnected to" : "connected to",
	               replaced ? ": its history is new" : "");
	c->was_up = 1;
	pthread_mutex_unlock(&c->lock);
	c->up_since = now_ms();
	return 0;
}

/* One message from the daemon. Returns 0, or -1 when the connection is over. */
static int handle(hr_client *c, const hrp_msg *m)
{
	if (c->state == HELLO)
		return on_hello(c, m);
	switch (m->type) {
	case HRP_BUILD:
		on_build(c, m->u.build.module, m->u.build.version, m->u.build.path);
		return 0;
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

/* Free what hr_close and the host handed over (closed modules, old builds); give the sink its notes. */
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

static void retry_later(hr_client *c)
{
	c->retry_at = now_ms() + c->backoff;
	c->backoff = c->backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->backoff * 2;
}

/* The connection is over: what was on its way is dropped; try again after the backoff. */
static void lost(hr_client *c)
{
	/* Quick again only after a connection that lasted: one that the daemon keeps dropping backs off. */
	if (c->state == UP && now_ms() - c->up_since >= RETRY_MAX_MS)
		c->backoff = RETRY_MIN_MS;
	close(c->fd);
	c->fd = -1;
	hrp_reader_free(&c->r);
	c->r = (hrp_reader){0};
	pthread_mutex_lock(&c->lock);
	if (c->state == UP)
		hrc_notes_post(&c->notes, HR_NOTE_DISCONNECTED, "", 0,
		               "hotreloadd went away: what is live stays live until it is back");
	c->state = DOWN;
	hrp_buf_free(&c->out);
	c->out = (hrp_buf){0};
	for (hr_module *m = c->mods; m; m = m->next)
		settle(c, m);
	pthread_mutex_unlock(&c->lock);
	retry_later(c);
}

static int find_socket(char *out, size_t outsz);

/* hello: what this process says it is. */
static hrp_msg hello(char *name, size_t namesz)
{
	snprintf(name, namesz, "libhotreload " LIB_VERSION " in %.64s", program_invocation_short_name);
	return (hrp_msg){.type = HRP_HELLO, .u.hello = {HRP_VERSION, HRP_ROLE_LIBRARY, (uint32_t)getpid(), "", name}};
}

/* Connect again without blocking: HELLO goes first; the rest waits for the daemon's. */
static void redial(hr_client *c)
{
	char found[PATH_MAX + 32];
	const char *path = c->path;
	if (!path && find_socket(found, sizeof found) == 0)
		path = found;
	int fd = path ? hrp_connect(path, 1) : -1;
	if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		close(fd);
		fd = -1;
	}
	char name[128];
	hrp_msg h = hello(name, sizeof name);
	hrp_buf out = {0};
	pthread_mutex_lock(&c->lock);
	if (fd >= 0 && hrp_encode(&h, &out) >= 0) {
		hrp_buf_free(&c->out);
		c->out = out;
		c->state = HELLO;
		c->fd = fd;
		fd = -1;
		c->hello_by = now_ms() + HELLO_TIMEOUT_MS;
	} else {
		hrp_buf_free(&out);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0 || c->state == DOWN) {
		if (fd >= 0)
			close(fd);
		retry_later(c);
	}
}

/* How long poll may wait: until the next attempt, or the HELLO's deadline, or for ever. */
static int wait_ms(const hr_client *c)
{
	uint64_t until = c->state == DOWN ? c->retry_at : c->state == HELLO ? c->hello_by : 0;
	if (!until)
		return -1;
	uint64_t now = now_ms();
	return until > now ? (int)(until - now) : 0;
}

static void *run(void *arg)
{
	hr_client *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		int stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		/* Only this thread changes the state, so it reads it without the lock. */
		if (c->state == DOWN && now_ms() >= c->retry_at)
			redial(c);
		else if (c->state == HELLO && now_ms() >= c->hello_by)
			lost(c); /* a daemon that does not answer */
		hrp_msg m;
		int rc;
		while (c->state != DOWN && (rc = hrp_reader_next(&c->r, &m)) != 0)
			if (rc < 0 || handle(c, &m) < 0)
				lost(c);
		int more = 0;
		if (c->state != DOWN && flush(c, &more) < 0)
			lost(c);
		collect(c); /* after the messages: the notes they posted go to the sink before the wait */
		struct pollfd p[2] = {{c->wake, POLLIN, 0}, {c->fd, POLLIN | (more ? POLLOUT : 0), 0}};
		if (poll(p, 2, wait_ms(c)) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			uint64_t n;
			ssize_t r = read(c->wake, &n, sizeof n);
			(void)r;
		}
		if (c->fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			long n = hrp_reader_read(&c->r, c->fd);
			if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
				lost(c);
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

/* Connect to path and exchange HELLO, waiting for the answer. Returns the fd, or -errno. */
static int handshake(hr_client *c, const char *path)
{
	int fd = hrp_connect(path, HELLO_TIMEOUT_MS);
	if (fd < 0)
		return fd;
	char name[128];
	hrp_msg h = hello(name, sizeof name), a;
	int rc = hrp_send(fd, &h);
	if (rc == 0)
		rc = hrp_recv(fd, &c->r, &a, HELLO_TIMEOUT_MS);
	if (rc == 0 && a.type == HRP_ERROR) {
		rc = a.u.error.code == HRP_E_DENIED ? -EACCES : -EPROTO;
		on_hello(c, &a); /* for a lazy client, which goes on: the note says why nothing comes */
	}
	else if (rc == 0 && (a.type != HRP_HELLO || a.u.hello.role != HRP_ROLE_DAEMON))
		rc = -EPROTO;
	else if (rc == -EPROTONOSUPPORT || rc == -EBADMSG)
		rc = -EPROTO;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	snprintf(c->db_id, sizeof c->db_id, "%s", a.u.hello.db_id);
	return fd;
}

/* A client: connected now, or (lazy) by its thread as soon as a daemon answers if none does now. */
static hr_client *start(const char *socket_path, int lazy)
{
	char found[PATH_MAX + 32];
	const char *path = socket_path;
	int rc = 0;
	if (!path && (rc = find_socket(found, sizeof found)) == 0)
		path = found;
	hr_client *c = rc < 0 && !lazy ? NULL : calloc(1, sizeof *c);
	/* A lazy client given no path looks for the socket again at each attempt. */
	const char *keep = lazy ? socket_path : path;
	if (!c || (keep && !(c->path = strdup(keep)))) {
		free(c);
		errno = rc < 0 && !lazy ? -rc : ENOMEM;
		return NULL;
	}
	c->fd = c->wake = -1;
	c->backoff = RETRY_MIN_MS;
	c->sink = hr_note_print;
	hrc_notes_init(&c->notes);
	atomic_init(&c->window, HR_WINDOW_DEFAULT);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->sink_lock, NULL);
	/* One attempt now, lazy or not, so that an hr_open right after finds the daemon that is there. */
	c->fd = path ? handshake(c, path) : -ENOENT;
	if (c->fd < 0 && !lazy) {
		rc = c->fd;
		goto fail;
	}
	if (c->fd >= 0) {
		c->state = UP;
		c->was_up = 1;
		c->up_since = now_ms();
	} else {
		c->fd = -1;
		retry_later(c);
	}
	if ((c->fd >= 0 && fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0) ||
	    (c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		rc = -errno;
		goto fail;
	}
	/* Without the handlers a crash in a hook ends the program, as it would without us: not worth failing for. */
	hrc_guard_install();
	/*
	 * The thread starts with every signal blocked, so that the host's handlers
	 * run on the host's threads; all but the faults, which a blocked signal
	 * would turn into a plain death: a crash in a module's constructor (run
	 * here, in dlopen) goes through to the host's crash handler.
	 */
	sigset_t all, old;
	sigfillset(&all);
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
		sigdelset(&all, faults[i]);
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
	pthread_mutex_destroy(&c->sink_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
	errno = -rc;
	return NULL;
}

hr_client *hr_connect(const char *socket_path)
{
	return start(socket_path, 0);
}

hr_client *hr_connect_lazy(const char *socket_path)
{
	return start(socket_path, 1);
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
	collect(c); /* what was closed after the thread's last look; the last notes go to the sink on this thread */
	if (c->fd >= 0)
		close(c->fd);
	close(c->wake);
	hrp_reader_free(&c->r);
	hrp_buf_free(&c->out);
	hrp_buf_free(&c->held);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->sink_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
}

void hr_set_window(hr_client *c, uint32_t switches)
{
	atomic_store_explicit(&c->window, switches, memory_order_relaxed);
}

size_t hr_notes(hr_client *c, hr_note *out, size_t max)
{
	pthread_mutex_lock(&c->lock);
	size_t n = hrc_notes_copy(&c->notes, out, max);
	pthread_mutex_unlock(&c->lock);
	return n;
}

void hr_set_note_ttl(hr_client *c, uint32_t ms)
{
	pthread_mutex_lock(&c->lock);
	c->notes.ttl_ms = ms;
	pthread_mutex_unlock(&c->lock);
}

void hr_set_note_sink(hr_client *c, hr_note_fn *fn, void *arg)
{
	/* Taken first: a sink running now finishes before this returns, and the old one is never called after. */
	pthread_mutex_lock(&c->sink_lock);
	pthread_mutex_lock(&c->lock);
	c->sink = fn;
	c->sink_arg = arg;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->sink_lock);
}

void hr_note_print(const hr_note *note, void *arg)
{
	(void)arg;
	fprintf(stderr, "hotreload: %s\n", note->text);
}

void hr_get_stats(hr_client *c, hr_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
	out->switches = atomic_load(&c->switches);
	out->last_switch_at_us = atomic_load(&c->last_switch_at_us);
	out->last_switch_ns = atomic_load(&c->last_switch_ns);
	out->avg_switch_ns = out->switches ? atomic_load(&c->switch_ns) / out->switches : 0;
}

/* ---- modules ---- */

hr_module *hr_open(hr_client *c, const char *name)
{
	if (!c || !name || !hrp_valid_name(name)) {
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
	m->next = c->mods;
	c->mods = m;
	m->opening = 1;
	/* While the daemon is away both are dropped and it settles at once: it subscribes again when it is back. */
	hrp_msg s = {.type = HRP_SUBSCRIBE, .u.sub = {m->name}};
	queue(c, &s);
	ask(c, m);
	poke(c);
	while (m->opening && pthread_cond_timedwait(&c->cond, &c->lock, &until) != ETIMEDOUT)
		;
	m->opening = m->awaiting = 0;
	pthread_mutex_unlock(&c->lock);
	return m;
}

/* A hook's call, made under the guard. */
struct call {
	build *b;
	void *userdata;
	uint64_t prev;
	int rc;
	uint64_t ns; /* the time spent in the hooks themselves */
};

static void call_load(void *arg)
{
	struct call *k = arg;
	uint64_t t = now_ns(CLOCK_MONOTONIC);
	k->rc = k->b->on_load(k->userdata, k->prev);
	k->ns += now_ns(CLOCK_MONOTONIC) - t;
}

static void call_unload(void *arg)
{
	struct call *k = arg;
	uint64_t t = now_ns(CLOCK_MONOTONIC);
	k->b->on_unload(k->userdata);
	k->ns += now_ns(CLOCK_MONOTONIC) - t;
}

void hr_close(hr_module *m)
{
	if (!m)
		return;
	hr_client *c = m->c;
	char why[160];
	struct call k = {.b = m->live, .userdata = m->userdata};
	if (m->live && m->live->on_unload)
		hrc_guard_run(call_unload, &k, why, sizeof why); /* a crash here is the module's last word */
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

int hr_guard(hr_module *m, void (*fn)(void *arg), void *arg)
{
	char why[160];
	if (!hrc_guard_run(fn, arg, why, sizeof why))
		return 0;
	hr_client *c = m->c;
	pthread_mutex_lock(&c->lock);
	c->stats.crashes++;
	hrc_notes_post(&c->notes, HR_NOTE_CRASHED, m->name, m->version, "%s v%llu crashed: %s", m->name,
	               (unsigned long long)m->version, why);
	pthread_mutex_unlock(&c->lock);
	poke(c);
	return -EFAULT;
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

/* Kept globals to carry over: the new build's take the old build's bytes of the same name and size. */
struct keeping {
	build *b;
	const build *old;
	const char *reset; /* the first that started afresh, its size changed */
	size_t nreset;
};

/* Under the guard: a kept global declared const is in read-only memory. */
static void call_keep(void *arg)
{
	struct keeping *k = arg;
	for (size_t i = 0; i < k->b->nkeep; i++) {
		const hrc_sym *to = &k->b->keep[i], *from = hrc_symtab_get(&k->old->syms, to->name);
		if (from && from->size == to->size)
			memcpy(to->addr, from->addr, to->size);
		else if (from && !k->nreset++)
			k->reset = to->name + strlen(KEEP_PREFIX);
	}
}

/* The slow path of hr_update: something was handed over. */
static int take(hr_module *m)
{
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	hr_client *c = m->c;
	uintptr_t p = atomic_exchange_explicit(&m->pending, 0, memory_order_acquire);
	build *b = (build *)(p & ~(uintptr_t)1), *old = m->live;
	if (!b)
		return -ENOEXEC; /* a build that did not load here */
	char crash[160], unload_crash[160] = "", why[256] = "";
	struct call k = {.b = old, .userdata = m->userdata, .prev = old ? old->version : 0};
	if (old && old->on_unload && hrc_guard_run(call_unload, &k, crash, sizeof crash))
		snprintf(unload_crash, sizeof unload_crash, "%s", crash); /* the old build is on its way out: go on */
	struct keeping kept = {b, old, NULL, 0};
	k.b = b;
	if (old && b->nkeep && hrc_guard_run(call_keep, &kept, crash, sizeof crash))
		snprintf(why, sizeof why, "its kept globals could not be written (one declared const?): %s", crash);
	else if (b->on_load && hrc_guard_run(call_load, &k, crash, sizeof crash))
		snprintf(why, sizeof why, "hr_on_load crashed: %s", crash);
	else if (b->on_load && k.rc != 0)
		snprintf(why, sizeof why, "hr_on_load returned %d", k.rc);
	build *dead = NULL;
	if (why[0]) {
		k.b = old;
		k.prev = old ? old->version : 0;
		if (old && old->on_load)
			hrc_guard_run(call_load, &k, crash, sizeof crash); /* it ran before: a crash now has no better answer */
		dead = b;
	} else {
		m->live = b;
		m->version = b->version;
	}
	pthread_mutex_lock(&c->lock);
	hrp_msg r;
	if (unload_crash[0])
		hrc_notes_post(&c->notes, HR_NOTE_CRASHED, m->name, old->version, "%s v%llu: hr_on_unload crashed: %s", m->name,
		               (unsigned long long)old->version, unload_crash);
	if (why[0]) {
		r = (hrp_msg){.type = HRP_REFUSED, .u.refused = {m->name, b->version, why}};
		/* Numbers of a history that is gone say nothing about this one's. */
		if (b->gen == c->gen) {
			refuse(m, b->version);
			if (m->floor == b->version) /* so that the daemon's answer, an older build, may load */
				m->floor = old && old->gen == c->gen ? old->version : 0;
		}
		c->stats.refusals++;
		hrc_notes_post(&c->notes, HR_NOTE_REFUSED, m->name, b->version, "%s v%llu refused: %s", m->name,
		               (unsigned long long)b->version, why);
	} else {
		r = (hrp_msg){.type = HRP_LOADED, .u.loaded = {m->name, b->version, now_ns(CLOCK_REALTIME) / 1000u}};
		dead = retire(m, old);
		hrc_notes_post(&c->notes, HR_NOTE_LOADED, m->name, b->version, "%s v%llu live", m->name,
		               (unsigned long long)b->version);
		if (kept.nreset)
			hrc_notes_post(&c->notes, HR_NOTE_RESET, m->name, b->version,
			               "%s v%llu: kept global '%s'%s started afresh: its size changed", m->name,
			               (unsigned long long)b->version, kept.reset, kept.nreset > 1 ? " and others" : "");
	}
	report(c, b, &r);
	discard(c, dead);
	pthread_mutex_unlock(&c->lock);
	/* After the unlock: woken while the lock is held, the library's thread would block on it at once. */
	poke(c);
	if (why[0])
		return -ECANCELED;
	uint64_t spent = now_ns(CLOCK_MONOTONIC) - t0 - k.ns;
	atomic_fetch_add_explicit(&c->switches, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->switch_ns, spent, memory_order_relaxed);
	atomic_store_explicit(&c->last_switch_ns, spent, memory_order_relaxed);
	atomic_store_explicit(&c->last_switch_at_us, r.u.loaded.at_us, memory_order_relaxed);
	return 1;
}

int hr_update(hr_module *m)
{
	/* The per-frame cost: one load and a branch. */
	if (__builtin_expect(atomic_load_explicit(&m->pending, memory_order_relaxed) == 0, 1))
		return 0;
	return take(m);
}
