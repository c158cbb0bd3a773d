/* cli.h: what the CLI's files share: its options, its output helpers, and the commands of cli_builds.c. */
#ifndef HRC_CLI_H
#define HRC_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "../daemon/store.h"
#include "../proto/hrp.h"

enum { EXIT_ERR = 1, EXIT_USAGE = 2, EXIT_NODAEMON = 3 };
#define TIMEOUT_MS 5000

/* The global options, and --json of the command. */
struct hrc_cli_opt {
	const char *socket, *state_dir;
	int json;
};
extern struct hrc_cli_opt hrc_cli_opt;

/* A table of text cells printed with aligned columns; the last column is not padded. */
struct table {
	char **cell;
	size_t n, cap, cols;
	size_t status; /* the column of status words, coloured on a terminal; 0 for none */
};

/* Print the usage to stdout and exit 0; or say what is wrong (fmt with arg), the usage to stderr, and exit 2. */
void hrc_cli_help(void) __attribute__((noreturn));
void hrc_cli_usage_error(const char *fmt, const char *arg) __attribute__((noreturn));
/* The first line of s with control characters as '?' (the caller frees it). */
char *hrc_cli_printable(const char *s);
void hrc_cli_cell(struct table *t, const char *s);
void hrc_cli_table_print(struct table *t);
/* ,"key":"value" with the value escaped; the first member of an object passes sep "". */
void hrc_cli_json_member(const char *sep, const char *key, const char *value);
void hrc_cli_iso_time(char *buf, size_t n, int64_t us);
/* A command's options (--json, --help, and shortopts' -n into *n) and its one optional argument into *arg. */
void hrc_cli_parse(int argc, char **argv, const char *shortopts, const char *what, long long *n, const char **arg);
const char *hrc_cli_status_name(const hrd_build *b);
/* The history, read-only; exits 1 with the reason when it cannot. */
hrd_store *hrc_cli_open_store(void);
/* Connect to the daemon and exchange HELLO; exits 3 when none answers. The socket's path in path. */
int hrc_cli_connect_daemon(hrp_reader *r, char *path, size_t pathsz);
/* Subscribe to module, then ask the status: its reply comes after the subscription's answer (the newest good
 * build and the last failure), so what comes after it is new. 0, or -errno. */
int hrc_cli_subscribe(int fd, const char *module);

int hrc_cli_show(int argc, char **argv);
int hrc_cli_diff(int argc, char **argv);
int hrc_cli_build(int argc, char **argv);
int hrc_cli_rollback(int argc, char **argv);
int hrc_cli_log(int argc, char **argv);
int hrc_cli_gc(int argc, char **argv);
int hrc_cli_stop(int argc, char **argv);

#endif
