/* outq.h: what the daemon has to send one peer: frames, and the objects that go with BUILD frames (descriptors or bytes). */
#ifndef HRD_OUTQ_H
#define HRD_OUTQ_H

#include "../proto/hrp.h"

#include <stddef.h>
#include <stdint.h>

/*
 * A BUILD frame for a game travels with its object's descriptor, passed with
 * the frame's first byte (SCM_RIGHTS): the game loads what was published,
 * never a path. The object is opened only when its frame goes out, so an
 * unsent BUILD holds no descriptor; and at most one unsent BUILD per module
 * waits (a newer one takes its place, where it stands in the stream). The
 * descriptors sent but not yet read by the peer count against the daemon's
 * user (the kernel's unix_inflight): at most HRD_OUTQ_INFLIGHT go out until
 * the peer is seen to have read everything.
 *
 * A peer that descriptors do not reach (a socket forwarded by ssh) gets each
 * object as bytes instead: OBJECT frames of at most HRP_CHUNK_MAX bytes right
 * after its BUILD, read from the object opened when the BUILD goes out, one
 * chunk at a time as the socket takes them: a peer costs one chunk of memory,
 * whatever the object's size.
 *
 * Functions return 0 or a negative errno, as the protocol's do.
 */
#define HRD_OUTQ_INFLIGHT 8

typedef struct hrd_outq_obj {
	uint64_t at;  /* where its frame starts in the stream */
	size_t len;   /* the frame's length */
	uint64_t version;
	char *module, *path;
	int bytes;    /* its object goes as OBJECT frames after it, not as a descriptor */
} hrd_outq_obj;

/* The object on its way as bytes: its chunks go once the stream reaches end, ahead of what follows. */
typedef struct hrd_outq_src {
	int fd;              /* open while module is not NULL */
	uint64_t end;        /* where its BUILD frame ends in the stream */
	uint64_t off, size;  /* the bytes sent, and all of them */
	uint64_t version;
	char *module;        /* NULL: no object on its way */
	hrp_buf chunk;       /* the OBJECT frame being written */
} hrd_outq_src;

typedef struct hrd_outq {
	hrp_buf buf;        /* the bytes not yet written: plain frames may be appended to it directly */
	uint64_t sent;      /* bytes written so far: where buf.data[buf.off] is in the stream */
	hrd_outq_obj *objs; /* the BUILDs not yet begun, in stream order */
	size_t nobjs, cap;
	unsigned inflight;  /* descriptors written since the peer was last seen to have read everything */
	int bytes;          /* the peer takes no descriptors: every object goes as bytes (a zeroed queue: descriptors) */
	hrd_outq_src src;
	uint64_t objects_as_bytes; /* objects sent whole as bytes */
} hrd_outq;


/* Bytes not yet written: the frames queued, and while an object goes as bytes, its chunk and one byte more. */
size_t hrd_outq_pending(const hrd_outq *q);
/* Append m as a plain frame. 0, or as hrp_encode. */
int hrd_outq_frame(hrd_outq *q, const hrp_msg *m);
/*
 * Append m, a BUILD, to go with a descriptor of the file at m->u.build.path.
 * An unsent BUILD of the same module gives way: replaced in place by an
 * older one's successor, or this one is passed over when the one waiting is
 * as new. With bytes, or when the queue's peer takes no descriptors, the
 * object follows as bytes. 0, or as hrp_encode.
 */
int hrd_outq_build(hrd_outq *q, const hrp_msg *m, int bytes);
/*
 * Write what can be written to the socket fd without blocking: 0 (all of it,
 * or the socket is full: wait for it to be writable), 1 (held back: the
 * descriptors in flight are at their bound; try again later, not on
 * writability), or a negative errno (the peer is gone, or an object going as
 * bytes could not be read whole: the peer cannot be told the rest). An
 * object that cannot be opened any more is logged and its BUILD left out.
 */
int hrd_outq_write(hrd_outq *q, int fd);
/* Free everything; q is then empty. */
void hrd_outq_free(hrd_outq *q);

#endif
