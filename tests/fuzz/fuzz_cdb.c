/* fuzz_cdb.c: libFuzzer driver for the compile database reader (JSON, entries, shell words): any bytes, no crash, an error names the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/cdb.h"
#include "../../daemon/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hrd_cdb c;
	char err[700];
	if (hrd_cdb_parse((const char *)data, size, "/p/compile_commands.json", &c, err, sizeof err) < 0) {
		if (strncmp(err, "/p/compile_commands.json:", 25) != 0)
			abort();
		return 0;
	}
	for (size_t i = 0; i < c.n; i++) {
		if (c.u[i].file[0] != '/' || c.u[i].dir[0] != '/' || strstr(c.u[i].file, "/../") || !c.u[i].argv[0])
			abort();
		char **p = hrd_cdb_patch_argv(&c.u[i], "/s/o.o", "/s/o.d");
		hrd_words_free(p);
	}
	hrd_cdb_free(&c);
	return 0;
}
