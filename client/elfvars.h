/* elfvars.h: the writable globals of a built object that start afresh at each load (not HR_KEEP), from its symbol table. */
#ifndef HRC_ELFVARS_H
#define HRC_ELFVARS_H

#include <stddef.h>

/* What a file may be for this to read it: a module's object, not a game's assets. */
#define HRC_ELFVARS_MAX_FILE (256u << 20)

/*
 * The names of the data objects, local and global, that the object file on
 * fd defines in .data and .bss (and their -fdata-sections parts): the
 * globals that a reload starts afresh. Left out: HR_KEEP's (hr_keep.NAME),
 * those named by an HR_FRESH(NAME) marker, reserved names (__...), and the C
 * runtime's own (crtstuff.c). Read from .symtab, else .dynsym; gcc's ".N"
 * suffix of a function's static is dropped. out gets them sorted, unique,
 * ", "-separated, cut with "..." if they do not fit; *count their number.
 * Uses pread only: fd's offset is left alone. 0, or -ENOEXEC for what is not
 * a readable ELF object of this machine's class, -EFBIG, -ENOMEM, -errno.
 */
int hrc_elfvars(int fd, char *out, size_t outsz, size_t *count);

#endif
