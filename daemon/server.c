/* server.c: accept, check the peer, handshake, then requests and announcements, never blocking. */
#include "server.h"
#include "log.h"
#include "outq.h"
#include "project.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX (8u << 20)  /* a client that lets this much pile up is not reading: dropped */
#define OUT_HIGH (1u << 20) /* past this, its requests wait until it reads its replies */
#define REFUSALS_MAX 64     /* the refusals of a client remembered, to offer it none of them again */
#define SUBS_MAX 4096
#define CLIENTS_MAX 256 /* with --jobs <= 128, the daemon stays well below 1024 descriptors */
#define HELLO_MS 5000   /* a client that has not said HELLO by then is dropped */
#define OFFERED_MAX 512 /* the builds last sent to a client: what its LOADED and REFUSED may be about */
#define REPORTS_BURST 50 /* reports of each kind a uid may have recorded at once, then one a second */
#define BUCKETS 16      /* uids whose report rates are kept */
#define HELD_MS 20      /* output held back for the descriptors in flight is tried again this much later */
#define REASON_MAX 1024 /* the longest refusal reason recorded */

typedef struct client {
	hrd_io io;
	struct hrd_server *srv;
	struct client *next, **pprev;
	hrp_reader rd;
	hrd_outq out;     /* BUILDs to a game go with their objects' descriptors, or their bytes */
	int hello_fd;     /* a descriptor came with its HELLO: descriptors reach it */
	int64_t retry_at; /* monotonic ms: the output held back (descriptors in flight) is tried again then; 0: none */
	int hello;
	int64_t hello_by; /* monotonic ms */
	uint32_t events;  /* what the loop watches for it */
	uint32_t role;
	pid_t pid;
	int64_t since_us; /* wall clock, when it connected */
	int dead;         /* dropped: off the list and the loop, freed once no handler of the server is on the stack */
	char **subs;
	size_t nsubs;
	struct refusal {      /* what it refused: never offered to it again */
		char *module;
		uint64_t version;
	} refusals[REFUSALS_MAX];
	size_t nrefusals;     /* the newest REFUSALS_MAX, in a ring */
	uid_t uid;            /* as the kernel says (SO_PEERCRED) */
	uint64_t offered[OFFERED_MAX]; /* the builds last sent to it, as offer_key()s, in a ring */
	size_t noffered;
	int logging;          /* LOG_REQ: lines go to it: the recent ones, then (following) each new one */
	int backlog, follow;  /* the end of the recent lines is still to be sent; new lines follow */
	uint32_t log_level;   /* the most detailed level it wants */
	hrd_log_cursor log;   /* what it was sent */
} client;

struct hrd_server {
	hrd_io io;
	hrd_io logio; /* readable when the log has new lines, for followers */
	hrd_timer timer; /* the first HELLO deadline, or retry of held-back output, of any client */
	hrd_loop *loop;
	hrd_server_config cfg;
	char *path;
	char *db_id;
	client *clients;
	client *dead;       /* dropped clients, freed by leave() at the outermost exit of the server's code */
	int depth;          /* how many of the server's entry points are on the stack */
	size_t nclients, max_clients;
	int spare;          /* a descriptor given up to accept, and close, when none are left */
	dev_t dev;          /* the socket file we made: removed at the end only if it is still ours */
	ino_t ino;
	time_t quiet_until; /* accept errors are logged once per second, not once per try */
	uint64_t secret;    /* keys offer_key(): a client cannot make a report pass for one about a build it was sent */
	struct bucket {     /* what each uid may still have recorded, per kind of report (LOADED, REFUSED) */
		uid_t uid;
		double left[2];
		int64_t at;     /* monotonic ms, when it was last filled */
		unsigned hushed[2];
	} buckets[BUCKETS];
};

uint32_t hrd_server_clients(const hrd_server *s)
{
	uint32_t n = 0;
	for (const client *c = s->clients; c; c = c->next)
		n += c->hello && c->role == HRP_ROLE_LIBRARY;
	return n;
}

/*
 * Entry points (the loop's handlers, hrd_server_announce) enter and leave:
 * a client dropped meanwhile is freed only at the outermost leave, so that no
 * handler of its own (a ROLLBACK_REQ whose announce fails to reach it) is
 * ever left holding a freed client.
 */
static void enter(hrd_server *s)
{
	s->depth++;
}

static void leave(hrd_server *s)
{
	assert(s->depth > 0);
	if (--s->depth)
		return;
	while (s->dead) {
		client *c = s->dead;
		s->dead = c->next;
		hrp_reader_free(&c->rd);
		hrd_outq_free(&c->out);
		for (size_t i = 0; i < c->nsubs; i++)
			free(c->subs[i]);
		free(c->subs);
		for (size_t i = 0; i < c->nrefusals && i < REFUSALS_MAX; i++)
			free(c->refusals[i].module);
		free(c);
	}
}

/* Off the list and the loop at once; freed by leave(). Dropping a dropped client does nothing. */
static void drop(client *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		hrd_info("client %d dropped: %s", (int)c->pid, why);
	hrd_loop_del(c->srv->loop, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	c->srv->nclients--;
	c->dead = 1;
	c->next = c->srv->dead;
	c->srv->dead = c;
}

static void arm(hrd_server *s);

/* Write what is queued, each BUILD with its object's descriptor. Returns 0, or -1 when the client was dropped. */
static int flush(client *c)
{
	if (c->dead)
		return -1;
	int rc = hrd_outq_write(&c->out, c->io.fd);
	if (rc < 0) {
		drop(c, strerror(-rc));
		return -1;
	}
	/* Held back: writability says nothing of what the game read, so a timer tries again. */
	if (rc == 1 && !c->retry_at) {
		c->retry_at = hrd_loop_now_ms() + HELD_MS;
		arm(c->srv);
	} else if (rc != 1 && c->retry_at) {
		c->retry_at = 0;
		arm(c->srv);
	}
	size_t pending = hrd_outq_pending(&c->out);
	uint32_t want = (pending && rc != 1 ? EPOLLOUT : 0) | (pending < OUT_HIGH ? EPOLLIN : 0);
	if (want != c->events) {
		c->events = want;
		hrd_loop_mod(c->srv->loop, &c->io, want);
	}
	return 0;
}

/* After a frame was queued: drop a client that does not read, else write. Returns 0, or -1 when c was dropped. */
static int queued(client *c)
{
	if (c->dead)
		return -1;
	if (hrd_outq_pending(&c->out) > OUT_MAX) {
		drop(c, "it does not read its messages");
		return -1;
	}
	return flush(c);
}

/* A build, as a number: FNV-1a over the daemon's secret and the module's name, mixed with the version. */
static uint64_t offer_key(const hrd_server *s, const char *module, uint64_t version)
{
	uint64_t h = 14695981039346656037u ^ s->secret;
	for (const unsigned char *p = (const unsigned char *)module; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	h ^= version + s->secret;
	h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15u;
	return h ^ (h >> 29);
}

/* The bucket of uid: its own, or the one used longest ago, taken over full. */
static struct bucket *bucket_of(hrd_server *s, uid_t uid, int64_t now)
{
	struct bucket *b = &s->buckets[0];
	for (size_t i = 0; i < BUCKETS; i++) {
		if (s->buckets[i].at && s->buckets[i].uid == uid)
			return &s->buckets[i];
		if (s->buckets[i].at < b->at)
			b = &s->buckets[i];
	}
	*b = (struct bucket){uid, {REPORTS_BURST, REPORTS_BURST}, now, {0, 0}};
	return b;
}

/*
 * Whether a report (kind 0: LOADED, 1: REFUSED) about version of module is
 * recorded: it must be about a build this client was sent, and within its
 * uid's rate (a burst, then one a second, however many connections it
 * makes), so that no client fills the history with rows of its choosing.
 */
static int recordable(client *c, int kind, const char *module, uint64_t version)
{
	uint64_t key = offer_key(c->srv, module, version);
	int sent = 0;
	for (size_t i = 0; i < c->noffered && i < OFFERED_MAX; i++)
		sent |= c->offered[i] == key;
	if (!sent) {
		hrd_debug("client %d reports on %.200s v%llu, which it was not sent: not recorded", (int)c->pid, module,
		          (unsigned long long)version);
		return 0;
	}
	int64_t now = hrd_loop_now_ms();
	struct bucket *b = bucket_of(c->srv, c->uid, now);
	for (int k = 0; k < 2; k++) {
		b->left[k] += (double)(now - b->at) / 1000.0;
		b->left[k] = b->left[k] > REPORTS_BURST ? REPORTS_BURST : b->left[k];
	}
	b->at = now;
	if (b->left[kind] < 1) {
		if (!b->hushed[kind]++)
			hrd_warn("uid %d reports %s faster than one a second: not recorded for now", (int)c->uid,
			         kind ? "refusals" : "loads");
		return 0;
	}
	b->left[kind] -= 1;
	b->hushed[kind] = 0;
	return 1;
}

/* Queue m (a BUILD's object as bytes if bytes) and write what can be written. Returns 0, or -1 when c was dropped. */
static int send_obj(client *c, const hrp_msg *m, int bytes)
{
	if (c->dead)
		return -1;
	if (m->type == HRP_BUILD)
		c->offered[c->noffered++ % OFFERED_MAX] = offer_key(c->srv, m->u.build.module, m->u.build.version);
	int rc = m->type == HRP_BUILD && c->role == HRP_ROLE_LIBRARY ? hrd_outq_build(&c->out, m, bytes)
	                                                             : hrd_outq_frame(&c->out, m);
	if (rc < 0) {
		hrd_error("cannot queue %s for client %d: %s", hrp_type_name(m->type), (int)c->pid, strerror(-rc));
		return 0;
	}
	return queued(c);
}

static int send_msg(client *c, const hrp_msg *m)
{
	return send_obj(c, m, 0);
}

/* Tell the client what was wrong, then close: the first protocol error ends it. */
static void reject(client *c, uint32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reject(client *c, uint32_t code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* The ERROR goes after what was queued, as queued (BUILDs with their descriptors), if that all goes now. */
	hrp_msg m = {.type = HRP_ERROR, .u.error = {code, msg}};
	if (hrd_outq_write(&c->out, c->io.fd) == 0 && !hrd_outq_pending(&c->out) && hrd_outq_frame(&c->out, &m) == 0)
		hrd_outq_write(&c->out, c->io.fd);
	drop(c, msg);
}

static int subscribed(const client *c, const char *module)
{
	for (size_t i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], module) == 0 || (module[0] == '/' && strcmp(c->subs[i], HRP_ALL_UNITS) == 0))
			return 1;
	return 0;
}

static int subscribe(client *c, const char *module)
{
	if (!subscribed(c, module)) {
		char **grown = c->nsubs < SUBS_MAX ? realloc(c->subs, (c->nsubs + 1) * sizeof *grown) : NULL;
		char *copy = grown ? strdup(module) : NULL;
		if (grown)
			c->subs = grown;
		if (!copy) {
			reject(c, HRP_E_INTERNAL, "too many subscriptions");
			return -1;
		}
		c->subs[c->nsubs++] = copy;
	}
	hrp_msg now[2];
	int all = strcmp(module, HRP_ALL_UNITS) == 0;
	/* Every unit's at once for "/": a program that starts after saves catches up with each. */
	for (size_t cursor = 0;;) {
		int n = all ? c->srv->cfg.ops->unit_latest(c->srv->cfg.arg, &cursor, now)
		            : c->srv->cfg.ops->latest(c->srv->cfg.arg, module, now);
		for (int i = 0; i < n; i++)
			if (send_msg(c, &now[i]) < 0)
				return -1;
		if (!all || n < 0)
			return 0;
	}
}

static void unsubscribe(client *c, const char *module)
{
	for (size_t i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], module) == 0) {
			free(c->subs[i]);
			c->subs[i] = c->subs[--c->nsubs];
			return;
		}
}

/* Queue one log line for c (written by the caller: it may drop c). */
static void queue_line(void *arg, int64_t at_us, int level, const char *text)
{
	client *c = arg;
	hrp_msg m = {.type = HRP_LOG, .u.log = {(uint64_t)at_us, (uint32_t)level, text}};
	if ((uint32_t)level <= c->log_level)
		hrd_outq_frame(&c->out, &m);
}

/*
 * Queue the log lines c waits for, while it reads what it was sent: a reader
 * that stops costs a megabyte at most, and is told later what it missed.
 * Returns 0, or -1 when c was dropped.
 */
static int feed(client *c)
{
	while (c->logging && hrd_outq_pending(&c->out) < OUT_HIGH) {
		if (hrd_log_recent(&c->log, (int)c->log_level, 64, queue_line, c))
			continue;
		if (c->backlog) {
			hrd_outq_frame(&c->out, &(hrp_msg){.type = HRP_LOG, .u.log = {0, 0, ""}});
			c->backlog = 0;
		}
		c->logging = c->follow;
		break;
	}
	return queued(c);
}

static void on_log(hrd_io *io, uint32_t events)
{
	hrd_server *s = hrd_container_of(io, hrd_server, logio);
	uint64_t n;
	(void)events;
	(void)!read(io->fd, &n, sizeof n);
	enter(s);
	for (client *c = s->clients, *next; c; c = next) {
		next = c->next;
		if (c->logging)
			feed(c);
	}
	leave(s);
}

/* Requests about the daemon itself (its log, gc): its own user's and root's only. */
static int own(client *c, const char *what)
{
	if (c->uid == geteuid() || c->uid == 0)
		return 1;
	reject(c, HRP_E_DENIED, "%s is for the daemon's own user (uid %d) and root", what, (int)geteuid());
	return 0;
}

static int was_refused(void *ctx, const char *module, uint64_t version)
{
	const client *c = ctx;
	for (size_t i = 0; i < c->nrefusals && i < REFUSALS_MAX; i++)
		if (c->refusals[i].version == version && strcmp(c->refusals[i].module, module) == 0)
			return 1;
	return 0;
}

static void remember_refusal(client *c, const char *module, uint64_t version)
{
	struct refusal *r = &c->refusals[c->nrefusals++ % REFUSALS_MAX];
	char *copy = strdup(module);
	if (!copy)
		return; /* then it may be offered again, and refused again: nothing worse */
	if (c->nrefusals > REFUSALS_MAX)
		free(r->module);
	*r = (struct refusal){copy, version};
}

/* One message from c. Returns 0, or -1 when c was dropped. */
static int handle(client *c, const hrp_msg *m)
{
	hrd_server *s = c->srv;
	if (!c->hello) {
		if (m->type != HRP_HELLO) {
			reject(c, HRP_E_PROTOCOL, "expected HELLO first, got %s", hrp_type_name(m->type));
			return -1;
		}
		c->hello = 1;
		c->role = m->u.hello.role;
		/* A game whose HELLO's descriptor did not come through (a socket forwarded by ssh) gets objects as bytes. */
		c->out.bytes = c->role == HRP_ROLE_LIBRARY && !c->hello_fd;
		/* c->pid stays what the kernel said (SO_PEERCRED), not what the peer claims. */
		hrd_debug("client %d connected: %.100s%s", (int)c->pid, m->u.hello.name,
		          c->out.bytes ? " (no descriptor came with its HELLO: objects go to it as bytes)" : "");
		hrp_msg h = {.type = HRP_HELLO,
		             .u.hello = {HRP_VERSION, HRP_ROLE_DAEMON, (uint32_t)getpid(), s->db_id, "hotreloadd " HR_VERSION_STRING,
		                         (uint32_t)c->out.bytes}};
		return send_msg(c, &h);
	}
	/* Every message that names a module, checked here once (hrp's table says which do). */
	const char *module = hrp_module_of(m);
	int every = (m->type == HRP_SUBSCRIBE || m->type == HRP_UNSUBSCRIBE) && module && strcmp(module, HRP_ALL_UNITS) == 0;
	if (module && !hrp_valid_name(module) && !hrp_valid_unit(module) && !every) {
		reject(c, HRP_E_INVALID, "'%.200s' is not a module name: use " HRP_NAME_RULE
		       ", or a translation unit's absolute path", module);
		return -1;
	}
	switch (m->type) {
	case HRP_SUBSCRIBE:
		return subscribe(c, m->u.sub.module);
	case HRP_UNSUBSCRIBE:
		unsubscribe(c, m->u.sub.module);
		return 0;
	case HRP_LOADED:
		if (recordable(c, 0, m->u.loaded.module, m->u.loaded.version))
			s->cfg.ops->loaded(s->cfg.arg, m->u.loaded.module, m->u.loaded.version, m->u.loaded.at_us, c->pid,
			                   c->since_us);
		return 0;
	case HRP_REFUSED:
		/* Answered whatever: only the row depends on the report being recordable. */
		int record = recordable(c, 1, m->u.refused.module, m->u.refused.version);
		hrp_msg older;
		char reason[REASON_MAX + 8];
		size_t len = strlen(m->u.refused.reason);
		if (len > REASON_MAX) { /* cut where a UTF-8 character starts */
			for (len = REASON_MAX; len && ((unsigned char)m->u.refused.reason[len] & 0xC0) == 0x80; len--)
				;
			snprintf(reason, sizeof reason, "%.*s [...]", (int)len, m->u.refused.reason);
		} else {
			memcpy(reason, m->u.refused.reason, len + 1);
		}
		remember_refusal(c, m->u.refused.module, m->u.refused.version);
		if (s->cfg.ops->refused(s->cfg.arg, m->u.refused.module, m->u.refused.version, reason, c->pid, record,
		                        was_refused, c, &older))
			return send_msg(c, &older);
		return 0;
	case HRP_BUILD_REQ:
		if (s->cfg.ops->build(s->cfg.arg, m->u.sub.module) < 0) {
			reject(c, HRP_E_INVALID, "no module '%.200s' to build (hotreload status lists them)", m->u.sub.module);
			return -1;
		}
		return 0;
	case HRP_ROLLBACK_REQ: {
		char why[512];
		if (s->cfg.ops->rollback(s->cfg.arg, m->u.rollback.module, m->u.rollback.version, m->u.rollback.action, why,
		                         sizeof why) < 0) {
			reject(c, HRP_E_INVALID, "%s", why);
			return -1;
		}
		return 0;
	}
	case HRP_STATUS_REQ: {
		/* What waits is checked before the reply, not after as queued() does: a long status may pass OUT_MAX
		 * by itself, which is no sign of a client that does not read. What waits stays below OUT_MAX and one reply. */
		if (hrd_outq_pending(&c->out) > OUT_MAX) {
			drop(c, "it does not read its messages");
			return -1;
		}
		hrp_msg st = {.type = HRP_STATUS};
		s->cfg.ops->status(s->cfg.arg, &st);
		st.u.status.pid = (uint32_t)getpid();
		st.u.status.clients = hrd_server_clients(s);
		long rc = hrp_encode_status(&st, &c->out.buf);
		if (rc < 0) {
			reject(c, HRP_E_INTERNAL, "cannot encode the status: %s", strerror((int)-rc));
			return -1;
		}
		return flush(c);
	}
	case HRP_LOG_REQ:
		if (!own(c, "the log"))
			return -1;
		/* The recent lines, the end of them, then (to follow) each new one. */
		c->log = (hrd_log_cursor){{0, 0}, {0, 0}};
		c->log_level = m->u.log_req.level;
		c->logging = c->backlog = 1;
		c->follow = m->u.log_req.follow != 0;
		return feed(c);
	case HRP_GC_REQ: {
		char why[512];
		hrp_msg done;
		if (!own(c, "gc"))
			return -1;
		if (s->cfg.ops->gc(s->cfg.arg, &done, why, sizeof why) < 0) {
			reject(c, HRP_E_INTERNAL, "gc: %s", why);
			return -1;
		}
		return send_msg(c, &done);
	}
	case HRP_STOP_REQ:
		if (!own(c, "stop"))
			return -1;
		/* As SIGTERM: the loop returns after this handler, and main ends builds and closes the history. */
		hrd_info("stopping at the request of uid %u (pid %d)", (unsigned)c->uid, (int)c->pid);
		c->srv->loop->stop = 1;
		return send_msg(c, &(hrp_msg){.type = HRP_STOPPING, .u.stopping = {(uint32_t)getpid()}});
	case HRP_OBJECT_REQ: {
		/* Only a build it was sent: a client cannot make the daemon read objects of its choosing. */
		hrp_msg b;
		uint64_t key = offer_key(s, m->u.object_req.module, m->u.object_req.version);
		int sent = 0;
		for (size_t i = 0; i < c->noffered && i < OFFERED_MAX; i++)
			sent |= c->offered[i] == key;
		if (!sent || c->role != HRP_ROLE_LIBRARY || !s->cfg.ops->object(s->cfg.arg, m->u.object_req.module,
		                                                                   m->u.object_req.version, &b)) {
			hrd_debug("client %d asks for the bytes of %.200s v%llu, which it cannot have (not sent to it, or gone)",
			          (int)c->pid, m->u.object_req.module, (unsigned long long)m->u.object_req.version);
			return 0;
		}
		hrd_info("%s: v%llu goes to client %d as bytes: its descriptor did not reach it", b.u.build.module,
		         (unsigned long long)b.u.build.version, (int)c->pid);
		return send_obj(c, &b, 1);
	}
	case HRP_ERROR:
		drop(c, m->u.error.message);
		return -1;
	default:
		reject(c, HRP_E_PROTOCOL, "unexpected %s from a client", hrp_type_name(m->type));
		return -1;
	}
}

static void client_io(client *c, uint32_t events)
{
	if ((events & EPOLLOUT) && flush(c) < 0)
		return;
	if ((events & EPOLLOUT) && c->logging && feed(c) < 0)
		return; /* it read what it was sent: the log lines it waits for come next */
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	long n;
	if (c->hello) {
		n = hrp_reader_read(&c->rd, c->io.fd);
	} else {
		/* A frame at a time until the HELLO: whether a descriptor comes with it says whether descriptors reach the peer. */
		int fd = -1, cut = 0;
		n = hrp_reader_recv(&c->rd, c->io.fd, &fd, &cut);
		if (fd >= 0) {
			c->hello_fd = 1;
			close(fd);
		}
	}
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n == 0 || (n < 0 && n != -EMSGSIZE)) {
		drop(c, NULL);
		return;
	}
	hrp_msg m;
	int rc;
	/* c->dead too: a request's announce may drop the client that made it, and handle() cannot tell. */
	while ((rc = hrp_reader_next(&c->rd, &m)) == 1)
		if (handle(c, &m) < 0 || c->dead)
			return;
	if (n == -EMSGSIZE || rc < 0) {
		if (rc == -EPROTONOSUPPORT)
			reject(c, HRP_E_VERSION, "this daemon speaks protocol %d, the client %u", HRP_VERSION, m.u.hello.version);
		else
			reject(c, HRP_E_PROTOCOL, "bad frame: %s", c->rd.why ? c->rd.why : "malformed");
	}
}

static void on_client(hrd_io *io, uint32_t events)
{
	client *c = hrd_container_of(io, client, io);
	hrd_server *s = c->srv;
	enter(s);
	client_io(c, events);
	leave(s);
}

static int allowed(const hrd_server *s, uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return 1;
	for (size_t i = 0; i < s->cfg.nallow; i++)
		if (s->cfg.allow[i] == uid)
			return 1;
	return 0;
}


/* Start the timer for the earliest HELLO deadline or retry, or stop it. */
static void arm(hrd_server *s)
{
	int64_t first = 0;
	for (client *c = s->clients; c; c = c->next) {
		if (!c->hello && (!first || c->hello_by < first))
			first = c->hello_by;
		if (c->retry_at && (!first || c->retry_at < first))
			first = c->retry_at;
	}
	int64_t in = first - hrd_loop_now_ms();
	if (first)
		hrd_timer_start(s->loop, &s->timer, in < 1 ? 1 : in, 0);
	else
		hrd_timer_stop(s->loop, &s->timer);
}

static void on_timer(hrd_timer *t)
{
	hrd_server *s = hrd_container_of(t, hrd_server, timer);
	int64_t now = hrd_loop_now_ms();
	enter(s);
	for (client *c = s->clients, *next; c; c = next) {
		next = c->next;
		if (!c->hello && c->hello_by <= now)
			reject(c, HRP_E_PROTOCOL, "no HELLO within %d ms", HELLO_MS);
		else if (c->retry_at && c->retry_at <= now) {
			c->retry_at = 0;
			flush(c);
		}
	}
	leave(s);
	arm(s);
}

static void accept_one(hrd_server *s)
{
	int fd = accept4(s->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && s->spare >= 0) {
		/* Out of descriptors: the listener would stay readable and spin.
		 * Give up the spare one to take the connection off the queue. */
		close(s->spare);
		fd = accept4(s->io.fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		s->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
		fd = -1;
		errno = EMFILE;
	}
	if (fd < 0) {
		time_t now = time(NULL);
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED && now >= s->quiet_until) {
			hrd_warn("cannot accept a client: %s", strerror(errno));
			s->quiet_until = now + 1;
		}
		return;
	}
	if (s->nclients >= s->max_clients) {
		hrp_msg busy = {.type = HRP_ERROR, .u.error = {HRP_E_INTERNAL, "too many clients: try again later"}};
		hrp_buf b = {0};
		if (hrp_encode(&busy, &b) > 0)
			(void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		hrp_buf_free(&b);
		close(fd);
		time_t now = time(NULL);
		if (now >= s->quiet_until) {
			hrd_warn("refused a client: %zu are connected already", s->nclients);
			s->quiet_until = now + 1;
		}
		return;
	}
	client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->io.fd = fd;
	c->io.fn = on_client;
	c->srv = s;
	c->next = s->clients;
	c->pprev = &s->clients;
	if (s->clients)
		s->clients->pprev = &c->next;
	s->clients = c;
	s->nclients++;
	c->events = EPOLLIN;
	c->hello_by = hrd_loop_now_ms() + HELLO_MS;
	if (hrd_loop_add(s->loop, &c->io, EPOLLIN) < 0) {
		drop(c, strerror(errno));
		return;
	}
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || !allowed(s, cred.uid)) {
		hrd_warn("refused a client of uid %d (pid %d): allow it with --allow-uid", (int)cred.uid, (int)cred.pid);
		reject(c, HRP_E_DENIED, "uid %d may not use this daemon (started by uid %d; see --allow-uid)",
		     (int)cred.uid, (int)geteuid());
		return;
	}
	c->pid = cred.pid;
	c->uid = cred.uid;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	c->since_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	arm(s);
}

static void on_accept(hrd_io *io, uint32_t events)
{
	hrd_server *s = hrd_container_of(io, hrd_server, io);
	(void)events;
	enter(s);
	accept_one(s);
	leave(s);
}

void hrd_server_announce(hrd_server *s, const char *module, const hrp_msg *m)
{
	enter(s);
	for (client *c = s->clients, *next; c; c = next) {
		next = c->next;
		if (c->hello && subscribed(c, module))
			send_msg(c, m);
	}
	leave(s);
}

/* Remove a socket file no daemon answers on; refuse to take over one that answers, or anything else. */
static int clear_stale(const char *path, char *err, size_t errsz)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsz, "%s exists and is not a socket: remove it, or give another --socket", path);
		return -1;
	}
	int fd = hrp_connect(path, 1000);
	if (fd >= 0) {
		close(fd);
		snprintf(err, errsz, "another daemon answers on %s: stop it, or give this one another --socket", path);
		return -1;
	}
	if (fd != -ECONNREFUSED) {
		snprintf(err, errsz, "cannot tell whether a daemon still serves %s (%s): stop it, or remove the socket",
		         path, strerror(-fd));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errsz, "cannot remove the stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int hrd_server_open(hrd_server **out, hrd_loop *loop, const hrd_server_config *cfg, char *err, size_t errsz)
{
	if (cfg->fd < 0 && clear_stale(cfg->path, err, errsz) < 0)
		return -1;
	hrd_server *s = calloc(1, sizeof *s);
	if (s)
		s->io.fd = s->spare = s->logio.fd = -1;
	if (!s || !(s->path = strdup(cfg->path)) || !(s->db_id = strdup(cfg->db_id))) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	s->loop = loop;
	s->cfg = *cfg;
	if (getrandom(&s->secret, sizeof s->secret, GRND_NONBLOCK) != sizeof s->secret)
		s->secret = (uint64_t)hrd_loop_now_ms() ^ ((uint64_t)getpid() << 32); /* no entropy yet: a guess still needs the time */
	s->io.fn = on_accept;
	s->timer.fn = on_timer;
	/* The log's descriptor is the log's: watched here, never closed here. */
	s->logio.fn = on_log;
	if ((s->logio.fd = hrd_log_recent_fd()) < 0 || hrd_loop_add(loop, &s->logio, EPOLLIN) < 0) {
		s->logio.fd = -1;
		snprintf(err, errsz, "cannot follow the log: %s", strerror(errno));
		goto fail;
	}
	s->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* Leave descriptors for the builds and the sources they read, whatever the limit. */
	struct rlimit rl;
	s->max_clients = CLIENTS_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < CLIENTS_MAX + 512)
		s->max_clients = rl.rlim_cur > 512 + 16 ? rl.rlim_cur - 512 : 16;
	s->io.fd = cfg->fd >= 0 ? cfg->fd : hrp_listen(cfg->path, 64);
	if (s->io.fd < 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", cfg->path, strerror(-s->io.fd));
		goto fail;
	}
	/* Other users can reach the socket only when allowed; SO_PEERCRED then
	 * checks who. Never through a symbolic link put in its place. A given
	 * socket's mode is its maker's (SocketMode=). */
	struct stat st;
	if (cfg->fd < 0 && lstat(cfg->path, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	if (cfg->fd < 0 && cfg->nallow && fchmodat(AT_FDCWD, cfg->path, 0666, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(err, errsz, "cannot open %s to --allow-uid users: %s", cfg->path, strerror(errno));
		goto fail;
	}
	if (hrd_loop_add(loop, &s->io, EPOLLIN) < 0) {
		snprintf(err, errsz, "cannot watch the socket: %s", strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s && s->io.fd >= 0 && s->path && cfg->fd < 0)
		unlink(s->path);
	hrd_server_close(s);
	return -1;
}

void hrd_server_close(hrd_server *s)
{
	if (!s)
		return;
	enter(s);
	while (s->clients)
		drop(s->clients, NULL);
	leave(s);
	if (s->io.fd >= 0) {
		hrd_loop_del(s->loop, &s->io);
		close(s->io.fd);
		/* Not a socket made there since by another (a socket unit that took the path over, say). */
		struct stat st;
		if (s->cfg.fd < 0 && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
			unlink(s->path);
	}
	if (s->spare >= 0)
		close(s->spare);
	hrd_timer_stop(s->loop, &s->timer);
	if (s->logio.fd >= 0)
		hrd_loop_del(s->loop, &s->logio);
	free(s->path);
	free(s->db_id);
	free(s);
}
