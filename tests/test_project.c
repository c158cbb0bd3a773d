/* test_project.c: module names and sources from a root's layout, the inputs' key, SHA-256. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../daemon/project.h"
#include "../proto/sha256.h"
#include "util.h"

static char *dir;
static hrd_project p;

static void setup(void)
{
	dir = t_tmpdir();
	p.rootfd = open(dir, O_PATH | O_DIRECTORY);
	p.skip = "state";
}

static void teardown(void)
{
	close(p.rootfd);
	t_rmtree(dir);
	free(dir);
}

TestSuite(project, .init = setup, .fini = teardown);

static void put(const char *rel, const char *text)
{
	char *path = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(t_write(path, text, strlen(text)), 0, "%s", path);
	free(path);
}

static void mkd(const char *rel)
{
	char *path = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
	free(path);
}

Test(project, names)
{
	const char *good[] = { "enemy", "Enemy_2", "a-b", "x" };
	const char *bad[] = { "", "a/b", "..", ".", "a b", "é", "a.b", "a\nb" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		cr_assert(hrp_valid_name(good[i]), "%s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_assert(!hrp_valid_name(bad[i]), "%s", bad[i]);
	char longname[202];
	memset(longname, 'a', 201);
	longname[201] = '\0';
	cr_assert(!hrp_valid_name(longname));
}

Test(project, module_of_a_path)
{
	struct { const char *path, *name; } cases[] = {
		{ "enemy.c", "enemy" },      { "ai", "ai" },           { "ai/think.c", "ai" },
		{ "ai/deep/x.c", NULL },     { "ai/notes.txt", NULL }, { ".git", NULL },
		{ ".git/x.c", NULL },        { ".enemy.c", ".enemy" }, { "ai/.#think.c", NULL },
		{ ".", NULL },               { "..", NULL },
		{ "state", NULL },           { "state/x.c", NULL },    { "bad name.c", "bad name" },
		{ "Makefile", "Makefile" },  { ".c", ".c" },            { "ai/.c", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char name[256] = "";
		int got = hrd_project_module_of(&p, cases[i].path, name, sizeof name);
		if (cases[i].name) {
			cr_assert(got, "%s should map to %s", cases[i].path, cases[i].name);
			cr_assert_str_eq(name, cases[i].name);
		} else {
			cr_assert(!got, "%s should be no module's, got %s", cases[i].path, name);
		}
	}
}

Test(project, resolve_files_folders_and_conflicts)
{
	put("enemy.c", "int f;");
	mkd("ai");
	put("ai/b.c", "int b;");
	put("ai/a.c", "int a;");
	put("ai/.#a.c", "lock");
	put("ai/notes.md", "");
	mkd("ai/sub");
	put("ai/sub/deep.c", "int d;");
	mkd("empty");
	put("both.c", "");
	mkd("both");
	put("both/x.c", "");
	hrd_sources s;
	cr_assert_eq(hrd_project_resolve(&p, "enemy", &s), HRD_KIND_FILE);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.path[0], "enemy.c");
	hrd_sources_free(&s);
	cr_assert_eq(hrd_project_resolve(&p, "ai", &s), HRD_KIND_DIR);
	cr_assert_eq(s.n, 2, "only .c files directly in the folder, sorted");
	cr_assert_str_eq(s.path[0], "ai/a.c");
	cr_assert_str_eq(s.path[1], "ai/b.c");
	hrd_sources_free(&s);
	cr_assert_eq(hrd_project_resolve(&p, "empty", &s), HRD_KIND_NONE);
	cr_assert_eq(hrd_project_resolve(&p, "both", &s), HRD_KIND_CONFLICT);
	cr_assert_eq(hrd_project_resolve(&p, "gone", &s), HRD_KIND_NONE);
}

Test(project, the_key_follows_content_names_and_command)
{
	put("a.c", "int a;");
	hrd_sources s;
	cr_assert_eq(hrd_project_resolve(&p, "a", &s), HRD_KIND_FILE);
	char *cmd1[] = { "cc", "-g", NULL }, *cmd2[] = { "cc", "-O2", NULL };
	char k1[65], k2[65], k3[65], k4[65];
	hrd_stamp st[1];
	cr_assert_eq(hrd_project_key(&p, &s, NULL, cmd1, k1, st), 0);
	cr_assert(hrd_project_unchanged(&p, &s, NULL, st));
	cr_assert_eq(hrd_project_key(&p, &s, NULL, cmd1, k2, NULL), 0);
	cr_assert_str_eq(k1, k2);
	cr_assert_eq(hrd_project_key(&p, &s, NULL, cmd2, k3, NULL), 0);
	cr_assert_str_neq(k1, k3, "flags are part of the key");
	/* The same bytes written again: the key is the same, the stamp is not. */
	char *path = t_fmt("%s/a.c", dir);
	struct timespec later[2] = { { 0, UTIME_OMIT }, { 2000000000, 0 } };
	put("a.c", "int a;");
	cr_assert_eq(utimensat(AT_FDCWD, path, later, 0), 0);
	cr_assert_eq(hrd_project_key(&p, &s, NULL, cmd1, k2, NULL), 0);
	cr_assert_str_eq(k1, k2);
	cr_assert(!hrd_project_unchanged(&p, &s, NULL, st), "rewritten in place: the compile read something else");
	put("a.c", "int b;");
	cr_assert_eq(hrd_project_key(&p, &s, NULL, cmd1, k4, NULL), 0);
	cr_assert_str_neq(k1, k4, "content is part of the key");
	unlink(path);
	free(path);
	cr_assert_eq(hrd_project_key(&p, &s, NULL, cmd1, k4, NULL), -1);
	cr_assert(!hrd_project_unchanged(&p, &s, NULL, st));
	hrd_sources_free(&s);
}

Test(project, sha256_vectors)
{
	struct { const char *in, *hex; } v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		hrp_sha256 c;
		char out[65];
		hrp_sha256_init(&c);
		hrp_sha256_update(&c, v[i].in, strlen(v[i].in));
		hrp_sha256_hex(&c, out);
		cr_assert_str_eq(out, v[i].hex);
	}
	/* A million 'a's, fed in uneven pieces across block edges. */
	hrp_sha256 c;
	char a[1000], out[65];
	memset(a, 'a', sizeof a);
	hrp_sha256_init(&c);
	for (size_t done = 0, step = 1; done < 1000000; done += step, step = step % 997 + 1)
		hrp_sha256_update(&c, a, done + step > 1000000 ? 1000000 - done : step);
	hrp_sha256_hex(&c, out);
	cr_assert_str_eq(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

Test(project, a_header_that_is_a_device_counts_as_gone_and_is_never_read, .timeout = 60)
{
	/* A dependency file may name anything: /dev/zero read to its end never ends. */
	put("a.c", "int a;");
	hrd_sources s;
	cr_assert_eq(hrd_project_resolve(&p, "a", &s), HRD_KIND_FILE);
	char *cmd[] = { "cc", NULL }, *none[] = { "h.h", NULL }, *dev[] = { "/dev/zero", NULL };
	char gone[65], k[65];
	hrd_deps missing = { none, 1 }, zero = { dev, 1 };
	hrd_stamp st[2];
	cr_assert_eq(hrd_project_key(&p, &s, &missing, cmd, gone, st), 0);
	cr_assert_eq(hrd_project_key(&p, &s, &zero, cmd, k, st), 0);
	cr_assert_eq(st[1].ino, 0, "a device has no stamp: it counts as gone");
	char *link = t_fmt("%s/h.h", dir);
	cr_assert_eq(symlink("/dev/zero", link), 0);
	cr_assert_eq(hrd_project_key(&p, &s, &missing, cmd, k, st), 0);
	cr_assert_str_eq(k, gone, "a header linked to a device is no file: the same key as none");
	cr_assert(hrd_project_unchanged(&p, &s, &missing, st));
	free(link);
	hrd_sources_free(&s);
}
