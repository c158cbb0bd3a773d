/* cli_daemon.c: the CLI's commands about the daemon itself: its log (to follow), gc, and stop. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <poll.h>
#include <unistd.h>

#include "cli.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void print_line(const hrp_msg *m)
{
	const char *level = m->u.log.level < 4 ? level_names[m->u.log.level] : "?";
	char when[40];
	hrc_cli_iso_time(when, sizeof when, (int64_t)m->u.log.at_us);
	if (hrc_cli_opt.json) {
		printf("{");
		hrc_cli_json_member("", "at", when);
		hrc_cli_json_member(",", "level", level);
		hrc_cli_json_member(",", "text", m->u.log.text);
		printf("}\n");
	} else {
		char *text = hrc_cli_printable(m->u.log.text);
		printf("%s %-5s %s\n", when, level, text);
		free(text);
	}
}

/* log [-f] [-q] [--json]: the daemon's recent lines, and with -f each new one as it comes. */
int hrc_cli_log(int argc, char **argv)
{
	static const struct option longopts[] = {{"follow", no_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'},
	                                          {"json", no_argument, NULL, 'j'},   {"help", no_argument, NULL, 'h'},
	                                          {NULL, 0, NULL, 0}};
	int follow = 0, c;
	uint32_t max_level = 3; /* every line: builds starting are debug lines */
	optind = 0;
	while ((c = getopt_long(argc, argv, "fqh", longopts, NULL)) != -1) {
		if (c == 'f')
			follow = 1;
		else if (c == 'q')
			max_level = 2;
		else if (c == 'j')
			hrc_cli_opt.json = 1;
		else if (c == 'h')
			hrc_cli_help();
		else
			hrc_cli_usage_error("bad option for '%s'", "log");
	}
	if (optind < argc)
		hrc_cli_usage_error("unexpected argument '%s'", argv[optind]);
	char sock[PATH_MAX + 32];
	hrp_reader r = {0};
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	int rc = hrp_send(fd, &(hrp_msg){.type = HRP_LOG_REQ, .u.log_req = {(uint32_t)follow, max_level}});
	hrp_msg m;
	/* Line-buffered, so that a pipe (grep, a test) sees each line as it comes. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (rc == 0) {
		rc = hrp_recv(fd, &r, &m, follow ? 60000 : TIMEOUT_MS);
		if (rc == -ETIMEDOUT && follow) {
			rc = 0; /* a quiet daemon: go on waiting */
			continue;
		}
		if (rc != 0)
			break;
		if (m.type == HRP_ERROR)
			errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(m.u.error.message));
		if (m.type != HRP_LOG)
			continue;
		if (m.u.log.at_us)
			print_line(&m);
		else if (!follow)
			break; /* the end of the recent lines */
	}
	hrp_reader_free(&r);
	close(fd);
	if (rc != 0)
		errx(EXIT_NODAEMON, "the daemon at %s went away", sock);
	return 0;
}

/* gc [--json]: drop the objects no longer kept, compact the history, say what that freed. */
int hrc_cli_gc(int argc, char **argv)
{
	hrc_cli_parse(argc, argv, "h", "gc", NULL, NULL);
	char sock[PATH_MAX + 32];
	hrp_reader r = {0};
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	int rc = hrp_send(fd, &(hrp_msg){.type = HRP_GC_REQ});
	hrp_msg m;
	/* VACUUM rewrites the whole history: a large one takes a while. */
	while (rc == 0 && (rc = hrp_recv(fd, &r, &m, 10 * 60 * 1000)) == 0 && m.type != HRP_GC)
		if (m.type == HRP_ERROR)
			errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(m.u.error.message));
	hrp_reader_free(&r);
	close(fd);
	if (rc != 0)
		errx(EXIT_NODAEMON, "the daemon at %s went away before it was done", sock);
	if (hrc_cli_opt.json)
		printf("{\"objects_removed\":%llu,\"bytes_freed\":%llu,\"history_bytes_before\":%llu,"
		       "\"history_bytes_after\":%llu}\n",
		       (unsigned long long)m.u.gc.files, (unsigned long long)m.u.gc.bytes,
		       (unsigned long long)m.u.gc.db_before, (unsigned long long)m.u.gc.db_after);
	else
		printf("%llu object%s removed (%.1f KiB); history.db %.1f KiB, was %.1f KiB\n",
		       (unsigned long long)m.u.gc.files, m.u.gc.files == 1 ? "" : "s", (double)m.u.gc.bytes / 1024,
		       (double)m.u.gc.db_after / 1024, (double)m.u.gc.db_before / 1024);
	return 0;
}

/* Wait up to ms for process pid to end: 1 when it did (or is not ours to see), 0 on timeout. */
static int ended(int pid, int ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return errno == ESRCH;
	struct pollfd p = {pfd, POLLIN, 0};
	int rc = poll(&p, 1, ms);
	close(pfd);
	return rc == 1;
}

/* stop [--json]: have the daemon stop as SIGTERM would, and wait until it has. */
int hrc_cli_stop(int argc, char **argv)
{
	hrc_cli_parse(argc, argv, "h", "stop", NULL, NULL);
	char sock[PATH_MAX + 32];
	hrp_reader r = {0};
	int fd = hrc_cli_connect_daemon(&r, sock, sizeof sock);
	int rc = hrp_send(fd, &(hrp_msg){.type = HRP_STOP_REQ});
	hrp_msg m;
	while (rc == 0 && (rc = hrp_recv(fd, &r, &m, TIMEOUT_MS)) == 0 && m.type != HRP_STOPPING)
		if (m.type == HRP_ERROR)
			errx(EXIT_ERR, "the daemon at %s says: %s", sock, hrc_cli_printable(m.u.error.message));
	if (rc != 0)
		errx(EXIT_NODAEMON, "the daemon at %s went away before it answered", sock);
	int pid = (int)m.u.stopping.pid;
	hrp_reader_free(&r);
	close(fd);
	/* It ends builds under way and closes the history first: a while, but not for ever. */
	if (!ended(pid, 30000))
		errx(EXIT_ERR, "the daemon at %s (pid %d) said it stops, but it still runs after 30 s: see its log", sock, pid);
	if (hrc_cli_opt.json) {
		printf("{\"stopped\":true,\"pid\":%d", pid);
		hrc_cli_json_member(",", "socket", sock);
		printf("}\n");
	} else {
		printf("hotreloadd (pid %d) at %s stopped\n", pid, sock);
	}
	return 0;
}
