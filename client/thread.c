/* thread.c: libhotreload's own thread: the connection to the daemon, loading builds ahead of time, freeing old ones. */
#include "client.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	hrp_encode(m, c->state == UP ? &c->out : &c->held);
}

/* A request that only means something on this connection (SUBSCRIBE...): dropped while there is none. */
int hrc_queue(hr_client *c, const hrp_msg *m)
{
	return c->state == UP && hrp_encode(m, &c->out) >= 0 ? 0 : -1;
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
void hrc_discard(hr_client *c, build *b)
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

void hrc_refused(hr_client *c, hr_module *m, uint32_t gen, uint64_t version, const char *why)
{
	hrp_msg r = {.type = HRP_REFUSED, .u.refused = {m->name, version, why}};
	hrc_report(c, gen, &r);
	if (gen == c->gen) /* numbers of a history that is gone say nothing about this one's */
		refuse(m, version);
	c->stats.refusals++;
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
hr_module *hrc_next_named(hr_client *c, hr_module *m, const char *name)
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
	for (hr_module *m = hrc_next_named(c, NULL, name); m; m = hrc_next_named(c, m, name)) {
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
			hrc_discard(c, b);
			continue;
		}
		if (!b) {
			/* The daemon records it, and answers with the newest good build older than this one. */
			hrc_refused(c, m, c->gen, version, why);
			atomic_fetch_or_explicit(&m->pending, 1, memory_order_relaxed);
			if (m->opening) {
				m->awaiting = 0;
				hrc_ask(c, m);
			}
			continue;
		}
		m->floor = version;
		/* A refusal flag that was set goes: the switch to this build is what hr_update reports. */
		uintptr_t old = atomic_exchange_explicit(&m->pending, (uintptr_t)b, memory_order_release);
		hrc_discard(c, (build *)(old & ~(uintptr_t)1)); /* handed over, never taken: the host never saw it */
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
	hr_module *m = hrc_next_named(c, NULL, name);
	if (m)
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
void hrc_collect(hr_client *c)
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
	if (c->state == UP && hrc_now_ms() - c->up_since >= RETRY_MAX_MS)
		c->backoff = RETRY_MIN_MS;
	close(c->fd);
	c->fd = -1;
	hrp_reader_free(&c->r);
	pthread_mutex_lock(&c->lock);
	if (c->state == UP)
		hrc_notes_post(&c->notes, HR_NOTE_DISCONNECTED, "", 0,
		               "hotreloadd went away: what is live stays live until it is back");
	c->state = DOWN;
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
	char found[PATH_MAX + 32];
	const char *path = c->path;
	if (!path && hrc_find_socket(found, sizeof found) == 0)
		path = found;
	int fd = path ? hrp_connect(path, 1) : -1;
	if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		close(fd);
		fd = -1;
	}
	char name[128];
	hrp_msg h = hrc_hello(name, sizeof name);
	hrp_buf out = {0};
	pthread_mutex_lock(&c->lock);
	if (fd >= 0 && hrp_encode(&h, &out) >= 0) {
		hrp_buf_free(&c->out);
		c->out = out;
		c->state = HELLO;
		c->fd = fd;
		fd = -1;
		c->hello_by = hrc_now_ms() + HELLO_TIMEOUT_MS;
	} else {
		hrp_buf_free(&out);
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0 || c->state == DOWN) {
		if (fd >= 0)
			close(fd);
		hrc_retry_later(c);
	}
}

/* How long poll may wait: until the next attempt, or the HELLO's deadline, or for ever. */
static int wait_ms(const hr_client *c)
{
	uint64_t until = c->state == DOWN ? c->retry_at : c->state == HELLO ? c->hello_by : 0;
	if (!until)
		return -1;
	uint64_t now = hrc_now_ms();
	return until > now ? (int)(until - now) : 0;
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
		if (c->state == DOWN && hrc_now_ms() >= c->retry_at)
			redial(c);
		else if (c->state == HELLO && hrc_now_ms() >= c->hello_by)
			lost(c); /* a daemon that does not answer */
		hrp_msg m;
		int rc;
		while (c->state != DOWN && (rc = hrp_reader_next(&c->r, &m)) != 0)
			if (rc < 0 || handle(c, &m) < 0)
				lost(c);
		hrc_collect(c); /* after the messages: the notes they posted go to the sink before the wait */
		int more = 0;
		if (c->state != DOWN && flush(c, &more) < 0)
			lost(c);
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

/* $HOTRELOAD_SOCKET, else .hotreload/hotreloadd.sock in the current directory or the nearest parent that has one. */
int hrc_find_socket(char *out, size_t outsz)
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
		int n = snprintf(out, outsz, "%s/.hotreload/" HRP_SOCKET_NAME, strcmp(dir, "/") == 0 ? "" : dir);
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
