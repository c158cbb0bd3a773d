/* test_patchpre.c: patches loaded ahead on the library's thread: one bound before another patch was applied is loaded again, not used as it was. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patchutil.h"
#include "util.h"

#ifdef __SANITIZE_ADDRESS__
#define SAN " -fsanitize=address,undefined"
#else
#define SAN ""
#endif

#define FLAGS "-g -fpatchable-function-entry=7,5 -flive-patching=inline-clone -fno-omit-frame-pointer -O0"

TestSuite(patchpre, .init = tp_setup, .fini = tp_teardown, .timeout = 120);

/* A stand-in for the daemon: at each SUBSCRIBE "/", a BUILD of unit v1 with obj (its SHA-256 and size, as v3 has). */
struct standin {
	int lfd, obj;
	char *unit;
};

static void *standin(void *arg)
{
	struct standin *s = arg;
	hrp_reader r = { 0 };
	hrp_msg m;
	int fd = tp_accept_hello(s->lfd, &r);
	if (fd < 0)
		return NULL;
	while (hrp_recv(fd, &r, &m, 20000) == 0) {
		if (m.type == HRP_SUBSCRIBE && !strcmp(m.u.sub.module, "/"))
			tp_announce(fd, s->unit, 1, HRP_KIND_OK, s->obj);
		else if (m.type == HRP_STATUS_REQ)
			tp_status(fd);
	}
	hrp_reader_free(&r);
	close(fd);
	return NULL;
}

/*
 * Two modules of one program get the same patch, which adds a static; both load it ahead, before either applies
 * it. The first apply creates the static; the second must bind to that storage, so its load ahead (made when the
 * static did not exist yet) is loaded again: the count goes on from where the first left it, not from 100 again.
 */
static const char *MAIN =
	"#include <stdio.h>\n#include \"hotreload.h\"\n"
	"int count(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	hr_client *c = hr_connect(argv[1]);\n"
	"	hr_module *a = c ? hr_open_program(c) : NULL; /* each returns once its patch was handed over */\n"
	"	hr_module *b = a ? hr_open_program(c) : NULL;\n"
	"	if (!b) return 1;\n"
	"	printf(\"before %d\\n\", count());\n"
	"	int ra = hr_update(a);\n"
	"	int x = count(), y = count();\n"
	"	printf(\"a %d %d %d\\n\", ra, x, y);\n"
	"	int rb = hr_update(b);\n"
	"	printf(\"b %d %d\\n\", rb, count());\n"
	"	hr_close(b);\n"
	"	hr_close(a);\n"
	"	hr_disconnect(c);\n"
	"	return 0;\n}\n";

Test(patchpre, a_patch_loaded_before_another_was_applied_binds_to_its_statics)
{
	tp_put("game.c", "int count(void) { static int n; return ++n; }\n");
	tp_put("main.c", MAIN);
	tp_sh("gcc " FLAGS " -c game.c -o game.o");
	tp_sh("gcc " FLAGS " -I" HR_SOURCE_DIR "/client" SAN " -c main.c -o main.o");
	tp_sh("gcc" SAN " -o prog main.o game.o -L" HR_BUILD_DIR " -lhotreload -ldl -lpthread -Wl,-rpath," HR_BUILD_DIR);
	tp_put("game.c", "static int added = 100;\nint count(void) { static int n; ++n; return ++added; }\n");
	tp_sh("gcc " FLAGS " -c game.c -o p1.o && touch -d '+1 hour' p1.o"); /* saved after the build */
	char *o = t_fmt("%s/p1.o", tp_dir);
	struct standin s = { .obj = open(o, O_RDONLY | O_CLOEXEC), .unit = t_fmt("%s/game.c", tp_dir) };
	cr_assert_geq(s.obj, 0);
	t_run r = tp_run_standin("d.sock", &s.lfd, standin, &s);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "before 1\na 1 101 102\nb 1 103\n", "%s", r.err);
	t_run_free(&r);
	close(s.obj);
	free(s.unit);
	free(o);
}
