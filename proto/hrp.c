/* hrp.c: encode and decode protocol frames, read them from a stream, and open the socket. */
#include "hrp.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/*
 * Each message type's payload is a list of fields, read and written by one
 * generic encoder and decoder, so that the two cannot disagree.
 */
enum { F_END, F_U32, F_U64, F_STR, F_BYTES };
struct field {
	uint8_t kind;
	uint16_t off; /* in hrp_msg, or in hrp_modstat for status entries */
};
#define M(k, member) { k, (uint16_t)offsetof(hrp_msg, u.member) }

static const struct field f_hello[] = { M(F_U32, hello.version), M(F_U32, hello.role),
	M(F_U32, hello.pid), M(F_STR, hello.db_id), M(F_STR, hello.name), M(F_U32, hello.bytes), { F_END, 0 } };
static const struct field f_error[] = { M(F_U32, error.code), M(F_STR, error.message), { F_END, 0 } };
static const struct field f_sub[] = { M(F_STR, sub.module), { F_END, 0 } };
static const struct field f_build[] = { M(F_STR, build.module), M(F_U64, build.version),
	M(F_U32, build.kind), M(F_STR, build.path), M(F_STR, build.sha256), M(F_U64, build.size), { F_END, 0 } };
static const struct field f_object[] = { M(F_STR, object.module), M(F_U64, object.version),
	M(F_U64, object.offset), M(F_BYTES, object.data), { F_END, 0 } };
static const struct field f_object_req[] = { M(F_STR, object_req.module), M(F_U64, object_req.version), { F_END, 0 } };
static const struct field f_failed[] = { M(F_STR, failed.module), M(F_STR, failed.message), { F_END, 0 } };
static const struct field f_loaded[] = { M(F_STR, loaded.module), M(F_U64, loaded.version),
	M(F_U64, loaded.at_us), { F_END, 0 } };
static const struct field f_refused[] = { M(F_STR, refused.module), M(F_U64, refused.version),
	M(F_STR, refused.reason), { F_END, 0 } };
static const struct field f_rollback[] = { M(F_STR, rollback.module), M(F_U64, rollback.version),
	M(F_U32, rollback.action), { F_END, 0 } };
static const struct field f_log_req[] = { M(F_U32, log_req.follow), M(F_U32, log_req.level), { F_END, 0 } };
static const struct field f_log[] = { M(F_U64, log.at_us), M(F_U32, log.level), M(F_STR, log.text), { F_END, 0 } };
static const struct field f_gc[] = { M(F_U64, gc.files), M(F_U64, gc.bytes), M(F_U64, gc.db_before),
	M(F_U64, gc.db_after), { F_END, 0 } };
static const struct field f_stopping[] = { M(F_U32, stopping.pid), { F_END, 0 } };
static const struct field f_none[] = { { F_END, 0 } };
/* STATUS: these fields, then u32 nmods and nmods entries of f_modstat, then f_status_tail. */
static const struct field f_status[] = { M(F_U32, status.pid), M(F_U32, status.clients),
	M(F_STR, status.root), M(F_STR, status.state_dir), M(F_STR, status.backend),
	M(F_STR, status.reason), { F_END, 0 } };
static const struct field f_status_tail[] = { M(F_U32, status.more), M(F_U64, status.cpu_ms),
	M(F_U64, status.events), M(F_U64, status.overflows), M(F_U64, status.rescans), M(F_U64, status.verify_scans),
	M(F_U64, status.missed), M(F_STR, status.outside), { F_END, 0 } };
#undef M
static const struct field f_modstat[] = { { F_STR, offsetof(hrp_modstat, module) },
	{ F_U64, offsetof(hrp_modstat, version) }, { F_STR, offsetof(hrp_modstat, status) },
	{ F_STR, offsetof(hrp_modstat, message) }, { F_END, 0 } };

/* Each type's name, fields, and whether its first field names a module (checked once, by its receiver). */
static const struct {
	const char *name;
	const struct field *fields;
	int module;
} types[HRP_TYPE_MAX + 1] = {
	[HRP_HELLO] = { "HELLO", f_hello },
	[HRP_ERROR] = { "ERROR", f_error },
	[HRP_SUBSCRIBE] = { "SUBSCRIBE", f_sub, 1 },
	[HRP_UNSUBSCRIBE] = { "UNSUBSCRIBE", f_sub, 1 },
	[HRP_BUILD] = { "BUILD", f_build, 1 },
	[HRP_FAILED] = { "FAILED", f_failed, 1 },
	[HRP_LOADED] = { "LOADED", f_loaded, 1 },
	[HRP_REFUSED] = { "REFUSED", f_refused, 1 },
	[HRP_STATUS_REQ] = { "STATUS_REQ", f_none },
	[HRP_STATUS] = { "STATUS", f_status },
	[HRP_BUILD_REQ] = { "BUILD_REQ", f_sub, 1 },
	[HRP_ROLLBACK_REQ] = { "ROLLBACK_REQ", f_rollback, 1 },
	[HRP_LOG_REQ] = { "LOG_REQ", f_log_req },
	[HRP_LOG] = { "LOG", f_log },
	[HRP_GC_REQ] = { "GC_REQ", f_none },
	[HRP_GC] = { "GC", f_gc },
	[HRP_STOP_REQ] = { "STOP_REQ", f_none },
	[HRP_STOPPING] = { "STOPPING", f_stopping },
	[HRP_OBJECT] = { "OBJECT", f_object, 1 },
	[HRP_OBJECT_REQ] = { "OBJECT_REQ", f_object_req, 1 },
};

_Static_assert(HRP_NAME_MAX == 200, "HRP_NAME_RULE says 200");

int hrp_valid_name(const char *name)
{
	size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
	return n > 0 && n <= HRP_NAME_MAX && name[n] == '\0';
}

int hrp_valid_unit(const char *name)
{
	size_t n = strlen(name);
	if (n < 2 || n > HRP_UNIT_MAX || name[0] != '/' || name[n - 1] == '/')
		return 0;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	for (const char *p = name; *p;) {
		size_t len = strcspn(++p, "/"); /* p is past a slash */
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += len;
	}
	return 1;
}

const char *hrp_type_name(unsigned type)
{
	return type && type <= HRP_TYPE_MAX ? types[type].name : "?";
}

const char *hrp_module_of(const hrp_msg *m)
{
	if (!m->type || m->type > HRP_TYPE_MAX || !types[m->type].module)
		return NULL;
	const char *const *module = (const void *)((const char *)m + types[m->type].fields[0].off);
	return *module;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- buffers ---- */

void hrp_buf_free(hrp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void hrp_buf_consume(hrp_buf *b, size_t n)
{
	assert(n <= b->len - b->off);
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

/* Make room for n more bytes at len, moving unconsumed bytes to the front first. */
static int reserve(hrp_buf *b, size_t n)
{
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int hrp_buf_append(hrp_buf *b, const void *data, size_t n)
{
	int rc = reserve(b, n);
	if (rc == 0 && n) {
		memcpy(b->data + b->len, data, n);
		b->len += n;
	}
	return rc;
}

/* ---- encode ---- */

static int put_u32(hrp_buf *b, uint32_t v)
{
	uint8_t x[4];
	put32(x, v);
	return hrp_buf_append(b, x, 4);
}

static int put_u64(hrp_buf *b, uint64_t v)
{
	uint8_t x[8];
	put32(x, (uint32_t)(v >> 32));
	put32(x + 4, (uint32_t)v);
	return hrp_buf_append(b, x, 8);
}

static int put_fields(hrp_buf *b, const struct field *f, const void *base)
{
	int rc = 0;
	for (; rc == 0 && f->kind != F_END; f++) {
		const char *p = (const char *)base + f->off;
		if (f->kind == F_U32) {
			rc = put_u32(b, *(const uint32_t *)p);
		} else if (f->kind == F_U64) {
			rc = put_u64(b, *(const uint64_t *)p);
		} else if (f->kind == F_BYTES) {
			const hrp_bytes *x = (const hrp_bytes *)p;
			if (x->len > HRP_CHUNK_MAX)
				return -EMSGSIZE;
			if (x->len && !x->data)
				return -EINVAL;
			rc = put_u32(b, x->len);
			if (rc == 0)
				rc = hrp_buf_append(b, x->data, x->len);
		} else {
			const char *s = *(const char *const *)p;
			if (!s)
				return -EINVAL;
			size_t n = strlen(s);
			if (n >= HRP_MAX_FRAME)
				return -EMSGSIZE;
			rc = put_u32(b, (uint32_t)n);
			if (rc == 0)
				rc = hrp_buf_append(b, s, n + 1);
		}
	}
	return rc;
}

long hrp_encode(const hrp_msg *m, hrp_buf *b)
{
	if (m->type == 0 || m->type > HRP_TYPE_MAX)
		return -EINVAL;
	size_t start = b->len - b->off; /* reserve() may move data: keep offsets relative */
	uint8_t hdr[HRP_HEADER_SIZE] = { 0 };
	int rc = hrp_buf_append(b, hdr, sizeof hdr);
	if (rc == 0)
		rc = put_fields(b, types[m->type].fields, m);
	if (rc == 0 && m->type == HRP_STATUS) {
		if (m->u.status.nmods && !m->u.status.mods)
			rc = -EINVAL;
		else
			rc = put_u32(b, m->u.status.nmods);
		for (uint32_t i = 0; rc == 0 && i < m->u.status.nmods; i++)
			rc = put_fields(b, f_modstat, &m->u.status.mods[i]);
		hrp_msg tail = *m;
		if (!tail.u.status.outside)
			tail.u.status.outside = ""; /* added last: a sender that does not know of it says none */
		if (rc == 0)
			rc = put_fields(b, f_status_tail, &tail);
	}
	size_t n = b->len - b->off - start;
	if (rc == 0 && n > HRP_MAX_FRAME)
		rc = -EMSGSIZE;
	if (rc < 0) {
		b->len = b->off + start;
		return rc;
	}
	uint8_t *h = b->data + b->off + start;
	put32(h, (uint32_t)n);
	h[4] = (uint8_t)(m->type >> 8);
	h[5] = (uint8_t)m->type;
	return (long)n;
}

/* The bytes put_fields writes for f at base; a NULL string counts as empty (put_fields refuses it). */
static size_t fields_size(const struct field *f, const void *base)
{
	size_t n = 0;
	for (; f->kind != F_END; f++) {
		if (f->kind == F_BYTES) {
			n += 4 + ((const hrp_bytes *)((const char *)base + f->off))->len;
			continue;
		}
		if (f->kind != F_STR) {
			n += f->kind == F_U32 ? 4 : 8;
			continue;
		}
		const char *s = *(const char *const *)((const char *)base + f->off);
		n += 4 + (s ? strlen(s) : 0) + 1;
	}
	return n;
}

long hrp_encode_status(const hrp_msg *m, hrp_buf *b)
{
	if (m->type != HRP_STATUS || (m->u.status.nmods && !m->u.status.mods))
		return -EINVAL;
	size_t start = b->len - b->off, fixed = HRP_HEADER_SIZE + fields_size(f_status, m) + 4 +
	                                       fields_size(f_status_tail, m);
	long frames = 0, rc = 0;
	uint32_t i = 0;
	do {
		hrp_msg part = *m;
		if (!part.u.status.outside)
			part.u.status.outside = ""; /* added last: a sender that does not know of it says none */
		size_t size = fixed;
		uint32_t k = 0;
		/* Modules while they fit: each frame holds one at least, or the reply could never end. */
		while (i + k < m->u.status.nmods) {
			size_t one = fields_size(f_modstat, &m->u.status.mods[i + k]);
			if (k && size + one > HRP_MAX_FRAME)
				break;
			size += one;
			k++;
		}
		part.u.status.nmods = k;
		part.u.status.mods = m->u.status.mods + i;
		part.u.status.more = i + k < m->u.status.nmods;
		rc = hrp_encode(&part, b);
		i += k;
		frames++;
	} while (rc >= 0 && i < m->u.status.nmods);
	if (rc < 0) {
		b->len = b->off + start;
		return rc;
	}
	return frames;
}

/* ---- decode ---- */

struct cursor {
	const uint8_t *p, *end;
	const char *why;
};

static int get_fields(struct cursor *c, const struct field *f, void *base)
{
	for (; f->kind != F_END; f++) {
		char *dst = (char *)base + f->off;
		size_t left = (size_t)(c->end - c->p);
		if (f->kind == F_U32) {
			if (left < 4)
				goto short_;
			*(uint32_t *)dst = get32(c->p);
			c->p += 4;
		} else if (f->kind == F_U64) {
			if (left < 8)
				goto short_;
			*(uint64_t *)dst = (uint64_t)get32(c->p) << 32 | get32(c->p + 4);
			c->p += 8;
		} else if (f->kind == F_BYTES) {
			if (left < 4)
				goto short_;
			uint32_t n = get32(c->p);
			if (n > HRP_CHUNK_MAX) {
				c->why = "byte string longer than HRP_CHUNK_MAX";
				return -EBADMSG;
			}
			if (n > left - 4)
				goto short_;
			*(hrp_bytes *)dst = (hrp_bytes){c->p + 4, n};
			c->p += 4 + (size_t)n;
		} else {
			if (left < 4)
				goto short_;
			uint32_t n = get32(c->p);
			if (n >= left - 4)
				goto short_;
			const char *s = (const char *)c->p + 4;
			if (s[n] != '\0') {
				c->why = "string is not NUL-terminated";
				return -EBADMSG;
			}
			if (memchr(s, '\0', n)) {
				c->why = "string holds a NUL byte";
				return -EBADMSG;
			}
			*(const char **)dst = s;
			c->p += 4 + (size_t)n + 1;
		}
	}
	return 0;
short_:
	c->why = "payload too short for its type";
	return -EBADMSG;
}

int hrp_decode(const uint8_t *frame, size_t n, hrp_msg *m, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	*why = NULL;
	memset(m, 0, sizeof *m);
	if (n > HRP_MAX_FRAME) {
		*why = "frame length out of range";
		return -EMSGSIZE;
	}
	if (n < HRP_HEADER_SIZE || get32(frame) != n) {
		*why = "frame length does not match its header";
		return -EBADMSG;
	}
	unsigned type = (unsigned)frame[4] << 8 | frame[5];
	if (type == 0 || type > HRP_TYPE_MAX) {
		*why = "unknown message type";
		return -EPROTO;
	}
	if (frame[6] || frame[7]) {
		*why = "reserved header flags are set";
		return -EPROTO;
	}
	m->type = (uint16_t)type;
	struct cursor c = { frame + HRP_HEADER_SIZE, frame + n, NULL };
	/* The version leads the HELLO in every protocol version, so a peer of
	 * another version is told so rather than that its frame is garbage. */
	if (type == HRP_HELLO && n >= HRP_HEADER_SIZE + 4 && get32(c.p) != HRP_VERSION) {
		m->u.hello.version = get32(c.p);
		*why = "protocol version mismatch";
		return -EPROTONOSUPPORT;
	}
	int rc = get_fields(&c, types[type].fields, m);
	if (rc == 0 && type == HRP_STATUS) {
		if (c.end - c.p < 4) {
			c.why = "payload too short for its type";
			rc = -EBADMSG;
		} else {
			m->u.status.nmods = get32(c.p);
			c.p += 4;
			m->u.status.raw = c.p;
			for (uint32_t i = 0; rc == 0 && i < m->u.status.nmods; i++) {
				hrp_modstat tmp;
				rc = get_fields(&c, f_modstat, &tmp);
			}
			m->u.status.raw_len = (size_t)(c.p - m->u.status.raw);
			if (rc == 0)
				rc = get_fields(&c, f_status_tail, m);
		}
	}
	if (rc == 0 && c.p != c.end) {
		c.why = "trailing bytes after the payload";
		rc = -EBADMSG;
	}
	if (rc < 0) {
		*why = c.why;
		memset(m, 0, sizeof *m);
	}
	return rc;
}

int hrp_status_next(const hrp_msg *m, size_t *pos, hrp_modstat *out)
{
	if (m->type != HRP_STATUS || *pos >= m->u.status.raw_len)
		return 0;
	struct cursor c = { m->u.status.raw + *pos, m->u.status.raw + m->u.status.raw_len, NULL };
	if (get_fields(&c, f_modstat, out) < 0) /* cannot happen after hrp_decode */
		return 0;
	*pos = (size_t)(c.p - m->u.status.raw);
	return 1;
}

/* ---- stream reader ---- */

void hrp_reader_free(hrp_reader *r)
{
	hrp_buf_free(&r->in);
	memset(r, 0, sizeof *r); /* ready to use again */
}

int hrp_reader_push(hrp_reader *r, const void *data, size_t n)
{
	return hrp_buf_append(&r->in, data, n);
}

/*
 * Drop the frame handed out last, then read the next header: the length it
 * declares, 0 while it is incomplete, or -EMSGSIZE when out of range.
 */
static long next_len(hrp_reader *r)
{
	hrp_buf_consume(&r->in, r->frame);
	r->frame = 0;
	if (r->in.len - r->in.off < HRP_HEADER_SIZE)
		return 0;
	uint32_t n = get32(r->in.data + r->in.off);
	if (n < HRP_HEADER_SIZE || n > HRP_MAX_FRAME) {
		r->why = "frame length out of range";
		return -EMSGSIZE;
	}
	return n;
}

long hrp_reader_read(hrp_reader *r, int fd)
{
	long want = next_len(r);
	if (want < 0)
		return want;
	size_t avail = r->in.len - r->in.off;
	if (avail >= HRP_MAX_FRAME + 4096u)
		return -ENOBUFS; /* the caller is not taking frames: never grow past this */
	/* a page at least; all that a large frame still lacks, in one read */
	size_t more = (size_t)want > avail + 4096 ? (size_t)want - avail : 4096;
	int rc = reserve(&r->in, more);
	if (rc < 0)
		return rc;
	ssize_t n;
	do
		n = read(fd, r->in.data + r->in.len, r->in.cap - r->in.len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r->in.len += (size_t)n;
	return (long)n;
}

long hrp_send_fd(int sock, const void *data, size_t n, int fd)
{
	struct iovec iov = {(void *)data, n};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof ctl.buf;
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof fd);
	}
	return (long)sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

long hrp_send_hello(int sock, const void *data, size_t n)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	long k = hrp_send_fd(sock, data, n, null);
	int e = errno;
	if (null >= 0)
		close(null);
	errno = e;
	return k;
}

long hrp_reader_recv(hrp_reader *r, int fd, int *fdp, int *cut)
{
	long want = next_len(r);
	if (want < 0)
		return want;
	size_t avail = r->in.len - r->in.off;
	if (avail >= (want ? (size_t)want : HRP_HEADER_SIZE))
		return -ENOBUFS; /* a whole frame (or header) waits: take it first */
	size_t more = want ? (size_t)want - avail : HRP_HEADER_SIZE - avail;
	int rc = reserve(&r->in, more);
	if (rc < 0)
		return rc;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = {r->in.data + r->in.len, more};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	ssize_t n;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int got;
			memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof got);
			if (*fdp < 0)
				*fdp = got;
			else
				close(got);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		*cut = 1;
	r->in.len += (size_t)n;
	return (long)n;
}

int hrp_reader_next(hrp_reader *r, hrp_msg *m)
{
	r->why = NULL;
	long n = next_len(r);
	if (n <= 0 || r->in.len - r->in.off < (size_t)n)
		return n < 0 ? (int)n : 0;
	const uint8_t *p = r->in.data + r->in.off;
	int rc = hrp_decode(p, (size_t)n, m, &r->why);
	if (rc < 0)
		return rc;
	r->frame = (size_t)n;
	return 1;
}

/* ---- sockets ---- */

/*
 * Fill sa for path. A path too long for sun_path is reached through its
 * directory: *dfd is then an O_PATH fd the caller closes after the call.
 */
static int sockaddr_for(const char *path, struct sockaddr_un *sa, int *dfd)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	*dfd = -1;
	size_t n = strlen(path);
	if (n == 0)
		return -EINVAL;
	if (n < sizeof sa->sun_path) {
		memcpy(sa->sun_path, path, n + 1);
		return 0;
	}
	const char *slash = strrchr(path, '/');
	if (!slash)
		return -ENAMETOOLONG;
	char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	*dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc = *dfd < 0 ? -errno : 0;
	free(dir);
	if (rc == 0 && (size_t)snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", *dfd,
	                                slash + 1) >= sizeof sa->sun_path)
		rc = -ENAMETOOLONG;
	if (rc < 0 && *dfd >= 0) {
		close(*dfd);
		*dfd = -1;
	}
	return rc;
}

/* Connect to path (waiting up to timeout_ms) or, with backlog >= 0, listen there. */
static int unix_socket(const char *path, int backlog, int timeout_ms)
{
	struct sockaddr_un sa;
	int dfd;
	int rc = sockaddr_for(path, &sa, &dfd);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (backlog >= 0 ? SOCK_NONBLOCK : 0), 0);
	int ok = fd >= 0;
	if (ok && backlog < 0) {
		/* A Unix connect() blocks while the listener's queue is full (a
		 * stuck daemon); SO_SNDTIMEO bounds that wait, then is cleared. */
		struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 }, zero = { 0, 0 };
		ok = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
		     connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
		     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero) == 0;
		if (!ok && errno == EAGAIN)
			errno = ETIMEDOUT;
	} else if (ok) {
		/* Created 0600 from the start, as the socket may live outside a
		 * private dir: on Linux bind() takes the mode of the socket's inode
		 * (less the umask), which fchmod sets without touching the umask. */
		ok = fchmod(fd, 0600) == 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
		     listen(fd, backlog) == 0;
	}
	if (!ok) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		fd = rc;
	}
	if (dfd >= 0)
		close(dfd);
	return fd;
}

int hrp_connect(const char *path, int timeout_ms)
{
	return unix_socket(path, -1, timeout_ms > 0 ? timeout_ms : 1);
}

int hrp_listen(const char *path, int backlog)
{
	return unix_socket(path, backlog < 0 ? 0 : backlog, 0);
}

int hrp_send(int fd, const hrp_msg *m)
{
	hrp_buf b = { 0 };
	long rc = hrp_encode(m, &b);
	while (rc >= 0 && b.off < b.len) {
		ssize_t n = send(fd, b.data + b.off, b.len - b.off, MSG_NOSIGNAL);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0)
			b.off += (size_t)n;
	}
	hrp_buf_free(&b);
	return rc < 0 ? (int)rc : 0;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int hrp_recv(int fd, hrp_reader *r, hrp_msg *m, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		int rc = hrp_reader_next(r, m);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc <= 0)
			continue;
		long n = hrp_reader_read(r, fd);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && n != -EAGAIN)
			return (int)n;
	}
}
