/* log.c: the daemon's log lines, written whole so that threads never interleave them, at a bounded rate, to a file rotated by size. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *const names[] = {"error", "warn", "info", "debug"};
static _Atomic int max_level = HRD_INFO; /* set again when a detaching daemon's stderr changes */
static _Atomic int also = -1; /* read by the watcher thread too */
static _Atomic int journal;   /* stderr is the journal (read by the watcher thread too) */

/*
 * systemd sets JOURNAL_STREAM to the device and inode of the stream it gave
 * as stderr. When stderr is still that stream, a line is "<priority>text":
 * the journal keeps the priority, and stamps the time itself.
 */
static int to_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* The recent lines: a ring, written by any thread, read on the loop. */
/*
 * The recent lines: two rings, so that a scan's many debug lines never push
 * out the builds and failures (info and above). Written by any thread, read
 * on the loop; a line's seq orders it across the two.
 */
static struct recent {
	uint64_t seq;
	int64_t at_us;
	int level;
	char text[1024];
} ring[2][HRD_LOG_RECENT];
static uint64_t written[2], next_seq = 1;
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int ring_fd = -1;

int hrd_log_recent_fd(void)
{
	pthread_mutex_lock(&ring_mu);
	if (ring_fd < 0)
		ring_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_unlock(&ring_mu);
	return ring_fd;
}

int hrd_log_recent(hrd_log_cursor *c, int most_detailed, size_t most,
                   void (*fn)(void *arg, int64_t at_us, int level, const char *text), void *arg)
{
	int rings = most_detailed >= HRD_DEBUG ? 2 : 1;
	for (size_t sent = 0; sent < most; sent++) {
		struct recent r;
		uint64_t lost = 0;
		int k = -1;
		pthread_mutex_lock(&ring_mu);
		for (int i = 0; i < rings; i++) {
			if (written[i] > HRD_LOG_RECENT && c->pos[i] < written[i] - HRD_LOG_RECENT) {
				c->lost[i] += written[i] - HRD_LOG_RECENT - c->pos[i]; /* written over before this reader came */
				c->pos[i] = written[i] - HRD_LOG_RECENT;
			}
			if (c->pos[i] < written[i] &&
			    (k < 0 || ring[i][c->pos[i] % HRD_LOG_RECENT].seq < ring[k][c->pos[k] % HRD_LOG_RECENT].seq))
				k = i;
		}
		/* The lines lost in a ring are told where they were: before its oldest line kept. */
		if (k >= 0 && c->lost[k]) {
			lost = c->lost[k];
			c->lost[k] = 0;
		} else if (k >= 0) {
			r = ring[k][c->pos[k]++ % HRD_LOG_RECENT];
		}
		pthread_mutex_unlock(&ring_mu);
		if (k < 0)
			return 0;
		if (lost) {
			char note[128];
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			snprintf(note, sizeof note, "%llu log lines were written over before they could be sent",
			         (unsigned long long)lost);
			fn(arg, (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000, HRD_WARN, note);
			continue;
		}
		fn(arg, r.at_us, r.level, r.text);
	}
	return 1;
}

static void remember(const struct timespec *ts, int level, const char *text, size_t n)
{
	int k = level >= HRD_DEBUG;
	pthread_mutex_lock(&ring_mu);
	struct recent *r = &ring[k][written[k]++ % HRD_LOG_RECENT];
	r->seq = next_seq++;
	r->at_us = (int64_t)ts->tv_sec * 1000000 + ts->tv_nsec / 1000;
	r->level = level;
	if (n >= sizeof r->text)
		n = sizeof r->text - 1;
	memcpy(r->text, text, n);
	r->text[n] = '\0';
	int fd = ring_fd;
	pthread_mutex_unlock(&ring_mu);
	uint64_t one = 1;
	if (fd >= 0)
		(void)!write(fd, &one, sizeof one);
}

int hrd_log_level_named(const char *name)
{
	for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

void hrd_log_also(int fd)
{
	also = fd;
}

void hrd_log_level(int level)
{
	max_level = level;
	journal = to_journal();
}

/*
 * Each kind of line (one format at one level) may come HRD_LOG_BURST times at
 * once, then HRD_LOG_RATE a second; the lines past that are counted, not
 * written, and the count is told before the next line of that kind that is.
 * A client refused a thousand times a second costs a few lines a second, not
 * a thousand. Debug lines, which are asked for, are not limited. The rate is
 * kept as the time a kind's next line is due (GCRA): a line comes through
 * when that time is at most a burst ahead of now.
 */
#define STEP_US (1000000 / HRD_LOG_RATE)
static struct kind {
	const char *fmt;
	int level;
	int64_t due_us;
	uint64_t left_out;
	char like[96]; /* the last line of this kind written, for the count's line */
} kinds[32];
static pthread_mutex_t kinds_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * 1 when a line of fmt at level may be written at now_us, else 0 (counted).
 * When lines of a kind were left out and are now to be told (that kind's next
 * line, or a kind whose place in the table is taken), *told gets their line.
 */
static int admit(const char *fmt, int level, int64_t now_us, const char *text, char *told, size_t n, int *told_level)
{
	struct kind *k = NULL, *oldest = &kinds[0];
	told[0] = '\0';
	*told_level = level;
	pthread_mutex_lock(&kinds_mu);
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds && !k; i++) {
		if (kinds[i].fmt == fmt && kinds[i].level == level)
			k = &kinds[i];
		else if (kinds[i].due_us < oldest->due_us)
			oldest = &kinds[i];
	}
	if (!k) { /* the one longest quiet makes way, telling what it left out */
		k = oldest;
		*told_level = k->level;
		if (k->left_out)
			snprintf(told, n, "%llu more lines like \"%s\" were left out: more than %d a second",
			         (unsigned long long)k->left_out, k->like, HRD_LOG_RATE);
		*k = (struct kind){.fmt = fmt, .level = level, .due_us = now_us};
	}
	if (k->due_us < now_us)
		k->due_us = now_us;
	int ok = k->due_us - now_us <= (int64_t)(HRD_LOG_BURST - 1) * STEP_US;
	if (!ok) {
		k->left_out++;
	} else {
		if (k->left_out)
			snprintf(told, n, "%llu more lines like \"%s\" were left out: more than %d a second",
			         (unsigned long long)k->left_out, k->like, HRD_LOG_RATE);
		k->left_out = 0;
		k->due_us += STEP_US;
		snprintf(k->like, sizeof k->like, "%s", text);
	}
	pthread_mutex_unlock(&kinds_mu);
	return ok;
}

/* The log file that stderr is, rotated by size: see hrd_log_rotate. */
static struct {
	pthread_mutex_t mu;
	_Atomic int dirfd; /* -1: not rotated (read by the watcher thread too) */
	char name[64];
	uint64_t max, size;
} rot = {PTHREAD_MUTEX_INITIALIZER, -1, "", 0, 0};

void hrd_log_rotate(int dirfd, const char *name, uint64_t max)
{
	struct stat st;
	pthread_mutex_lock(&rot.mu);
	snprintf(rot.name, sizeof rot.name, "%s", name ? name : "");
	rot.max = max;
	rot.size = fstat(STDERR_FILENO, &st) == 0 ? (uint64_t)st.st_size : 0;
	rot.dirfd = dirfd;
	pthread_mutex_unlock(&rot.mu);
}

/*
 * After n bytes went to stderr: past the maximum, the file becomes NAME.1
 * (the one there before goes) and stderr a new NAME, both through the
 * folder's descriptor. If that fails, it is said in the old file, and tried
 * again after as many bytes again.
 */
static void rotate_after(size_t n)
{
	if (rot.dirfd < 0)
		return;
	pthread_mutex_lock(&rot.mu);
	rot.size += n;
	if (rot.dirfd >= 0 && rot.size >= rot.max) {
		char old[80];
		int fd = -1;
		snprintf(old, sizeof old, "%s.1", rot.name);
		if (renameat(rot.dirfd, rot.name, rot.dirfd, old) == 0)
			fd = openat(rot.dirfd, rot.name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 && dup2(fd, STDERR_FILENO) >= 0) {
			close(fd);
		} else {
			char line[256];
			int k = snprintf(line, sizeof line, "the log cannot be rotated (%s): it goes on growing\n", strerror(errno));
			(void)!write(STDERR_FILENO, line, (size_t)k);
			if (fd >= 0)
				close(fd);
		}
		rot.size = 0;
	}
	pthread_mutex_unlock(&rot.mu);
}

/* Write one whole line of text, stamped with ts, at level: to stderr and the other file, as they want it. */
static void emit(const struct timespec *ts, int level, const char *text)
{
	static const int priority[] = {3, 4, 6, 7}; /* syslog's err, warning, info, debug */
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	char line[2048];
	int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s ", ts->tv_nsec / 1000000, names[level]);
	int head = n; /* the time and level: the journal's line starts after them */
	int m = snprintf(line + n, sizeof line - (size_t)n - 1, "%s", text);
	n = n + m < (int)sizeof line - 1 ? n + m : (int)sizeof line - 2;
	remember(ts, level, line + head, (size_t)(n - head));
	if (level > max_level)
		return;
	line[n++] = '\n';
	/* One write(2): lines from the watcher thread and the loop stay whole. */
	if (journal) {
		char pri[3] = {'<', (char)('0' + priority[level]), '>'};
		struct iovec v[2] = {{pri, sizeof pri}, {line + head, (size_t)(n - head)}};
		(void)!writev(STDERR_FILENO, v, 2);
	} else {
		(void)!write(STDERR_FILENO, line, (size_t)n);
		rotate_after((size_t)n);
	}
	int fd = also;
	if (fd >= 0)
		(void)!write(fd, line, (size_t)n);
}

void hrd_log(int level, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char text[1800], told[256];
	int told_level;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (m < 0)
		text[0] = '\0';
	/* A message carries file names and compiler output: one event, one line. */
	for (char *c = text; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	struct timespec mono; /* the rate's clock: one set back must not hold lines up */
	clock_gettime(CLOCK_MONOTONIC, &mono);
	if (level < HRD_DEBUG &&
	    !admit(fmt, level, (int64_t)mono.tv_sec * 1000000 + mono.tv_nsec / 1000, text, told, sizeof told, &told_level))
		return;
	if (level < HRD_DEBUG && told[0])
		emit(&ts, told_level, told);
	emit(&ts, level, text);
}
