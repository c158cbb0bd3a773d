/* test_sdl.c: the SDL example as a player sees it: its window's pixels under Xvfb, across saves, a compile error, a layout change and a patch of its host. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

#define GAME HR_BUILD_DIR "/sdl/game"
#define MODULES HR_SOURCE_DIR "/examples/sdl/modules"
#define BANNER 0x8b1a1a /* hud.h's HUD_BANNER: behind an error note */
#define ERROR_INK 0xffe0e0 /* hud.h's HUD_ERROR_INK: its text */
#define PLAYER 0xf8f8f8 /* colors.c's color_player */
#define GRAPH "0x4a9ee0" /* hud.c's frame-time bars */
#define GRAPH_SAVED "0x3ce07a" /* what the patch test saves in its place */
_Static_assert(sizeof GRAPH == sizeof GRAPH_SAVED, "the save replaces the colour in place");

static int xvfb_pid;
static char display[32];
static t_proc game;
static char *shots;
static int nshots;
static char *host; /* a copy of the game's host sources and its build, for the patch test */

/* An X server of our own: Xvfb picks a free display and writes its number on a pipe once it accepts clients. */
static void start_xvfb(void)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	char fd[16];
	snprintf(fd, sizeof fd, "%d", fds[1]);
	fflush(NULL);
	xvfb_pid = fork();
	if (xvfb_pid == 0) {
		close(fds[0]);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		execlp("Xvfb", "Xvfb", "-displayfd", fd, "-screen", "0", "1024x768x24", "-nolisten", "tcp", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char buf[16] = "";
	size_t n = 0;
	struct pollfd pf = {fds[0], POLLIN, 0};
	while (n < sizeof buf - 1 && !memchr(buf, '\n', n) && poll(&pf, 1, E2E_WAIT_MS) == 1) {
		ssize_t k = read(fds[0], buf + n, sizeof buf - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fds[0]);
	cr_assert(memchr(buf, '\n', n), "Xvfb did not start (is the xvfb package installed?)");
	snprintf(display, sizeof display, "DISPLAY=:%d", atoi(buf));
}

static void setup(void)
{
	e2e_setup();
	start_xvfb();
	shots = t_fmt("%s/.shots", e2e_dir); /* a dot-folder: not a module */
	cr_assert_eq(mkdir(shots, 0700), 0);
	nshots = 0;
	game.pid = 0;
	host = NULL;
}

static void teardown(void)
{
	if (game.pid > 0) {
		char *err = NULL;
		int rc = t_proc_end(&game, &err);
		cr_expect_eq(rc, 128 + SIGTERM, "the game ended with %d: %s", rc, err);
		free(err);
	}
	if (xvfb_pid > 0) {
		kill(xvfb_pid, SIGTERM);
		waitpid(xvfb_pid, NULL, 0);
	}
	free(shots);
	if (host)
		t_rmtree(host);
	free(host);
	e2e_teardown();
}

TestSuite(sdl, .init = setup, .fini = teardown, .timeout = 240);

/* A copy of the example's file rel, from dir, into the root (as a save). */
static void copy(const char *dir, const char *rel, const char *to)
{
	char *from = t_fmt("%s/%s", dir, rel), *text = t_read(from, NULL);
	cr_assert(text, "cannot read %s", from);
	e2e_put(to ? to : rel, text);
	free(text);
	free(from);
}

/* Save the root's rel with the first `from` replaced by `to`. */
static void edit(const char *rel, const char *from, const char *to)
{
	char *path = t_fmt("%s/%s", e2e_dir, rel), *text = t_read(path, NULL), *at = text ? strstr(text, from) : NULL;
	cr_assert(at, "no \"%s\" in %s", from, path);
	*at = 0;
	char *out = t_fmt("%s%s%s", text, to, at + strlen(from));
	e2e_put(rel, out);
	free(out);
	free(text);
	free(path);
}

/* A screenshot: the window's pixels as 0xRRGGBB, and the frame it was taken at. */
struct shot {
	int w, h;
	unsigned long long frame;
	uint32_t *px;
};

static uint32_t le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Ask the game for a screenshot (SIGUSR1) and read the 24-bit BMP it saves. */
static struct shot take(void)
{
	struct shot s = {0};
	char want[32];
	snprintf(want, sizeof want, "shot %d ", ++nshots);
	kill(game.pid, SIGUSR1);
	e2e_expect(&game, want);
	char path[4096];
	cr_assert_eq(sscanf(game.line + strlen(want), "%4095s frame %llu", path, &s.frame), 2, "%s", game.line);
	size_t len;
	unsigned char *b = (unsigned char *)t_read(path, &len);
	unlink(path); /* a test may take hundreds */
	cr_assert(b && len > 54 && b[0] == 'B' && b[1] == 'M' && b[28] == 24 && le32(b + 30) == 0,
	          "%s is not an uncompressed 24-bit BMP", path);
	uint32_t off = le32(b + 10);
	int32_t h = (int32_t)le32(b + 22);
	s.w = (int)le32(b + 18);
	s.h = h < 0 ? -h : h;
	cr_assert(s.w > 0 && s.w <= 4096 && s.h > 0 && s.h <= 4096, "%s is %dx%d", path, s.w, s.h);
	size_t stride = ((size_t)s.w * 3 + 3) & ~(size_t)3;
	cr_assert(off + stride * (size_t)s.h <= len, "%s is cut short", path);
	s.px = malloc(sizeof *s.px * (size_t)s.w * (size_t)s.h);
	cr_assert(s.px);
	for (int y = 0; y < s.h; y++) {
		const unsigned char *row = b + off + stride * (size_t)(h < 0 ? y : s.h - 1 - y);
		for (int x = 0; x < s.w; x++)
			s.px[y * s.w + x] = (uint32_t)row[3 * x + 2] << 16 | (uint32_t)row[3 * x + 1] << 8 | row[3 * x];
	}
	free(b);
	return s;
}

static int count(const struct shot *s, uint32_t rgb)
{
	int n = 0;
	for (int i = 0; i < s->w * s->h; i++)
		n += s->px[i] == rgb;
	return n;
}

/* The centre of the player's pixels (-1 if none). */
static void player_at(const struct shot *s, double *x, double *y)
{
	double sx = 0, sy = 0;
	int n = 0;
	for (int i = 0; i < s->w * s->h; i++)
		if (s->px[i] == PLAYER)
			sx += i % s->w, sy += i / s->w, n++;
	*x = n ? sx / n : -1;
	*y = n ? sy / n : -1;
}

/* Take screenshots until cond holds of one (it is returned), within the deadline. */
static struct shot until(int (*cond)(const struct shot *, void *), void *arg, const char *what)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct shot s = take();
		if (cond(&s, arg))
			return s;
		free(s.px);
		clock_gettime(CLOCK_MONOTONIC, &t);
		cr_assert((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < E2E_WAIT_MS,
		          "the game never showed %s", what);
	}
}

static int has_color(const struct shot *s, void *rgb)
{
	return count(s, *(uint32_t *)rgb) > 50;
}

static int no_color(const struct shot *s, void *rgb)
{
	return count(s, *(uint32_t *)rgb) == 0;
}

static int player_right_of(const struct shot *s, void *x0)
{
	double x, y;
	player_at(s, &x, &y);
	return x >= *(double *)x0;
}

static void xdotool(const char *const *args)
{
	const char *argv[16] = {"xdotool"};
	size_t n = 1;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	t_run r = t_exec(NULL, (const char *const[]){display, NULL}, argv);
	cr_assert_eq(r.status, 0, "xdotool %s: %s", args[0], r.err);
	t_run_free(&r);
}

/* The gameplay modules in the root, the daemon on them (with args, NULL-terminated), and the game (path) in our Xvfb. */
static void start(const char *path, const char *const *args)
{
	char *swarm = t_fmt("%s/swarm", e2e_dir);
	cr_assert_eq(mkdir(swarm, 0700), 0);
	free(swarm);
	copy(MODULES, "colors.c", NULL);
	copy(MODULES, "swarm/move.c", NULL);
	copy(MODULES, "swarm/spawn.c", NULL);
	copy(MODULES, "swarm/tuning.c", NULL);
	copy(MODULES, "swarm/swarm.h", NULL);
	copy(HR_SOURCE_DIR "/tests/sdl", "player_layout1.c", "player.c");
	char *cflags = t_fmt("CFLAGS=-I" HR_SOURCE_DIR "/examples/sdl");
	t_run r;
	int rc = t_daemon_start(&e2e_d, e2e_dir, (const char *const[]){cflags, NULL}, args, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
	free(cflags);
	char *sock = t_fmt("HOTRELOAD_SOCKET=%s", e2e_d.sock);
	/* Under ASan, no leak check in the game: SDL unloads the X and D-Bus libraries it opened, leaving
	 * what they allocated unattributable. The library's leaks are checked through tests/host. */
	cr_assert_eq(t_proc_start(&game, e2e_dir, (const char *const[]){display, sock, "ASAN_OPTIONS=detect_leaks=0",
	                                                      /* on our X server, whatever the desktop */
	                                                      "SDL_VIDEODRIVER=x11", "WAYLAND_DISPLAY=", NULL},
	                          (const char *const[]){path, "--shots", shots, NULL}),
	             0);
	free(sock);
	e2e_expect_all(&game, (const char *const[]){"colors v1 live", "player v1 live", "swarm v1 live", NULL});
}

Test(sdl, the_game_shows_each_save_an_error_banner_while_running_on_and_keeps_its_state_across_a_layout_change)
{
	start(GAME, NULL);

	/* The first builds on screen: the palette's entities, and the player in the middle. */
	uint32_t orange = 0xe8a33d, teal = 0x20d0c0, pink = 0xd04080;
	struct shot s = until(has_color, &orange, "the first palette");
	double x0, y0, x, y;
	player_at(&s, &x0, &y0);
	cr_assert(x0 > 390 && x0 < 410 && y0 > 290 && y0 < 310, "the player starts at %.1f,%.1f", x0, y0);
	free(s.px);

	/* The player walks right, with the keyboard, as a player would move it. */
	xdotool((const char *const[]){"search", "--sync", "--name", "hotreload: SDL example", "windowfocus", "--sync",
	                              "keydown", "Right", NULL});
	double far = x0 + 60;
	s = until(player_right_of, &far, "the player walking right");
	xdotool((const char *const[]){"keyup", "Right", NULL});
	free(s.px);

	/* A new colour, saved: every orange entity turns teal. */
	edit("colors.c", "0xe8a33d", "0x20d0c0");
	e2e_expect(&game, "colors v2 live");
	s = take();
	cr_assert_gt(count(&s, teal), 50, "the new colour is not on screen");
	cr_assert_eq(count(&s, orange), 0, "the old colour is still on screen");
	free(s.px);

	/* A compile error: the banner comes up, and the game runs on with the last good build. */
	edit("colors.c", "return 0x101820;", "return 0x101820");
	uint32_t banner = BANNER;
	e2e_expect(&game, "note: colors build failed: colors.c:");
	s = until(has_color, &banner, "the error banner");
	struct shot prev = s;
	s = take();
	cr_assert_gt(s.frame, prev.frame, "the frames stopped at %llu", prev.frame);
	cr_assert_neq(memcmp(s.px, prev.px, sizeof *s.px * (size_t)s.w * (size_t)s.h), 0, "the swarm stopped moving");
	free(prev.px);
	cr_assert_gt(count(&s, banner), 1000, "the banner went away while the error stands");
	cr_assert_gt(count(&s, ERROR_INK), 200, "the banner has no text");
	cr_assert_gt(count(&s, teal), 50, "the last good build is not what the game shows");
	free(s.px);
	e2e_wait_history("[.[] | select(.status == \"failed\")][0].message | test(\"colors.c:[0-9]+\")", "true");

	/* The fix, with another colour: the banner goes, and the fix is live. */
	edit("colors.c", "return 0x101820", "return 0x101820;");
	edit("colors.c", "0x20d0c0", "0xd04080");
	s = until(no_color, &banner, "the banner gone");
	free(s.px);
	s = until(has_color, &pink, "the fix");
	cr_assert_eq(count(&s, teal), 0);
	free(s.px);

	/* The player's state changes layout (1 to 2, the shipped player.c): it migrates, and the player stays put. */
	s = take();
	player_at(&s, &x0, &y0);
	cr_assert_gt(x0, 440, "the player did not walk (at %.1f)", x0);
	free(s.px);
	copy(MODULES, "player.c", NULL);
	e2e_expect(&game, "player v2 live");
	s = take();
	player_at(&s, &x, &y);
	cr_assert(x == x0 && y == y0, "the player moved from %.1f,%.1f to %.1f,%.1f across the layout change", x0, y0, x,
	          y);
	free(s.px);
}

/* Stands still: the player is where it was in the previous shot looked at. */
static int player_still(const struct shot *s, void *prev)
{
	double *p = prev, x, y;
	player_at(s, &x, &y);
	int still = x == p[0] && y == p[1];
	p[0] = x, p[1] = y;
	return still;
}

Test(sdl, a_save_of_the_host_s_hud_c_is_patched_into_the_running_game_which_keeps_its_state)
{
	/* The host's sources copied, and built by the Makefile's own rules into a folder beside them, with its
	 * compile database: the game's DWARF and the database then name this copy, which the test may edit. */
	host = t_tmpdir();
	char *src = t_fmt("%s/src", host), *out = t_fmt("%s/build", host);
	cr_assert_eq(mkdir(src, 0700), 0);
	static const char *const files[] = {"game.c", "game.h", "hud.c", "hud.h", "draw.c", "draw.h", "font.c", "font.h"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char *from = t_fmt(HR_SOURCE_DIR "/examples/sdl/%s", files[i]), *to = t_fmt("%s/%s", src, files[i]);
		size_t len;
		char *text = t_read(from, &len);
		cr_assert(text && t_write(to, text, len) == 0, "cannot copy %s to %s", from, to);
		free(text), free(to), free(from);
	}
	char *b = t_fmt("B=%s", HR_BUILD_DIR), *sd = t_fmt("SDL_DIR=%s", src), *sb = t_fmt("SDL_B=%s", out),
	     *path = t_fmt("%s/game", out), *db = t_fmt("%s/compile_commands.json", out);
	/* not the outer make's jobserver or command line */
	t_run r = t_exec(NULL, (const char *const[]){"MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=", NULL},
	                 (const char *const[]){"make", "-C", HR_SOURCE_DIR, b, "SANFLAGS=" HR_SANFLAGS, sd, sb, path, NULL});
	cr_assert_eq(r.status, 0, "make %s: %s%s", path, r.out, r.err);
	t_run_free(&r);
	start(path, (const char *const[]){"--patch", db, NULL});

	/* The first frames: the frame-time graph's bars in their colour. The player walks right, and stops. */
	uint32_t orange = 0xe8a33d, bars = (uint32_t)strtoul(GRAPH, NULL, 16),
	         green = (uint32_t)strtoul(GRAPH_SAVED, NULL, 16);
	struct shot s = until(has_color, &bars, "the frame-time graph");
	free(s.px);
	xdotool((const char *const[]){"search", "--sync", "--name", "hotreload: SDL example", "windowfocus", "--sync",
	                              "keydown", "Right", NULL});
	double far = 460, at[2] = {-1, -1};
	s = until(player_right_of, &far, "the player walking right");
	xdotool((const char *const[]){"keyup", "Right", NULL});
	free(s.px);
	struct shot before = until(player_still, at, "the player at rest");
	cr_assert_eq(count(&before, green), 0);

	/* hud.c saved with another colour for the bars: the running game draws them green, from its next frame on. */
	char *hud = t_fmt("%s/hud.c", src), *text = t_read(hud, NULL), *c = text ? strstr(text, GRAPH) : NULL;
	cr_assert(c, "no " GRAPH " in %s", hud);
	memcpy(c, GRAPH_SAVED, strlen(GRAPH));
	cr_assert_eq(t_write(hud, text, strlen(text)), 0);
	e2e_expect(&game, "host patch 1 live");
	s = take();
	cr_assert_gt(count(&s, green), 50, "the patched colour is not on screen");
	cr_assert_eq(count(&s, bars), 0, "the old code still draws the bars");

	/* The gameplay went on through the patch: frames counted on, the entities are there, the player stands where it stood. */
	double x, y;
	player_at(&s, &x, &y);
	cr_assert_gt(s.frame, before.frame, "the frame count went from %llu to %llu", before.frame, s.frame);
	cr_assert_gt(count(&s, orange), 50, "the entities are gone");
	cr_assert(x == at[0] && y == at[1], "the player moved from %.1f,%.1f to %.1f,%.1f across the patch", at[0], at[1],
	          x, y);
	char *filter = t_fmt("[.[] | select(.module == \"%s\")][0].status", hud);
	e2e_wait_history(filter, "ok");
	free(filter), free(s.px), free(before.px), free(text), free(hud);
	free(db), free(path), free(sb), free(sd), free(b), free(out), free(src);
}

Test(sdl, the_game_runs_without_a_daemon)
{
	char *sock = t_fmt("HOTRELOAD_SOCKET=%s/none.sock", e2e_dir);
	t_run r = t_exec(e2e_dir, (const char *const[]){display, sock, "ASAN_OPTIONS=detect_leaks=0", "SDL_VIDEODRIVER=x11",
	                                                 "WAYLAND_DISPLAY=", NULL},
	                 (const char *const[]){GAME, "--shots", shots, "--seconds", "1", NULL});
	cr_assert_eq(r.status, 0, "the game ended with %d: %s", r.status, r.err);
	cr_assert(strstr(r.out, "game: running") && strstr(r.out, "frames "), "%s", r.out);
	t_run_free(&r);
	free(sock);
}
