/* gdbjit.c: GDB's JIT interface (the protocol of gdb's "JIT Interface" chapter), for patches loaded by our own loader. */
#include "gdbjit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The names and layout are the debugger's: it finds them by name and reads them from the process. */
struct jit_code_entry {
	struct jit_code_entry *next_entry, *prev_entry;
	const char *symfile_addr;
	uint64_t symfile_size;
};

struct jit_descriptor {
	uint32_t version, action_flag; /* action: 0 none, 1 register, 2 unregister */
	struct jit_code_entry *relevant_entry, *first_entry;
};

/* Default visibility: one descriptor in the process, even if another JIT (LLVM) defines it too. */
__attribute__((visibility("default"), noinline, used)) void __jit_debug_register_code(void);
__attribute__((visibility("default"), used)) struct jit_descriptor __jit_debug_descriptor = { 1, 0, 0, 0 };

void __jit_debug_register_code(void)
{
	__asm__ volatile("" ::: "memory"); /* the debugger's breakpoint lands here */
}

static pthread_mutex_t jit_lock = PTHREAD_MUTEX_INITIALIZER;

void *hrc_gdbjit_image(const hrc_elf *e, const uint64_t *secaddr, size_t *size)
{
	uint8_t *img = malloc(e->size);
	if (!img)
		return NULL;
	memcpy(img, e->map, e->size);
	Elf64_Shdr *sh = (Elf64_Shdr *)(img + e->eh->e_shoff);
	for (unsigned i = 0; i < e->eh->e_shnum; i++)
		if (secaddr[i])
			sh[i].sh_addr = secaddr[i];
	*size = e->size;
	return img;
}

void hrc_gdbjit_register(void *image, size_t size)
{
	struct jit_code_entry *en = calloc(1, sizeof *en);
	if (!en)
		return; /* the patch works; only a debugger will not see it */
	en->symfile_addr = image;
	en->symfile_size = size;
	pthread_mutex_lock(&jit_lock);
	en->next_entry = __jit_debug_descriptor.first_entry;
	if (en->next_entry)
		en->next_entry->prev_entry = en;
	__jit_debug_descriptor.first_entry = en;
	__jit_debug_descriptor.relevant_entry = en;
	__jit_debug_descriptor.action_flag = 1;
	__jit_debug_register_code();
	pthread_mutex_unlock(&jit_lock);
}
