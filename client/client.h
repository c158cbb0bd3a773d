/* client.h: the client library's own state, shared by its API (hotreload.c) and its thread (thread.c). */
#ifndef HRC_CLIENT_H
#define HRC_CLIENT_H

/*
 * Errors: a negative errno, as hotreload.h's functions (which turn it into NULL with errno where
 * they return a pointer).
 */

#include "hotreload.h"

#include "../proto/hrp.h"
#include "../proto/sha256.h"
#include "notes.h"
#include "symtab.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define LIB_VERSION STR(HOTRELOAD_VERSION_MAJOR) "." STR(HOTRELOAD_VERSION_MINOR) "." STR(HOTRELOAD_VERSION_PATCH)

enum { TRUST_MAX = 8 };
enum { ASKED_MAX = 8 }; /* the OBJECT_REQs remembered, whose answers come as bytes */
enum { OPEN_TIMEOUT_MS = 10000, HELLO_TIMEOUT_MS = 5000, LAZY_HELLO_MS = 250, RETRY_MIN_MS = 50, RETRY_MAX_MS = 2000 };
/* How often the library's thread looks whether a build it handed over was taken: from 1 ms, doubling to 64 ms. */
enum { TAKE_POLL_MIN_MS = 1, TAKE_POLL_MAX_MS = 64 };

#define KEEP_PREFIX "hr_keep."


/* One loaded build of a module. */
typedef struct build {
	struct build *next; /* in a module's retired list, or the client's list to unload */
	void *handle;
	uint64_t version;
	hrc_symtab syms;
	int (*on_load)(void *, uint64_t);
	void (*on_unload)(void *);
	const hrc_sym *keep; /* its HR_KEEP globals, in syms */
	size_t nkeep;
	uint32_t gen;        /* the daemon's history it belongs to (see hr_client.gen) */
	int fd;              /* the object, as the daemon handed it over: loaded as /proc/PID/fd/FD, open while mapped */
	struct hr_module *m; /* the module it was handed over to */
	/*
	 * The switch to it, as the host's thread made it, for the library's
	 * thread to report: written at the switch, before the build goes on
	 * hr_client.taken, and read only once it came off there.
	 */
	struct build *taken_next; /* in hr_client.taken */
	struct build *dropped;    /* what the switch retired out of the window: to unload */
	uint64_t at_us;           /* when (CLOCK_REALTIME) */
	uint64_t prev_version;    /* the build that was live before, if had_prev */
	uint32_t prev_gen;
	int had_prev;
	const char *reset;        /* the first kept global that started afresh, of nreset */
	size_t nreset;
	char why[256];            /* set: it was refused, and why */
	char unload_crash[160];   /* set: the old build's hr_on_unload crashed, and how */
} build;

struct hr_module {
	hr_client *c;
	char *name;
	struct hrc_progmod *prog; /* hr_open_program's: the program itself (pending then only says 2: patches queued) */
	/* The host's side: only the thread that calls hr_update touches these. */
	build *live;
	build *old; /* retired builds, newest first */
	uint32_t nold;
	void *userdata;
	uint64_t version;
	/*
	 * The hand-over: the library's thread stores a loaded build here, and
	 * sets bit 0 when it refused one; hr_update takes both with one exchange.
	 */
	_Atomic uintptr_t pending;
	/* Under c->lock. */
	hr_module *next;
	uint64_t floor;    /* builds up to this version are not newer: the newest handed over, or the live one */
	uint64_t *refused; /* versions refused here, never tried again (the daemon offers older ones after a refusal) */
	char *unkept;      /* the globals that restart at each reload, as the last HR_NOTE_GLOBALS named them (NULL: none said) */
	size_t nrefused;
	uint64_t barrier;  /* hr_open: the STATUS_REQ whose answer settles it */
	int opening;       /* hr_open waits while set */
	int awaiting;      /* the daemon said a first build is under way */
	int closed;        /* hr_close ran: the library's thread frees it */
};

/* The connection: HRC_DOWN (no daemon; retry at retry_at), HRC_HELLO (ours sent, waiting for its), HRC_UP. */
enum { HRC_DOWN, HRC_HELLO, HRC_UP };

struct hr_client {
	int fd, wake;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* an opening module settled, or the daemon went away */
	char *path;          /* the socket; NULL: looked for at each attempt */
	uint32_t trust[TRUST_MAX]; /* daemons' uids trusted besides the program's own and root's */
	size_t ntrust;
	pthread_mutex_t sink_lock; /* held while the sink runs, so that hr_set_note_sink can wait it out */
	/* Under lock. */
	int state;
	char db_id[64];     /* the daemon's database: a new one means a new history */
	uint32_t gen;       /* which history: one more at each new database, so that no version number crosses over */
	hrp_buf out;        /* frames for the daemon on this connection, written by the library's thread */
	hrp_buf held;       /* reports made while it was away: sent if it comes back with the same history */
	hr_module *mods;
	build *unload;      /* builds the library's thread dlcloses (not the host's while it plays: dlclose takes the loader's lock) */
	uint64_t asked, answered; /* STATUS_REQs sent and answered on this connection */
	int stop;
	hrc_notes notes;
	hr_note_fn *sink;
	void *sink_arg;
	hr_stats stats;     /* refusals, crashes, reconnects; the switches' figures are below */
	/* The switches' figures, and the refusals made at a switch: the host's thread adds to them, lock-free. */
	_Atomic uint64_t switches, switch_ns, last_switch_ns, last_switch_at_us, switch_refusals;
	_Atomic uint32_t window;
	/*
	 * The builds switched to or refused at hr_update, newest first: the host's
	 * thread pushes them, without a lock or a system call, and the library's
	 * thread takes them all at once to report them (see hrc_run's wait).
	 */
	_Atomic(build *) taken;
	/* The library's thread's own. */
	hrp_reader r;
	uint64_t retry_at, hello_by, up_since; /* monotonic ms */
	uint32_t backoff;
	int was_up;         /* the daemon answered once: the next loss is a disconnection */
	int turned_away;    /* the daemon answered our HELLO with an ERROR, and the note said so */
	int distrusted;     /* a daemon of a uid we do not trust answered, and the note said so */
	int unfound;        /* (lazy) no socket was found, and the note said where it looked */
	int frame_fd, frame_cut; /* the descriptor that came with the frame being read, and whether one was cut off */
	int bytes;          /* the daemon's HELLO said objects come as bytes on this connection */
	struct hrc_incoming { /* an object coming as bytes: OBJECT frames right after its BUILD, nothing between */
		int active;
		int fd;         /* the memfd it is written to; -1 while it is read and let go (not wanted, or refused) */
		char module[HRP_NAME_MAX + 1];
		uint64_t version, size, got;
		uint32_t kind;  /* its BUILD's (HRP_KIND_MORE for a patch unit that another follows) */
		char sha256[65];
		hrp_sha256 sum;
	} in;
	struct { char module[HRP_NAME_MAX + 1]; uint64_t version; } bytes_asked[ASKED_MAX]; /* OBJECT_REQs sent, in a ring */
	size_t nbytes_asked;
	int *linger;        /* descriptors of builds that stayed loaded after dlclose: their names must not be reused */
	size_t nlinger;
	uint32_t offered;   /* builds handed over whose switch (or refusal) it has not seen yet */
	uint32_t poll_ms;   /* how long it waits for one, while there are */
};

/* ---- thread.c: the library's thread, and the helpers both sides use (under c->lock unless said) ---- */

/* The thread's body: follow the daemon, load builds, free what the host let go. Started by hr_connect. */
void *hrc_run(void *arg);
/* Free closed modules and retired builds; give the sink its notes (without the lock). */
void hrc_collect(hr_client *c);
/* The HELLO this process sends, naming it in name. */
hrp_msg hrc_hello(char *name, size_t namesz);
/* Try to connect again after the backoff (the library's thread, or hr_connect before it starts). */
void hrc_retry_later(hr_client *c);
/*
 * $HOTRELOAD_SOCKET, else .hotreload/hotreloadd.sock in the current
 * directory, else in one folder directly under it, else in the nearest
 * parent, passing over folders and sockets that c does not trust. 0 or
 * -errno (-ENOENT: none, or several under the current directory; why, if
 * given, then says where it looked, what it passed over, and what to do).
 */
int hrc_find_socket(const hr_client *c, char *out, size_t outsz, char *why, size_t whysz);
/* Whether c trusts a daemon of uid u: the program's own, root, or one it was told to trust. */
int hrc_trusts(const hr_client *c, uint32_t u);
/* The uid of the peer on fd, if c trusts it: 0, or -EACCES with it in *uid, or -errno. */
int hrc_check_peer(const hr_client *c, int fd, uint32_t *uid);

/* A report (LOADED, REFUSED) about a build of history gen. */
void hrc_report(hr_client *c, uint32_t gen, const hrp_msg *m);
int hrc_queue(hr_client *c, const hrp_msg *m);
void hrc_ask(hr_client *c, hr_module *m);
hr_module *hrc_next_named(hr_client *c, hr_module *m, const char *name);
/* Any thread, no lock. */
uint64_t hrc_now_ns(clockid_t id);
uint64_t hrc_now_ms(void);

#endif
