/* bench_config.c: hotreload.conf's parser on a quarter, a half and a whole megabyte of each shape that was
 * once quadratic: the time per megabyte stays flat as the file grows (it grew with the file before).
 * Usage: bench_config   (make bench) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../daemon/config.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* line (with %d for its number) again and again, up to n bytes. */
static char *repeat(const char *line, size_t n, size_t *len)
{
	char *text = malloc(n + 1), one[64];
	size_t at = 0;
	for (int i = 0; text; i++) {
		int k = snprintf(one, sizeof one, line, i);
		if (at + (size_t)k > n)
			break;
		memcpy(text + at, one, (size_t)k);
		at += (size_t)k;
	}
	*len = at;
	return text;
}

int main(void)
{
	static const char *const shapes[][2] = {
		{"sections", "[m%d]\n"},
		{"words added", "cflags += -D%d\n"},
		{"excludes added", "exclude += d%d\n"},
		{"one section again", "[m]\ncflags += -D%d\n"},
	};
	printf("%-20s %10s %10s %12s\n", "shape", "bytes", "ms", "ms per MiB");
	for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
		for (size_t size = HRD_CONFIG_MAX / 4; size <= HRD_CONFIG_MAX; size *= 2) {
			size_t len;
			char *text = repeat(shapes[i][1], size, &len), err[512];
			hrd_config c;
			double t0 = now_ms();
			if (!text || hrd_config_parse(text, len, "hotreload.conf", &c, err, sizeof err) < 0) {
				fprintf(stderr, "bench_config: %s\n", text ? err : "out of memory");
				return 1;
			}
			double ms = now_ms() - t0;
			hrd_config_free(&c);
			free(text);
			printf("%-20s %10zu %10.2f %12.2f\n", shapes[i][0], len, ms, ms * (1 << 20) / (double)len);
		}
	return 0;
}
