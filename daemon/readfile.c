/* readfile.c: a whole file in memory, the one way the daemon reads one. */
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

char *hrd_readfile(int dirfd, const char *path, size_t max, size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	*len = 0;
	if (fd < 0)
		return NULL;
	char *text = hrd_readfd(fd, max, len);
	int e = errno;
	close(fd);
	errno = e;
	return text;
}

char *hrd_readfd(int fd, size_t max, size_t *len)
{
	int e = 0;
	struct stat st;
	char *text = NULL;
	size_t n = 0, cap = 0;
	*len = 0;
	if (fstat(fd, &st) < 0) {
		e = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		e = EINVAL;
		goto out;
	}
	/* Refused by its size before anything is allocated; a file that grows
	 * while it is read is refused once it passes the bound, with no more
	 * than the bound and its NUL ever held. */
	if (max && (uint64_t)st.st_size > max) {
		e = EFBIG;
		goto out;
	}
	size_t bound = max ? max + 1 : SIZE_MAX;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= bound) {
				char more;
				ssize_t k;
				while ((k = read(fd, &more, 1)) < 0 && errno == EINTR)
					;
				e = k < 0 ? errno : k > 0 ? EFBIG : 0;
				if (e)
					goto out;
				break;
			}
			/* one read for a file that holds still */
			size_t want = cap ? 2 * cap : (size_t)st.st_size + 4096;
			if (want > bound || want < cap)
				want = bound;
			char *grown = realloc(text, want);
			if (!grown) {
				e = ENOMEM;
				goto out;
			}
			text = grown;
			cap = want;
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
	}
	text[n] = '\0';
	*len = n;
out:
	if (e) {
		free(text);
		errno = e;
		return NULL;
	}
	return text;
}
