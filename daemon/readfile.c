/* readfile.c: a whole file in memory, the one way the daemon reads one. */
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

char *hrd_readfile(int dirfd, const char *path, size_t max, size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), e = 0;
	struct stat st;
	char *text = NULL;
	size_t n = 0, cap = 0;
	*len = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		e = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		e = EINVAL;
		goto out;
	}
	for (;;) {
		if (n + 1 >= cap) {
			cap = cap ? 2 * cap : (size_t)st.st_size + 4096; /* one read for a file that holds still */
			char *grown = realloc(text, cap);
			if (!grown) {
				e = ENOMEM;
				goto out;
			}
			text = grown;
		}
		ssize_t k = read(fd, text + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			e = errno;
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (max && n > max) {
			e = EFBIG;
			goto out;
		}
	}
	text[n] = '\0';
	*len = n;
out:
	close(fd);
	if (e) {
		free(text);
		errno = e;
		return NULL;
	}
	return text;
}
