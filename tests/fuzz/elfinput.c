/* elfinput.c: the fuzzer's bytes as an ELF image, for fuzz_dwarf and fuzz_patch (elfinput.h). */
#include "elfinput.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void fuzz_elf_input(const uint8_t *data, size_t size, void (*each)(const hrc_elf *e, size_t size))
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	hrc_elf e;
	char err[256];
	if (hrc_elf_open(&e, fd, err, sizeof err) == 0) {
		each(&e, size);
		hrc_elf_close(&e);
	}
	close(fd);
}
