/* util.c: helpers for the tests: temp dirs, running programs, files, a real daemon and a protocol peer. */
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
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

/* In a forked child: stdin from /dev/null, stdout and stderr to out and err, env applied, then exec. */
static void child(int out, int err, const char *cwd, const char *const *env, const char *const *argv)
{
	int nul = open("/dev/null", O_RDONLY);
	dup2(nul, 0);
	dup2(out, 1);
	dup2(err, 2);
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

t_run t_exec(const char *cwd, const char *const *env, const char *const *argv)
{
	t_run r = { -1, NULL, NULL };
	char outp[] = "/tmp/hrout.XXXXXX", errp[] = "/tmp/hrerr.XXXXXX";
	int of = mkstemp(outp), ef = mkstemp(errp);
	if (of < 0 || ef < 0)
		abort();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		child(of, ef, cwd, env, argv);
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

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int t_wait_gone(int pidfd, int ms)
{
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	return poll(&pf, 1, ms) == 1;
}

int t_daemon_start(t_daemon *d, const char *root, const char *const *env, const char *const *args, t_run *r)
{
	return t_daemon_start_under(d, NULL, root, env, args, r);
}

int t_daemon_start_under(t_daemon *d, const char *const *wrap, const char *root, const char *const *env,
                         const char *const *args, t_run *r)
{
	memset(d, 0, sizeof *d);
	d->pid = d->pidfd = -1;
	d->root = strdup(root);
	d->state = t_fmt("%s/.hotreload", root);
	d->sock = t_fmt("%s/hotreloadd.sock", d->state);
	d->log = t_fmt("%s/hotreloadd.log", d->state);
	/* HR_DAEMON: another build of the daemon (make test-tsan runs a ThreadSanitizer one). */
	const char *exe = getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd";
	const char *argv[64];
	size_t n = 0;
	for (size_t i = 0; wrap && wrap[i] && n < 32; i++)
		argv[n++] = wrap[i];
	const char *ours[] = { exe, "--root", root, "--jobs", "2" };
	for (size_t i = 0; i < 5; i++)
		argv[n++] = ours[i];
	for (size_t i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	const char *envv[32] = { "HOTRELOAD_SOCKET=", "HOTRELOAD_STATE_DIR=" };
	size_t ne = 2;
	for (size_t i = 0; env && env[i] && ne < 31; i++)
		envv[ne++] = env[i];
	envv[ne] = NULL;
	t_run run = t_exec(root, envv, argv);
	int status = run.status;
	if (r)
		*r = run;
	else
		t_run_free(&run);
	if (status != 0)
		return -1;
	/* The lock file holds the daemon's pid. */
	for (size_t i = 0; args && args[i]; i++)
		if (strcmp(args[i], "--state-dir") == 0 && args[i + 1]) {
			free(d->state);
			free(d->sock);
			free(d->log);
			d->state = strdup(args[i + 1]);
			d->sock = t_fmt("%s/hotreloadd.sock", d->state);
			d->log = t_fmt("%s/hotreloadd.log", d->state);
		}
	for (size_t i = 0; args && args[i]; i++)
		if (strcmp(args[i], "--socket") == 0 && args[i + 1]) {
			free(d->sock);
			d->sock = strdup(args[i + 1]);
		}
	char *lock = t_fmt("%s/hotreloadd.lock", d->state), *pid = t_read(lock, NULL);
	d->pid = pid ? atoi(pid) : -1;
	free(lock);
	free(pid);
	d->pidfd = d->pid > 0 ? (int)syscall(SYS_pidfd_open, d->pid, 0) : -1;
	return d->pidfd >= 0 ? 0 : -1;
}

int t_daemon_stop(t_daemon *d)
{
	int rc = -1;
	if (d->pidfd >= 0) {
		kill(d->pid, SIGTERM);
		rc = t_wait_gone(d->pidfd, 20000) ? 0 : -1;
		if (rc < 0)
			kill(d->pid, SIGKILL);
		close(d->pidfd);
	}
	free(d->root);
	free(d->state);
	free(d->sock);
	free(d->log);
	memset(d, 0, sizeof *d);
	d->pidfd = -1;
	return rc;
}

int t_peer_open(t_peer *p, const char *sock)
{
	memset(p, 0, sizeof *p);
	p->fd = hrp_connect(sock, 5000);
	if (p->fd < 0)
		return p->fd;
	/* As the library does: a descriptor with the HELLO, so that BUILDs come with theirs (not as bytes). */
	hrp_msg h = { .type = HRP_HELLO, .u.hello = { HRP_VERSION, HRP_ROLE_LIBRARY, (uint32_t)getpid(), "", "tests" } };
	hrp_buf hb = { 0 };
	int rc = hrp_encode(&h, &hb) < 0 ? -ENOMEM : hrp_send_hello(p->fd, hb.data, hb.len) == (long)hb.len ? 0 : -EIO;
	hrp_buf_free(&hb);
	if (rc == 0)
		rc = t_peer_next(p, 1u << HRP_HELLO, NULL, 5000, &h);
	if (rc < 0) {
		t_peer_close(p);
		return rc;
	}
	snprintf(p->db_id, sizeof p->db_id, "%s", h.u.hello.db_id);
	return 0;
}

void t_peer_close(t_peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	hrp_reader_free(&p->r);
}

int t_peer_send(t_peer *p, const hrp_msg *m)
{
	return hrp_send(p->fd, m);
}

static const char *module_of(const hrp_msg *m)
{
	switch (m->type) {
	case HRP_BUILD: return m->u.build.module;
	case HRP_FAILED: return m->u.failed.module;
	default: return NULL;
	}
}

int t_peer_next(t_peer *p, unsigned mask, const char *module, int ms, hrp_msg *m)
{
	int64_t end = ms_now() + ms;
	for (;;) {
		int left = (int)(end - ms_now());
		if (left <= 0)
			return -ETIMEDOUT;
		int rc = hrp_recv(p->fd, &p->r, m, left);
		if (rc < 0)
			return rc;
		if (!(mask & (1u << m->type)))
			continue;
		const char *mod = module_of(m);
		if (module && (!mod || strcmp(mod, module) != 0))
			continue;
		return 0;
	}
}

int t_call(const char *so, const char *fn)
{
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return -1000;
	int (*f)(void) = (int (*)(void))dlsym(h, fn);
	int v = f ? f() : -1001;
	dlclose(h);
	return v;
}

int t_proc_start(t_proc *p, const char *cwd, const char *const *env, const char *const *argv)
{
	memset(p, 0, sizeof *p);
	int fds[2];
	char errp[] = "/tmp/hrperr.XXXXXX";
	int ef = mkstemp(errp);
	if (ef < 0 || pipe2(fds, O_CLOEXEC) < 0)
		abort();
	p->errpath = strdup(errp);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0); /* a group of its own, as a terminal's job: kill(-pid, SIGINT) is a Ctrl-C */
		child(fds[1], ef, cwd, env, argv);
	}
	close(fds[1]);
	close(ef);
	p->pid = pid;
	p->out = fds[0];
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return pid > 0 && p->pidfd >= 0 ? 0 : -1;
}

int t_term(int pid)
{
	return (int)syscall(SYS_tgkill, pid, pid, SIGTERM);
}

int t_host_start(t_proc *p, const char *cwd, const char *const *args)
{
	/* HR_HOST: another build of the host (make test-tsan runs a ThreadSanitizer one). */
	const char *exe = getenv("HR_HOST") ? getenv("HR_HOST") : HR_BUILD_DIR "/tests/host";
	const char *argv[32] = { exe };
	size_t n = 1;
	for (size_t i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return t_proc_start(p, cwd, (const char *const[]){ "HOTRELOAD_SOCKET=", NULL }, argv);
}

int t_proc_expect(t_proc *p, const char *want, int ms)
{
	int64_t deadline = ms_now() + ms;
	for (;;) {
		char *nl;
		while ((nl = memchr(p->buf, '\n', p->len))) {
			size_t n = (size_t)(nl - p->buf);
			snprintf(p->line, sizeof p->line, "%.*s", (int)n, p->buf);
			memmove(p->buf, nl + 1, p->len - n - 1);
			p->len -= n + 1;
			if (strstr(p->line, want))
				return 1;
		}
		if (p->len == sizeof p->buf) /* a line longer than the buffer: drop it */
			p->len = 0;
		int64_t left = deadline - ms_now();
		if (left <= 0 || p->out < 0)
			return 0;
		struct pollfd pf = { p->out, POLLIN, 0 };
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		ssize_t k = read(p->out, p->buf + p->len, sizeof p->buf - p->len);
		if (k <= 0) {
			close(p->out);
			p->out = -1;
		} else {
			p->len += (size_t)k;
		}
	}
}

int t_proc_end(t_proc *p, char **err)
{
	int rc = -1;
	if (p->pid > 0) {
		/* The whole group: a script's children too, as when a terminal closes. */
		kill(-p->pid, SIGTERM);
		if (!t_wait_gone(p->pidfd, 20000))
			kill(-p->pid, SIGKILL);
		int st;
		if (waitpid(p->pid, &st, 0) == p->pid)
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	char *e = p->errpath ? t_read(p->errpath, NULL) : NULL;
	if (e && (strstr(e, "Sanitizer") || strstr(e, "runtime error")))
		rc = -1;
	if (err)
		*err = e;
	else
		free(e);
	if (p->out >= 0)
		close(p->out);
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->errpath)
		unlink(p->errpath);
	free(p->errpath);
	memset(p, 0, sizeof *p);
	p->out = p->pidfd = -1;
	return rc;
}

int t_slow_cc(const char *dir, const char *body, char *env[3])
{
	char *tools = t_fmt("%s/.t", dir), *ready = t_fmt("%s/ready.fifo", tools), *go = t_fmt("%s/go.fifo", tools);
	char *path = t_fmt("%s/slowcc", tools), *script = t_fmt("#!/bin/sh\n"
	                                                                          /* the link goes straight on */
	                                                                          "case \" $* \" in *\" -c \"*) ;; *) exec cc \"$@\" ;; esac\n"
	                                                                          "%s\n", body);
	int rc = mkdir(tools, 0700) == 0 && mkfifo(ready, 0600) == 0 && mkfifo(go, 0600) == 0 &&
	                 t_write(path, script, strlen(script)) == 0 && chmod(path, 0755) == 0
	         ? 0
	         : -1;
	env[0] = t_fmt("CC=%s", path);
	env[1] = t_fmt("HR_T_READY=%s", ready);
	env[2] = t_fmt("HR_T_GO=%s", go);
	free(tools);
	free(ready);
	free(go);
	free(path);
	free(script);
	return rc;
}

int t_slow_started(const char *dir, int *pid, int *child)
{
	char *ready = t_fmt("%s/.t/ready.fifo", dir);
	char buf[64] = "";
	int64_t deadline = ms_now() + 30000;
	/* A compiler killed after opening the fifo and before writing hangs
	 * up without a word: wait for the next one, up to the deadline. */
	while (!buf[0] && ms_now() < deadline) {
		int fd = open(ready, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			break;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, (int)(deadline - ms_now())) == 1 && read(fd, buf, sizeof buf - 1) <= 0)
			buf[0] = '\0';
		close(fd);
	}
	free(ready);
	*pid = *child = 0;
	return sscanf(buf, "%d %d", pid, child) >= 1 ? 0 : -1;
}

int t_slow_go(const char *dir)
{
	char *go = t_fmt("%s/.t/go.fifo", dir);
	int fd = open(go, O_WRONLY);
	free(go);
	if (fd < 0)
		return -1;
	int rc = write(fd, "go\n", 3) == 3 ? 0 : -1;
	close(fd);
	return rc;
}

int t_until(int (*cond)(void *arg), void *arg, int ms)
{
	int64_t deadline = ms_now() + ms;
	while (!cond(arg)) {
		if (ms_now() >= deadline)
			return 0;
		/* Polling a file, a database or /proc: the condition is what ends the wait. */
		nanosleep(&(struct timespec){ 0, 2 * 1000000 }, NULL);
	}
	return 1;
}

int t_file_count(const char *path, const char *text)
{
	char *all = t_read(path, NULL);
	int n = 0;
	for (const char *p = all; p && (p = strstr(p, text)); p++)
		n++;
	free(all);
	return n;
}

struct in_file {
	const char *path, *text;
	int times;
};

static int in_file(void *arg)
{
	const struct in_file *f = arg;
	return t_file_count(f->path, f->text) >= f->times;
}

int t_until_in_file(const char *path, const char *text, int times, int ms)
{
	struct in_file f = { path, text, times };
	return t_until(in_file, &f, ms);
}

const char *t_fanotify_unusable(const char *dir, char *why, size_t n)
{
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME, O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 ? -1 : fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_WRITE, AT_FDCWD, dir);
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		return NULL;
	if (e == EPERM)
		snprintf(why, n, "fanotify needs CAP_SYS_ADMIN (%s: EPERM): run the suite as root to cover it",
		         fd < 0 ? "fanotify_init" : "fanotify_mark FAN_MARK_FILESYSTEM");
	else if (e == EINVAL || e == ENOSYS)
		snprintf(why, n, "this kernel has no fanotify with FAN_REPORT_DFID_NAME (Linux 5.9 and later): %s",
		         strerror(e));
	else if (e == EOPNOTSUPP || e == ENODEV || e == EXDEV)
		snprintf(why, n, "the filesystem of %s cannot take a fanotify filesystem mark: %s", dir, strerror(e));
	else
		return NULL; /* the daemon meets it too, and says what it is */
	return why;
}

int t_have(const char *cmd)
{
	t_run r = t_exec(NULL, NULL, (const char *const[]){ cmd, "--version", NULL });
	int ok = r.status == 0;
	t_run_free(&r);
	return ok;
}

const char *t_patch_cflags(const char *cc)
{
	return strcmp(cc, "gcc") == 0 ? HR_PATCH_CFLAGS : HR_PATCH_CLANG_CFLAGS;
}

const char *t_lib_dir(void)
{
	return getenv("HR_LIB_DIR") ? getenv("HR_LIB_DIR") : HR_BUILD_DIR;
}

const char *t_lib_san(void)
{
#ifdef __SANITIZE_ADDRESS__
	const char *own = "-fsanitize=address,undefined";
#else
	const char *own = "";
#endif
	return getenv("HR_LIB_SAN") ? getenv("HR_LIB_SAN") : own;
}
