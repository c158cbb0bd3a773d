/* hud.c: the game's heads-up display: the reloader's notes, the live versions, a frame-time graph. */
#include "hud.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "font.h"
#include "game.h"

#define SCALE 2
#define LINE (9 * SCALE + 4)
#define GRAPH_H 60
#define GRAPH_MS 2.0f /* the graph's full height */
#define FADE_MS 1000  /* a success fades out over the last second of its life */

void hud_frame(struct hud *h, float ms, int reloaded)
{
	h->ms[h->next] = ms;
	h->reload[h->next] = (unsigned char)reloaded;
	h->next = (h->next + 1) % HUD_FRAMES;
}

/* How opaque a note is: errors stay solid; successes fade before the library drops them. */
static int note_alpha(const hr_note *n)
{
	if (n->severity != HR_INFO)
		return 255;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	long long age = ((long long)tv.tv_sec * 1000000 + tv.tv_usec - (long long)n->at_us) / 1000;
	long long left = HUD_NOTE_MS - age;
	return left >= FADE_MS ? 255 : left <= 0 ? 0 : (int)(left * 255 / FADE_MS);
}

/* One note: an error on a banner, wrapped over up to three lines; others on one line, faded as they age. */
static int note(struct canvas *cv, int y, const hr_note *n)
{
	static const uint32_t ink[] = {0x7ee07e, 0xf0d050, HUD_ERROR_INK};
	int room = cv->w - 16, alpha = note_alpha(n);
	int max = n->severity == HR_ERROR ? 3 : 1, lines = 0;
	char line[3][sizeof n->text];
	for (const char *s = n->text; *s && lines < max; lines++) {
		size_t k = draw_text_fit(s, room, SCALE);
		k = k ? k : strlen(s); /* not one character fits: let the canvas clip it */
		snprintf(line[lines], sizeof line[0], "%.*s", (int)k, s);
		s += k;
		if (*s && lines == max - 1) { /* more than fits: cut, and say so */
			size_t at = draw_text_fit(line[lines], room - draw_text_width("...", SCALE), SCALE);
			snprintf(line[lines] + at, sizeof line[0] - at, "...");
		}
	}
	if (n->severity == HR_ERROR)
		draw_rect(cv, 0, y, cv->w, lines * LINE, HUD_BANNER, 255);
	else
		draw_rect(cv, 0, y, draw_text_width(line[0], SCALE) + 16, LINE, 0x000000, alpha / 2);
	for (int i = 0; i < lines; i++)
		draw_text(cv, 8, y + i * LINE + 4, line[i], ink[n->severity], alpha, SCALE);
	return lines * LINE;
}

static void notes(struct canvas *cv, hr_client *c)
{
	hr_note n[6];
	size_t count = hr_notes(c, n, 6);
	for (size_t i = 0, y = 0; i < count && i < 6; i++)
		y += (size_t)note(cv, (int)y, &n[i]);
}

static void graph(const struct hud *h, struct canvas *cv)
{
	int x0 = cv->w - HUD_FRAMES - 8, y0 = cv->h - GRAPH_H - 8;
	float worst = 0, at_reload = 0, last = h->ms[(h->next + HUD_FRAMES - 1) % HUD_FRAMES];
	draw_rect(cv, x0, y0, HUD_FRAMES, GRAPH_H, 0x000000, 150);
	for (int i = 0; i < HUD_FRAMES; i++) {
		unsigned k = (h->next + (unsigned)i) % HUD_FRAMES;
		float ms = h->ms[k];
		int bar = (int)(ms / GRAPH_MS * GRAPH_H + 0.5f);
		bar = bar > GRAPH_H ? GRAPH_H : bar < 1 ? 1 : bar;
		draw_rect(cv, x0 + i, y0 + GRAPH_H - bar, 1, bar, h->reload[k] ? 0xf0d040 : 0x4a9ee0, 255);
		worst = ms > worst ? ms : worst;
		if (h->reload[k] && ms > at_reload)
			at_reload = ms;
	}
	draw_rect(cv, x0, y0 + GRAPH_H / 2, HUD_FRAMES, 1, 0xffffff, 60); /* 1 ms */
	char label[96];
	if (at_reload > 0)
		snprintf(label, sizeof label, "work %.2f ms, max %.2f, reload %.2f", last, worst, at_reload);
	else
		snprintf(label, sizeof label, "work %.2f ms, max %.2f (of %.0f)", last, worst, GRAPH_MS);
	draw_rect(cv, x0, y0 - 11, HUD_FRAMES, 11, 0x000000, 150);
	draw_text(cv, x0 + 2, y0 - 9, label, 0xb0b0b0, 255, 1);
}

void hud_draw(const struct hud *h, struct canvas *cv, hr_client *c, const char *versions)
{
	notes(cv, c);
	draw_text(cv, 8, cv->h - 9 * SCALE - 6, versions, 0xb0b0b0, 255, SCALE);
	graph(h, cv);
}
