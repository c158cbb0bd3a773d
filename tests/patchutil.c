/* patchutil.c: what the patch suites share: their directory, shell commands, building and running a program to patch, a stand-in daemon. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "patchutil.h"
#include "util.h"
#include "../proto/sha256.h"

char *tp_dir;

void tp_setup(void)
{
	tp_dir = t_tmpdir();
}

void tp_teardown(void)
{
	t_rmtree(tp_dir);
	free(tp_dir);
}

static char *vsh(const char *fmt, va_list ap)
{
	char *cmd = NULL;
	cr_assert_geq(vasprintf(&cmd, fmt, ap), 0);
	t_run r = t_exec(tp_dir, NULL, (const char *const[]){ "sh", "-c", cmd, NULL });
	cr_assert_eq(r.status, 0, "%s: %s", cmd, r.err);
	free(cmd);
	char *out = r.out;
	r.out = NULL;
	t_run_free(&r);
	return out;
}

void tp_sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(vsh(fmt, ap));
	va_end(ap);
}

char *tp_sh_out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *out = vsh(fmt, ap);
	va_end(ap);
	return out;
}

void tp_put(const char *name, const char *text)
{
	char *p = t_fmt("%s/%s", tp_dir, name);
	cr_assert_eq(t_write(p, text, strlen(text)), 0);
	free(p);
}

const char *tp_more_cflags = "";

void tp_compile(const tp_cfg *c, const char *name, const char *src, const char *obj, const char *extra)
{
	tp_put(name, src);
	tp_sh("%s %s %s %s %s -c %s -o %s", c->cc, t_patch_cflags(c->cc), c->opt, tp_more_cflags, extra ? extra : "", name, obj);
}

void tp_patch(const tp_cfg *c, const char *game_src, const char *obj)
{
	tp_compile(c, "game.c", game_src, obj, NULL);
}

void tp_link_shared(const char *args)
{
	tp_sh("gcc %s %s -o prog %s -L%s -lhotreload -ldl -lpthread -Wl,-rpath,%s", t_lib_san(), args,
	      *args ? "" : "main.o game.o", t_lib_dir(), t_lib_dir());
}

char *tp_run(const char *const *args)
{
	const char *argv[16] = { "./prog" };
	size_t n = 1;
	while (args && args[n - 1])
		argv[n] = args[n - 1], n++;
	argv[n] = NULL;
	t_run r = t_exec(tp_dir, NULL, argv);
	cr_assert_eq(r.status, 0, "prog exited %d:\n%s\n%s", r.status, r.out, r.err);
	char *out = r.out;
	r.out = NULL;
	t_run_free(&r);
	return out;
}

const char tp_calls_v1[] =
	"static int counter;\n"
	"static int twice(int x) { return 2 * x; }\n"
	"int base(void) { return 1; }\n"
	"int tick(void) { counter++; return counter * 1000 + twice(base()); }\n";

const char tp_calls_v2[] =
	"static int counter;\n"
	"static int fresh = 40;\n"
	"static int extra(void) { return fresh++; }\n"
	"static int twice(int x) { return 3 * x; }\n"
	"int base(void) { return 5; }\n"
	"int tick(void) { counter++; return counter * 1000 + twice(base()) + extra(); }\n";

const char tp_calls_v3[] =
	"static int counter;\n"
	"static int fresh = 40;\n"
	"static int extra(void) { return fresh++; }\n"
	"static int twice(int x) { return 3 * x; }\n"
	"int base(void) { return 7; }\n"
	"int tick(void) { counter++; return counter * 1000 + twice(base()) + extra(); }\n";

const char tp_harness[] =
	"#include <fcntl.h>\n#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n#include \"patch.h\"\n"
	"static hrc_prog *prog;\n"
	"int apply(const char *paths);\n"
	"/* paths: one object, or several separated by commas, applied together */\n"
	"int apply(const char *paths)\n{\n"
	"	char err[1024] = \"\", list[1024];\n"
	"	if (!prog && hrc_prog_open(&prog, err, sizeof err) < 0) { printf(\"open: %s\\n\", err); fflush(stdout); return -1; }\n"
	"	int fds[8], n = 0;\n"
	"	snprintf(list, sizeof list, \"%s\", paths);\n"
	"	for (char *s = strtok(list, \",\"); s && n < 8; s = strtok(NULL, \",\"))\n"
	"		if ((fds[n++] = open(s, O_RDONLY | O_CLOEXEC)) < 0) { printf(\"cannot open %s\\n\", s); return -1; }\n"
	"	int rc = hrc_prog_apply(prog, fds, (size_t)n, err, sizeof err);\n"
	"	while (n--) close(fds[n]);\n"
	"	if (rc < 0) printf(\"refused: %s\\n\", err); else printf(\"applied %d v%u\\n\", rc, hrc_prog_version(prog));\n"
	"	fflush(stdout);\n"
	"	return rc;\n}\n";

int tp_accept_hello(int lfd, hrp_reader *r)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	if (poll(&p, 1, 20000) != 1)
		return -1;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	hrp_msg m;
	if (hrp_recv(fd, r, &m, 5000) || m.type != HRP_HELLO) {
		hrp_reader_free(r);
		close(fd);
		return -1;
	}
	hrp_send(fd, &(hrp_msg){ .type = HRP_HELLO,
				 .u.hello = { HRP_VERSION, HRP_ROLE_DAEMON, 4321, "0123456789abcdef0123456789abcdef",
					      "hotreloadd test" } });
	return fd;
}

void tp_announce(int fd, const char *module, uint64_t v, uint32_t kind, int obj)
{
	hrp_sha256 h;
	char hex[65], chunk[4096];
	uint64_t size = 0;
	hrp_sha256_init(&h);
	for (ssize_t k; (k = pread(obj, chunk, sizeof chunk, (off_t)size)) > 0; size += (uint64_t)k)
		hrp_sha256_update(&h, chunk, (size_t)k);
	hrp_sha256_hex(&h, hex);
	hrp_buf b = { 0 };
	cr_assert_geq(hrp_encode(&(hrp_msg){ .type = HRP_BUILD, .u.build = { module, v, kind, "/state/x.o", hex, size } }, &b), 0);
	hrp_send_fd(fd, b.data, b.len, obj);
	hrp_buf_free(&b);
}

void tp_status(int fd)
{
	hrp_send(fd, &(hrp_msg){ .type = HRP_STATUS, .u.status = { 4321, 1, "/", "/", "inotify", "x", 0, NULL } });
}

t_run tp_run_standin(const char *name, int *lfd, void *(*serve)(void *), void *arg)
{
	char *sock = t_fmt("%s/%s", tp_dir, name);
	*lfd = hrp_listen(sock, 1);
	cr_assert_geq(*lfd, 0);
	pthread_t t;
	pthread_create(&t, NULL, serve, arg);
	t_run r = t_exec(tp_dir, NULL, (const char *const[]){ "./prog", sock, NULL });
	pthread_join(t, NULL);
	close(*lfd);
	free(sock);
	return r;
}
