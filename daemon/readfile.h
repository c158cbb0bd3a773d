/* readfile.h: a whole file in memory, the one way the daemon reads one. */
#ifndef HRD_READFILE_H
#define HRD_READFILE_H

#include <stddef.h>

/*
 * The regular file at path (through dirfd, or AT_FDCWD), NUL-terminated,
 * its length in *len; the caller frees it. NULL with errno when it cannot
 * be read, is not a regular file (EINVAL), or is longer than max (EFBIG;
 * 0: no limit). A file whose size is past max is refused before anything
 * is allocated, and no more than max + 1 bytes are ever held. Opened
 * without blocking, so a fifo put in its place cannot hang the daemon.
 */
char *hrd_readfile(int dirfd, const char *path, size_t max, size_t *len);
/* The same from fd, a file already opened (and checked) by the caller, who keeps and closes it. */
char *hrd_readfd(int fd, size_t max, size_t *len);

#endif
