/* test_readfile.c: the daemon's one way to read a file: regular files only, and never more than its bound in memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../daemon/readfile.h"
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

TestSuite(readfile, .init = setup, .fini = teardown, .timeout = 30);

static char *path_of(const char *name)
{
	return t_fmt("%s/%s", dir, name);
}

Test(readfile, a_file_up_to_the_bound_is_read_whole_and_one_byte_more_is_refused)
{
	char *p = path_of("f"), data[4096];
	memset(data, 'x', sizeof data);
	cr_assert_eq(t_write(p, data, sizeof data), 0);
	size_t len = 1;
	char *text = hrd_readfile(AT_FDCWD, p, sizeof data, &len);
	cr_assert_not_null(text, "%s", strerror(errno));
	cr_assert_eq(len, sizeof data);
	cr_assert_eq(text[len], '\0');
	cr_assert_eq(memcmp(text, data, sizeof data), 0);
	free(text);
	errno = 0;
	cr_assert_null(hrd_readfile(AT_FDCWD, p, sizeof data - 1, &len));
	cr_assert_eq(errno, EFBIG, "%s", strerror(errno));
	cr_assert_eq(len, 0);
	/* An empty file is an empty string. */
	cr_assert_eq(t_write(p, "", 0), 0);
	text = hrd_readfile(AT_FDCWD, p, 16, &len);
	cr_assert(text && len == 0 && text[0] == '\0');
	free(text);
	free(p);
}

Test(readfile, a_huge_file_is_refused_by_its_size_before_anything_is_allocated)
{
	/* A terabyte that takes no space: reading it, or making room for it, would fail with ENOMEM or worse. */
	char *p = path_of("sparse");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)1 << 40), 0, "%s", strerror(errno));
	close(fd);
	size_t len;
	errno = 0;
	cr_assert_null(hrd_readfile(AT_FDCWD, p, 1u << 20, &len));
	cr_assert_eq(errno, EFBIG, "a file past the bound must be refused as too big, not tried: %s", strerror(errno));
	free(p);
}

Test(readfile, a_device_or_a_fifo_is_not_read)
{
	size_t len;
	errno = 0;
	cr_assert_null(hrd_readfile(AT_FDCWD, "/dev/zero", 1u << 20, &len));
	cr_assert_eq(errno, EINVAL);
	char *p = path_of("fifo");
	cr_assert_eq(mkfifo(p, 0600), 0);
	/* A writer holds it open: reading would wait for it, or read it forever. */
	int w = open(p, O_RDWR);
	cr_assert_geq(w, 0);
	cr_assert_eq(write(w, "x", 1), 1);
	errno = 0;
	cr_assert_null(hrd_readfile(AT_FDCWD, p, 1u << 20, &len));
	cr_assert_eq(errno, EINVAL);
	close(w);
	free(p);
}
