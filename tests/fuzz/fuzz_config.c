/* fuzz_config.c: libFuzzer driver for the hotreload.conf parser: any bytes, no crash, an error always names the file and a line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/config.h"

static int count(void *arg, const char *word)
{
	(void)word;
	++*(size_t *)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hrd_config c;
	char err[512];
	if (hrd_config_parse((const char *)data, size, "hotreload.conf", &c, err, sizeof err) < 0) {
		if (strncmp(err, "hotreload.conf:", 15) != 0)
			abort();
		return 0;
	}
	/* A module's words are the project's and its own: each list, not their sum over modules, is bounded. */
	for (int k = 0; k < HRD_NKEYS; k++)
		for (size_t i = 0; i <= c.nmods; i++) {
			size_t n = 0;
			hrd_config_words(&c, i < c.nmods ? c.mods[i].name : NULL, (enum hrd_key)k, count, &n);
			if (n > size)
				abort(); /* no word comes from nothing */
		}
	hrd_config_excluded(&c, "a/b.c");
	hrd_config_free(&c);
	return 0;
}
