/* engine.h: the daemon's pipeline: settle changes, build modules, record, announce. */
#ifndef HRD_ENGINE_H
#define HRD_ENGINE_H

/*
 * Errors: hrd_engine_open returns -1 with a message for the user in err; the rest log what fails (a
 * build, a record) and carry on.
 */

#include "loop.h"
#include "server.h"
#include "store.h"
#include "watch.h"

typedef struct hrd_engine hrd_engine;

typedef struct hrd_engine_config {
	const char *root;      /* absolute, resolved */
	const char *state_dir; /* absolute, resolved; holds tmp/ and objects/ */
	int state_fd;          /* the state dir, checked (hrd_statedir_open): its files are opened through it */
	int jobs;              /* compilers at once, >= 1 */
	int jobs_given;        /* jobs is --jobs: it wins over hotreload.conf's */
	int shared;            /* other users (--allow-uid) load the objects: objects/ is 0711, not 0700 */
	hrd_loop *loop;
	hrd_store *store;
	hrd_watch *watch;
	int verify_s; /* look at every module this often, whatever the watcher says; 0: never */
	const char *patch; /* --patch: the program's compile_commands.json, absolute; NULL: hotreload.conf's patch, if any */
} hrd_engine_config;

/* Returns 0, or -1 with a message in err. */
int hrd_engine_open(hrd_engine **out, const hrd_engine_config *cfg, char *err, size_t errsz);
/* Builds in flight are killed and reaped; nothing is recorded for them. NULL is a no-op. */
void hrd_engine_close(hrd_engine *e);
/* Where announcements go (set once the socket is up). */
void hrd_engine_set_server(hrd_engine *e, hrd_server *s);
/* The server's questions, answered by the engine: pass with e as arg. */
extern const hrd_server_ops hrd_engine_server_ops;
/* Look at every module under the root and build what changed. */
void hrd_engine_scan(hrd_engine *e, const char *cause);
/* Read hotreload.conf again and build what its changes touch (a scan: returns 1); a bad one is said, and the last good one stays (0, no scan). */
int hrd_engine_reload_config(hrd_engine *e, const char *cause);
/* Forget what failed, so that the next scan builds it again whatever its inputs (SIGHUP). */
void hrd_engine_retry_failed(hrd_engine *e);

#endif
