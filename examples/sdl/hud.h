/* hud.h: the game's heads-up display: the reloader's notes, the live versions, a frame-time graph. */
#ifndef HUD_H
#define HUD_H

#include <hotreload.h>

#include "draw.h"

#define HUD_FRAMES 240   /* the graph's width: the last 4 s at 60 frames a second */
#define HUD_BANNER 0x8b1a1a    /* behind an error: the sdl suite looks for this colour */
#define HUD_ERROR_INK 0xffe0e0 /* and for the error's text on it */
#define HUD_NOTE_MS 3000       /* how long a success stays up (hr_set_note_ttl), fading over its last second */

struct hud {
	float ms[HUD_FRAMES]; /* the game's work in each frame, oldest at next */
	unsigned char reload[HUD_FRAMES];
	unsigned next;
};

/* Record one frame's work (milliseconds) and whether a module switched in it. */
void hud_frame(struct hud *h, float ms, int reloaded);
/* Draw the notes of c at the top, versions (one line of text) at the bottom left, the graph at the bottom right. */
void hud_draw(const struct hud *h, struct canvas *cv, hr_client *c, const char *versions);

#endif
