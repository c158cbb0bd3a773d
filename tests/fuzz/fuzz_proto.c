/* fuzz_proto.c: libFuzzer driver for frame decoding and the stream readers (pushed bytes, and recvmsg from a socket).
 * Oracle: nothing crashes, every frame that decodes encodes back to the same bytes, and the
 * socket reader never holds more than the frame it is reading. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../proto/hrp.h"

static void reencode(const hrp_msg *m, const uint8_t *frame, size_t n)
{
	hrp_msg copy = *m;
	hrp_modstat *mods = NULL;
	if (m->type == HRP_STATUS) {
		mods = calloc(m->u.status.nmods + 1, sizeof *mods);
		size_t pos = 0, i = 0;
		while (hrp_status_next(m, &pos, &mods[i]))
			i++;
		if (i != m->u.status.nmods)
			abort();
		copy.u.status.mods = mods;
	}
	hrp_buf b = { 0 };
	long len = hrp_encode(&copy, &b);
	if (len != (long)n || memcmp(b.data, frame, n) != 0)
		abort(); /* decode accepted something encode would not write */
	hrp_buf_free(&b);
	free(mods);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hrp_msg m;
	const char *why;
	/* the input as one frame */
	if (hrp_decode(data, size, &m, &why) == 0)
		reencode(&m, data, size);
	/* the input as a stream, pushed in chunks whose sizes the first byte picks */
	if (size == 0)
		return 0;
	size_t chunk = (size_t)data[0] % 17 + 1, off = 1;
	hrp_reader r = { 0 };
	while (off < size) {
		size_t k = size - off < chunk ? size - off : chunk;
		hrp_reader_push(&r, data + off, k);
		off += k;
		int rc;
		while ((rc = hrp_reader_next(&r, &m)) == 1)
			reencode(&m, r.in.data + r.in.off, r.frame);
		if (rc < 0)
			break; /* a real peer is dropped here */
	}
	hrp_reader_free(&r);
	/* the input through a socket, read as the library reads: a frame at a time */
	int sv[2];
	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (write(sv[0], data, size) != (ssize_t)size)
		abort();
	close(sv[0]);
	int fd = -1, cut = 0;
	for (;;) {
		long n = hrp_reader_recv(&r, sv[1], &fd, &cut);
		if (n <= 0 || fd >= 0)
			break;
		int rc;
		while ((rc = hrp_reader_next(&r, &m)) == 1)
			reencode(&m, r.in.data + r.in.off, r.frame);
		if (rc < 0)
			break;
		if (r.in.len - r.in.off > HRP_MAX_FRAME)
			abort(); /* it read past the frame */
	}
	hrp_reader_free(&r);
	close(sv[1]);
	return 0;
}
