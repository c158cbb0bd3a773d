/* util.h: helpers for the tests: temp dirs, running programs, files, a real daemon and a protocol peer. */
#ifndef T_UTIL_H
#define T_UTIL_H

#include <stddef.h>

#include "../proto/hrp.h"

/* A new empty directory under $TMPDIR (or /tmp); the caller owns the string. */
char *t_tmpdir(void);
/* rm -rf dir (for teardown). */
void t_rmtree(const char *dir);
/* printf into a new string. */
char *t_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The whole file as a NUL-terminated string (binary-safe length in *len if given); NULL if unreadable. */
char *t_read(const char *path, size_t *len);
int t_write(const char *path, const void *data, size_t len);

/* A finished program run. */
typedef struct t_run {
	int status; /* exit code, or 128 + signal */
	char *out, *err;
} t_run;

/*
 * Run argv (argv[0] searched in PATH) in cwd (NULL: this one), with env
 * entries "K=V" added and "K=" entries removing K; stdin is /dev/null.
 */
t_run t_exec(const char *cwd, const char *const *env, const char *const *argv);
void t_run_free(t_run *r);
/* The hotreload CLI of this build, with args; cwd and env as for t_exec. */
t_run t_cli(const char *cwd, const char *const *env, const char *const *args);
/* Run jq FILTER over input (jq -e -r); its exit status in *status. */
char *t_jq(const char *input, const char *filter, int *status);

/*
 * A real hotreloadd on a temp root, started the way a user does: without
 * --foreground, so that starting returns once it is ready. Its log is
 * STATE/hotreloadd.log.
 */
typedef struct t_daemon {
	int pid, pidfd;
	char *root, *state, *sock, *log;
} t_daemon;

/* Start hotreloadd --root root --jobs 2 args... with env; the launcher's run in *r if given. 0 when ready. */
int t_daemon_start(t_daemon *d, const char *root, const char *const *env, const char *const *args, t_run *r);
/* The same, run under a wrapper command (wrap: argv before the daemon's, as "prlimit", "--fsize=N"). */
int t_daemon_start_under(t_daemon *d, const char *const *wrap, const char *root, const char *const *env,
                         const char *const *args, t_run *r);
/* SIGTERM, then wait (up to 20 s) for it to be gone. 0 when it stopped; frees d's strings. */
int t_daemon_stop(t_daemon *d);
/* Wait up to ms for a pidfd's process to end: 1 when it did, 0 on timeout. */
int t_wait_gone(int pidfd, int ms);

/* A protocol peer, after the HELLO exchange. */
typedef struct t_peer {
	int fd;
	hrp_reader r;
	char db_id[40];
} t_peer;

/* Connect and exchange HELLO (role library). 0, or -errno. */
int t_peer_open(t_peer *p, const char *sock);
void t_peer_close(t_peer *p);
int t_peer_send(t_peer *p, const hrp_msg *m);
/*
 * Wait up to ms for the next message of one of the types in mask (1 << type)
 * about module (NULL: any), passing over others. 0 with *m (valid until the
 * next call), or -ETIMEDOUT, -ECONNRESET, ...
 */
int t_peer_next(t_peer *p, unsigned mask, const char *module, int ms, hrp_msg *m);

/*
 * A running program whose output a test reads line by line: stdout through a
 * pipe, stderr to a file (checked for sanitizer reports when it ends).
 */
typedef struct t_proc {
	int pid, pidfd, out;
	char *errpath;
	char buf[8192];
	size_t len;
	char line[4096]; /* the last line t_proc_expect matched */
} t_proc;

/*
 * SIGTERM to pid's main thread (tgkill), not to the process: under
 * ThreadSanitizer a process-directed signal may land on the runtime's own
 * background thread, which never runs the program's handler.
 */
int t_term(int pid);
/* Start argv in cwd with env (as for t_exec). 0, or -1. */
int t_proc_start(t_proc *p, const char *cwd, const char *const *env, const char *const *argv);
/* The test host (tests/host.c, or $HR_HOST) with args. */
int t_host_start(t_proc *p, const char *cwd, const char *const *args);
/*
 * Read lines until one contains want, for up to ms; 1 with it in p->line,
 * 0 on timeout or end of output. Lines before it are passed over.
 */
int t_proc_expect(t_proc *p, const char *want, int ms);
/* SIGTERM, wait up to 20 s, and return its exit status (128 + signal), or -1
 * if it had to be killed or its stderr holds a sanitizer report; *err gets its stderr. */
int t_proc_end(t_proc *p, char **err);

/*
 * A stand-in compiler under dir/.t/ that, for a compile (-c; a link runs cc
 * at once), reports "PID [CHILD]" on the fifo
 * $HR_T_READY when it starts, and may wait for a line on $HR_T_GO: the test
 * decides when it goes on. body is its shell script. Sets env[0..2] to
 * "CC=path" and the fifos' entries (the caller frees them). 0, or -1.
 */
int t_slow_cc(const char *dir, const char *body, char *env[3]);
/* Wait (up to 30 s) for it to start; what it reported. 0, or -1. */
int t_slow_started(const char *dir, int *pid, int *child);
/* Let it go on. 0, or -1. */
int t_slow_go(const char *dir);
/* The stand-in compiler that waits for "go", then runs cc. */
#define T_WAIT_THEN_CC "echo $$ > \"$HR_T_READY\"\nread x < \"$HR_T_GO\"\nexec cc \"$@\""

/* Check cond(arg) every few ms until it holds (1) or ms have passed (0). */
int t_until(int (*cond)(void *arg), void *arg, int ms);
/* How many times text is in the file at path (0 if unreadable). */
int t_file_count(const char *path, const char *text);
/* Wait up to ms until the file at path holds text at least times times: 1, or 0. */
int t_until_in_file(const char *path, const char *text, int times, int ms);

/*
 * Why the fanotify backend cannot run on dir here (in why, returned), or NULL
 * when it can. It needs CAP_SYS_ADMIN for its filesystem mark: since Linux
 * 5.13 fanotify_init itself succeeds without it, so the mark is tried too.
 */
const char *t_fanotify_unusable(const char *dir, char *why, size_t n);

/* dlopen a built object, call "int NAME(void)" in it, close it. */
int t_call(const char *so, const char *fn);

/* Whether the command cmd runs here (cmd --version exits 0). */
int t_have(const char *cmd);
/* The flags a program to patch is compiled with for cc ("gcc" or "clang"): the Makefile's PATCH_CFLAGS or
 * PATCH_CLANG_CFLAGS, which make install puts in hotreload-patch.pc and hotreload-patch-clang.pc. */
const char *t_patch_cflags(const char *cc);
/* Where a test's program finds libhotreload (its .so and .a): $HR_LIB_DIR (make test-tsan: a ThreadSanitizer
 * build), else this build's; and the sanitizer flags its link then needs ($HR_LIB_SAN, else this build's own). */
const char *t_lib_dir(void);
const char *t_lib_san(void);

#endif
