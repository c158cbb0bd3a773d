/* patchcheck.h: check a relocatable patch object's tables before anything of it is mapped or written. */
#ifndef HRC_PATCHCHECK_H
#define HRC_PATCHCHECK_H

#include <stddef.h>

#include "elffile.h"

/* What a patch may ask to be loaded: every allocated section, .bss included. */
#define HRC_PATCH_MAX_LOAD (256ull << 20)

/*
 * Check what the loader relies on, from the file alone: a relocatable
 * object; a symbol table with terminated names, each defined symbol within
 * its section; allocated sections of power-of-two alignment, HRC_PATCH_MAX_LOAD
 * at most together; every relocation of an allocated section with a symbol
 * of the table and its whole width within a section that has bytes (so the
 * loader writes only into the patch's own block). Tables aligned for their
 * entries. 0, or -ENOEXEC / -EFBIG / -ENOTSUP with what and where in err.
 */
int hrc_patch_check(const hrc_elf *e, char *err, size_t errsz);

#endif
