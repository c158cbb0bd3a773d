/* patchutil.c: what the patch suites share: their temporary directory, shell commands in it, and a stand-in daemon. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
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
