/* fuzz_mountinfo.c: libFuzzer driver for the mountinfo reader: any bytes, no crash, and a match is a mount point that holds the path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/fsinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {"/", "/home/me/game", "/mnt/my drive/src"};
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		char type[64], mnt[256];
		if (hrd_fs_mountinfo((const char *)data, size, paths[i], type, sizeof type, mnt, sizeof mnt) == 0) {
			size_t m = strlen(mnt);
			if (mnt[0] != '/' || (strcmp(mnt, "/") != 0 && (strncmp(paths[i], mnt, m) != 0 ||
			                                                 (paths[i][m] && paths[i][m] != '/'))))
				abort();
		}
	}
	return 0;
}
