/* incdir.c: the folder of hotreload.h that goes on every module's include path. */
#include "incdir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by the Makefile; these stand in for a build made without it. */
#ifndef HRD_INCLUDEDIR
#define HRD_INCLUDEDIR "/usr/local/include"
#endif
#ifndef HRD_BUILD_DIR
#define HRD_BUILD_DIR ""
#endif
#ifndef HRD_SOURCE_INCLUDE
#define HRD_SOURCE_INCLUDE ""
#endif

const char *hrd_incdir(void)
{
	static char dir[PATH_MAX];
	if (dir[0])
		return dir;
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	snprintf(dir, sizeof dir, "%s", HRD_INCLUDEDIR);
	if (!realpath("/proc/self/exe", exe))
		return dir;
	char *slash = strrchr(exe, '/');
	*slash = '\0';
	if (HRD_BUILD_DIR[0] && strcmp(exe, HRD_BUILD_DIR) == 0) {
		snprintf(dir, sizeof dir, "%s", HRD_SOURCE_INCLUDE);
		return dir;
	}
	/* PREFIX/bin/hotreloadd: PREFIX/include, when hotreload.h is there */
	slash = strrchr(exe, '/');
	if (slash && strcmp(slash, "/bin") == 0) {
		snprintf(probe, sizeof probe, "%.*s/include/hotreload.h", (int)(slash - exe), exe);
		if (access(probe, R_OK) == 0)
			snprintf(dir, sizeof dir, "%.*s/include", (int)(slash - exe), exe);
	}
	return dir;
}
