/* gdbjit.h: GDB's JIT interface: each applied patch is shown to a debugger as an in-memory object at its loaded addresses. */
#ifndef HRC_GDBJIT_H
#define HRC_GDBJIT_H

#include <stddef.h>
#include <stdint.h>

#include "elffile.h"

/*
 * A copy of the relocatable object e whose allocated sections say where they
 * were loaded (secaddr[i], 0: not loaded), as LLVM's JIT registers its
 * objects; the caller may apply its debug relocations in the copy. NULL on ENOMEM.
 */
void *hrc_gdbjit_image(const hrc_elf *e, const uint64_t *secaddr, size_t *size);
/* Hand the image to a debugger (now or one attached later). It stays registered, and allocated, for good. */
void hrc_gdbjit_register(void *image, size_t size);

#endif
