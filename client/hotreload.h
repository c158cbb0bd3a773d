/* hotreload.h: the client library that a game links to run new builds of its modules live. */
#ifndef HOTRELOAD_H
#define HOTRELOAD_H

#include <stdint.h>

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
 * How it works. hotreloadd builds each module of a watched folder into a new
 * shared object at every save and announces it on its socket. A client
 * (hr_connect) has one thread of its own that receives the announcements,
 * dlopens each new build of the modules the program opened (hr_open) and
 * resolves their symbols, all ahead of time. The program switches to the new
 * build when it calls hr_update at a point of its choosing, typically the top
 * of a frame: that is the only place where the live build changes.
 *
 * Threads. A client's functions may be called from any thread. A module is
 * used by one thread at a time: hr_update, hr_sym, hr_version, hr_set_userdata
 * and hr_close on one module must not run concurrently (different modules
 * may be updated on different threads). The hooks run on the thread that
 * called hr_update. The library's thread blocks every signal and never
 * raises SIGPIPE; module constructors and destructors run on it.
 *
 * Hooks. A module may export
 *     int  hr_on_load(void *userdata, uint64_t previous_version);
 *     void hr_on_unload(void *userdata);
 * At a switch the old build's hr_on_unload runs, then the new build's
 * hr_on_load (previous_version is 0 at the first load). If hr_on_load returns
 * non-zero, the new build is refused: the old build's hr_on_load runs again
 * with its own version, and the old build stays live.
 *
 * Old builds. A pointer from hr_sym stays valid for HR_WINDOW_DEFAULT (8)
 * further switches of its module: the build it points into is unmapped at the
 * 9th switch after the pointer was taken (the 8th after the switch that
 * retired it), never earlier. hr_set_window changes the window.
 * So a host that re-resolves its pointers whenever hr_version changes, before
 * it calls into the module again, is always safe; a host that keeps a pointer
 * longer must not call it after the window has passed.
 *
 * Errors. Functions that return a pointer return NULL with errno set;
 * functions that return int return a negative errno value.
 */

typedef struct hr_client hr_client;
typedef struct hr_module hr_module;

/* hr_set_window: keep every old build mapped until hr_close. */
#define HR_WINDOW_FOREVER UINT32_MAX
#define HR_WINDOW_DEFAULT 8u

/*
 * Connect to hotreloadd at socket_path. NULL means $HOTRELOAD_SOCKET, else
 * the first .hotreload/hotreloadd.sock found going up from the current
 * directory. Returns a client, which the caller frees with hr_disconnect, or
 * NULL with errno set when no daemon answers (ENOENT: no socket found,
 * ECONNREFUSED: a socket but no daemon, ETIMEDOUT: it did not answer within
 * 5 s, EPROTO: it is not hotreloadd or speaks another protocol version,
 * EACCES: it does not accept this user: see hotreloadd --allow-uid) or on
 * ENOMEM, EMFILE... If the daemon goes away later, the live builds stay live
 * and nothing new comes.
 */
HR_EXPORT hr_client *hr_connect(const char *socket_path);

/*
 * Close every module of c (see hr_close), stop its thread and free it. No
 * module of c may be in use on another thread. NULL is a no-op.
 */
HR_EXPORT void hr_disconnect(hr_client *c);

/*
 * Follow module name (a file NAME.c or a folder NAME/ of the watched root).
 * Never switches anything: the first build goes live at the next hr_update.
 * Returns once the newest good build is loaded in the background, or at
 * once when the daemon has none; when a first build is under way it waits
 * for it, up to 10 seconds (after that the build goes live at an hr_update
 * once it lands). A build that does not load in this process is passed over
 * for the newest one that does. The module belongs to c; free it with
 * hr_close or hr_disconnect. Two modules of one name in one client load the
 * same objects, so they share the builds' globals. NULL with errno: EINVAL
 * (not a module name: [A-Za-z0-9_-]+), ENOMEM, EPIPE (the daemon went away
 * before it gave a build).
 */
HR_EXPORT hr_module *hr_open(hr_client *c, const char *name);

/*
 * Run the live build's hr_on_unload, then unmap every build of m and free it.
 * Pointers from hr_sym are invalid afterwards. NULL is a no-op.
 */
HR_EXPORT void hr_close(hr_module *m);

/* The pointer that m's hooks receive (NULL until set). */
HR_EXPORT void hr_set_userdata(hr_module *m, void *userdata);

/*
 * The safe point: switch m to its newest loaded build, if there is one.
 * Returns 1 when it switched (hooks ran, hr_version changed), 0 when nothing
 * changed, and a negative value when a new build was refused: -ENOEXEC when
 * it did not load in this process (an unresolved symbol, say), -ECANCELED
 * when its hr_on_load failed. The old build stays live, and the daemon
 * records the refusal with its reason. A refusal followed by a newer build
 * that loads is reported as the switch to that build. With nothing new it
 * costs an atomic load: no system call, no lock.
 */
HR_EXPORT int hr_update(hr_module *m);

/*
 * The address of symbol in m's live build, or NULL (no live build yet, or the
 * build defines no such symbol; errno is not set). Only symbols that the
 * build itself defines and exports are found, not those of the libraries it
 * uses. It takes no lock: the table is made when the build is loaded. The
 * pointer stays valid for the window of switches described above.
 */
HR_EXPORT void *hr_sym(hr_module *m, const char *symbol);

/* The live build's version (0 before the first switch). It changes exactly when the live build does. */
HR_EXPORT uint64_t hr_version(const hr_module *m);

/*
 * How many switches an old build of each of c's modules stays mapped after
 * it stopped being live (HR_WINDOW_DEFAULT at first; 0 unmaps it at the
 * switch itself; HR_WINDOW_FOREVER never unmaps before hr_close). Each
 * mapped build costs a few memory mappings: the kernel caps a process at
 * about 65530 of them. Takes effect at the next switch.
 */
HR_EXPORT void hr_set_window(hr_client *c, uint32_t switches);

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
