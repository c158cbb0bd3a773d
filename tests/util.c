/* util.c: helpers for the tests: temp dirs, running programs, reading files. */
#include "util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *t_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

char *t_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *d = t_fmt("%s/hrtest.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(d))
		abort();
	return d;
}

void t_rmtree(const char *dir)
{
	if (!dir || !*dir || strcmp(dir, "/") == 0)
		return;
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "rm", "-rf", dir, NULL });
	t_run_free(&r);
}

char *t_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0, k;
	char *s = malloc(cap);
	while (s && (k = fread(s + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n - 1 == 0)
			s = realloc(s, cap *= 2);
	}
	fclose(f);
	if (!s)
		abort();
	s[n] = '\0';
	if (len)
		*len = n;
	return s;
}

int t_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(data, 1, len, f);
	return fclose(f) == 0 && n == len ? 0 : -1;
}

t_run t_exec(const char *cwd, const char *const *env, const char *const *argv)
{
	t_run r = { -1, NULL, NULL };
	char outp[] = "/tmp/hrout.XXXXXX", errp[] = "/tmp/hrerr.XXXXXX";
	int of = mkstemp(outp), ef = mkstemp(errp);
	if (of < 0 || ef < 0)
		abort();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(of, 1);
		dup2(ef, 2);
		for (size_t i = 0; env && env[i]; i++) {
			const char *eq = strchr(env[i], '=');
			char *k = strndup(env[i], (size_t)(eq - env[i]));
			if (eq[1])
				setenv(k, eq + 1, 1);
			else
				unsetenv(k);
		}
		if (cwd && chdir(cwd) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = t_read(outp, NULL);
	r.err = t_read(errp, NULL);
	close(of);
	close(ef);
	unlink(outp);
	unlink(errp);
	return r;
}

void t_run_free(t_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

t_run t_cli(const char *cwd, const char *const *env, const char *const *args)
{
	const char *argv[64] = { HR_BUILD_DIR "/hotreload" };
	size_t n = 1;
	for (; args[n - 1] && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	return t_exec(cwd, env, argv);
}

char *t_jq(const char *input, const char *filter, int *status)
{
	char *d = t_tmpdir(), *in = t_fmt("%s/in.json", d);
	t_write(in, input, strlen(input));
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "jq", "-e", "-r", filter, in, NULL });
	*status = r.status;
	free(r.err);
	t_rmtree(d);
	free(in);
	free(d);
	size_t n = strlen(r.out);
	if (n && r.out[n - 1] == '\n')
		r.out[n - 1] = '\0';
	return r.out;
}
