/* test_deps.c: scripts/deps.sh: what it reports, and what it asks a non-root user to run. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/*
 * deps.sh as user nobody, with a PATH whose first entry holds stand-ins. The
 * script is copied there: nobody may not be able to read the checkout.
 */
static t_run deps_as_nobody(const char *bin, const char *what)
{
	char *path = t_fmt("PATH=%s:/usr/local/bin:/usr/bin:/bin", bin), *script = t_fmt("%s/deps.sh", bin);
	size_t n;
	char *text = t_read(HR_SOURCE_DIR "/scripts/deps.sh", &n);
	cr_assert(text && t_write(script, text, n) == 0);
	chmod(script, 0755);
	const char *env[] = { path, NULL };
	t_run r = t_exec(bin, env,
	                 (const char *const[]){ "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
	                                        "sh", script, what, NULL });
	free(text);
	free(script);
	free(path);
	return r;
}

static char *bin;

static void setup(void)
{
	bin = t_tmpdir();
	chmod(bin, 0755);
}

static void teardown(void)
{
	t_rmtree(bin);
	free(bin);
}

TestSuite(deps, .init = setup, .fini = teardown, .timeout = 60);

Test(deps, satisfied_dependencies_pass_quietly)
{
	t_run r = deps_as_nobody(bin, "test");
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.err, "");
	t_run_free(&r);
}

Test(deps, a_non_root_user_is_told_the_exact_command)
{
	/* a pkg-config that finds nothing: the libraries it checks count as missing */
	char *pc = t_fmt("%s/pkg-config", bin);
	const char shim[] = "#!/bin/sh\nexit 1\n";
	cr_assert_eq(t_write(pc, shim, sizeof shim - 1), 0);
	chmod(pc, 0755);
	t_run r = deps_as_nobody(bin, "test");
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "sudo apt-get install -y"), "%s", r.err);
	cr_assert(strstr(r.err, "libsqlite3-dev") && strstr(r.err, "libcriterion-dev"), "%s", r.err);
	cr_assert_null(strstr(r.err, "jq"), "jq is there: %s", r.err);
	t_run_free(&r);
	free(pc);
}

Test(deps, a_bad_argument_is_a_usage_error)
{
	t_run r = deps_as_nobody(bin, "everything");
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "usage"), "%s", r.err);
	t_run_free(&r);
}
