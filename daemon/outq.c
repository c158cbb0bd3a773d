/* outq.c: a peer's outgoing stream, each BUILD frame sent with its object's descriptor. */
#include "outq.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

size_t hrd_outq_pending(const hrd_outq *q)
{
	return q->buf.len - q->buf.off;
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
	assert(o->at >= q->sent && o->at - q->sent + o->len <= hrd_outq_pending(q));
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

int hrd_outq_build(hrd_outq *q, const hrp_msg *m)
{
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
	q->objs[q->nobjs++] = (hrd_outq_obj){q->sent + hrd_outq_pending(q) - frame.len, frame.len, m->u.build.version,
	                                     module, path};
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

int hrd_outq_write(hrd_outq *q, int sock)
{
	while (hrd_outq_pending(q)) {
		size_t n = hrd_outq_pending(q);
		hrd_outq_obj *o = q->nobjs ? &q->objs[0] : NULL;
		int attach = o && o->at == q->sent, fd = -1;
		/* A send stops short of the next frame that carries a descriptor. */
		if (o && !attach && o->at - q->sent < n)
			n = (size_t)(o->at - q->sent);
		else if (attach && q->nobjs > 1 && q->objs[1].at - q->sent < n)
			n = (size_t)(q->objs[1].at - q->sent);
		if (attach && !may_attach(q, sock))
			return 1;
		if (attach && (fd = open_obj(o)) < 0) {
			if (respan(q, 0, NULL, 0) == 0)
				remove_obj(q, 0);
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
	*q = (hrd_outq){0};
}
