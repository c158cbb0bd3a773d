/* incdir.h: the folder of hotreload.h that goes on every module's include path. */
#ifndef HRD_INCDIR_H
#define HRD_INCDIR_H

/*
 * Where this daemon's own hotreload.h is, so that a module can always
 * include <hotreload.h> (for HR_KEEP) whatever the daemon's environment: the
 * source's client/ for a daemon run from the build tree it was built in;
 * else PREFIX/include beside the PREFIX/bin it runs from, when hotreload.h is
 * there (an install under any PREFIX, given at build time or not); else the
 * Makefile's INCLUDEDIR. Worked out once; a static string.
 */
const char *hrd_incdir(void);

#endif
