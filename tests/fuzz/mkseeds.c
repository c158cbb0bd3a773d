/* mkseeds.c: writes the protocol fuzzer's seed corpus, one valid frame of each type per file.
 * Usage: mkseeds DIR   (make fuzz-seeds) */
#include <stdio.h>

#include "../../proto/hrp.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds DIR\n");
		return 2;
	}
	hrp_modstat mods[] = { { "enemy", 3, "ok", "" }, { "player", 0, "failed", "player.c:1:1: error: x" } };
	hrp_msg ms[] = {
		{ .type = HRP_HELLO, .u.hello = { HRP_VERSION, HRP_ROLE_LIBRARY, 1234, "", "libhotreload 0.1.0" } },
		{ .type = HRP_ERROR, .u.error = { HRP_E_PROTOCOL, "frame length out of range" } },
		{ .type = HRP_SUBSCRIBE, .u.sub = { "enemy" } },
		{ .type = HRP_UNSUBSCRIBE, .u.sub = { "enemy" } },
		{ .type = HRP_BUILD, .u.build = { "enemy", 7, HRP_KIND_OK, "/p/.hotreload/obj/enemy.7.so",
		                                  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 16384 } },
		{ .type = HRP_OBJECT, .u.object = { "enemy", 7, 65536, { (const uint8_t *)"\177ELF\0\1\2", 7 } } },
		{ .type = HRP_OBJECT_REQ, .u.object_req = { "enemy", 7 } },
		{ .type = HRP_FAILED, .u.failed = { "enemy", "enemy.c:3:5: error: expected ';'" } },
		{ .type = HRP_LOADED, .u.loaded = { "enemy", 7, 1795642201123456ull } },
		{ .type = HRP_REFUSED, .u.refused = { "enemy", 8, "hr_on_load returned 1" } },
		{ .type = HRP_STATUS_REQ },
		{ .type = HRP_BUILD_REQ, .u.sub = { "enemy" } },
		{ .type = HRP_ROLLBACK_REQ, .u.rollback = { "enemy", 3, HRP_ROLLBACK_PIN } },
		{ .type = HRP_LOG_REQ, .u.log_req = { 1, 3 } },
		{ .type = HRP_LOG, .u.log = { 1795642201123456ull, 2, "enemy: v7 built in 38 ms (enemy.c changed)" } },
		{ .type = HRP_GC_REQ },
		{ .type = HRP_GC, .u.gc = { 12, 480000, 9000000, 2000000 } },
		{ .type = HRP_STOP_REQ },
		{ .type = HRP_STOPPING, .u.stopping = { 4242 } },
		{ .type = HRP_STATUS, .u.status = { 99, 2, "/p", "/p/.hotreload", "inotify", "ext4", 2, mods } },
	};
	hrp_buf all = { 0 };
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		hrp_buf b = { 0 };
		hrp_encode(&ms[i], &b);
		hrp_encode(&ms[i], &all);
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", argv[1], hrp_type_name(ms[i].type));
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
			perror(path);
			return 1;
		}
		hrp_buf_free(&b);
	}
	/* a stream of them all, behind the reader's chunk-size byte */
	char path[4096];
	snprintf(path, sizeof path, "%s/stream", argv[1]);
	FILE *f = fopen(path, "wb");
	if (!f || fputc(5, f) == EOF || fwrite(all.data, 1, all.len, f) != all.len || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	hrp_buf_free(&all);
	return 0;
}
