/* test_proto.c: the wire protocol: round trips, bad frames, the stream reader, the socket helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../proto/hrp.h"
#include "util.h"

/* Strings that must survive the trip: spaces, newlines, UTF-8, quotes, empty. */
static const char *const odd[] = {
	"", "enemy", "/tmp/a path/with spaces/enemy.so", "line one\nline two\r\n\ttab",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xae", "\"quoted\" \\back\\", "\x01\x02\x7f\xff\xfe",
};
#define NODD (sizeof odd / sizeof odd[0])

static hrp_buf enc(const hrp_msg *m)
{
	hrp_buf b = { 0 };
	long n = hrp_encode(m, &b);
	cr_assert_gt(n, 0, "encode %s: %ld", hrp_type_name(m->type), n);
	cr_assert_eq((size_t)n, b.len);
	return b;
}

static void dec(const hrp_buf *b, hrp_msg *m)
{
	const char *why = NULL;
	int rc = hrp_decode(b->data, b->len, m, &why);
	cr_assert_eq(rc, 0, "decode: %d (%s)", rc, why ? why : "");
}

Test(proto, round_trip_every_type_with_odd_strings)
{
	for (size_t i = 0; i < NODD; i++) {
		const char *s = odd[i], *t = odd[(i + 3) % NODD];
		hrp_msg in[] = {
			{ .type = HRP_HELLO, .u.hello = { HRP_VERSION, HRP_ROLE_DAEMON, 4242, s, t, 1 } },
			{ .type = HRP_ERROR, .u.error = { HRP_E_INVALID, s } },
			{ .type = HRP_SUBSCRIBE, .u.sub = { s } },
			{ .type = HRP_UNSUBSCRIBE, .u.sub = { t } },
			{ .type = HRP_BUILD, .u.build = { s, UINT64_MAX - i, HRP_KIND_REUSED, t, s, UINT64_MAX - 7 } },
			{ .type = HRP_OBJECT, .u.object = { s, 5, UINT64_MAX - 1, { (const uint8_t *)"\0\377\0x", 4 } } },
			{ .type = HRP_OBJECT_REQ, .u.object_req = { t, 11 } },
			{ .type = HRP_FAILED, .u.failed = { s, t } },
			{ .type = HRP_LOADED, .u.loaded = { s, 7, 1764106074123456ull } },
			{ .type = HRP_REFUSED, .u.refused = { s, 3, t } },
			{ .type = HRP_STATUS_REQ },
			{ .type = HRP_BUILD_REQ, .u.sub = { s } },
			{ .type = HRP_ROLLBACK_REQ, .u.rollback = { t, 9, HRP_UNPIN } },
			{ .type = HRP_LOG_REQ, .u.log_req = { 1, 2 } },
			{ .type = HRP_LOG, .u.log = { 1764106074123456ull, 3, s } },
			{ .type = HRP_GC_REQ },
			{ .type = HRP_GC, .u.gc = { 1, UINT64_MAX, 3, 4 } },
		};
		for (size_t k = 0; k < sizeof in / sizeof in[0]; k++) {
			hrp_buf b = enc(&in[k]);
			hrp_msg out;
			dec(&b, &out);
			cr_assert_eq(out.type, in[k].type);
			switch (out.type) {
			case HRP_HELLO:
				cr_assert_eq(out.u.hello.version, HRP_VERSION);
				cr_assert_eq(out.u.hello.role, HRP_ROLE_DAEMON);
				cr_assert_eq(out.u.hello.pid, 4242);
				cr_assert_str_eq(out.u.hello.db_id, s);
				cr_assert_str_eq(out.u.hello.name, t);
				cr_assert_eq(out.u.hello.bytes, 1);
				break;
			case HRP_ERROR:
				cr_assert_eq(out.u.error.code, HRP_E_INVALID);
				cr_assert_str_eq(out.u.error.message, s);
				break;
			case HRP_SUBSCRIBE: cr_assert_str_eq(out.u.sub.module, s); break;
			case HRP_UNSUBSCRIBE: cr_assert_str_eq(out.u.sub.module, t); break;
			case HRP_BUILD:
				cr_assert_str_eq(out.u.build.module, s);
				cr_assert_eq(out.u.build.version, UINT64_MAX - i);
				cr_assert_eq(out.u.build.kind, HRP_KIND_REUSED);
				cr_assert_str_eq(out.u.build.path, t);
				cr_assert_str_eq(out.u.build.sha256, s);
				cr_assert_eq(out.u.build.size, UINT64_MAX - 7);
				break;
			case HRP_OBJECT:
				cr_assert_str_eq(out.u.object.module, s);
				cr_assert_eq(out.u.object.version, 5);
				cr_assert_eq(out.u.object.offset, UINT64_MAX - 1);
				cr_assert_eq(out.u.object.data.len, 4);
				cr_assert_arr_eq(out.u.object.data.data, "\0\377\0x", 4, "byte strings hold NULs and any byte");
				break;
			case HRP_OBJECT_REQ:
				cr_assert_str_eq(out.u.object_req.module, t);
				cr_assert_eq(out.u.object_req.version, 11);
				break;
			case HRP_FAILED:
				cr_assert_str_eq(out.u.failed.module, s);
				cr_assert_str_eq(out.u.failed.message, t);
				break;
			case HRP_LOADED:
				cr_assert_str_eq(out.u.loaded.module, s);
				cr_assert_eq(out.u.loaded.version, 7);
				cr_assert_eq(out.u.loaded.at_us, 1764106074123456ull);
				break;
			case HRP_REFUSED:
				cr_assert_str_eq(out.u.refused.module, s);
				cr_assert_eq(out.u.refused.version, 3);
				cr_assert_str_eq(out.u.refused.reason, t);
				break;
			case HRP_STATUS_REQ: break;
			case HRP_BUILD_REQ: cr_assert_str_eq(out.u.sub.module, s); break;
			case HRP_ROLLBACK_REQ:
				cr_assert_str_eq(out.u.rollback.module, t);
				cr_assert_eq(out.u.rollback.version, 9);
				cr_assert_eq(out.u.rollback.action, HRP_UNPIN);
				break;
			case HRP_LOG_REQ:
				cr_assert_eq(out.u.log_req.follow, 1);
				cr_assert_eq(out.u.log_req.level, 2);
				break;
			case HRP_LOG:
				cr_assert_eq(out.u.log.at_us, 1764106074123456ull);
				cr_assert_eq(out.u.log.level, 3);
				cr_assert_str_eq(out.u.log.text, s);
				break;
			case HRP_GC_REQ: break;
			case HRP_GC:
				cr_assert_eq(out.u.gc.files, 1);
				cr_assert_eq(out.u.gc.bytes, UINT64_MAX);
				cr_assert_eq(out.u.gc.db_before, 3);
				cr_assert_eq(out.u.gc.db_after, 4);
				break;
			default: cr_assert_fail("unexpected type %d", out.type);
			}
			hrp_buf_free(&b);
		}
	}
}

/* OBJECT's byte string: a whole chunk goes, one byte more is refused both ways, and a count past the frame is short. */
Test(proto, object_bytes_are_bounded_and_exact)
{
	static uint8_t chunk[HRP_CHUNK_MAX + 1];
	for (size_t i = 0; i < sizeof chunk; i++)
		chunk[i] = (uint8_t)(i * 7);
	hrp_msg m = { .type = HRP_OBJECT, .u.object = { "enemy", 3, 0, { chunk, HRP_CHUNK_MAX } } };
	hrp_buf b = enc(&m);
	hrp_msg out;
	dec(&b, &out);
	cr_assert_eq(out.u.object.data.len, HRP_CHUNK_MAX);
	cr_assert_arr_eq(out.u.object.data.data, chunk, HRP_CHUNK_MAX);
	hrp_buf_free(&b);

	m.u.object.data.len = HRP_CHUNK_MAX + 1;
	hrp_buf none = { 0 };
	cr_assert_eq(hrp_encode(&m, &none), -EMSGSIZE, "a chunk past HRP_CHUNK_MAX is not encoded");
	cr_assert_eq(none.len, 0);

	/* A frame whose byte count says one more than the bound: refused by name, not read as a short payload. */
	m.u.object.data.len = 4;
	b = enc(&m);
	size_t at = b.len - 4 - 4; /* the count, before the 4 bytes */
	b.data[at] = (uint8_t)((HRP_CHUNK_MAX + 1) >> 24);
	b.data[at + 1] = (uint8_t)((HRP_CHUNK_MAX + 1) >> 16);
	b.data[at + 2] = (uint8_t)((HRP_CHUNK_MAX + 1) >> 8);
	b.data[at + 3] = (uint8_t)(HRP_CHUNK_MAX + 1);
	const char *why = NULL;
	cr_assert_eq(hrp_decode(b.data, b.len, &out, &why), -EBADMSG);
	cr_assert_str_eq(why, "byte string longer than HRP_CHUNK_MAX");
	/* A count of 5 where 4 bytes are left: short. */
	b.data[at] = b.data[at + 1] = b.data[at + 2] = 0;
	b.data[at + 3] = 5;
	cr_assert_eq(hrp_decode(b.data, b.len, &out, &why), -EBADMSG);
	cr_assert_str_eq(why, "payload too short for its type");
	/* A count of 3: a byte left over. */
	b.data[at + 3] = 3;
	cr_assert_eq(hrp_decode(b.data, b.len, &out, &why), -EBADMSG);
	cr_assert_str_eq(why, "trailing bytes after the payload");
	hrp_buf_free(&b);

	/* An empty byte string is one. */
	m.u.object.data = (hrp_bytes){ NULL, 0 };
	b = enc(&m);
	dec(&b, &out);
	cr_assert_eq(out.u.object.data.len, 0);
	hrp_buf_free(&b);
}

/* A BUILD of version 2's layout (no sha256, no size) is short now: the version says so first, in HELLO. */
Test(proto, build_carries_the_objects_sha256_and_size)
{
	cr_assert_eq(HRP_VERSION, 3);
	hrp_msg m = { .type = HRP_BUILD, .u.build = { "enemy", 4, HRP_KIND_OK, "/x.so", NULL, 10 } };
	hrp_buf b = { 0 };
	cr_assert_eq(hrp_encode(&m, &b), -EINVAL, "a BUILD without its SHA-256 is not encoded");
	m.u.build.sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	b = enc(&m);
	hrp_msg out;
	dec(&b, &out);
	cr_assert_str_eq(out.u.build.sha256, m.u.build.sha256);
	cr_assert_eq(out.u.build.size, 10);
	/* Cut off the size: too short for a BUILD. */
	const char *why = NULL;
	b.data[3] = (uint8_t)(b.len - 8);
	cr_assert_eq(hrp_decode(b.data, b.len - 8, &out, &why), -EBADMSG);
	cr_assert_str_eq(why, "payload too short for its type");
	hrp_buf_free(&b);
	cr_assert_str_eq(hrp_type_name(HRP_OBJECT), "OBJECT");
	cr_assert_str_eq(hrp_type_name(HRP_OBJECT_REQ), "OBJECT_REQ");
	cr_assert_str_eq(hrp_module_of(&(hrp_msg){ .type = HRP_OBJECT_REQ, .u.object_req = { "m", 1 } }), "m");
}

Test(proto, status_round_trip_with_modules)
{
	hrp_modstat mods[NODD];
	for (size_t i = 0; i < NODD; i++)
		mods[i] = (hrp_modstat){ odd[i], i * 1000, i % 2 ? "failed" : "ok", odd[NODD - 1 - i] };
	hrp_msg in = { .type = HRP_STATUS,
		       .u.status = { 99, 3, "/root dir", "/root dir/.hotreload", "inotify", "local ext4", NODD, mods } };
	hrp_buf b = enc(&in);
	hrp_msg out;
	dec(&b, &out);
	cr_assert_eq(out.u.status.pid, 99);
	cr_assert_eq(out.u.status.clients, 3);
	cr_assert_str_eq(out.u.status.root, "/root dir");
	cr_assert_str_eq(out.u.status.state_dir, "/root dir/.hotreload");
	cr_assert_str_eq(out.u.status.backend, "inotify");
	cr_assert_str_eq(out.u.status.reason, "local ext4");
	cr_assert_eq(out.u.status.nmods, NODD);
	size_t pos = 0, i = 0;
	hrp_modstat m;
	while (hrp_status_next(&out, &pos, &m)) {
		cr_assert_lt(i, NODD);
		cr_assert_str_eq(m.module, mods[i].module);
		cr_assert_eq(m.version, mods[i].version);
		cr_assert_str_eq(m.status, mods[i].status);
		cr_assert_str_eq(m.message, mods[i].message);
		i++;
	}
	cr_assert_eq(i, NODD);
	hrp_buf_free(&b);
}

Test(proto, a_long_status_is_sent_as_frames_that_each_fit_and_hold_every_module_in_order)
{
	/* 3,000 modules of about 1.2 KiB each: over three maximum frames. */
	enum { N = 3000 };
	static hrp_modstat mods[N];
	static char names[N][16];
	char *message = calloc(1, 1200);
	memset(message, 'm', 1199);
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "mod%05zu", i);
		mods[i] = (hrp_modstat){ names[i], i, "failed", message };
	}
	hrp_msg in = { .type = HRP_STATUS, .u.status = { 7, 1, "/r", "/r/.hotreload", "inotify", "ext4", N, mods } };
	hrp_buf b = { 0 };
	cr_assert_eq(hrp_encode(&in, &b), -EMSGSIZE, "one frame cannot hold it");
	long frames = hrp_encode_status(&in, &b);
	cr_assert_geq(frames, 4);
	hrp_reader r = { 0 };
	cr_assert_eq(hrp_reader_push(&r, b.data, b.len), 0);
	size_t seen = 0;
	hrp_msg m;
	for (long f = 0; f < frames; f++) {
		cr_assert_eq(hrp_reader_next(&r, &m), 1, "frame %ld: %s", f, r.why ? r.why : "incomplete");
		cr_assert_leq(r.frame, HRP_MAX_FRAME);
		cr_assert_eq(m.type, HRP_STATUS);
		cr_assert_eq(m.u.status.pid, 7);
		cr_assert_str_eq(m.u.status.reason, "ext4");
		cr_assert_eq(m.u.status.more, f < frames - 1, "frame %ld of %ld: more=%u", f, frames, m.u.status.more);
		cr_assert_gt(m.u.status.nmods, 0);
		hrp_modstat ms;
		for (size_t pos = 0; hrp_status_next(&m, &pos, &ms); seen++) {
			cr_assert_str_eq(ms.module, names[seen]);
			cr_assert_eq(ms.version, seen);
			cr_assert_str_eq(ms.message, message);
		}
	}
	cr_assert_eq(seen, N);
	cr_assert_eq(hrp_reader_next(&r, &m), 0, "nothing after the last frame");
	hrp_reader_free(&r);
	hrp_buf_free(&b);
	/* A short one is one frame, with more 0; none at all too. */
	in.u.status.nmods = 2;
	cr_assert_eq(hrp_encode_status(&in, &b), 1);
	dec(&b, &m);
	cr_assert_eq(m.u.status.nmods, 2);
	cr_assert_eq(m.u.status.more, 0);
	hrp_buf_free(&b);
	in.u.status.nmods = 0;
	cr_assert_eq(hrp_encode_status(&in, &b), 1);
	dec(&b, &m);
	cr_assert_eq(m.u.status.nmods, 0);
	hrp_buf_free(&b);
	/* A module that fits in no frame is refused, and the buffer is left as it was. */
	char *huge = calloc(1, HRP_MAX_FRAME);
	memset(huge, 'h', HRP_MAX_FRAME - 1);
	mods[1].message = huge;
	in.u.status.nmods = 3;
	cr_assert_eq(hrp_encode_status(&in, &b), -EMSGSIZE);
	cr_assert_eq(b.len - b.off, 0);
	hrp_buf_free(&b);
	free(huge);
	free(message);
}

Test(proto, frame_layout_is_big_endian_with_length_including_header)
{
	hrp_buf b = enc(&(hrp_msg){ .type = HRP_SUBSCRIBE, .u.sub = { "ab" } });
	/* 8 header + 4 count + "ab" + NUL */
	const uint8_t want[] = { 0, 0, 0, 15, 0, HRP_SUBSCRIBE, 0, 0, 0, 0, 0, 2, 'a', 'b', 0 };
	cr_assert_eq(b.len, sizeof want);
	cr_assert_arr_eq(b.data, want, sizeof want);
	hrp_buf_free(&b);
}

Test(proto, encode_refuses_bad_messages_and_leaves_the_buffer_as_it_was)
{
	hrp_buf b = { 0 };
	cr_assert_gt(hrp_encode(&(hrp_msg){ .type = HRP_STATUS_REQ }, &b), 0);
	size_t len = b.len;
	cr_assert_eq(hrp_encode(&(hrp_msg){ .type = HRP_SUBSCRIBE, .u.sub = { NULL } }, &b), -EINVAL);
	cr_assert_eq(hrp_encode(&(hrp_msg){ .type = 0 }, &b), -EINVAL);
	cr_assert_eq(hrp_encode(&(hrp_msg){ .type = HRP_TYPE_MAX + 1 }, &b), -EINVAL);
	char *big = malloc(HRP_MAX_FRAME);
	memset(big, 'x', HRP_MAX_FRAME - 1);
	big[HRP_MAX_FRAME - 1] = '\0';
	cr_assert_eq(hrp_encode(&(hrp_msg){ .type = HRP_FAILED, .u.failed = { "m", big } }, &b), -EMSGSIZE);
	cr_assert_eq(b.len, len, "a refused message must not leave bytes behind");
	/* the largest frame that fits is accepted */
	big[HRP_MAX_FRAME - HRP_HEADER_SIZE - (4 + 1) - (4 + 1)] = '\0'; /* two strings: "" and big */
	cr_assert_eq(hrp_encode(&(hrp_msg){ .type = HRP_FAILED, .u.failed = { "", big } }, &b), HRP_MAX_FRAME);
	free(big);
	hrp_buf_free(&b);
}

static int decode_err(const uint8_t *p, size_t n, const char **why)
{
	hrp_msg m;
	return hrp_decode(p, n, &m, why);
}

Test(proto, every_truncation_of_a_frame_is_rejected)
{
	hrp_buf b = enc(&(hrp_msg){ .type = HRP_BUILD, .u.build = { "enemy", 5, HRP_KIND_OK, "/s/enemy.5.so", "", 0 } });
	for (size_t cut = HRP_HEADER_SIZE; cut < b.len; cut++) {
		uint8_t *p = malloc(cut);
		memcpy(p, b.data, cut);
		p[0] = p[1] = 0; /* a header that agrees with the shorter length */
		p[2] = (uint8_t)(cut >> 8);
		p[3] = (uint8_t)cut;
		const char *why = NULL;
		cr_assert_eq(decode_err(p, cut, &why), -EBADMSG, "cut at %zu", cut);
		cr_assert_not_null(why);
		free(p);
	}
	/* and a header that claims more than there is */
	const char *why;
	cr_assert_eq(decode_err(b.data, b.len - 1, &why), -EBADMSG);
	hrp_buf_free(&b);
}

Test(proto, bad_headers_strings_and_trailing_bytes)
{
	const char *why;
	/* unknown type, flags set */
	uint8_t unk[] = { 0, 0, 0, 8, 0, 99, 0, 0 };
	cr_assert_eq(decode_err(unk, sizeof unk, &why), -EPROTO);
	uint8_t flags[] = { 0, 0, 0, 8, 0, HRP_STATUS_REQ, 0, 1 };
	cr_assert_eq(decode_err(flags, sizeof flags, &why), -EPROTO);
	uint8_t ok[] = { 0, 0, 0, 8, 0, HRP_STATUS_REQ, 0, 0 };
	cr_assert_eq(decode_err(ok, sizeof ok, &why), 0);
	/* a string without its NUL, one with a NUL inside, and a byte too many */
	uint8_t nonul[] = { 0, 0, 0, 15, 0, HRP_SUBSCRIBE, 0, 0, 0, 0, 0, 2, 'a', 'b', 'c' };
	cr_assert_eq(decode_err(nonul, sizeof nonul, &why), -EBADMSG);
	cr_assert_str_eq(why, "string is not NUL-terminated");
	uint8_t inner[] = { 0, 0, 0, 15, 0, HRP_SUBSCRIBE, 0, 0, 0, 0, 0, 2, 'a', 0, 0 };
	cr_assert_eq(decode_err(inner, sizeof inner, &why), -EBADMSG);
	cr_assert_str_eq(why, "string holds a NUL byte");
	uint8_t trail[] = { 0, 0, 0, 16, 0, HRP_SUBSCRIBE, 0, 0, 0, 0, 0, 2, 'a', 'b', 0, 'x' };
	cr_assert_eq(decode_err(trail, sizeof trail, &why), -EBADMSG);
	cr_assert_str_eq(why, "trailing bytes after the payload");
	/* a string count larger than the frame */
	uint8_t huge[] = { 0, 0, 0, 15, 0, HRP_SUBSCRIBE, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 0 };
	cr_assert_eq(decode_err(huge, sizeof huge, &why), -EBADMSG);
	/* a STATUS that promises more modules than it holds */
	hrp_buf b = enc(&(hrp_msg){ .type = HRP_STATUS, .u.status = { 1, 0, "", "", "", "", 0, NULL } });
	b.data[HRP_HEADER_SIZE + 4 + 4 + 4 * 5 + 3] = 1; /* n's low byte, after two u32 and four empty strings */
	cr_assert_eq(decode_err(b.data, b.len, &why), -EBADMSG);
	hrp_buf_free(&b);
}

Test(proto, decode_refuses_a_frame_over_the_maximum)
{
	size_t n = HRP_MAX_FRAME + 10;
	uint8_t *p = calloc(1, n);
	p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
	p[5] = HRP_FAILED;
	const char *why;
	cr_assert_eq(decode_err(p, n, &why), -EMSGSIZE);
	free(p);
}

Test(proto, hello_of_another_version_is_named_as_such)
{
	hrp_buf b = enc(&(hrp_msg){ .type = HRP_HELLO, .u.hello = { HRP_VERSION, HRP_ROLE_CLI, 1, "", "x" } });
	b.data[HRP_HEADER_SIZE + 3] = 77;
	hrp_msg m;
	const char *why;
	cr_assert_eq(hrp_decode(b.data, b.len, &m, &why), -EPROTONOSUPPORT);
	cr_assert_eq(m.u.hello.version, 77);
	cr_assert_str_eq(why, "protocol version mismatch");
	hrp_buf_free(&b);
}

Test(proto, garbage_is_refused_or_awaited_never_misread)
{
	/* fixed-seed noise behind valid headers of every type: each frame is decoded or
	 * refused with a reason, and any that decodes encodes back to the same bytes */
	uint32_t seed = 12345;
	int decoded = 0, refused = 0;
	for (int round = 0; round < 20000; round++) {
		uint8_t f[64];
		size_t n = HRP_HEADER_SIZE + (size_t)(round % (sizeof f - HRP_HEADER_SIZE + 1));
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			f[i] = (uint8_t)(seed >> 16);
			if (round % 3 == 0 && i >= HRP_HEADER_SIZE && i % 5 != 0)
				f[i] = (uint8_t)(f[i] & 3); /* small counts make plausible strings */
		}
		f[0] = f[1] = 0, f[2] = (uint8_t)(n >> 8), f[3] = (uint8_t)n;
		f[4] = 0, f[5] = (uint8_t)(round % (HRP_TYPE_MAX + 2)), f[6] = f[7] = 0;
		hrp_msg m;
		const char *why = NULL;
		int rc = hrp_decode(f, n, &m, &why);
		if (rc == 0) {
			decoded++;
			hrp_buf b = { 0 };
			if (m.type == HRP_STATUS) {
				cr_assert_eq(m.u.status.nmods, 0); /* too short to hold any module */
			}
			cr_assert_eq(hrp_encode(&m, &b), (long)n);
			cr_assert_arr_eq(b.data, f, n);
			hrp_buf_free(&b);
		} else {
			refused++;
			cr_assert_not_null(why, "a refusal says why");
		}
	}
	cr_assert_gt(decoded, 0);
	cr_assert_gt(refused, 0);
}

Test(proto, reader_takes_frames_byte_by_byte)
{
	hrp_buf b = { 0 };
	for (int i = 1; i <= 50; i++)
		hrp_encode(&(hrp_msg){ .type = HRP_LOADED, .u.loaded = { odd[i % NODD], (uint64_t)i, 0 } }, &b);
	hrp_reader r = { 0 };
	hrp_msg m;
	int got = 0;
	for (size_t i = 0; i < b.len; i++) {
		cr_assert_eq(hrp_reader_push(&r, b.data + i, 1), 0);
		int rc;
		while ((rc = hrp_reader_next(&r, &m)) == 1) {
			got++;
			cr_assert_eq(m.u.loaded.version, (uint64_t)got);
			cr_assert_str_eq(m.u.loaded.module, odd[got % NODD]);
		}
		cr_assert_eq(rc, 0);
	}
	cr_assert_eq(got, 50);
	cr_assert_leq(r.in.cap, 4096, "the reader keeps only what one frame needs");
	hrp_reader_free(&r);
	hrp_buf_free(&b);
}

Test(proto, reader_rejects_an_oversized_length_before_buffering_the_payload)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	uint32_t n = HRP_MAX_FRAME + 1;
	uint8_t hdr[8] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, 0, HRP_FAILED, 0, 0 };
	cr_assert_eq(write(sv[0], hdr, sizeof hdr), 8);
	hrp_reader r = { 0 };
	hrp_msg m;
	cr_assert_eq(hrp_reader_read(&r, sv[1]), 8);
	cr_assert_eq(hrp_reader_next(&r, &m), -EMSGSIZE);
	cr_assert_str_eq(r.why, "frame length out of range");
	cr_assert_eq(hrp_reader_read(&r, sv[1]), -EMSGSIZE, "a reader in an event loop stops reading too");
	cr_assert_leq(r.in.cap, 8192);
	/* a length below the header's own size */
	hrp_reader r2 = { 0 };
	uint8_t small[8] = { 0, 0, 0, 4, 0, HRP_STATUS_REQ, 0, 0 };
	hrp_reader_push(&r2, small, sizeof small);
	cr_assert_eq(hrp_reader_next(&r2, &m), -EMSGSIZE);
	hrp_reader_free(&r);
	hrp_reader_free(&r2);
	close(sv[0]);
	close(sv[1]);
}

Test(proto, a_reader_whose_frames_are_not_taken_stops_growing)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	hrp_reader r = { 0 };
	uint8_t req[8] = { 0, 0, 0, 8, 0, HRP_STATUS_REQ, 0, 0 };
	for (size_t n = 0; n < HRP_MAX_FRAME + 4096; n += sizeof req)
		hrp_reader_push(&r, req, sizeof req);
	cr_assert_eq(write(sv[0], req, sizeof req), 8);
	cr_assert_eq(hrp_reader_read(&r, sv[1]), -ENOBUFS);
	hrp_msg m;
	cr_assert_eq(hrp_reader_next(&r, &m), 1, "the frames are still there to take");
	hrp_reader_free(&r);
	close(sv[0]);
	close(sv[1]);
}

Test(proto, reader_reads_a_maximum_size_frame_from_a_socket)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	size_t len = HRP_MAX_FRAME - HRP_HEADER_SIZE - (4 + 1) - (4 + 1);
	char *big = malloc(len + 1);
	memset(big, 'y', len);
	big[len] = '\0';
	hrp_buf b = { 0 };
	cr_assert_eq(hrp_encode(&(hrp_msg){ .type = HRP_FAILED, .u.failed = { "", big } }, &b), HRP_MAX_FRAME);
	hrp_reader r = { 0 };
	hrp_msg m;
	int rc = 0;
	while (rc == 0) {
		if (b.off < b.len) {
			ssize_t w = write(sv[0], b.data + b.off, b.len - b.off);
			if (w > 0)
				b.off += (size_t)w;
		}
		long n = hrp_reader_read(&r, sv[1]);
		cr_assert(n > 0 || n == -EAGAIN, "read: %ld", n);
		rc = hrp_reader_next(&r, &m);
	}
	cr_assert_eq(rc, 1);
	cr_assert_eq(strlen(m.u.failed.message), len);
	hrp_reader_free(&r);
	hrp_buf_free(&b);
	free(big);
	close(sv[0]);
	close(sv[1]);
}

Test(proto, send_and_recv_over_a_socketpair, .timeout = 10)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	hrp_reader r = { 0 };
	hrp_msg m;
	cr_assert_eq(hrp_send(sv[0], &(hrp_msg){ .type = HRP_FAILED, .u.failed = { "enemy", "enemy.c:3: error" } }), 0);
	cr_assert_eq(hrp_recv(sv[1], &r, &m, 2000), 0);
	cr_assert_eq(m.type, HRP_FAILED);
	cr_assert_str_eq(m.u.failed.message, "enemy.c:3: error");
	cr_assert_eq(hrp_recv(sv[1], &r, &m, 50), -ETIMEDOUT);
	close(sv[0]);
	cr_assert_eq(hrp_recv(sv[1], &r, &m, 2000), -ECONNRESET);
	/* sending to a closed peer is an error, not a SIGPIPE */
	cr_assert_eq(hrp_send(sv[1], &(hrp_msg){ .type = HRP_STATUS_REQ }), -EPIPE);
	hrp_reader_free(&r);
	close(sv[1]);
}

static void *accept_one(void *arg)
{
	int lfd = *(int *)arg;
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	poll(&p, 1, 5000);
	int fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		hrp_send(fd, &(hrp_msg){ .type = HRP_SUBSCRIBE, .u.sub = { "hi" } });
		close(fd);
	}
	return NULL;
}

static void listen_connect(const char *path)
{
	int lfd = hrp_listen(path, 4);
	cr_assert_geq(lfd, 0, "listen on %s: %s", path, strerror(-lfd));
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "the socket is private to its owner");
	pthread_t t;
	pthread_create(&t, NULL, accept_one, &lfd);
	int fd = hrp_connect(path, 5000);
	cr_assert_geq(fd, 0, "connect %s: %s", path, strerror(-fd));
	hrp_reader r = { 0 };
	hrp_msg m;
	cr_assert_eq(hrp_recv(fd, &r, &m, 5000), 0);
	cr_assert_str_eq(m.u.sub.module, "hi");
	pthread_join(t, NULL);
	hrp_reader_free(&r);
	close(fd);
	close(lfd);
}

Test(proto, listen_and_connect_short_and_long_paths, .timeout = 20)
{
	char *d = t_tmpdir();
	char *p = t_fmt("%s/s.sock", d);
	listen_connect(p);
	/* deeper than sun_path's 108 bytes */
	char *deep = t_fmt("%s/%0100d/%0100d", d, 1, 2);
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "mkdir", "-p", deep, NULL });
	cr_assert_eq(r.status, 0);
	t_run_free(&r);
	char *lp = t_fmt("%s/hotreloadd.sock", deep);
	cr_assert_gt(strlen(lp), 108);
	listen_connect(lp);
	char *none = t_fmt("%s/none.sock", d);
	cr_assert_eq(hrp_connect(none, 1000), -ENOENT);
	t_rmtree(d);
	free(none);
	free(lp);
	free(deep);
	free(p);
	free(d);
}

Test(proto, connect_gives_up_when_the_listener_is_stuck, .timeout = 20)
{
	char *d = t_tmpdir(), *p = t_fmt("%s/stuck.sock", d);
	int lfd = hrp_listen(p, 0); /* never accepts; a queue of one */
	cr_assert_geq(lfd, 0);
	int held[4], n = 0, fd;
	/* fill the queue: once it is full a connect waits, and then times out */
	while ((fd = hrp_connect(p, 200)) >= 0 && n < 4)
		held[n++] = fd;
	cr_assert_eq(fd, -ETIMEDOUT, "connect: %s", strerror(-fd));
	cr_assert_lt(n, 4);
	while (n)
		close(held[--n]);
	close(lfd);
	t_rmtree(d);
	free(p);
	free(d);
}

Test(proto, type_names)
{
	cr_assert_str_eq(hrp_type_name(HRP_BUILD), "BUILD");
	cr_assert_str_eq(hrp_type_name(HRP_STATUS), "STATUS");
	cr_assert_str_eq(hrp_type_name(0), "?");
	cr_assert_str_eq(hrp_type_name(1000), "?");
}
