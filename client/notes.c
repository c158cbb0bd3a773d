/* notes.c: the current notifications (one per module, successes expiring) and the queue for the sink. */
#include "notes.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { TTL_DEFAULT_MS = 3000 };

static uint64_t clock_us(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static int severity(int kind)
{
	switch (kind) {
	case HR_NOTE_LOADED:
	case HR_NOTE_CONNECTED:
		return HR_INFO;
	case HR_NOTE_RESET:
	case HR_NOTE_DISCONNECTED:
	case HR_NOTE_GLOBALS:
		return HR_WARNING;
	default:
		return HR_ERROR;
	}
}

void hrc_notes_init(hrc_notes *n)
{
	memset(n, 0, sizeof *n);
	n->ttl_ms = TTL_DEFAULT_MS;
}

static void drop(hrc_notes *n, size_t i)
{
	memmove(&n->cur[i], &n->cur[i + 1], (n->ncur - i - 1) * sizeof n->cur[0]);
	memmove(&n->born_ms[i], &n->born_ms[i + 1], (n->ncur - i - 1) * sizeof n->born_ms[0]);
	n->ncur--;
}

static void expire(hrc_notes *n)
{
	uint64_t now = clock_us(CLOCK_MONOTONIC) / 1000u;
	for (size_t i = n->ncur; i-- > 0;)
		if (n->cur[i].severity == HR_INFO && now - n->born_ms[i] >= n->ttl_ms)
			drop(n, i);
}

void hrc_notes_post(hrc_notes *n, int kind, const char *module, uint64_t version, const char *fmt, ...)
{
	hr_note note = {.kind = kind, .severity = severity(kind), .version = version,
	                .at_us = clock_us(CLOCK_REALTIME)};
	snprintf(note.module, sizeof note.module, "%s", module);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(note.text, sizeof note.text, fmt, ap);
	va_end(ap);
	expire(n);
	for (size_t i = 0; i < n->ncur; i++)
		if (strcmp(n->cur[i].module, note.module) == 0) {
			drop(n, i);
			break;
		}
	if (n->ncur == HRC_NOTES_MAX) {
		/* Full: a success goes first, else the oldest. */
		size_t i = 0;
		while (i < n->ncur && n->cur[i].severity != HR_INFO)
			i++;
		drop(n, i < n->ncur ? i : 0);
	}
	n->cur[n->ncur] = note;
	n->born_ms[n->ncur++] = clock_us(CLOCK_MONOTONIC) / 1000u;
	if (n->nqueue == HRC_SINK_MAX) {
		/* The sink is behind by a whole queue: the oldest goes. */
		memmove(&n->queue[0], &n->queue[1], (HRC_SINK_MAX - 1) * sizeof n->queue[0]);
		n->nqueue--;
	}
	n->queue[n->nqueue++] = note;
}

size_t hrc_notes_copy(hrc_notes *n, hr_note *out, size_t max)
{
	expire(n);
	for (size_t i = 0; i < n->ncur && i < max; i++)
		out[i] = n->cur[i];
	return n->ncur;
}

int hrc_notes_next(hrc_notes *n, hr_note *out)
{
	if (!n->nqueue)
		return 0;
	*out = n->queue[0];
	memmove(&n->queue[0], &n->queue[1], (n->nqueue - 1) * sizeof n->queue[0]);
	n->nqueue--;
	return 1;
}
