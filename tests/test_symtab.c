/* test_symtab.c: the library's symbol table against dlsym, for every hash table style and symbol kind. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/symtab.h"
#include "util.h"

static char *dir;

static void setup(void)
{
	dir = t_tmpdir();
}

static void teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

TestSuite(symtab, .init = setup, .fini = teardown);

/* 300 functions and 300 objects, a weak one, an indirect function, a thread-local, a hidden and a static one. */
static const char *source(void)
{
	static char src[64 * 1024];
	size_t n = 0;
	n += (size_t)snprintf(src + n, sizeof src - n,
	                      "__thread int tls_var;\n"
	                      "__attribute__((visibility(\"hidden\"))) int hidden_fn(void) { return 1; }\n"
	                      "static int static_fn(void) { return 2; }\n"
	                      "__attribute__((weak)) int weak_fn(void) { return static_fn(); }\n"
	                      "static int real(void) { return 3; }\n"
	                      "static int (*pick(void))(void) { return real; }\n"
	                      "int ifunc_fn(void) __attribute__((ifunc(\"pick\")));\n");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, "int fn_%d(void) { return %d; }\nint obj_%d = %d;\n", i, i,
		                      i, i);
	return src;
}

static void check(const char *style)
{
	char *c = t_fmt("%s/m.c", dir), *so = t_fmt("%s/m-%s.so", dir, style), *hs = t_fmt("-Wl,--hash-style=%s", style);
	const char *src = source();
	cr_assert_eq(t_write(c, src, strlen(src)), 0);
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "cc", "-shared", "-fPIC", hs, "-o", so, c, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	cr_assert(h, "%s", dlerror());
	hrc_symtab t;
	cr_assert_eq(hrc_symtab_make(&t, h), 0);
	for (int i = 0; i < 300; i++) {
		char name[32];
		snprintf(name, sizeof name, "fn_%d", i);
		cr_assert_eq(hrc_symtab_find(&t, name), dlsym(h, name), "%s (%s)", name, style);
		snprintf(name, sizeof name, "obj_%d", i);
		cr_assert_eq(hrc_symtab_find(&t, name), dlsym(h, name), "%s (%s)", name, style);
	}
	cr_assert_eq(hrc_symtab_find(&t, "weak_fn"), dlsym(h, "weak_fn"));
	cr_assert_eq(hrc_symtab_find(&t, "ifunc_fn"), dlsym(h, "ifunc_fn"), "an ifunc resolves as dlsym does");
	cr_assert_eq(((int (*)(void))hrc_symtab_find(&t, "ifunc_fn"))(), 3);
	cr_assert_null(hrc_symtab_find(&t, "tls_var"), "thread-local: no one address");
	cr_assert_null(hrc_symtab_find(&t, "hidden_fn"));
	cr_assert_null(hrc_symtab_find(&t, "static_fn"));
	cr_assert_null(hrc_symtab_find(&t, "printf"), "only what the object defines");
	cr_assert_null(hrc_symtab_find(&t, ""));
	hrc_symtab_free(&t);
	dlclose(h);
	free(c);
	free(so);
	free(hs);
}

Test(symtab, matches_dlsym_with_a_gnu_hash_table)
{
	check("gnu");
}

Test(symtab, matches_dlsym_with_a_sysv_hash_table)
{
	check("sysv");
}

Test(symtab, matches_dlsym_with_both_tables)
{
	check("both");
}

Test(symtab, takes_the_default_version_of_a_versioned_symbol)
{
	char *c = t_fmt("%s/v.c", dir), *map = t_fmt("%s/v.map", dir), *so = t_fmt("%s/v.so", dir);
	char *ver = t_fmt("-Wl,--version-script=%s", map);
	const char *src = "int old_f(void) { return 1; }\nint new_f(void) { return 2; }\n"
	                  "__asm__(\".symver old_f,f@V1\");\n__asm__(\".symver new_f,f@@V2\");\n";
	const char *vmap = "V1 { local: old_f; new_f; };\nV2 { } V1;\n";
	cr_assert_eq(t_write(c, src, strlen(src)), 0);
	cr_assert_eq(t_write(map, vmap, strlen(vmap)), 0);
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "cc", "-shared", "-fPIC", ver, "-o", so, c, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	cr_assert(h, "%s", dlerror());
	hrc_symtab t;
	cr_assert_eq(hrc_symtab_make(&t, h), 0);
	size_t named_f = 0;
	for (size_t i = 0; i < t.n; i++)
		named_f += strcmp(t.syms[i].name, "f") == 0;
	cr_assert_eq(named_f, 1, "f@V1 is not a name a caller can mean");
	cr_assert_eq(((int (*)(void))hrc_symtab_find(&t, "f"))(), 2);
	cr_assert_eq(hrc_symtab_find(&t, "f"), dlsym(h, "f"));
	hrc_symtab_free(&t);
	dlclose(h);
	free(c);
	free(map);
	free(so);
	free(ver);
}
