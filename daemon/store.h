/* store.h: the build history database (SQLite): schema, migrations, records, queries. */
#ifndef HRD_STORE_H
#define HRD_STORE_H

/*
 * Errors: -1, with the message kept in the handle (hrd_store_error) until the next call, as SQLite
 * keeps its own; hrd_store_open puts it in err.
 */

#include <stddef.h>
#include <stdint.h>

typedef struct hrd_store hrd_store;

/* A row's status, as the README's "The history store" and hotreload(1) name them. */
enum hrd_status { HRD_OK = 1, HRD_FAILED, HRD_REUSED, HRD_ROLLBACK, HRD_REFUSED };

/* The schema version this code writes (PRAGMA user_version). */
#define HRD_SCHEMA_VERSION 8

/* The most the history keeps of one file or object: a record holding more is refused whole, never cut. */
#define HRD_STORE_BLOB_MAX (256u << 20)

/* One file that went into a build, as it was: its content is stored once, however many builds share it. */
typedef struct hrd_snapshot {
	const char *path; /* root-relative, or absolute outside the root */
	const char *hash; /* SHA-256 of data, 64 hex digits */
	const void *data;
	size_t len;
} hrd_snapshot;

/* One build row. Strings are borrowed: NULL is stored as empty. */
typedef struct hrd_build {
	int64_t id;
	const char *module;
	int status;          /* enum hrd_status */
	uint64_t version;    /* 0 for none (failed); for refused, the version refused */
	int64_t started_us;  /* wall clock, microseconds since the epoch (UTC) */
	int64_t duration_us;
	const char *source_hash, *command, *output, *message;
	const char *artifact; /* the published object's path */
	const char *cause;    /* what set the build off: "enemy.c: saved", "scan", ... */
	int quick;            /* the quick tier's build (tcc), not the configured compiler's: tier "quick", else "final";
	                       * a refused row takes the tier of the version refused */
	char *const *deps;    /* recording: NULL-terminated, replaces the module's dependencies; NULL keeps them */
	const hrd_snapshot *snap; /* recording: the files that went in (sources, then headers) */
	size_t nsnap;
	const void *object;  /* recording an ok row: its object, kept for the module's keep newest compiles (up to HRD_STORE_BLOB_MAX) */
	size_t object_len;
	int keep;
} hrd_build;

typedef struct hrd_stats {
	int64_t total_builds; /* compiles: successful + failed */
	int64_t successful, failed, reused, rollbacks, refused;
	double success_rate;  /* 0..100; 0 with no builds */
	double avg_compile_ms;
	double compile_p50_ms, compile_p95_ms; /* over compiles; 0 with none */
	int64_t lives;                         /* published builds some client reported live */
	double live_p50_ms, live_p95_ms;       /* from a build's start to its first client's switch; 0 with none */
	/* The above are of final builds only; the quick tier's (quick = tcc) apart. Its failed compiles leave no row. */
	int64_t quick_builds, quick_successful, quick_lives;
	double quick_live_p50_ms, quick_live_p95_ms;
} hrd_stats;

enum {
	HRD_STORE_CREATE = 1,   /* the daemon: create if missing, migrate, check integrity */
	HRD_STORE_READONLY = 2, /* the CLI: never create, never write */
};

/*
 * Open the database at path. On failure returns -1 and writes a message that
 * names the path and says what to do into err (size errsz). A file that is not
 * a hotreload database, is corrupt, or is newer than this code is refused and
 * left as it is: history is never silently recreated.
 */
int hrd_store_open(const char *path, int flags, hrd_store **out, char *err, size_t errsz);
void hrd_store_close(hrd_store *s); /* NULL is a no-op */

/* The random id of this history (32 hex digits), fixed at creation. */
const char *hrd_store_id(const hrd_store *s);
/* The last error of any call below, naming the database. */
const char *hrd_store_error(const hrd_store *s);

/*
 * Record b in one transaction. For ok, reused and rollback, the module's next
 * version is allocated in that transaction and written to b->version; a
 * non-zero b->version given is the version the caller expects (it named the
 * object after it), and any other number fails the record, leaving nothing.
 * Failed rows get no version; refused rows keep the b->version given. b->id
 * gets the row id. Returns 0 or -1.
 */
int hrd_store_record(hrd_store *s, hrd_build *b);

/*
 * Call fn for rows newest first, of module (NULL: all), at most limit (<= 0:
 * all). The row's strings live until fn returns. fn returning non-zero stops
 * the walk. Returns 0, or -1 on a database error.
 */
int hrd_store_history(hrd_store *s, const char *module, int64_t limit,
                      int (*fn)(const hrd_build *b, void *arg), void *arg);
/* The same, for module's final rows that published an object (ok, reused, rollback), of inputs key if not NULL:
 * found through an index, however long the history. */
int hrd_store_published(hrd_store *s, const char *module, const char *key,
                        int (*fn)(const hrd_build *b, void *arg), void *arg);

/* Call fn with each of module's dependencies (sorted); fn returning non-zero stops, negative as an error. Returns 0 or -1. */
int hrd_store_deps(hrd_store *s, const char *module, int (*fn)(void *arg, const char *path), void *arg);
/* The object of module's published version (a reused or rolled-back one: of the compile of its inputs), in *data
 * (the caller frees it). 1 when there is one, 0 when none is kept, -1 on an error. */
int hrd_store_object(hrd_store *s, const char *module, uint64_t version, void **data, size_t *len);
/* Call fn with each file recorded for the build row id, by path; fn returning non-zero stops. Returns 0 or -1. */
int hrd_store_snapshots(hrd_store *s, int64_t id, int (*fn)(void *arg, const hrd_snapshot *f), void *arg);
/* A client's report that version of module went live at at_us (wall clock): kept once per build and client, and
 * only from a client connected (since since_us) before the build began: a program started later waited for
 * nothing. 0 or -1. */
int hrd_store_loaded(hrd_store *s, const char *module, uint64_t version, int64_t pid, int64_t at_us, int64_t since_us);
/*
 * Give the space of what was dropped (objects past keep) back to the
 * filesystem: the write-ahead log checkpointed and truncated, then VACUUM.
 * *before and *after get the database's size with its log. 0, or -1.
 */
int hrd_store_compact(hrd_store *s, uint64_t *before, uint64_t *after);
/* Pin module at version (0: unpin), so that it holds across restarts. 0, or -1. */
/*
 * Record the SHA-256 (hex) of the object of module's published version:
 * what a BUILD says of it, so that a game that gets its bytes can check them.
 * 0 or -1.
 */
int hrd_store_set_object_sum(hrd_store *s, const char *module, uint64_t version, const char *sha256);
int hrd_store_set_pin(hrd_store *s, const char *module, uint64_t version);
/* The version module is pinned at, in *version: 1, 0 when it is not pinned, or -1. */
int hrd_store_pin(hrd_store *s, const char *module, uint64_t *version);
/* Call fn with each module name in the history, sorted. 0 or -1. */
int hrd_store_modules(hrd_store *s, int (*fn)(void *arg, const char *module), void *arg);
/* Counts over module's rows (NULL: all). Returns 0 or -1. */
int hrd_store_stats(hrd_store *s, const char *module, hrd_stats *out);

/* The write-ahead log's size past which a commit checkpoints it at once, and to which it is cut back. */
#define HRD_STORE_WAL_MAX (4u << 20)

/*
 * The daemon's WAL discipline (on = 0): no automatic checkpoint inside a
 * commit on the save path (it cost milliseconds), and a checkpoint when
 * idle instead; but a log past HRD_STORE_WAL_MAX is checkpointed by the
 * commit that took it there, so that records in a row with no idle moment
 * do not grow it without end. Both return 0 or -1.
 */
int hrd_store_autocheckpoint(hrd_store *s, int on);
int hrd_store_checkpoint(hrd_store *s);

/* "ok", "failed", ...; NULL for a bad value. And back: 0 for an unknown name. */
const char *hrd_status_name(int status);
int hrd_status_parse(const char *name);

#endif
