/* server.h: the daemon's Unix socket: handshake, subscriptions, announcements, status. */
#ifndef HRD_SERVER_H
#define HRD_SERVER_H

/*
 * Errors: hrd_server_open returns -1 with a message for the user in err (what, where, what to do);
 * the rest cannot fail, and log what goes wrong with a client.
 */

#include "../proto/hrp.h"
#include "loop.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What the server asks of the rest of the daemon. */
typedef struct hrd_server_ops {
	/* What a new subscriber to module hears at once: the newest good build
	 * (BUILD) and, when the last compile failed, why (FAILED). Returns 0..2. */
	int (*latest)(void *arg, const char *module, hrp_msg out[2]);
	/* Fill m's STATUS fields but pid and clients; valid until the next call. */
	void (*status)(void *arg, hrp_msg *m);
	/* A client refused a version (recorded in the history if record). Returns
	 * 1 with the BUILD to offer it instead in *answer (valid until the next
	 * call), or 0. The offer is none that client refused before:
	 * was_refused(ctx, module, version). */
	int (*refused)(void *arg, const char *module, uint64_t version, const char *reason, pid_t pid, int record,
	               int (*was_refused)(void *ctx, const char *module, uint64_t version), void *ctx, hrp_msg *answer);
	/* A version went live in a client, connected since since_us (wall clock). */
	void (*loaded)(void *arg, const char *module, uint64_t version, uint64_t at_us, pid_t pid, int64_t since_us);
	/* A client asks for a compile of module now. 0, or -1 when there is no such module to build. */
	int (*build)(void *arg, const char *module);
	/* A client asks for a rollback, a pin or an unpin (enum hrp_rollback). 0, or -1 with why in err. */
	int (*rollback)(void *arg, const char *module, uint64_t version, uint32_t action, char *err, size_t errsz);
	/* A client asks for a gc: 0 with the GC to answer in *answer, or -1 with why in err. */
	int (*gc)(void *arg, hrp_msg *answer, char *err, size_t errsz);
	/*
	 * For a subscriber to every unit of the program (--patch, "/"): what latest says of the next unit at or after
	 * *cursor (0 at first), and *cursor moved past it, so that the walk is one pass. 0..2, or -1 past the last.
	 */
	int (*unit_latest)(void *arg, size_t *cursor, hrp_msg out[2]);
	/* A client asks for the bytes of version of module: 1 with its BUILD in *answer (valid until the next
	 * call), or 0 when that version is not published or its object is gone. */
	int (*object)(void *arg, const char *module, uint64_t version, hrp_msg *answer);
} hrd_server_ops;

typedef struct hrd_server hrd_server;

typedef struct hrd_server_config {
	const char *path;   /* the socket; its folder exists */
	int fd;             /* a listening socket made by someone else (systemd), or -1: path is then only its name */
	const char *db_id;  /* the history's id, for HELLO */
	const uid_t *allow; /* uids accepted besides the daemon's and root's */
	size_t nallow;
	const hrd_server_ops *ops;
	void *arg;
} hrd_server_config;

/*
 * Listen on cfg->path, or take cfg->fd. The caller holds the state dir's
 * lock: a socket file left there is removed when no daemon answers on it (a
 * socket that was given is its maker's: never removed). Returns 0, or -1
 * with a message in err.
 */
int hrd_server_open(hrd_server **out, hrd_loop *loop, const hrd_server_config *cfg, char *err, size_t errsz);
/* Drop every client, close and remove the socket. NULL is a no-op. */
void hrd_server_close(hrd_server *s);
/* Send m (BUILD or FAILED) to every client subscribed to its module. */
void hrd_server_announce(hrd_server *s, const char *module, const hrp_msg *m);
/* Connected game processes (clients that said HELLO as the library). */
uint32_t hrd_server_clients(const hrd_server *s);

#endif
