/* engine_impl.h: the engine's own types, and what its files share; the rest of the daemon sees engine.h only. */
#ifndef HRD_ENGINE_IMPL_H
#define HRD_ENGINE_IMPL_H

#include "engine.h"
#include "build.h"
#include "cdb.h"
#include "config.h"
#include "deps.h"
#include "outside.h"
#include "project.h"
#include "stage.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

enum hrd_mstate { HRD_M_IDLE, HRD_M_QUEUED, HRD_M_BUILDING };

struct build;

typedef struct hrd_mod {
	char *name;    /* a module's name; for a unit of the program (--patch), its source's absolute path */
	int unit;      /* a translation unit of the compile database (--patch), not a module */
	char *src;     /* a unit's source as the watchers name it (root-relative, or absolute outside the root) */
	int saved;     /* a unit: a save touched it since the start, so its next compile is a patch, not its baseline */
	int held;      /* a unit: its BUILD waits for the other units being built, to go out with theirs (one change) */
	int kind;      /* enum hrd_kind at the last look */
	int invalid;   /* the name is not a module name: reported, never built */
	enum hrd_mstate state;
	unsigned in_wave, done_wave; /* the waves it was counted in, queued and done */
	char key[65];  /* inputs of the last recorded compile, "" for none */
	uint64_t version;  /* the newest good build that can be served, 0 for none */
	uint64_t top;      /* the highest version in the history: the next is top + 1 */
	uint32_t good_kind; /* enum hrp_kind of it */
	char *artifact;
	char *summed;  /* the artifact that sha256 and size are of (a copy), NULL for none yet */
	char sha256[65]; /* the SHA-256 of the object, in hex, that a BUILD carries ("" when unreadable) */
	uint64_t size;
	int last;      /* HRD_OK or HRD_FAILED: the last compile; 0 for none */
	unsigned seen; /* the scan that last saw it */
	char *message; /* its first error */
	char *note;    /* why it is not built (a conflict), for status */
	char cause[160];
	int recheck;   /* a source was open for writing when it was to be built: look again at the recheck timer */
	hrd_deps deps; /* what its last compile read besides its sources: its headers */
	int fresh;     /* a header appeared that its key cannot know of: reuse nothing until a compile is recorded */
	uint64_t pin;  /* the version pinned by hotreload rollback --pin: newer builds are recorded, not served; 0 for none */
	char pinned[320]; /* what status says of the pin */
	uint64_t origin; /* the compile whose object the served version is (itself, or what a reuse or rollback copied) */
	char *ccmd;    /* its entries in compile_commands.json, NULL before its first look */
	char *unkept;  /* the globals its last good compile restarts at each reload, as the log last named them */
	char *noquick; /* the quick tier's commands (build.qsig) that tcc could not build while the final build did:
	                * not tried quick again until they change; NULL for none */
	struct build *job;
	TAILQ_ENTRY(hrd_mod) qlink; /* in the queue, while HRD_M_QUEUED */
} hrd_mod;

/* A module's build as the engine sees it: what the key covered, and the stage's run of it. */
typedef struct build {
	hrd_mod *m;
	hrd_run *run;      /* NULL before it starts */
	hrd_sources src;
	hrd_deps had;      /* the module's dependencies when the key was taken */
	hrd_stamp *stamps; /* what each source, then each of had, was when the key was taken */
	char **base, **ld; /* the module's compiler and flags (before -c or -shared); its link flags and libraries */
	char **keyargv;    /* base, "--", ld: the command line as the key covers it */
	const char *mdeps; /* the option for a dependency file without system headers: -MMD, or -MD for tcc, which has no -MMD */
	char key[65];
	char *tmp;         /* the object the link writes */
	char *dir, *dep;   /* a unit's: the folder its compile runs in, and its dependency file; NULL for a module */
	int baseline;      /* a unit's first compile, with no history: what it read is learnt, nothing is recorded */
	char cause[160];
	int64_t started_us;
	hrd_run *qrun;     /* the quick tier's run (quick = tcc), beside run: NULL for none, or once it ended */
	char *qtmp;        /* the object it writes */
	char *qsig;        /* its command line and the key's: what m->noquick is compared with */
	int qfailed;       /* it did not compile: tcc may not be able to build this module */
	int elsewhere;     /* its compiler builds for another machine (a cross compiler): never built quick */
} build;

struct hrd_engine {
	hrd_engine_config cfg;
	hrd_server *server;
	hrd_project project;
	char **env_cc, **env_cflags, **env_ldflags; /* $CC, $CFLAGS, $LDFLAGS, as words */
	hrd_config conf;        /* ROOT/hotreload.conf, the last good one */
	char conf_error[600];   /* why the file as it is now is not in use, for status; "" when it is */
	int ccmd_dirty;         /* compile_commands.json is behind */
	int ccmd_written;       /* and this daemon has written it where the configuration says */
	unsigned wave, wave_total, wave_done; /* modules queued since the engine was last idle, and those done */
	hrd_mod **mods;
	size_t nmods;
	TAILQ_HEAD(modq, hrd_mod) queue; /* modules waiting for a build slot, in the order their changes came */
	hrd_stage *stage; /* the builds under way, and their compilers */
	unsigned long seq;
	unsigned scan; /* scans so far */
	hrd_io watchio;
	hrd_timer checkpoint; /* the history's log is written back once the engine has been idle a while */
	hrd_timer verify;     /* --verify-every: a scan now and then, for setups nobody trusts */
	int verifying; /* the scan under way is one of those: builds under way are left alone */
	uint64_t verify_scans, missed; /* those scans, and the changes they found that the watcher had not told */
	hrd_timer recheck;   /* modules whose sources were open for writing */
	unsigned recheck_ms; /* its next delay: doubles while a writer stays, back to the least when none does */
	hrp_modstat *status; /* the last STATUS reply's array */
	char reason[2400];   /* and its watcher reason, when it has more to say */
	char *older;         /* the path in the last answer to a refusal, or to OBJECT_REQ */
	char older_sha256[65]; /* and its object's sum and size */
	uint64_t older_size;
	int objects_fd;      /* STATE/objects, checked (hrd_statedir_sub) */
	int cache_fd;        /* STATE/cache, checked: each source's object (objcache.h) */
	hrd_outside outside; /* the folders outside the root that hold headers modules read */
	hrd_io outsideio;
	char *outside_list;  /* those folders, one a line, for status */
	hrd_cdb cdb;         /* the program's compile database (--patch), the last good one */
	int cdb_loaded;      /* it was read once */
	char *patch;         /* its path, NULL for none; */
	char *patch_watch;   /* and as the watchers name it */
	char cdb_error[800]; /* why the database as it is now is not in use; "" when it is */
};

/* engine_patch.c: the program's own translation units (--patch). */
/* The name of a module's files in objects/ and tmp/: the module's name, or for a unit a safe one of its own. A new string. */
char *hrd_engine_stem(const char *module);
/* Read the compile database again (at the start, when it or hotreload.conf changed) and look at each unit. 1, or 0
 * when it is bad (said, and the last good one stays). */
int hrd_engine_patch_load(hrd_engine *e, const char *cause);
/* The unit whose source is path (as the watchers name it), or NULL. */
hrd_mod *hrd_engine_unit_at(hrd_engine *e, const char *path);
/* 1 when path is the source of a unit of the database: never a module's then. */
int hrd_engine_is_unit_source(hrd_engine *e, const char *path);
/* What unit m is now: HRD_KIND_FILE with its source, HRD_KIND_NONE when the database names it no longer, -1 (errno). */
int hrd_engine_unit_resolve(hrd_engine *e, hrd_mod *m, hrd_sources *out);
/* b's command for unit m: the database's, writing b->tmp (set before) and b->dep. 0 or -1. */
int hrd_engine_unit_command(hrd_engine *e, hrd_mod *m, build *b);
/* 1 when the file at path is a relocatable ELF object, else 0 with why. */
int hrd_engine_relocatable(const char *path, char *why, size_t n);

/* Watch the folders outside the root of every module's headers, and only those (after deps change). */
void hrd_engine_outside_sync(hrd_engine *e);

/* engine.c: small helpers, the modules table, the queue, the timers. */
int64_t hrd_engine_now_us(clockid_t clock);
int hrd_engine_jobs(const hrd_engine *e);
/* *dst becomes a copy of src (NULL for none); out of memory, it keeps its old text. */
void hrd_engine_set_str(char **dst, const char *src);
hrd_mod *hrd_engine_find(hrd_engine *e, const char *name);
int hrd_engine_published_row(const hrd_build *b);
uint32_t hrd_engine_kind_of(const hrd_build *b);
void hrd_engine_touch(hrd_engine *e, const char *name, const char *cause);
/* m is done for this wave of builds: "[DONE/TOTAL] " for its log line when the wave is large, else "". */
const char *hrd_engine_progress(hrd_engine *e, hrd_mod *m, char buf[32]);
#define HRD_VERIFY_CAUSE "verification scan" /* a module's cause when a verification scan touched it */
#define HRD_KEEP_OBJECTS 8 /* objects of each module's newest good compiles the history keeps, unless hotreload.conf says */

/* Serve version (its object at path, which m then owns) to the programs, unless m is pinned to another. */
void hrd_engine_serve(hrd_engine *e, hrd_mod *m, uint64_t version, uint32_t kind, char *path, uint64_t origin);
/* Whether a unit other than but (NULL: any) is queued or being built (not one waiting for a writer to let go of its
 * source: that may take minutes, and the others' patches would wait as long). */
int hrd_engine_units_busy(hrd_engine *e, const hrd_mod *but);
/* Once no unit is busy, announce the held units' BUILDs in a row, each but the last marked HRP_KIND_MORE. */
void hrd_engine_flush_held(hrd_engine *e);
/* Put back m's version (0: the newest good one before the live one) as a new version, a rollback row; with pin,
 * it stays until unpin. 0, or -1 with why in err. */
int hrd_engine_rollback(hrd_engine *e, hrd_mod *m, uint64_t version, int pin, char *err, size_t errsz);
/* Serve m's newest good build again, after a pin. */
void hrd_engine_unpin(hrd_engine *e, hrd_mod *m);
/* What hrd_engine_published looks for in a module's history, and what it finds. */
typedef struct hrd_published {
	uint64_t want;   /* this version; or, with 0, the newest published row below below */
	uint64_t below;
	const char *key; /* and, if not NULL, of these inputs */
	uint64_t version; /* found: */
	uint32_t kind;
	char *artifact, *source_hash; /* artifact: in our objects/ (hrd_engine_object_path) */
	int found;
	struct hrd_engine *e; /* set by hrd_engine_published */
} hrd_published;
/* The file of our objects/ that a row's artifact names, by file name only: a new string, or NULL (said). */
char *hrd_engine_object_path(hrd_engine *e, const char *module, uint64_t version, const char *artifact);
/* The SHA-256 (64 hex digits) and size of the object at path: 0, or -1 (said; hex is then ""). */
int hrd_engine_object_sum(const char *module, const char *path, char hex[65], uint64_t *size);
/* Bring m's sha256 and size up to its artifact: hashed once per artifact, whatever the clients. */
void hrd_engine_mod_sum(hrd_mod *m);
/* A published row whose object is still there: 1 (free with hrd_engine_published_free), 0 for none, -1 on an error. */
int hrd_engine_published(hrd_engine *e, const char *module, hrd_published *p);
void hrd_engine_published_free(hrd_published *p);
void hrd_engine_pump(hrd_engine *e);
void hrd_engine_arm_recheck(hrd_engine *e, hrd_mod *m);
void hrd_engine_arm_checkpoint(hrd_engine *e);

/* engine_build.c: one module's build: its key, a reuse or a plan for the stage, then its result recorded and announced. */
void hrd_engine_start_build(hrd_engine *e, hrd_mod *m);
/* What the stage's run r of a build came to: recorded and announced (r is freed). */
void hrd_engine_ended(hrd_engine *e, hrd_run *r);
/* The build goes, and its run with it, unrecorded. NULL is a no-op. */
void hrd_engine_free_build(build *b);

/* engine_command.c: the modules' commands, and compile_commands.json. */
int hrd_engine_split_env(const char *var, const char *fallback, char ***words, size_t *n);
/* A NULL-terminated array of words, and the words; NULL is a no-op. */
int hrd_engine_command_for(hrd_engine *e, const char *name, build *b);
void hrd_engine_ccmd_note(hrd_engine *e, hrd_mod *m, const build *b);
void hrd_engine_write_ccmds(hrd_engine *e);
/* Before next replaces the configuration: remove the compile_commands.json this daemon wrote if it is to go elsewhere, or nowhere. */
void hrd_engine_move_ccmds(hrd_engine *e, const hrd_config *next);

#endif
