/* elfinput.h: the ELF drivers' shared input step: the fuzzer's bytes as a file, opened as the library opens one. */
#ifndef ELFINPUT_H
#define ELFINPUT_H
#include <stddef.h>
#include <stdint.h>

#include "../../client/elffile.h"

/* Write data to a memfd and, when hrc_elf_open takes it, call each on the image (size: the input's). */
void fuzz_elf_input(const uint8_t *data, size_t size, void (*each)(const hrc_elf *e, size_t size));

#endif
