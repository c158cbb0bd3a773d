/* test_ccid.c: a compiler that changed under the same name (an upgrade, another alternative) is not taken for the old one: no object of the old one is reused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(ccid, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

/* ./mycc, the compiler hotreload.conf names: gcc with COMPILER_GEN defined as gen, so that its objects tell it apart.
 * Written over in place: same name, same file, another compiler. */
static void compiler(int gen)
{
	char *path = t_fmt("%s/mycc", e2e_dir), *script = t_fmt("#!/bin/sh\nexec gcc -DCOMPILER_GEN=%d \"$@\"\n", gen);
	cr_assert_eq(t_write(path, script, strlen(script)), 0);
	cr_assert_eq(chmod(path, 0755), 0);
	free(path);
	free(script);
}

static void single(int v)
{
	char *src = t_fmt("#define V %d\nint value(void) { return COMPILER_GEN * 100 + V; }\n", v);
	e2e_put("a.c", src);
	free(src);
}

static t_proc *start(const char *module)
{
	compiler(1);
	e2e_put("hotreload.conf", "cc = ./mycc\n");
	e2e_start_daemon(NULL);
	return e2e_host(0, NULL, (const char *const[]){module, NULL});
}

Test(ccid, a_source_of_a_folder_module_is_compiled_again_by_a_changed_compiler_not_taken_from_the_cache)
{
	char *m = t_fmt("%s/m", e2e_dir);
	cr_assert_eq(mkdir(m, 0755), 0);
	free(m);
	e2e_put("m/a.c", "int b(void);\nint value(void) { return COMPILER_GEN * 10 + b(); }\n");
	e2e_put("m/b.c", "int b(void) { return 1; }\n");
	t_proc *h = start("m");
	e2e_expect(h, "first m 1 v=1 value=11");
	compiler(2);
	/* Only b.c changed: a.c's object of the first compiler is in the cache, under a key that must not match now. */
	e2e_put("m/b.c", "int b(void) { return 3; }\n");
	e2e_expect(h, "update m 1 v=2 value=23");
}

Test(ccid, going_back_to_content_built_by_the_old_compiler_compiles_it_again)
{
	single(1);
	t_proc *h = start("a");
	e2e_expect(h, "first a 1 v=1 value=101");
	single(2);
	e2e_expect(h, "update a 1 v=2 value=102");
	compiler(2);
	/* v1's content, but not v1's compiler: no reuse. */
	single(1);
	e2e_expect(h, "update a 1 v=3 value=201");
	e2e_wait_history("[.[] | select(.module == \"a\")][0] | \"\\(.status) \\(.version)\"", "ok 3");
}

Test(ccid, a_save_of_unchanged_content_after_the_compiler_changed_builds_it_with_the_new_one)
{
	single(1);
	t_proc *h = start("a");
	e2e_expect(h, "first a 1 v=1 value=101");
	compiler(2);
	single(1);
	e2e_expect(h, "update a 1 v=2 value=201");
}

Test(ccid, a_compiler_on_path_switched_to_another_by_its_symlink_builds_again)
{
	/* As update-alternatives does: bin/mycc, found on the daemon's PATH, a symlink moved from one compiler to another. */
	char *bin = t_fmt("%s/.bin", e2e_dir), *link = t_fmt("%s/mycc", bin), *path = t_fmt("PATH=%s:%s", bin, getenv("PATH"));
	cr_assert_eq(mkdir(bin, 0755), 0);
	for (int gen = 1; gen <= 2; gen++) {
		char *file = t_fmt("%s/gcc-gen%d", bin, gen), *script = t_fmt("#!/bin/sh\nexec gcc -DCOMPILER_GEN=%d \"$@\"\n", gen);
		cr_assert_eq(t_write(file, script, strlen(script)), 0);
		cr_assert_eq(chmod(file, 0755), 0);
		free(file);
		free(script);
	}
	cr_assert_eq(symlink("gcc-gen1", link), 0);
	e2e_put("hotreload.conf", "cc = mycc\n");
	single(1);
	e2e_start_daemon((const char *const[]){path, NULL});
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=101");
	char *next = t_fmt("%s/mycc.next", bin);
	cr_assert_eq(symlink("gcc-gen2", next), 0);
	cr_assert_eq(rename(next, link), 0);
	single(1);
	e2e_expect(h, "update a 1 v=2 value=201");
	free(next);
	free(bin);
	free(link);
	free(path);
}
