/* hotreload.c: libhotreload, the in-process reloader (for now: its version). */
#include "hotreload.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *hr_library_version(void)
{
	return STR(HOTRELOAD_VERSION_MAJOR) "." STR(HOTRELOAD_VERSION_MINOR) "." STR(HOTRELOAD_VERSION_PATCH);
}
