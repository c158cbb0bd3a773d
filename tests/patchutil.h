/* patchutil.h: what the patch suites share: their directory, shell commands, building and running a program to patch, a stand-in daemon. */
#ifndef TP_PATCHUTIL_H
#define TP_PATCHUTIL_H
#include <stdint.h>
#include "../proto/hrp.h"
#include "util.h"

/* The test's temporary directory: made by tp_setup, removed by tp_teardown (a suite's .init and .fini). */
extern char *tp_dir;
void tp_setup(void);
void tp_teardown(void);

/* Run the command (printf-style) with sh -c in tp_dir; the test fails unless it exits 0. */
void tp_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, returning its output (the caller frees it). */
char *tp_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write text to tp_dir/name; the test fails if it cannot. */
void tp_put(const char *name, const char *text);

/* A compiler and optimisation level a program to patch is built with. */
typedef struct tp_cfg {
	const char *cc, *opt;
} tp_cfg;

/* Flags added to every tp_compile of a test (-fcf-protection, say). */
extern const char *tp_more_cflags;
/* Write src to tp_dir/name and compile it as the program's build would: cc FLAGS -c name -o obj (in tp_dir). */
void tp_compile(const tp_cfg *c, const char *name, const char *src, const char *obj, const char *extra);
/* A patch: the unit's new source saved over game.c and compiled to obj, as the daemon does. */
void tp_patch(const tp_cfg *c, const char *game_src, const char *obj);
/* gcc args -o prog [main.o game.o when args is ""], linked to the shared library. */
void tp_link_shared(const char *args);
/* Run ./prog with args (NULL-terminated, NULL for none) in tp_dir; its output (the caller frees it). It must exit 0. */
char *tp_run(const char *const *args);

/*
 * game.c with int base(void) and int tick(void), and two patches of it: in v2
 * base, a static function and tick changed, and a new function with a new
 * static; v3 the same unit again, whose new static keeps counting.
 */
extern const char tp_calls_v1[], tp_calls_v2[], tp_calls_v3[];

/*
 * The program's side of the engine tests, built into it as harness.c:
 * int apply(const char *paths) applies one object, or several separated by
 * commas together, through the library's internal engine and prints the result.
 */
extern const char tp_harness[];

/*
 * The stand-in daemon's side of a connection: accept one client on lfd
 * (within 20 s), make it blocking and answer its HELLO as the daemon does.
 * The connection, with r reading it; -1 (nothing left open) if none came.
 */
int tp_accept_hello(int lfd, hrp_reader *r);
/* A BUILD of module at version v of kind, passing obj, with its SHA-256 and size as the daemon sends them (the library checks both). */
void tp_announce(int fd, const char *module, uint64_t v, uint32_t kind, int obj);
/* The answer to a STATUS_REQ. */
void tp_status(int fd);
/*
 * Run ./prog SOCK in tp_dir, SOCK being tp_dir/name, with a stand-in daemon
 * listening there: serve(arg) on a thread, accepting on *lfd (closed once the
 * program and the thread are done). The program's run.
 */
t_run tp_run_standin(const char *name, int *lfd, void *(*serve)(void *), void *arg);
#endif
