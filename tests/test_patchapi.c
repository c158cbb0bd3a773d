/* test_patchapi.c: hr_open_program through the library's receive path, against a stand-in for the daemon. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patchutil.h"
#include "util.h"

TestSuite(patchapi, .init = tp_setup, .fini = tp_teardown, .timeout = 240);

struct fake {
	int lfd;
	char *unit; /* tp_dir/game.c */
	int objs[4]; /* v1 good, v2 a size change, v3 good; v4 for the program opened again */
	char loaded[256], refused[1024];
	int subscribed;
};

/* HELLO; at SUBSCRIBE "/" the first patch (and one of another program's unit); each next after the last report. */
static void *fake_daemon(void *arg)
{
	struct fake *f = arg;
	hrp_reader r = { 0 };
	hrp_msg m;
	int fd = tp_accept_hello(f->lfd, &r);
	if (fd < 0)
		return NULL;
	int next = 0;
	size_t n = 0;
	while (hrp_recv(fd, &r, &m, 20000) == 0) {
		if (m.type == HRP_SUBSCRIBE && !strcmp(m.u.sub.module, "/") && f->subscribed++) {
			tp_announce(fd, f->unit, 4, HRP_KIND_OK, f->objs[3]); /* subscribed again: the newest */
		} else if (m.type == HRP_SUBSCRIBE && !strcmp(m.u.sub.module, "/")) {
			tp_announce(fd, "/elsewhere/not-ours.c", 9, HRP_KIND_OK, f->objs[0]);
			tp_announce(fd, f->unit, 1, HRP_KIND_OK, f->objs[next++]);
		} else if (m.type == HRP_STATUS_REQ) {
			tp_status(fd);
		} else if (m.type == HRP_LOADED || m.type == HRP_REFUSED) {
			n += (size_t)snprintf(m.type == HRP_LOADED ? f->loaded + strlen(f->loaded) : f->refused + strlen(f->refused),
					      m.type == HRP_LOADED ? sizeof f->loaded - strlen(f->loaded) : sizeof f->refused - strlen(f->refused),
					      "%s v%llu;", m.type == HRP_LOADED ? m.u.loaded.module : m.u.refused.module,
					      (unsigned long long)(m.type == HRP_LOADED ? m.u.loaded.version : m.u.refused.version));
			if (m.type == HRP_REFUSED)
				snprintf(f->refused + strlen(f->refused), sizeof f->refused - strlen(f->refused), "%s;", m.u.refused.reason);
			if (next >= 3)
				continue;
			tp_announce(fd, f->unit, (uint64_t)next + 1, HRP_KIND_OK, f->objs[next]);
			next++;
		}
	}
	hrp_reader_free(&r);
	close(fd);
	return NULL;
}

static const char *API_MAIN =
	"#include <stdio.h>\n#include <unistd.h>\n#include <time.h>\n#include \"hotreload.h\"\n"
	"int tick(void); int base(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	hr_client *c = hr_connect(argv[1]);\n"
	"	if (!c) { printf(\"connect failed\\n\"); return 1; }\n"
	"	hr_module *m = hr_open_program(c);\n"
	"	if (!m) { printf(\"open: %s\\n\", hr_last_error()); return 0; }\n"
	"	printf(\"tick %d base %d\\n\", tick(), base());\n"
	"	time_t until = time(NULL) + 60;\n"
	"	int seen = 0;\n"
	"	while (seen < 3 && time(NULL) < until) { /* the game's frame loop */\n"
	"		int rc = hr_update(m);\n"
	"		if (rc) { seen++; printf(\"update %d v%llu tick %d base %d\\n\", rc, (unsigned long long)hr_version(m), tick(), base()); fflush(stdout); }\n"
	"		usleep(1000); /* a frame's pace: the loop ends on what it waits for, or at the deadline */\n"
	"	}\n"
	"	hr_close(m);\n"
	"	printf(\"base after close %d\\n\", base());\n"
	"	m = hr_open_program(c); /* again: what was switched stays known */\n"
	"	while (hr_update(m) == 0 && time(NULL) < until)\n"
	"		usleep(1000);\n"
	"	printf(\"reopened v%llu base %d\\n\", (unsigned long long)hr_version(m), base());\n"
	"	hr_close(m);\n"
	"	hr_disconnect(c);\n"
	"	return 0;\n}\n";

Test(patchapi, hr_open_program_applies_the_patches_announced_for_its_units)
{
	tp_cfg c = { "gcc", "-O2" };
	tp_compile(&c, "game.c", tp_calls_v1, "game.o", NULL);
	tp_compile(&c, "main.c", API_MAIN, "main.o", "-I" HR_SOURCE_DIR "/client");
	tp_link_shared("");
	tp_patch(&c, tp_calls_v2, "p1.o");
	tp_patch(&c, "static int counter[2];\nint base(void) { return 9; }\nint tick(void) { return ++counter[0]; }\n", "p2.o");
	tp_patch(&c, tp_calls_v3, "p3.o");
	tp_patch(&c, "int base(void) { return 11; }\nint tick(void) { return 0; }\n", "p4.o");
	struct fake f = { .unit = t_fmt("%s/game.c", tp_dir) };
	for (int i = 0; i < 4; i++) {
		char *o = t_fmt("%s/p%d.o", tp_dir, i + 1);
		f.objs[i] = open(o, O_RDONLY | O_CLOEXEC);
		free(o);
	}
	t_run r = tp_run_standin("d.sock", &f.lfd, fake_daemon, &f);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(f.subscribed);
	cr_expect_str_eq(r.out,
			 "tick 1002 base 1\n"
			 "update 1 v1 tick 2055 base 5\n"
			 "update -22 v1 tick 3056 base 5\n"
			 "update 1 v2 tick 4063 base 7\n"
			 "base after close 7\n"
			 "reopened v1 base 11\n");
	char *loaded = t_fmt("%s v1;%s v3;", f.unit, f.unit);
	/* v4's report may be cut off by hr_disconnect right after */
	cr_expect(!strncmp(f.loaded, loaded, strlen(loaded)), "%s", f.loaded);
	cr_expect(strstr(f.refused, "v2;") && strstr(f.refused, "variable 'counter' changed size (4 \xe2\x86\x92 8 bytes)"), "%s",
		  f.refused);
	free(loaded);
	t_run_free(&r);
	for (int i = 0; i < 4; i++)
		close(f.objs[i]);
	free(f.unit);
}

Test(patchapi, hr_open_program_names_what_the_program_lacks)
{
	const char *src = "#include <errno.h>\n#include <stdio.h>\n#include <string.h>\n#include \"hotreload.h\"\n"
			  "int main(void) {\n"
			  "	hr_client *c = hr_connect_lazy(\"/nonexistent/d.sock\");\n"
			  "	hr_module *m = hr_open_program(c);\n"
			  "	printf(\"%s errno %s: %s\\n\", m ? \"opened\" : \"NULL\", m ? \"-\" : strerror(errno), hr_last_error());\n"
			  "	hr_disconnect(c);\n"
			  "	return 0;\n}\n";
	char *p = t_fmt("%s/main.c", tp_dir);
	cr_assert_eq(t_write(p, src, strlen(src)), 0);
	free(p);
	tp_link_shared("-g -I" HR_SOURCE_DIR "/client main.c");
	char *out = tp_run(NULL);
	cr_expect_str_eq(out, "NULL errno Exec format error: the program was not built with -fpatchable-function-entry=7,5 "
			      "(see pkg-config --cflags hotreload-patch)\n");
	free(out);
	tp_link_shared("-g -fpatchable-function-entry=7,5 -I" HR_SOURCE_DIR "/client main.c");
	out = tp_run(NULL);
	cr_expect_str_eq(out, "opened errno -: \n");
	free(out);
}

static const char *ONCE_MAIN =
	"#include <stdio.h>\n#include \"hotreload.h\"\n"
	"int base(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	hr_client *c = hr_connect(argv[1]);\n"
	"	hr_module *m = c ? hr_open_program(c) : NULL; /* returns once the daemon's answer came, after its BUILDs */\n"
	"	if (!m) return 1;\n"
	"	int rc = hr_update(m);\n"
	"	printf(\"update %d base %d\\n\", rc, base());\n"
	"	hr_close(m);\n"
	"	hr_disconnect(c);\n"
	"	return 0;\n}\n";

/* A program started after a save: a patch older than its executable has nothing the program lacks. */
Test(patchapi, a_patch_older_than_the_executable_is_passed_over)
{
	tp_cfg c = { "gcc", "-O0" };
	tp_patch(&c, "int base(void) { return 2; }\nint tick(void) { return 0; }\n", "p1.o");
	tp_compile(&c, "game.c", "int base(void) { return 1; }\nint tick(void) { return 0; }\n", "game.o", NULL);
	tp_compile(&c, "main.c", ONCE_MAIN, "main.o", "-I" HR_SOURCE_DIR "/client");
	tp_link_shared("");
	for (int newer = 0; newer < 2; newer++) {
		if (newer)
			tp_sh("touch -d '+1 hour' p1.o"); /* saved after the program was built */
		else
			tp_sh("touch -d '-1 hour' p1.o");
		struct fake f = { .unit = t_fmt("%s/game.c", tp_dir) };
		char *o = t_fmt("%s/p1.o", tp_dir);
		for (int i = 0; i < 4; i++)
			f.objs[i] = open(o, O_RDONLY | O_CLOEXEC);
		t_run r = tp_run_standin(newer ? "d1.sock" : "d0.sock", &f.lfd, fake_daemon, &f);
		cr_expect_str_eq(r.out, newer ? "update 1 base 2\n" : "update 0 base 1\n", "%s", r.err);
		t_run_free(&r);
		for (int i = 0; i < 4; i++)
			close(f.objs[i]);
		free(o);
		free(f.unit);
	}
}

/* ---- a change of several units (HRP_KIND_MORE) against an earlier one not applied yet ---- */

struct fake2 {
	int lfd;
	char *units[3]; /* tp_dir/x.c, tp_dir/y.c, tp_dir/z.c */
	int objs[3];
};

/* At SUBSCRIBE: x's patch (a change of its own), then the first unit of a change of y and z; z's at x's report. */
static void *fake_change(void *arg)
{
	struct fake2 *f = arg;
	hrp_reader r = { 0 };
	hrp_msg m;
	int fd = tp_accept_hello(f->lfd, &r);
	if (fd < 0)
		return NULL;
	int sent_z = 0;
	while (hrp_recv(fd, &r, &m, 20000) == 0) {
		if (m.type == HRP_SUBSCRIBE && !strcmp(m.u.sub.module, "/")) {
			tp_announce(fd, f->units[0], 1, HRP_KIND_OK, f->objs[0]);
			tp_announce(fd, f->units[1], 2, HRP_KIND_OK | HRP_KIND_MORE, f->objs[1]);
		} else if (m.type == HRP_STATUS_REQ) {
			tp_status(fd);
		} else if ((m.type == HRP_LOADED || m.type == HRP_REFUSED) && !sent_z++) {
			tp_announce(fd, f->units[2], 2, HRP_KIND_OK, f->objs[2]);
		}
	}
	hrp_reader_free(&r);
	close(fd);
	return NULL;
}

static const char *CHANGE_MAIN =
	"#include <stdio.h>\n#include <unistd.h>\n#include <time.h>\n#include \"hotreload.h\"\n"
	"int x(void); int y(void); int z(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	hr_client *c = hr_connect(argv[1]);\n"
	"	hr_module *m = c ? hr_open_program(c) : NULL; /* returns once the daemon's answer came, after its BUILDs */\n"
	"	if (!m) return 1;\n"
	"	time_t until = time(NULL) + 60;\n"
	"	for (int seen = 0; seen < 2 && time(NULL) < until; usleep(1000)) {\n"
	"		int rc = hr_update(m);\n"
	"		if (rc) { seen++; printf(\"update %d x %d y %d z %d\\n\", rc, x(), y(), z()); fflush(stdout); }\n"
	"	}\n"
	"	hr_close(m);\n"
	"	hr_disconnect(c);\n"
	"	return 0;\n}\n";

/*
 * x's patch waits for an hr_update when the first unit of a change of y and z
 * comes: that hr_update applies x alone, and y only with z, in the next.
 */
Test(patchapi, a_change_whose_last_unit_has_not_come_waits_for_it_behind_an_earlier_patch)
{
	tp_cfg c = { "gcc", "-O2" };
	const char *names[3] = { "x", "y", "z" };
	for (int i = 0; i < 3; i++) {
		char *src = t_fmt("int %s(void) { return 1; }\n", names[i]), *n = t_fmt("%s.c", names[i]),
		     *o = t_fmt("%s.o", names[i]);
		tp_compile(&c, n, src, o, NULL);
		free(src);
		free(n);
		free(o);
	}
	tp_compile(&c, "main.c", CHANGE_MAIN, "main.o", "-I" HR_SOURCE_DIR "/client");
	tp_link_shared("main.o x.o y.o z.o");
	struct fake2 f = { 0 };
	for (int i = 0; i < 3; i++) {
		char *src = t_fmt("int %s(void) { return 2; }\n", names[i]), *n = t_fmt("%s.c", names[i]),
		     *o = t_fmt("p_%s.o", names[i]), *po = t_fmt("%s/p_%s.o", tp_dir, names[i]);
		tp_compile(&c, n, src, o, NULL);
		f.units[i] = t_fmt("%s/%s.c", tp_dir, names[i]);
		f.objs[i] = open(po, O_RDONLY | O_CLOEXEC);
		free(src);
		free(n);
		free(o);
		free(po);
	}
	t_run r = tp_run_standin("d.sock", &f.lfd, fake_change, &f);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "update 1 x 2 y 1 z 1\nupdate 1 x 2 y 2 z 2\n", "%s\n%s", r.out, r.err);
	t_run_free(&r);
	for (int i = 0; i < 3; i++) {
		close(f.objs[i]);
		free(f.units[i]);
	}
}

