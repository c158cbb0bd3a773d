/* notes.h: the notifications a client keeps for the host's HUD, and the queue for its sink. */
#ifndef HRC_NOTES_H
#define HRC_NOTES_H

#include "hotreload.h"

#include <stddef.h>

enum { HRC_NOTES_MAX = 32, HRC_SINK_MAX = 64 };

/* Not thread-safe: the client's lock guards it. */
typedef struct hrc_notes {
	hr_note cur[HRC_NOTES_MAX]; /* the current notes, oldest first, at most one per module (and one for the connection) */
	uint64_t born_ms[HRC_NOTES_MAX]; /* monotonic, for expiry */
	size_t ncur;
	hr_note queue[HRC_SINK_MAX]; /* posted, not yet given to the sink */
	size_t nqueue;
	uint32_t ttl_ms; /* how long an HR_INFO note stays current */
} hrc_notes;

void hrc_notes_init(hrc_notes *n);
/*
 * Post a note about module ("" for the connection): it replaces that
 * module's current note, and is queued for the sink. The severity follows
 * from the kind. text is printf-formatted, truncated to fit.
 */
void hrc_notes_post(hrc_notes *n, int kind, const char *module, uint64_t version, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Copy up to max current notes (expired ones dropped first); returns how many are current. */
size_t hrc_notes_copy(hrc_notes *n, hr_note *out, size_t max);
/* Take the oldest note queued for the sink: 1 with it in *out, 0 when there is none. */
int hrc_notes_next(hrc_notes *n, hr_note *out);

#endif
