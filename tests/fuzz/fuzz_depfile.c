/* fuzz_depfile.c: libFuzzer driver for the dependency-file reader: any bytes, no crash, every path non-empty and within the input's size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/depfile.h"

static int check(void *arg, const char *path)
{
	size_t n = strlen(path);
	if (n == 0 || n > *(size_t *)arg)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hrd_depfile_parse((const char *)data, size, check, &size);
	return 0;
}
