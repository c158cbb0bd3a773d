/* util.h: helpers for the tests: temp dirs, running programs, reading files. */
#ifndef T_UTIL_H
#define T_UTIL_H

#include <stddef.h>

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

#endif
