/* log.c: the daemon's log lines, written whole so that threads never interleave them. */
#include "log.h"

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

void hrd_log(int level, const char *fmt, ...)
{
	static const int priority[] = {3, 4, 6, 7}; /* syslog's err, warning, info, debug */
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char line[2048];
	int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000, names[level]);
	int head = n; /* the time and level: the journal's line starts after them */
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : n + m < (int)sizeof line - 1 ? n + m : (int)sizeof line - 2;
	/* A message carries file names and compiler output: one event, one line. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	remember(&ts, level, line + head, (size_t)(n - head));
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
	}
	int fd = also;
	if (fd >= 0)
		(void)!write(fd, line, (size_t)n);
}
