/* log.h: the daemon's log: one line per event on stderr, with a UTC time and a level, or as the journal wants it. */
#ifndef HRD_LOG_H
#define HRD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum hrd_level { HRD_ERROR, HRD_WARN, HRD_INFO, HRD_DEBUG };

/* Lines above this level are dropped (default HRD_INFO). Also looks whether stderr is the journal: call it again when stderr changes. */
void hrd_log_level(int level);
/* The level called name ("error", "warn", "info", "debug"), or -1. */
int hrd_log_level_named(const char *name);
/* Also write each line to fd (-1: stop): a detaching daemon's log file holds its start too. */
void hrd_log_also(int fd);
/*
 * Rotate the log file that stderr is now: past max bytes it becomes name.1 in
 * the folder dirfd (the old one there goes), and stderr a new name, both
 * opened through dirfd, never through a link. dirfd stays open while lines
 * may come; -1 stops.
 */
void hrd_log_rotate(int dirfd, const char *name, uint64_t max);
/*
 * A line. Lines of one kind (one fmt at one level) come at most
 * HRD_LOG_BURST at once, then HRD_LOG_RATE a second; those left out are
 * counted, and the count told in a line of its own before the next of that
 * kind. Debug lines are not limited.
 */
#define HRD_LOG_BURST 200
#define HRD_LOG_RATE 20
__attribute__((format(printf, 2, 3))) void hrd_log(int level, const char *fmt, ...);

/*
 * The recent lines for `hotreload log`, every level whatever
 * hrd_log_level says: the last HRD_LOG_RECENT of info and above, and as
 * many debug lines, kept apart so that debug lines never push out the
 * others. An eventfd readable when new ones came (made once; -1 if it cannot
 * be). A reader's cursor starts zeroed; hrd_log_recent hands it up to most
 * lines at max_level or below, oldest first, and returns 1 when more wait.
 * Lines written over before the reader came to them are told as one warn
 * line. fn may log: it is called with no lock held.
 */
#define HRD_LOG_RECENT 256
typedef struct hrd_log_cursor {
	uint64_t pos[2], lost[2];
} hrd_log_cursor;
int hrd_log_recent_fd(void);
int hrd_log_recent(hrd_log_cursor *c, int max_level, size_t most,
                   void (*fn)(void *arg, int64_t at_us, int level, const char *text), void *arg);

#define hrd_error(...) hrd_log(HRD_ERROR, __VA_ARGS__)
#define hrd_warn(...) hrd_log(HRD_WARN, __VA_ARGS__)
#define hrd_info(...) hrd_log(HRD_INFO, __VA_ARGS__)
#define hrd_debug(...) hrd_log(HRD_DEBUG, __VA_ARGS__)

#endif
