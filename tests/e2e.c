/* e2e.c: the fixture of the end-to-end client suites: a temp root, a real daemon, real hosts linked to libhotreload. */
#include "e2e.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *e2e_dir;
t_daemon e2e_d;
t_proc e2e_hosts[2];

void e2e_setup(void)
{
	e2e_dir = t_tmpdir();
	e2e_d.pidfd = -1;
	for (int i = 0; i < 2; i++)
		e2e_hosts[i].pid = 0, e2e_hosts[i].out = e2e_hosts[i].pidfd = -1;
}

void e2e_teardown(void)
{
	for (int i = 0; i < 2; i++)
		if (e2e_hosts[i].pid > 0) {
			char *err = NULL;
			int rc = t_proc_end(&e2e_hosts[i], &err);
			cr_expect_eq(rc, 0, "host %d ended with %d: %s", i, rc, err);
			free(err);
		}
	if (e2e_d.pidfd >= 0) {
		char *log = strdup(e2e_d.log);
		t_daemon_stop(&e2e_d);
		char *text = t_read(log, NULL);
		cr_expect(!text || (!strstr(text, "Sanitizer") && !strstr(text, "runtime error")), "the daemon's log: %s", text);
		free(text);
		free(log);
	}
	t_rmtree(e2e_dir);
	free(e2e_dir);
}

void e2e_put(const char *rel, const char *text)
{
	char *p = t_fmt("%s/%s", e2e_dir, rel);
	cr_assert_eq(t_write(p, text, strlen(text)), 0, "cannot write %s", p);
	free(p);
}

/* A module whose value() is tag, and whose hooks say so; hr_on_load returns rc. */
void e2e_module(const char *rel, int tag, int rc)
{
	char *src = t_fmt("#include <stdio.h>\n#include <stdint.h>\n"
	                  "int value(void) { return %d; }\n"
	                  "int hr_on_load(void *ud, uint64_t prev) {\n"
	                  "\tprintf(\"load %%s %d prev=%%llu\\n\", (const char *)ud, (unsigned long long)prev);\n"
	                  "\treturn %d;\n}\n"
	                  "void hr_on_unload(void *ud) { printf(\"unload %%s %d\\n\", (const char *)ud); }\n",
	                  tag, tag, rc, tag);
	e2e_put(rel, src);
	free(src);
}

void e2e_start_daemon(const char *const *env)
{
	t_run r;
	int rc = t_daemon_start(&e2e_d, e2e_dir, env, NULL, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* Start host i with options (NULL or NULL-terminated) on modules (NULL-terminated). */
t_proc *e2e_host(int i, const char *const *opts, const char *const *modules)
{
	const char *args[24];
	size_t n = 0;
	for (size_t k = 0; opts && opts[k] && n < 8; k++)
		args[n++] = opts[k];
	args[n++] = e2e_d.sock;
	for (size_t k = 0; modules[k] && n < 23; k++)
		args[n++] = modules[k];
	args[n] = NULL;
	cr_assert_eq(t_host_start(&e2e_hosts[i], e2e_dir, args), 0, "cannot start the host");
	return &e2e_hosts[i];
}

/* The next line of h that contains want: it must come within the deadline. */
const char *e2e_expect(t_proc *h, const char *want)
{
	cr_assert(t_proc_expect(h, want, E2E_WAIT_MS), "the host never printed \"%s\" (last line: \"%s\")", want, h->line);
	return h->line;
}

const char *e2e_end_at(t_proc *h, const char *want)
{
	/* Sent again each second: ThreadSanitizer's runtime can lose an asynchronous signal that arrives while it is
	 * busy, and a second SIGTERM costs a host that heard the first nothing. A host that hangs still fails. */
	for (int ms = 0; ms < E2E_WAIT_MS; ms += 1000) {
		t_term(h->pid);
		if (t_proc_expect(h, want, 1000))
			return h->line;
	}
	cr_assert_fail("the host never printed \"%s\" (last line: \"%s\")", want, h->line);
	return NULL;
}

void e2e_end(t_proc *h)
{
	e2e_end_at(h, "bye");
}

/* The next line of h that starts with prefix must be exactly line. */
void e2e_expect_next(t_proc *h, const char *prefix, const char *line)
{
	e2e_expect(h, prefix);
	cr_assert_str_eq(h->line, line);
}

void e2e_expect_all(t_proc *h, const char *const *wants)
{
	unsigned seen = 0, all = 0;
	for (unsigned i = 0; wants[i]; i++)
		all |= 1u << i;
	while (seen != all) {
		cr_assert(t_proc_expect(h, "", E2E_WAIT_MS), "the host stopped at \"%s\"", h->line);
		for (unsigned i = 0; wants[i]; i++)
			if (strstr(h->line, wants[i]))
				seen |= 1u << i;
	}
}

/* A CLI query, and what jq's filter over its --json output must print. */
struct query {
	const char *cmd, *filter, *want;
	char *got; /* the last answer, for the failure message */
};

static int answers(void *arg)
{
	struct query *q = arg;
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){ "--state-dir", e2e_d.state, q->cmd, "--json", NULL });
	int st;
	free(q->got);
	q->got = r.status == 0 ? t_jq(r.out, q->filter, &st) : strdup(r.err);
	t_run_free(&r);
	return q->got && strcmp(q->got, q->want) == 0;
}

/* Wait until `hotreload CMD --json`, through jq's filter, prints want. */
void e2e_wait_cli(const char *cmd, const char *filter, const char *want)
{
	struct query q = { cmd, filter, want, NULL };
	cr_assert(t_until(answers, &q, E2E_WAIT_MS), "%s: %s, never %s", cmd, q.got, want);
	free(q.got);
}

void e2e_wait_history(const char *filter, const char *want)
{
	e2e_wait_cli("history", filter, want);
}

/* How many builds of module a the process maps, and whether version v is one of them. */
int e2e_mapped(int pid, int v, int *has)
{
	char *path = t_fmt("/proc/%d/maps", pid), *maps = t_read(path, NULL), *want = t_fmt("/objects/a.%d.", v);
	cr_assert(maps);
	int n = 0;
	char seen[64][160];
	*has = strstr(maps, want) != NULL;
	for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
		char *so = strstr(line, "/objects/a.");
		if (!so)
			continue;
		int dup = 0;
		for (int i = 0; i < n; i++)
			dup |= strcmp(seen[i], so) == 0;
		if (!dup && n < 64)
			snprintf(seen[n++], sizeof seen[0], "%s", so);
	}
	free(path);
	free(maps);
	free(want);
	return n;
}

/*
 * Wait until the daemon logged that version v of a is live in n hosts. The
 * library's thread unmaps the builds a switch retired before it sends that
 * report, so from then on the host's mappings are settled.
 */
void e2e_wait_reported(int v, int n)
{
	char *line = t_fmt("a: v%d live in client", v);
	cr_assert(t_until_in_file(e2e_d.log, line, n, E2E_WAIT_MS), "the daemon never logged \"%s\" %d times", line, n);
	free(line);
}
