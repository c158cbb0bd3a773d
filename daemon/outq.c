/* outq.c: a peer's outgoing stream, each BUILD frame sent with its object's descriptor, or followed by its bytes. */
#include "outq.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The frames queued, not counting an object's chunks. */
static size_t queued(const hrd_outq *q)
{
	return q->buf.len - q->buf.off;
}

size_t hrd_outq_pending(const hrd_outq *q)
{
	return queued(q) + (q->src.module ? q->src.chunk.len - q->src.chunk.off + 1 : 0);
}

int hrd_outq_frame(hrd_outq *q, const hrp_msg *m)
{
	long n = hrp_encode(m, &q->buf);
	return n < 0 ? (int)n : 0;
}

static void obj_free(hrd_outq_obj *o)
{
	free(o->module);
	free(o->path);
}

/* Replace object i's frame with the n bytes at with (n may be 0: it goes), shifting what follows. 0 or -ENOMEM. */
static int respan(hrd_outq *q, size_t i, const uint8_t *with, size_t n)
{
	hrd_outq_obj *o = &q->objs[i];
	assert(o->at >= q->sent && o->at - q->sent + o->len <= queued(q));
	size_t rel = (size_t)(o->at - q->sent), old = o->len;
	/* Room at the end, for the tail to move into (the append may move the unsent bytes to the front: rel holds). */
	if (n > old && hrp_buf_append(&q->buf, with, n - old) < 0)
		return -ENOMEM;
	size_t start = q->buf.off + rel;
	size_t tail = q->buf.len - (n > old ? n - old : 0) - (start + old);
	memmove(q->buf.data + start + n, q->buf.data + start + old, tail);
	if (n)
		memcpy(q->buf.data + start, with, n);
	q->buf.len = start + n + tail;
	for (size_t j = i + 1; j < q->nobjs; j++)
		q->objs[j].at = q->objs[j].at + n - old;
	o->len = n;
	return 0;
}

static void remove_obj(hrd_outq *q, size_t i)
{
	obj_free(&q->objs[i]);
	memmove(&q->objs[i], &q->objs[i + 1], (q->nobjs - i - 1) * sizeof *q->objs);
	q->nobjs--;
}

int hrd_outq_build(hrd_outq *q, const hrp_msg *m, int bytes)
{
	bytes = bytes || q->bytes;
	hrp_buf frame = {0};
	long n = hrp_encode(m, &frame);
	int rc = n < 0 ? (int)n : 0;
	char *module = NULL, *path = NULL;
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < q->nobjs; i++) {
		hrd_outq_obj *o = &q->objs[i];
		if (strcmp(o->module, m->u.build.module) != 0)
			continue;
		if (o->version == m->u.build.version)
			o->bytes |= bytes; /* the same: asked for as bytes, it goes as bytes */
		if (o->version >= m->u.build.version)
			goto done; /* one as new waits already: the peer gets that */
		if (!(path = strdup(m->u.build.path)) || respan(q, i, frame.data, frame.len) < 0) {
			rc = -ENOMEM;
			goto done;
		}
		free(o->path);
		o->path = path;
		path = NULL;
		o->version = m->u.build.version;
		o->bytes |= bytes;
		goto done;
	}
	if (q->nobjs == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 4;
		hrd_outq_obj *grown = realloc(q->objs, cap * sizeof *grown);
		if (!grown) {
			rc = -ENOMEM;
			goto done;
		}
		q->objs = grown;
		q->cap = cap;
	}
	if (!(module = strdup(m->u.build.module)) || !(path = strdup(m->u.build.path)) ||
	    hrp_buf_append(&q->buf, frame.data, frame.len) < 0) {
		rc = -ENOMEM;
		goto done;
	}
	q->objs[q->nobjs++] = (hrd_outq_obj){q->sent + queued(q) - frame.len, frame.len, m->u.build.version,
	                                     module, path, bytes};
	module = path = NULL;
done:
	free(module);
	free(path);
	hrp_buf_free(&frame);
	return rc;
}

/* The object of a BUILD about to go, opened now: a regular file, or -1 (said). */
static int open_obj(const hrd_outq_obj *o)
{
	int fd = open(o->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EINVAL;
	}
	if (fd < 0)
		hrd_warn("%s: v%llu is not sent: its object %s cannot be opened: %s", o->module,
		         (unsigned long long)o->version, o->path, strerror(errno));
	return fd;
}

/* Whether one more descriptor may go: fewer than the bound in flight, or the peer has read all it was sent. */
static int may_attach(hrd_outq *q, int sock)
{
	int unread;
	if (q->inflight < HRD_OUTQ_INFLIGHT)
		return 1;
	if (ioctl(sock, SIOCOUTQ, &unread) == 0 && unread == 0) {
		q->inflight = 0;
		return 1;
	}
	return 0;
}

static void src_end(hrd_outq *q)
{
	if (!q->src.module)
		return;
	close(q->src.fd);
	free(q->src.module);
	hrp_buf_free(&q->src.chunk);
	q->src = (hrd_outq_src){0};
}

/* Start sending o's object as bytes after its frame: 0, or -1 (said: its BUILD is left out). */
static int src_begin(hrd_outq *q, const hrd_outq_obj *o, int fd)
{
	struct stat st;
	char *module = strdup(o->module);
	if (!module || fstat(fd, &st) < 0) {
		hrd_warn("%s: v%llu is not sent: %s", o->module, (unsigned long long)o->version, strerror(errno));
		free(module);
		close(fd);
		return -1;
	}
	q->src = (hrd_outq_src){fd, o->at + o->len, 0, (uint64_t)st.st_size, o->version, module, {0}};
	return 0;
}

/* The next OBJECT frame of the object on its way, read now. 0, 1 when it is all sent, or a negative errno. */
static int src_next(hrd_outq *q)
{
	static uint8_t data[HRP_CHUNK_MAX]; /* the loop has one thread: one buffer for every peer */
	hrd_outq_src *s = &q->src;
	if (s->off == s->size)
		return 1;
	size_t want = s->size - s->off < HRP_CHUNK_MAX ? (size_t)(s->size - s->off) : HRP_CHUNK_MAX;
	ssize_t n;
	do
		n = pread(s->fd, data, want, (off_t)s->off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* Its size was told: the peer cannot be told the rest, so the connection goes (it keeps what it runs). */
		hrd_warn("%s: v%llu: its object could not be read whole (%llu of %llu bytes): the client is dropped",
		         s->module, (unsigned long long)s->version, (unsigned long long)s->off,
		         (unsigned long long)s->size);
		return n < 0 ? -errno : -EIO;
	}
	hrp_msg m = {.type = HRP_OBJECT, .u.object = {s->module, s->version, s->off, {data, (uint32_t)n}}};
	long k = hrp_encode(&m, &s->chunk);
	if (k < 0)
		return (int)k;
	s->off += (uint64_t)n;
	return 0;
}

/* Write the chunks of the object on its way: 0 (all of it), 2 (the socket is full), or a negative errno. */
static int src_write(hrd_outq *q, int sock)
{
	for (;;) {
		hrd_outq_src *s = &q->src;
		if (s->chunk.off == s->chunk.len) {
			int rc = src_next(q);
			if (rc == 1) {
				q->objects_as_bytes++;
				hrd_debug("%s: v%llu sent as bytes (%llu)", s->module, (unsigned long long)s->version,
				          (unsigned long long)s->size);
				src_end(q);
				return 0;
			}
			if (rc < 0)
				return rc;
		}
		ssize_t k = send(sock, s->chunk.data + s->chunk.off, s->chunk.len - s->chunk.off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			hrp_buf_consume(&s->chunk, (size_t)k);
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 2;
		return k < 0 ? -errno : -EPIPE;
	}
}

int hrd_outq_write(hrd_outq *q, int sock)
{
	for (;;) {
		/* An object going as bytes: its chunks come right after its BUILD, ahead of the rest. */
		if (q->src.module && q->sent == q->src.end) {
			int rc = src_write(q, sock);
			if (rc == 2)
				return 0;
			if (rc < 0)
				return rc;
		}
		if (!queued(q))
			break;
		size_t n = queued(q);
		hrd_outq_obj *o = q->nobjs ? &q->objs[0] : NULL;
		int attach = o && o->at == q->sent, fd = -1;
		/* A send stops short of the next frame that carries a descriptor or bytes, and at the end of a BUILD whose bytes follow. */
		if (o && !attach && o->at - q->sent < n)
			n = (size_t)(o->at - q->sent);
		else if (attach && q->nobjs > 1 && q->objs[1].at - q->sent < n)
			n = (size_t)(q->objs[1].at - q->sent);
		if (!attach && q->src.module && q->src.end - q->sent < n)
			n = (size_t)(q->src.end - q->sent);
		if (attach && !o->bytes && !may_attach(q, sock))
			return 1;
		if (attach && (fd = open_obj(o)) < 0) {
			if (respan(q, 0, NULL, 0) == 0)
				remove_obj(q, 0);
			continue;
		}
		if (attach && o->bytes) {
			/* The descriptor stays here: the object is read as its chunks go. */
			if (src_begin(q, o, fd) == 0) {
				remove_obj(q, 0);
			} else if (respan(q, 0, NULL, 0) == 0) {
				remove_obj(q, 0);
			}
			continue;
		}
		long k = hrp_send_fd(sock, q->buf.data + q->buf.off, n, fd);
		int e = errno;
		if (fd >= 0)
			close(fd); /* in flight, or not sent: either way not ours to keep */
		if (k > 0) {
			hrp_buf_consume(&q->buf, (size_t)k);
			q->sent += (uint64_t)k;
			if (attach) {
				q->inflight++;
				remove_obj(q, 0);
			}
			continue;
		}
		if (k < 0 && e == EINTR)
			continue;
		if (k < 0 && (e == EAGAIN || e == EWOULDBLOCK))
			return 0;
		/* The descriptors in flight to every peer passed our RLIMIT_NOFILE: back off, as for the bound. */
		if (k < 0 && e == ETOOMANYREFS)
			return 1;
		return k < 0 ? -e : -EPIPE;
	}
	return 0;
}

void hrd_outq_free(hrd_outq *q)
{
	for (size_t i = 0; i < q->nobjs; i++)
		obj_free(&q->objs[i]);
	free(q->objs);
	hrp_buf_free(&q->buf);
	src_end(q);
	*q = (hrd_outq){0};
}
