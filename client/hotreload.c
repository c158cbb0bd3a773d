/* hotreload.c: libhotreload's API: connect, open, and switch to new builds at hr_update, on the host's thread. */
#include "client.h"
#include "progmod.h"
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Wake the library's thread (any thread, no lock). */
static void poke(hr_client *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake, &one, sizeof one);
	(void)n; /* EAGAIN: it is awake already */
}

const char *hr_library_version(void)
{
	return LIB_VERSION;
}

/* ---- the client ---- */

/* Connect to path and exchange HELLO, waiting up to ms for each. Returns the fd, or -errno. */
static int handshake(hr_client *c, const char *path, int ms)
{
	int fd = hrp_connect(path, ms);
	if (fd < 0)
		return fd;
	/* Who listens there, as the kernel says: before a single byte of it is read. */
	uint32_t uid;
	int trust = hrc_check_peer(c, fd, &uid);
	if (trust < 0) {
		close(fd);
		return trust;
	}
	char name[128];
	hrp_msg h = hrc_hello(name, sizeof name), a;
	hrp_buf hb = {0};
	int sent = hrp_encode(&h, &hb) < 0 ? -ENOMEM : 0, rc;
	/* With a descriptor on its first byte: whether it reaches the daemon says how our objects come. */
	for (size_t off = 0; sent == 0 && off < hb.len;) {
		long k = off ? send(fd, hb.data + off, hb.len - off, MSG_NOSIGNAL) : hrp_send_hello(fd, hb.data, hb.len);
		if (k < 0 && errno != EINTR)
			sent = -errno;
		else if (k > 0)
			off += (size_t)k;
	}
	hrp_buf_free(&hb);
	rc = sent;
	/* A daemon that refuses this uid says why and closes, maybe before HELLO is through: what it said comes first. */
	if (sent == 0 || sent == -EPIPE || sent == -ECONNRESET)
		rc = hrp_recv(fd, &c->r, &a, ms);
	if (sent < 0 && (rc < 0 || a.type != HRP_ERROR))
		rc = sent;
	/* A lazy client goes on: its thread meets the ERROR again at its next attempt, and posts the note
	 * then, once the host has had the time to set its sink. */
	if (rc == 0 && a.type == HRP_ERROR)
		rc = a.u.error.code == HRP_E_DENIED ? -EACCES : -EPROTO;
	else if (rc == 0 && (a.type != HRP_HELLO || a.u.hello.role != HRP_ROLE_DAEMON))
		rc = -EPROTO;
	else if (rc == -EPROTONOSUPPORT || rc == -EBADMSG)
		rc = -EPROTO;
	if (rc < 0) {
		close(fd);
		hrp_reader_free(&c->r); /* a frame cut short must not spoil the next attempt */
		return rc;
	}
	snprintf(c->db_id, sizeof c->db_id, "%s", a.u.hello.db_id);
	c->bytes = a.u.hello.bytes != 0;
	return fd;
}

/* HOTRELOAD_TRUST_UID: uids, comma-separated. 0, or -EINVAL for anything else, and for nobody, who is nobody to trust. */
static int trust_env(hr_client *c)
{
	/* Not from whoever ran a setuid program: it would trust them. */
	const char *e = secure_getenv("HOTRELOAD_TRUST_UID");
	while (e && *e) {
		char *end;
		errno = 0;
		unsigned long long u = strtoull(e, &end, 10);
		if (errno || end == e || (*end && *end != ',') || *e == '-' || u >= UINT32_MAX || u == 65534 ||
		    c->ntrust == TRUST_MAX)
			return -EINVAL;
		c->trust[c->ntrust++] = (uint32_t)u;
		e = *end ? end + 1 : end;
	}
	return 0;
}

/* A client: connected now, or (lazy) by its thread as soon as a daemon answers if none does now. */
static hr_client *start(const char *socket_path, const hr_connect_options *o)
{
	int lazy = o->lazy;
	hr_client *c = calloc(1, sizeof *c);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	int rc = trust_env(c);
	for (size_t i = 0; rc == 0 && i < o->ntrust_uids; i++) {
		uint32_t u = o->trust_uids[i];
		if (u == 65534 || u == UINT32_MAX || c->ntrust == TRUST_MAX)
			rc = -EINVAL;
		else
			c->trust[c->ntrust++] = u;
	}
	if (rc < 0) {
		free(c);
		errno = EINVAL;
		return NULL;
	}
	char found[PATH_MAX + 32], why[2048] = "";
	const char *path = socket_path;
	if (!path && (rc = hrc_find_socket(c, found, sizeof found, why, sizeof why)) == 0)
		path = found;
	/* No client to post it to yet: said as the default sink (hr_note_print) says notes, once. */
	if (rc == -ENOENT && !lazy && why[0])
		fprintf(stderr, "hotreload: %s\n", why);
	/* A lazy client given no path looks for the socket again at each attempt. */
	const char *keep = lazy ? socket_path : path;
	if ((rc < 0 && !lazy) || (keep && !(c->path = strdup(keep)))) {
		free(c);
		errno = rc < 0 && !lazy ? -rc : ENOMEM;
		return NULL;
	}
	c->fd = c->wake = c->frame_fd = c->in.fd = -1;
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
	/*
	 * One attempt now, lazy or not, so that an hr_open right after finds the
	 * daemon that is there; a lazy one waits briefly, leaving a daemon that
	 * does not answer to its thread.
	 */
	c->fd = path ? handshake(c, path, lazy ? LAZY_HELLO_MS : HELLO_TIMEOUT_MS) : -ENOENT;
	if (c->fd < 0 && !lazy) {
		rc = c->fd;
		goto fail;
	}
	if (c->fd >= 0) {
		c->state = HRC_UP;
		c->was_up = 1;
		c->up_since = hrc_now_ms();
	} else {
		c->fd = -1;
		hrc_retry_later(c);
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
	for (size_t i = 0; i < HRC_GUARD_NSIGS; i++)
		sigdelset(&all, hrc_guard_sigs[i]);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&c->thread, NULL, hrc_run, c);
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
	return start(socket_path, &(hr_connect_options){sizeof(hr_connect_options), 0, NULL, 0});
}

hr_client *hr_connect_lazy(const char *socket_path)
{
	return start(socket_path, &(hr_connect_options){sizeof(hr_connect_options), 1, NULL, 0});
}

hr_client *hr_connect_opts(const char *socket_path, const hr_connect_options *opts)
{
	/* As the kernel takes structs that grow: a larger one (a newer program's) is taken only if what this
	 * library does not know of is zero, so that no option it asks for is dropped without a word. */
	if (!opts || opts->size < sizeof *opts) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = sizeof *opts; i < opts->size; i++)
		if (((const unsigned char *)opts)[i]) {
			errno = E2BIG;
			return NULL;
		}
	return start(socket_path, opts);
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
	hrc_collect(c); /* what was closed after the thread's last look; the last notes go to the sink on this thread */
	if (c->fd >= 0)
		close(c->fd);
	close(c->wake);
	hrp_reader_free(&c->r);
	if (c->frame_fd >= 0)
		close(c->frame_fd);
	if (c->in.fd >= 0)
		close(c->in.fd);
	/* Descriptors of builds still loaded stay open for good: their names must not be given to another build. */
	free(c->linger);
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
	out->refusals += atomic_load(&c->switch_refusals);
	out->switches = atomic_load(&c->switches);
	out->last_switch_at_us = atomic_load(&c->last_switch_at_us);
	out->last_switch_ns = atomic_load(&c->last_switch_ns);
	out->avg_switch_ns = out->switches ? atomic_load(&c->switch_ns) / out->switches : 0;
}

/* ---- modules ---- */

/* A new module of c named name (pm: the program's, or NULL): subscribed, and settled as hr_open says. */
static hr_module *open_module(hr_client *c, const char *name, hrc_progmod *pm)
{
	hr_module *m = calloc(1, sizeof *m);
	if (!m || !(m->name = strdup(name))) {
		free(m);
		hrc_progmod_free(pm);
		errno = ENOMEM;
		return NULL;
	}
	m->c = c;
	m->prog = pm;
	/* The thread that opens a module is the one that switches it, as a rule: its switches then make no system call. */
	hrc_guard_prepare();
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += OPEN_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&c->lock);
	m->next = c->mods;
	c->mods = m;
	m->opening = 1;
	/* While the daemon is away both are dropped and it settles at once: it subscribes again when it is back. */
	hrp_msg s = {.type = HRP_SUBSCRIBE, .u.sub = {m->name}};
	hrc_queue(c, &s);
	hrc_ask(c, m);
	poke(c);
	while (m->opening && pthread_cond_timedwait(&c->cond, &c->lock, &until) != ETIMEDOUT)
		;
	m->opening = m->awaiting = 0;
	pthread_mutex_unlock(&c->lock);
	return m;
}

hr_module *hr_open(hr_client *c, const char *name)
{
	if (!c || !name || !hrp_valid_name(name)) {
		errno = EINVAL;
		return NULL;
	}
	return open_module(c, name, NULL);
}

/* initial-exec, as guard.c's: no __tls_get_addr, so no dependency on the dynamic loader itself */
static __thread char last_error[512] __attribute__((tls_model("initial-exec")));

const char *hr_last_error(void)
{
	return last_error;
}

hr_module *hr_open_program(hr_client *c)
{
	if (!c) {
		snprintf(last_error, sizeof last_error, "hr_open_program: no client");
		errno = EINVAL;
		return NULL;
	}
	hrc_prog *p;
	int rc = hrc_prog_open(&p, last_error, sizeof last_error);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	hrc_progmod *pm = hrc_progmod_new(p);
	if (!pm) {
		errno = ENOMEM;
		return NULL;
	}
	last_error[0] = 0;
	return open_module(c, HRC_PROGRAM_NAME, pm);
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
	uint64_t t = hrc_now_ns(CLOCK_MONOTONIC);
	k->rc = k->b->on_load(k->userdata, k->prev);
	k->ns += hrc_now_ns(CLOCK_MONOTONIC) - t;
}

static void call_unload(void *arg)
{
	struct call *k = arg;
	uint64_t t = hrc_now_ns(CLOCK_MONOTONIC);
	k->b->on_unload(k->userdata);
	k->ns += hrc_now_ns(CLOCK_MONOTONIC) - t;
}

void hr_close(hr_module *m)
{
	if (!m)
		return;
	hr_client *c = m->c;
	char why[160];
	struct call k = {.b = m->live, .userdata = m->userdata};
	/* the program's module has no hooks; its patched code stays in place */
	if (m->live && m->live->on_unload)
		hrc_guard_run(call_unload, &k, why, sizeof why); /* a crash here is the module's last word */
	pthread_mutex_lock(&c->lock);
	m->closed = 1;
	if (!hrc_next_named(c, NULL, m->name)) {
		hrp_msg u = {.type = HRP_UNSUBSCRIBE, .u.sub = {m->name}};
		hrc_queue(c, &u);
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

/* Retire the old live build (the host's thread's own list). Returns what fell out of the window, for the library's
 * thread to unload. */
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

/*
 * Hand the switch to b (made or refused) to the library's thread, which
 * reports it to the daemon, posts its notes and unloads what it let go of.
 * No lock and no wake-up: a switch makes no system call. The library's thread
 * looks for it on its own while it has a build on offer (see hrc_run).
 */
static void hand_back(hr_client *c, build *b)
{
	build *top = atomic_load_explicit(&c->taken, memory_order_relaxed);
	do
		b->taken_next = top;
	while (!atomic_compare_exchange_weak_explicit(&c->taken, &top, b, memory_order_release, memory_order_relaxed));
}

/*
 * The slow path of hr_update: something was handed over. It makes no system
 * call and, with the build's pages made present on the library's thread
 * before it was offered, takes no page fault: the clock is the vDSO's, the
 * guard's signal stack was lent at hr_open, and everything the library's
 * thread must hear of goes through b itself.
 */
static int take(hr_module *m)
{
	if (m->prog)
		return hrc_progmod_take(m);
	hr_client *c = m->c;
	uintptr_t p = atomic_exchange_explicit(&m->pending, 0, memory_order_acquire);
	build *b = (build *)(p & ~(uintptr_t)1), *old = m->live;
	if (!b)
		return -ENOEXEC; /* a build that did not load here */
	uint64_t t0 = hrc_now_ns(CLOCK_MONOTONIC);
	char crash[160];
	struct call k = {.b = old, .userdata = m->userdata, .prev = old ? old->version : 0};
	if (old && old->on_unload) /* on its way out: a crash does not stop it */
		hrc_guard_run(call_unload, &k, b->unload_crash, sizeof b->unload_crash);
	struct keeping kept = {b, old, NULL, 0};
	k.b = b;
	if (old && b->nkeep && hrc_guard_run(call_keep, &kept, crash, sizeof crash))
		snprintf(b->why, sizeof b->why, "its kept globals could not be written (one declared const?): %s", crash);
	else if (b->on_load && hrc_guard_run(call_load, &k, crash, sizeof crash))
		snprintf(b->why, sizeof b->why, "hr_on_load crashed: %s", crash);
	else if (b->on_load && k.rc != 0)
		snprintf(b->why, sizeof b->why, "hr_on_load returned %d", k.rc);
	int refused = b->why[0] != '\0';
	if (refused) {
		k.b = old; /* k.prev is still old's version */
		if (old && old->on_load)
			hrc_guard_run(call_load, &k, crash, sizeof crash); /* it ran before: a crash now has no better answer */
	} else {
		m->live = b;
		m->version = b->version;
		b->dropped = retire(m, old);
		b->reset = kept.reset;
		b->nreset = kept.nreset;
	}
	b->had_prev = old != NULL;
	b->prev_version = old ? old->version : 0;
	b->prev_gen = old ? old->gen : 0;
	uint64_t at_us = b->at_us = hrc_now_ns(CLOCK_REALTIME) / 1000u;
	hand_back(c, b); /* b is the library's thread's again from here */
	if (refused) {
		atomic_fetch_add_explicit(&c->switch_refusals, 1, memory_order_relaxed);
		return -ECANCELED;
	}
	uint64_t spent = hrc_now_ns(CLOCK_MONOTONIC) - t0 - k.ns;
	atomic_fetch_add_explicit(&c->switches, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->switch_ns, spent, memory_order_relaxed);
	atomic_store_explicit(&c->last_switch_ns, spent, memory_order_relaxed);
	atomic_store_explicit(&c->last_switch_at_us, at_us, memory_order_relaxed);
	return 1;
}

int hr_update(hr_module *m)
{
	/* The per-frame cost: one load and a branch. */
	if (__builtin_expect(atomic_load_explicit(&m->pending, memory_order_relaxed) == 0, 1))
		return 0;
	return take(m);
}
