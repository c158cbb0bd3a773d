/* log.c: the daemon's log lines, written whole so that threads never interleave them. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int max_level = HRD_INFO;
static _Atomic int also = -1; /* read by the watcher thread too */

void hrd_log_also(int fd)
{
	also = fd;
}

void hrd_log_level(int level)
{
	max_level = level;
}

void hrd_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	if (level > max_level)
		return;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char line[2048];
	int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000, names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : n + m < (int)sizeof line - 1 ? n + m : (int)sizeof line - 2;
	/* A message carries file names and compiler output: one event, one line. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* One write(2): lines from the watcher thread and the loop stay whole. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
	int fd = also;
	if (fd >= 0)
		(void)!write(fd, line, (size_t)n);
}
