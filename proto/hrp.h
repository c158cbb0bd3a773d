/* hrp.h: the hotreload wire protocol: frames, messages, encode/decode, socket helpers. */
#ifndef HRP_H
#define HRP_H

/*
 * Errors: a negative errno (libuv's way), or a value with errno's meaning stated per function;
 * never errno itself.
 */

#include <stddef.h>
#include <stdint.h>

/*
 * A frame is an 8-byte header followed by a payload, all integers big-endian:
 *   u32 length   (the whole frame, header included; HRP_HEADER_SIZE..HRP_MAX_FRAME)
 *   u16 type     (enum hrp_type)
 *   u16 flags    (must be 0)
 * Payload fields are u8/u32/u64, strings and byte strings; a string is a u32
 * byte count, the bytes (any byte but NUL) and a terminating NUL, so that
 * decoded strings are C strings that point into the frame without a copy; a
 * byte string is a u32 count (at most HRP_CHUNK_MAX) and the bytes, any.
 * proto/PROTOCOL.md has the layout of each message.
 */
#define HRP_VERSION 3
#define HRP_HEADER_SIZE 8u
#define HRP_MAX_FRAME (1u << 20)
#define HRP_CHUNK_MAX (64u << 10) /* the most bytes of an object one OBJECT frame carries */
#define HRP_OBJECT_MAX (256ull << 20) /* the largest object a BUILD may announce as bytes */
#define HRP_NAME_MAX 200u /* the longest module name */
/* The rule, as every message that turns a name away says it (keep it in step with HRP_NAME_MAX). */
#define HRP_NAME_RULE "letters, digits, _ and - only, at most 200 of them"
/* The socket's file name in the state dir, where the daemon makes it and clients look for it. */
#define HRP_SOCKET_NAME "hotreloadd.sock"

enum hrp_type {
	HRP_HELLO = 1,      /* both ways, first: protocol version, database id */
	HRP_ERROR = 2,      /* either way: code and reason; the sender then closes */
	HRP_SUBSCRIBE = 3,  /* client: send me builds of this module */
	HRP_UNSUBSCRIBE = 4,
	HRP_BUILD = 5,      /* daemon: module M has version V at path P */
	HRP_FAILED = 6,     /* daemon: a build of M failed, with the first error */
	HRP_LOADED = 7,     /* client: version V of M is live in this process */
	HRP_REFUSED = 8,    /* client: version V of M was refused, and why */
	HRP_STATUS_REQ = 9, /* client: tell me your status */
	HRP_STATUS = 10,    /* daemon: the status */
	HRP_BUILD_REQ = 11, /* client: compile this module now, whatever its key */
	HRP_ROLLBACK_REQ = 12, /* client: put an earlier version back (and pin it), or unpin */
	HRP_LOG_REQ = 13,   /* client: send me the daemon's recent log lines, and, to follow, each new one */
	HRP_LOG = 14,       /* daemon: one log line; at_us 0 ends the recent ones */
	HRP_GC_REQ = 15,    /* client: drop objects no longer kept, and compact the history */
	HRP_GC = 16,        /* daemon: what that freed */
	HRP_STOP_REQ = 17,  /* client: stop (as SIGTERM does) */
	HRP_STOPPING = 18,  /* daemon: it stops now: its pid, to wait for its end */
	HRP_OBJECT = 19,    /* daemon: bytes of a BUILD's object, to a game no descriptor reaches */
	HRP_OBJECT_REQ = 20, /* client: send me the bytes of (M, V): its BUILD came without a descriptor */
	HRP_TYPE_MAX = HRP_OBJECT_REQ
};

enum hrp_role { HRP_ROLE_DAEMON = 1, HRP_ROLE_LIBRARY = 2, HRP_ROLE_CLI = 3 };

/* What a BUILD announces: a compile, a reuse of an earlier object, a rollback. */
enum hrp_kind { HRP_KIND_OK = 1, HRP_KIND_REUSED = 2, HRP_KIND_ROLLBACK = 3 };
/* Or'd into a patch unit's BUILD kind: another unit's BUILD of the same change follows (a saved header), to be applied
 * together with it. */
#define HRP_KIND_MORE 0x100u

/* ROLLBACK_REQ's action. */
enum hrp_rollback { HRP_ROLLBACK = 1, HRP_ROLLBACK_PIN = 2, HRP_UNPIN = 3 };

/* ERROR codes. */
enum hrp_code {
	HRP_E_PROTOCOL = 1, /* malformed frame or unexpected message */
	HRP_E_VERSION = 2,  /* protocol version mismatch */
	HRP_E_DENIED = 3,   /* peer not allowed */
	HRP_E_INVALID = 4,  /* well-formed but invalid request (a bad module name) */
	HRP_E_INTERNAL = 5
};

/* One module in a STATUS reply. */
typedef struct hrp_modstat {
	const char *module;
	uint64_t version; /* live (newest good) version, 0 for none */
	const char *status; /* "ok", "failed", "building", ... */
	const char *message;
} hrp_modstat;

/* A byte string: any bytes, at most HRP_CHUNK_MAX (decoded: it points into the frame). */
typedef struct hrp_bytes {
	const uint8_t *data;
	uint32_t len;
} hrp_bytes;

/*
 * A message. Decoded strings point into the frame they came from and live as
 * long as it does. For STATUS, encoding reads mods[0..nmods); decoding leaves
 * mods NULL and the validated entries in raw/raw_len, read with hrp_status_next.
 */
typedef struct hrp_msg {
	uint16_t type;
	union {
		/* bytes: in the daemon's HELLO, 1 when objects go to this peer as bytes (no descriptor came with its HELLO) */
		struct { uint32_t version, role, pid; const char *db_id, *name; uint32_t bytes; } hello;
		struct { uint32_t code; const char *message; } error;
		struct { const char *module; } sub; /* SUBSCRIBE, UNSUBSCRIBE, BUILD_REQ */
		/* sha256: of the published object, 64 hex digits; size: its bytes */
		struct { const char *module; uint64_t version; uint32_t kind; const char *path, *sha256; uint64_t size; } build;
		struct { const char *module; uint64_t version, offset; hrp_bytes data; } object;
		struct { const char *module; uint64_t version; } object_req;
		struct { const char *module; const char *message; } failed;
		struct { const char *module; uint64_t version, at_us; } loaded;
		struct { const char *module; uint64_t version; uint32_t action; } rollback; /* ROLLBACK_REQ: enum hrp_rollback */
		struct { uint32_t follow, level; } log_req; /* level: the most detailed level wanted, as LOG's */
		struct { uint64_t at_us; uint32_t level; const char *text; } log; /* level: 0 error, 1 warn, 2 info, 3 debug */
		struct { uint64_t files, bytes, db_before, db_after; } gc; /* objects removed, their bytes; history.db's size */
		struct { const char *module; uint64_t version; const char *reason; } refused;
		struct { uint32_t pid; } stopping;
		struct {
			uint32_t pid, clients;
			const char *root, *state_dir, *backend, *reason;
			uint32_t nmods;
			const hrp_modstat *mods;
			const uint8_t *raw;
			size_t raw_len;
			uint32_t more; /* 1 on every frame of a reply but the last: a long status comes in several */
			/* The watcher's own report: its CPU time since start, the changes it handed over, the kernel's
			 * queue overflows, rescans, verification scans, and the saves those found that it had missed. */
			uint64_t cpu_ms, events, overflows, rescans, verify_scans, missed;
			const char *outside; /* the folders outside the root watched for headers modules read, one a line */
		} status;
	} u;
} hrp_msg;

/* A growable byte buffer: frames are appended at len, consumed from off. */
typedef struct hrp_buf {
	uint8_t *data;
	size_t off, len, cap;
} hrp_buf;

/* Free the bytes; b is then empty, ready to use again. */
void hrp_buf_free(hrp_buf *b);
/* Drop the first n unconsumed bytes (after a write of them). */
void hrp_buf_consume(hrp_buf *b, size_t n);
/* Append n raw bytes (frames encoded elsewhere). Returns 0 or -ENOMEM; on error b is unchanged. */
int hrp_buf_append(hrp_buf *b, const void *data, size_t n);

/*
 * Append m as one frame to b. Returns the frame length, -EINVAL for a NULL
 * string or an unknown type, -EMSGSIZE when the frame would exceed
 * HRP_MAX_FRAME, -ENOMEM. On error b is unchanged.
 */
long hrp_encode(const hrp_msg *m, hrp_buf *b);

/*
 * Decode one whole frame of n bytes. Returns 0, or -EBADMSG (malformed),
 * -EPROTO (unknown type, flags set), -EPROTONOSUPPORT (a HELLO of another
 * protocol version: m->u.hello.version holds it). *why, if not NULL, gets a
 * static description of what was wrong.
 */
int hrp_decode(const uint8_t *frame, size_t n, hrp_msg *m, const char **why);

/*
 * Append a STATUS as frames of at most HRP_MAX_FRAME each: every frame has m's
 * fields and, in order, as many of its modules as fit; u.status.more is 1 on
 * every frame but the last (m's own more is not read). Returns the number of
 * frames, or -EMSGSIZE when one module does not fit in a frame of its own,
 * -EINVAL, -ENOMEM. On error b is unchanged.
 */
long hrp_encode_status(const hrp_msg *m, hrp_buf *b);

/* Iterate a decoded STATUS's modules: *pos starts at 0; returns 1 per entry, 0 at the end. */
int hrp_status_next(const hrp_msg *m, size_t *pos, hrp_modstat *out);

/*
 * Incremental frame reader for a stream socket. The header is checked as soon
 * as it arrives, so nothing past a bad length is ever buffered.
 */
typedef struct hrp_reader {
	hrp_buf in;
	size_t frame; /* length of the frame handed out by the last next(), consumed on the next call */
	const char *why;
} hrp_reader;

/* Free the buffer; r is then empty, ready to read a new stream. */
void hrp_reader_free(hrp_reader *r);
/*
 * One read(2) from fd: bytes read, 0 at end of file, or -errno (-EAGAIN
 * included). Take frames with hrp_reader_next until it returns 0 before the
 * next read: the buffer never grows past one maximum frame and a page, and a
 * header whose length is out of range fails the read with -EMSGSIZE.
 */
long hrp_reader_read(hrp_reader *r, int fd);
/*
 * One recvmsg(2) from fd that never reads past the end of the next frame, so
 * that a descriptor sent with a frame's first byte (SCM_RIGHTS) arrives with
 * the bytes of that frame alone. *fdp gets it (close-on-exec), if one came
 * and *fdp was -1; any other is closed. *cut is set when the kernel cut the
 * descriptors short (MSG_CTRUNC: out of descriptors). Returns as
 * hrp_reader_read; -ENOBUFS when a whole frame waits to be taken first.
 */
long hrp_reader_recv(hrp_reader *r, int fd, int *fdp, int *cut);
/*
 * One sendmsg(2) of n bytes on sock, never blocking nor raising SIGPIPE, with
 * the descriptor fd (unless -1) passed with the first byte (SCM_RIGHTS).
 * Returns the bytes sent, or -1 with errno.
 */
long hrp_send_fd(int sock, const void *data, size_t n, int fd);
/*
 * One sendmsg(2), as hrp_send_fd, of a HELLO: with a descriptor of /dev/null
 * on its first byte, so that the daemon learns whether descriptors reach us
 * (through a socket forwarded by ssh they do not). Returns as hrp_send_fd.
 */
long hrp_send_hello(int sock, const void *data, size_t n);
/* Append bytes that came some other way. Returns 0 or -ENOMEM. */
int hrp_reader_push(hrp_reader *r, const void *data, size_t n);
/*
 * Take the next whole frame: 1 with *m filled, 0
 * when more bytes are needed, or a negative hrp_decode error (also -EMSGSIZE for a
 * header whose length is out of range); r->why says what was wrong. After an
 * error the stream is out of step: drop the peer. The strings in *m point
 * into r's buffer: they stay valid until the next hrp_reader_* call on r.
 */
int hrp_reader_next(hrp_reader *r, hrp_msg *m);

/* 1 when name is a module name: [A-Za-z0-9_-]+, at most HRP_NAME_MAX bytes; else 0. Daemon and library agree on it here. */
int hrp_valid_name(const char *name);
/*
 * Program patching (PATCHING.md): a translation unit of the program goes by its source's absolute path, which no
 * module name can be: "/" and no empty, "." or ".." component, no control character, at most HRP_UNIT_MAX bytes.
 * SUBSCRIBE to HRP_ALL_UNITS is to every unit. 1 when name is a unit's name, else 0.
 */
#define HRP_UNIT_MAX 4095u
#define HRP_ALL_UNITS "/"
int hrp_valid_unit(const char *name);

/* The module a message names (SUBSCRIBE, BUILD, LOADED, ROLLBACK_REQ...: its first field), or NULL for a type that names none. */
const char *hrp_module_of(const hrp_msg *m);

/* Name of a message type, for logs ("BUILD"), or "?" */
const char *hrp_type_name(unsigned type);

/*
 * Unix stream socket helpers. Paths longer than sun_path work, through the
 * parent directory's descriptor. Both return a CLOEXEC fd or -errno.
 * hrp_connect gives a blocking fd, or -ETIMEDOUT when the listener's queue
 * stayed full for timeout_ms. hrp_listen gives a non-blocking listener on a
 * socket created 0600, whatever the umask (it does not remove a stale
 * socket: the caller does, under its lock).
 */
int hrp_connect(const char *path, int timeout_ms);
int hrp_listen(const char *path, int backlog);

/*
 * Helpers for request/response peers (the CLI, the tests): write a whole
 * frame to a blocking fd (never raising SIGPIPE); wait up to timeout_ms for
 * the next message. Both return 0 or -errno (-ETIMEDOUT, -ECONNRESET at end
 * of file, or a decode error). An event loop queues frames in an hrp_buf instead.
 */
int hrp_send(int fd, const hrp_msg *m);
int hrp_recv(int fd, hrp_reader *r, hrp_msg *m, int timeout_ms);

#endif
