/* test_depfile.c: reading the compiler's dependency files (gcc's and clang's forms, escapes, bad input), and the dependency sets made from them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../daemon/depfile.h"

struct seen {
	char all[1024];
	int n, stop_at;
};

static int collect(void *arg, const char *path)
{
	struct seen *s = arg;
	size_t l = strlen(s->all);
	snprintf(s->all + l, sizeof s->all - l, "%s[%s]", s->n ? " " : "", path);
	return ++s->n == s->stop_at ? 7 : 0;
}

static void expect(const char *text, int rc, const char *want)
{
	struct seen s = {"", 0, 0};
	cr_expect_eq(hrd_depfile_parse(text, strlen(text), collect, &s), rc, "rc for \"%s\"", text);
	cr_expect_str_eq(s.all, want, "for \"%s\"", text);
}

Test(depfile, gcc_forms)
{
	expect("tmp/a.o: a.c include/common.h\n", 0, "[a.c] [include/common.h]");
	expect("tmp/a.o: a.c \\\n include/common.h \\\n  /abs/x.h\n", 0, "[a.c] [include/common.h] [/abs/x.h]");
	/* -MP adds a rule with no prerequisites per header */
	expect("a.o: a.c b.h\n\nb.h:\n", 0, "[a.c] [b.h]");
	expect("a.o: a.c", 0, "[a.c]"); /* no final newline */
	expect("", 0, "");
	expect("a.o b.o: a.c\r\n", 0, "[a.c]");
}

Test(depfile, escapes)
{
	expect("a.o: my\\ file.c dir\\ x/h\\#1.h cost$$.h\n", 0, "[my file.c] [dir x/h#1.h] [cost$.h]");
	/* a colon after the first is part of a path; one not followed by a blank is part of a target */
	expect("a:b.o: c:d.h\n", 0, "[c:d.h]");
	/* a lone backslash is itself; 2N+1 before a blank are N and the blank; 2N end the word after N */
	expect("a.o: x\\y.h\n", 0, "[x\\y.h]");
	expect("a.o: bs\\\\\\ sp.h tab\\\tx.h\n", 0, "[bs\\ sp.h] [tab\tx.h]");
	expect("a.o: end\\\\ b.h\n", 0, "[end\\] [b.h]");
}

Test(depfile, not_a_depfile)
{
	expect("hello world\n", -1, "");
	expect("a.o: a.c\njunk\n", -1, "[a.c]");
	struct seen s = {"", 0, 0};
	cr_expect_eq(hrd_depfile_parse("a.o: a\0b.h\n", 11, collect, &s), -1, "a NUL byte: not text");
	cr_expect_eq(s.n, 0);
}

Test(depfile, the_callback_stops_the_walk)
{
	struct seen s = {"", 0, 2};
	cr_expect_eq(hrd_depfile_parse("a.o: 1.h 2.h 3.h\n", 17, collect, &s), 7);
	cr_expect_str_eq(s.all, "[1.h] [2.h]");
}

#include <fcntl.h>
#include <unistd.h>

#include "../daemon/deps.h"
#include "util.h"

static char *joined(const hrd_deps *d)
{
	static char all[1024];
	all[0] = '\0';
	for (size_t i = 0; i < d->n; i++)
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s[%s]", i ? " " : "", d->path[i]);
	return all;
}

Test(depset, paths_are_named_as_the_watcher_names_them_sorted_and_once)
{
	hrd_deps d = {0};
	const char *in[] = {"a.h", "./a.h", "x/../a.h", "x/y/../../a.h", "../a.h", "a/b/../../../c.h", "x/./y.h",
	                    "/r/oot/inc/a.h", "/usr/include/x.h", "/a/../b.h", "x//y.h", "x/..", NULL};
	for (size_t i = 0; in[i]; i++)
		cr_assert_eq(hrd_deps_add(&d, "/r/oot", in[i]), 0);
	/* above the root: absolute, as the folder watched for it names it */
	cr_expect_str_eq(joined(&d), "[/b.h] [/r/a.h] [/r/c.h] [/usr/include/x.h] [a.h] [inc/a.h] [x/y.h]");
	cr_expect(hrd_deps_has(&d, "inc/a.h"));
	cr_expect(!hrd_deps_has(&d, "inc"));
	/* local/a.h may shadow inc/a.h and a.h; inc/a.h itself shadows a.h (another path) */
	cr_expect(hrd_deps_shadowed(&d, "local/a.h"));
	cr_expect(!hrd_deps_shadowed(&d, "local/z.h"));
	hrd_deps other = {0};
	cr_assert_eq(hrd_deps_add(&other, "/r/oot", "x/y.h"), 0);
	cr_expect(!hrd_deps_equal(&d, &other));
	cr_assert_eq(hrd_deps_merge(&other, &d), 0);
	cr_expect(hrd_deps_equal(&d, &other));
	hrd_deps_free(&d);
	hrd_deps_free(&other);
	cr_expect_eq(d.n, 0);
}

Test(depset, a_dependency_file_gives_everything_but_the_modules_own_sources)
{
	char *dir = t_tmpdir(), *path = t_fmt("%s/a.d", dir);
	const char *text = "tmp/a.o: b/x.c /r/oot/include/w.h \\\n include/c.h b/y.c\n";
	cr_assert_eq(t_write(path, text, strlen(text)), 0);
	char *src[] = {"b/x.c", "b/y.c"};
	hrd_deps d = {0};
	cr_assert_eq(hrd_deps_read(&d, AT_FDCWD, path, "/r/oot", src, 2), 0);
	cr_expect_str_eq(joined(&d), "[include/c.h] [include/w.h]");
	cr_assert_eq(t_write(path, "junk\n", 5), 0);
	cr_expect_eq(hrd_deps_read(&d, AT_FDCWD, path, "/r/oot", src, 2), -1, "not a dependency file");
	unlink(path);
	cr_expect_eq(hrd_deps_read(&d, AT_FDCWD, path, "/r/oot", src, 2), -1, "gone");
	hrd_deps_free(&d);
	t_rmtree(dir);
	free(dir);
	free(path);
}
