/* elfcheck.h: whether a built object is one this program can load: an ELF shared object of its class, byte order and machine. */
#ifndef HRC_ELFCHECK_H
#define HRC_ELFCHECK_H

#include <stddef.h>

/*
 * Compare the ELF header of the object on fd (its first 64 bytes, by pread:
 * fd's offset is left alone) with this program's own. 0 when it can be
 * loaded here; else -ENOEXEC, or -errno when it cannot be read, with the
 * reason in why, naming both machines. dlopen's own word for an object of
 * another machine is "cannot open shared object file", which says nothing.
 */
int hrc_elf_check(int fd, char *why, size_t whysz);

/* The same against the header own (at least 20 bytes), in place of this program's: for the tests. */
int hrc_elf_check_with(const unsigned char *own, int fd, char *why, size_t whysz);

#endif
