/* hotreload.h: the client library that a game links to run new builds of its modules live. */
#ifndef HOTRELOAD_H
#define HOTRELOAD_H

#include <stddef.h>
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
 * used by one thread at a time: hr_update, hr_sym, hr_version, hr_guard,
 * hr_set_userdata and hr_close on one module must not run concurrently (different modules
 * may be updated on different threads). The hooks run on the thread that
 * called hr_update. The library's thread never raises SIGPIPE, and blocks
 * every signal but the faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT),
 * so that a crash in a module's constructor or destructor, which run on it,
 * reaches the program's handler; a fault signal sent to the whole process
 * may be handled on it too.
 *
 * Hooks. A module may export
 *     int  hr_on_load(void *userdata, uint64_t previous_version);
 *     void hr_on_unload(void *userdata);
 * At a switch the old build's hr_on_unload runs, then the new build's
 * hr_on_load (previous_version is 0 at the first load). If hr_on_load returns
 * non-zero, or crashes (a SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT on the
 * calling thread), the new build is refused: the old build's hr_on_load runs
 * again with its own version, and the old build stays live. A caught crash
 * skips the rest of the hook (see hr_guard for what that leaves behind).
 * Module constructors run on the library's thread and are not guarded.
 *
 * Old builds. A pointer from hr_sym stays valid for HR_WINDOW_DEFAULT (8)
 * further switches of its module: the build it points into is unmapped at the
 * 9th switch after the pointer was taken (the 8th after the switch that
 * retired it), never earlier. hr_set_window changes the window.
 * So a host that re-resolves its pointers whenever hr_version changes, before
 * it calls into the module again, is always safe; a host that keeps a pointer
 * longer must not call it after the window has passed.
 *
 * State. The host's own memory survives a reload by construction: keep the
 * game's state there, and hand it to the module through userdata. A module's
 * globals are new at each build, unless declared with HR_KEEP (below).
 *
 * Reconnects. If the daemon goes away (stopped, crashed, restarting), the
 * live builds stay live, an HR_NOTE_DISCONNECTED note is posted, and the
 * library's thread tries again after 50 ms, doubling up to every 2 s. When the
 * daemon is back it subscribes again, and newer builds flow as before. If the
 * daemon's history was replaced (a new database), the next build it gives is
 * taken as newer whatever its number: hr_version may then go down, once.
 *
 * Errors. Functions that return a pointer return NULL with errno set;
 * functions that return int return a negative errno value.
 *
 * Structs. The handles are opaque. A struct that the caller allocates and the
 * library fills (hr_note, hr_stats) ends in reserved words, which the library
 * zeroes: a later version turns them into fields, so its size never changes.
 * A struct that the caller fills and passes in (hr_connect_options) starts
 * with its size, which the caller sets: a later version that grows it takes
 * what an older program does not pass as zero. New structs follow one rule or
 * the other.
 */

/*
 * A module global that keeps its value across reloads:
 *     HR_KEEP(int, score) = 0;          the initialiser counts at the first load only
 *     HR_KEEP(struct player, player);
 *     HR_KEEP(float[64], samples);
 * At a switch, after the old build's hr_on_unload and before the new build's
 * hr_on_load, each kept global of the new build takes the bytes of the live
 * build's kept global of the same name, if its size is the same. If the size
 * changed it keeps its initialiser, and a note says so. The rules:
 *   - the name is the key: rename it to start afresh when its meaning changes
 *     but not its size;
 *   - the bytes are copied, so a kept value must not point into the module
 *     (its functions, string literals and static data move at each reload);
 *     pointers to the heap or to the host's memory are fine;
 *   - not static, and one definition per module (two files of a folder module
 *     cannot keep the same name: the link fails);
 *   - a module opened twice in one process shares its globals: open a module
 *     that keeps globals once.
 * It needs GNU C (gcc, clang, tcc): the global is exported under the name
 * "hr_keep.NAME", which no C identifier can clash with.
 */
#define HR_KEEP(type, name) \
	__attribute__((visibility("protected"))) __typeof__(type) name __asm__("hr_keep." #name)

/*
 * A module global that is meant to start afresh at each reload, said once
 * after its definition:
 *     static int frame_count;
 *     HR_FRESH(frame_count);
 * At a module's first load, and whenever the set changes, the library posts
 * an HR_NOTE_GLOBALS note (and the daemon logs a line) naming the writable
 * globals of the build (in .data and .bss, static or not) that neither
 * HR_KEEP keeps nor HR_FRESH names: a reload quietly resets them. HR_FRESH
 * adds a pointer to the global under the name "hr_fresh.NAME" (a misspelt
 * name does not compile), and changes nothing else.
 */
#define HR_FRESH(name) \
	__attribute__((used)) static void *const hr_fresh_##name##_ __asm__("hr_fresh." #name) = (void *)&(name)

typedef struct hr_client hr_client;
typedef struct hr_module hr_module;

/* hr_set_window: keep every old build mapped until hr_close. */
#define HR_WINDOW_FOREVER UINT32_MAX
#define HR_WINDOW_DEFAULT 8u

/*
 * Connect to hotreloadd at socket_path. NULL means $HOTRELOAD_SOCKET, else
 * .hotreload/hotreloadd.sock in the current directory, else in one folder
 * directly under it (a game run from its project's root finds
 * modules/.hotreload/), else in the nearest parent that has one; when none is
 * found, where it looked goes to stderr. Returns a client, which the caller frees with hr_disconnect, or
 * NULL with errno set when no daemon answers (ENOENT: no socket found,
 * ECONNREFUSED: a socket but no daemon, ETIMEDOUT: it did not answer within
 * 5 s, EPROTO: it is not hotreloadd or speaks another protocol version,
 * EACCES: it does not accept this user (see hotreloadd --allow-uid), or
 * it runs as a uid that this program does not trust (see hr_connect_opts)) or on
 * ENOMEM, EMFILE... If the daemon goes away later, see Reconnects above. The
 * first call installs the handlers that catch crashes in hr_on_load and
 * hr_guard (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT), process-wide and for
 * good: outside a guarded call they pass every signal on to the handler that
 * was there before, so a program that has its own installs it before.
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
 * same objects, so they share the builds' globals. While the daemon is away
 * it returns at once, and the build comes once the daemon is back. NULL with
 * errno: EINVAL (not a module name: [A-Za-z0-9_-]+, at most 200 bytes), ENOMEM.
 */
HR_EXPORT hr_module *hr_open(hr_client *c, const char *name);

/*
 * A module that stands for the running program's own code: patch builds of
 * its translation units (the daemon's --patch) are applied to it at
 * hr_update, all units pending together, at that safe point only; 1 when
 * something was patched, 0 when nothing changed, a negative errno when a
 * patch was refused (the program runs on unpatched; the daemon records why).
 * hr_version counts the patches applied; hr_close keeps patched code in
 * place; hr_sym finds nothing. The program must be built with the flags of
 * pkg-config hotreload-patch (or hotreload-patch-clang): PATCHING.md says
 * what is patched and its limits. NULL with errno, and hr_last_error()
 * naming what the program lacks: ENOEXEC (no DWARF, not built with
 * -fpatchable-function-entry=7,5, not x86-64, stripped), ENOMEM, EINVAL.
 */
HR_EXPORT hr_module *hr_open_program(hr_client *c);
/* Why the last hr_open_program of this thread failed ("" if it did not). */
HR_EXPORT const char *hr_last_error(void);

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
 * when its hr_on_load failed or crashed. The old build stays live, and the
 * daemon records the refusal with its reason. A refusal followed by a newer build
 * that loads is reported as the switch to that build. With nothing new it
 * costs an atomic load: no system call, no lock. A switch makes no system
 * call and takes no page fault of the library's (the build's pages were
 * made present on the library's thread, which learns of the switch without
 * being woken); its notes come a little later.
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
 * Like hr_connect, for a game that may start before the daemon: it does not
 * fail when no daemon answers, and connects in the background instead (see
 * Reconnects above). It tries once before it returns, waiting at most 250 ms
 * for an answer, so that a daemon already running is there for hr_open. hr_open returns at once while there is no daemon, and
 * its module runs nothing until the daemon gives it a build. With
 * socket_path NULL the socket is looked for again at each attempt. NULL with
 * errno only on ENOMEM, EMFILE...
 */
HR_EXPORT hr_client *hr_connect_lazy(const char *socket_path);

/*
 * Who the program trusts. A daemon is trusted when the uid the kernel gives
 * for its end of the socket (SO_PEERCRED) is the program's own (effective)
 * uid, root's, or one of those it was told to trust: HOTRELOAD_TRUST_UID
 * (uids, comma-separated) and trust_uids below. Whatever a daemon announces,
 * the program runs: trust a uid only if you would run its code as yours.
 * nobody (65534, the uid a user namespace shows for whoever it cannot map)
 * can never be trusted. hr_connect fails with EACCES, before it reads a byte
 * from the daemon, when the one that answers is not trusted; a lazy client
 * posts a note saying so, and tries again later. Going up from the current
 * directory, only a .hotreload folder owned by a trusted uid and writable by
 * nobody else, holding a socket owned by a trusted uid, is taken. A setuid
 * program ignores HOTRELOAD_TRUST_UID and HOTRELOAD_SOCKET. Builds reach the program as open
 * descriptors, never as paths: it loads what the daemon published.
 */
typedef struct hr_connect_options {
	size_t size;                /* sizeof(hr_connect_options): a later library takes fields past it as zero */
	int lazy;                   /* as hr_connect_lazy */
	const uint32_t *trust_uids; /* more uids to trust (at most 8 with HOTRELOAD_TRUST_UID's); NULL for none */
	size_t ntrust_uids;
} hr_connect_options;

/* hr_connect, or with lazy set hr_connect_lazy, with options (NULL, or size too small: EINVAL). EINVAL
 * too for a uid that cannot be trusted, more than 8, or a HOTRELOAD_TRUST_UID that is not a list of
 * uids; E2BIG for a larger struct (a newer header's) with a field this library does not know set. Each
 * mapped build holds a descriptor: mind RLIMIT_NOFILE with HR_WINDOW_FOREVER. */
HR_EXPORT hr_client *hr_connect_opts(const char *socket_path, const hr_connect_options *opts);

/*
 * Call fn(arg), module code, so that a crash in it does not end the program
 * (fn must return, or crash: not leave by longjmp or a C++ exception):
 * returns 0 when fn returned, or -EFAULT when a SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE or SIGABRT on this thread ended it. A crash is posted as an
 * HR_NOTE_CRASHED note about m. Opt-in, and with limits: the jump out of fn
 * skips the rest of it, so whatever it held stays held (a lock, a half-made
 * change to your state, a heap lock if it crashed inside malloc); a crash on
 * another thread, or in a signal handler, or a stack overflow on a thread
 * whose alternate signal stack is too small, is not caught; and the program
 * may not install handlers for those signals after hr_connect (ours chain to
 * the ones installed before). Use it to survive a bad frame while you fix the
 * code, not to run on for good. It makes no system call but on a thread's
 * first guarded call, which lends the thread an alternate signal stack
 * (128 KiB) for the rest of its life if it has none.
 */
HR_EXPORT int hr_guard(hr_module *m, void (*fn)(void *arg), void *arg);

/* ---- Notifications, for an in-game HUD ---- */

enum hr_note_kind {
	HR_NOTE_LOADED = 1,   /* a new build went live (HR_INFO) */
	HR_NOTE_FAILED,       /* a build did not compile or link: text is the first error, file:line: message (HR_ERROR) */
	HR_NOTE_REFUSED,      /* a build did not load, or its hr_on_load failed or crashed: the old one stays (HR_ERROR) */
	HR_NOTE_CRASHED,      /* module code crashed in hr_guard (HR_ERROR) */
	HR_NOTE_RESET,        /* a kept global (HR_KEEP) started afresh: its size changed (HR_WARNING) */
	HR_NOTE_DISCONNECTED, /* the daemon went away: what is live stays live (HR_WARNING) */
	HR_NOTE_CONNECTED,    /* the daemon answered: after a lazy start, or back after a disconnection (HR_INFO) */
	HR_NOTE_GLOBALS       /* a build's globals that restart at each reload, neither HR_KEEP nor HR_FRESH (HR_WARNING) */
};

enum hr_severity { HR_INFO = 0, HR_WARNING = 1, HR_ERROR = 2 };

typedef struct hr_note {
	int kind;          /* enum hr_note_kind */
	int severity;      /* enum hr_severity */
	uint64_t version;  /* the build it is about, 0 for none */
	uint64_t at_us;    /* when, in microseconds since the Unix epoch */
	char module[256];  /* the module, "" for the connection */
	char text[256];    /* one line for a human, naming the module: "physics v4 live" */
	uint64_t reserved[4]; /* zero: room for later fields */
} hr_note;

/*
 * Copy c's current notes, oldest first, into out[0..max), and return how
 * many are current (which may be more than max). A module has at most one:
 * its newest. An HR_INFO note expires after the time set with hr_set_note_ttl
 * (3000 ms by default); an error stays until that module's next note (its
 * next build that goes live, or fails), and a disconnection until the
 * reconnection. Any thread; takes the client's lock, no system call.
 */
HR_EXPORT size_t hr_notes(hr_client *c, hr_note *out, size_t max);
HR_EXPORT void hr_set_note_ttl(hr_client *c, uint32_t ms);

/*
 * Where c gives each note as it is posted: fn(note, arg) runs on the
 * library's thread (and, for the last notes, on the thread that calls
 * hr_disconnect), must not block for long, and must not call back into c.
 * Once hr_set_note_sink returns, the sink it replaced is not running and is
 * never called again: so it waits for a sink that is running, and must not be
 * called holding a lock that the sink takes. The default, hr_note_print, prints one line to
 * stderr; NULL turns it off.
 */
typedef void hr_note_fn(const hr_note *note, void *arg);
HR_EXPORT void hr_set_note_sink(hr_client *c, hr_note_fn *fn, void *arg);
/* The default sink: "hotreload: TEXT" on stderr (arg is unused). */
HR_EXPORT void hr_note_print(const hr_note *note, void *arg);

/* ---- Statistics ---- */

typedef struct hr_stats {
	uint64_t switches;          /* hr_update calls that switched, over all of c's modules */
	uint64_t refusals;          /* builds refused here: did not load, hr_on_load failed or crashed */
	uint64_t crashes;           /* crashes caught in hr_guard */
	uint64_t reconnects;        /* times the daemon came back */
	uint64_t last_switch_at_us; /* when the last switch happened, microseconds since the Unix epoch (0: none) */
	uint64_t last_switch_ns;    /* what the last switch cost the calling thread, hooks excluded */
	uint64_t avg_switch_ns;     /* the same, averaged over every switch */
	uint64_t byte_builds;       /* builds whose object came as bytes, checked against its SHA-256: no descriptor
	                             * reaches this process (a socket forwarded by ssh) */
	uint64_t reserved[7];       /* zero: room for later fields */
} hr_stats;

/* Fill *out with c's figures so far. Any thread; takes the client's lock. */
HR_EXPORT void hr_get_stats(hr_client *c, hr_stats *out);

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
