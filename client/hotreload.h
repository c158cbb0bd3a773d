/* hotreload.h: the client library that a game links to run new builds of its modules live. */
#ifndef HOTRELOAD_H
#define HOTRELOAD_H

#define HOTRELOAD_VERSION_MAJOR 0
#define HOTRELOAD_VERSION_MINOR 1
#define HOTRELOAD_VERSION_PATCH 0

#if defined(__GNUC__)
#define HR_EXPORT __attribute__((visibility("default")))
#else
#define HR_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library's version as "MAJOR.MINOR.PATCH", from the library that is
 * loaded at run time (compare with the HOTRELOAD_VERSION_* macros the program
 * was built with). A static string: never free it. Thread-safe.
 */
HR_EXPORT const char *hr_library_version(void);

#ifdef __cplusplus
}
#endif

#endif
