/* test_notes.c: the notes a client keeps for a HUD: one per module, successes expiring, errors staying, the sink's queue. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../client/notes.h"

static hrc_notes n;

static void setup(void)
{
	hrc_notes_init(&n);
}

TestSuite(notes, .init = setup);

Test(notes, a_module_has_one_note_its_newest)
{
	hrc_notes_post(&n, HR_NOTE_LOADED, "a", 1, "a v%d live", 1);
	hrc_notes_post(&n, HR_NOTE_LOADED, "b", 1, "b v1 live");
	hrc_notes_post(&n, HR_NOTE_FAILED, "a", 0, "a build failed: a.c:1:2: error: x");
	hr_note out[4];
	cr_assert_eq(hrc_notes_copy(&n, out, 4), 2);
	cr_assert_str_eq(out[0].module, "b");
	cr_assert_str_eq(out[1].text, "a build failed: a.c:1:2: error: x");
	cr_assert_eq(out[1].severity, HR_ERROR);
	cr_assert_eq(out[1].kind, HR_NOTE_FAILED);
	cr_assert_gt(out[1].at_us, 1700000000000000ull);
}

Test(notes, successes_expire_and_errors_and_warnings_stay)
{
	n.ttl_ms = 0;
	hrc_notes_post(&n, HR_NOTE_LOADED, "a", 1, "a v1 live");
	hrc_notes_post(&n, HR_NOTE_REFUSED, "b", 2, "b v2 refused");
	hrc_notes_post(&n, HR_NOTE_DISCONNECTED, "", 0, "gone");
	hrc_notes_post(&n, HR_NOTE_CONNECTED, "x", 0, "back");
	hr_note out[4];
	cr_assert_eq(hrc_notes_copy(&n, out, 4), 2);
	cr_assert_str_eq(out[0].module, "b");
	cr_assert_eq(out[1].severity, HR_WARNING);
	/* The connection's note is one note: the reconnection replaces the disconnection. */
	hrc_notes_post(&n, HR_NOTE_CONNECTED, "", 0, "back");
	cr_assert_eq(hrc_notes_copy(&n, out, 4), 1);
	cr_assert_str_eq(out[0].module, "b");
}

Test(notes, a_full_list_drops_a_success_first_and_copy_reports_the_whole_count)
{
	char name[16];
	hrc_notes_post(&n, HR_NOTE_FAILED, "err", 0, "first, an error");
	for (int i = 0; i < HRC_NOTES_MAX; i++) {
		snprintf(name, sizeof name, "m%d", i);
		hrc_notes_post(&n, HR_NOTE_LOADED, name, 1, "%s v1 live", name);
	}
	hr_note out[2];
	cr_assert_eq(hrc_notes_copy(&n, out, 2), HRC_NOTES_MAX);
	cr_assert_str_eq(out[0].module, "err", "the error stayed; m0, a success, went");
	cr_assert_str_eq(out[1].module, "m1");
}

Test(notes, the_sink_gets_every_note_in_order_and_the_oldest_go_when_it_falls_behind)
{
	for (int i = 0; i < HRC_SINK_MAX + 3; i++)
		hrc_notes_post(&n, HR_NOTE_LOADED, "a", (uint64_t)i, "a v%d live", i);
	hr_note one;
	for (int i = 3; i < HRC_SINK_MAX + 3; i++) {
		cr_assert(hrc_notes_next(&n, &one));
		cr_assert_eq(one.version, (uint64_t)i);
	}
	cr_assert_not(hrc_notes_next(&n, &one));
}

Test(notes, long_text_is_cut_to_fit)
{
	char big[1000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	hrc_notes_post(&n, HR_NOTE_FAILED, big, 0, "%s", big);
	hr_note out;
	cr_assert_eq(hrc_notes_copy(&n, &out, 1), 1);
	cr_assert_eq(strlen(out.text), sizeof out.text - 1);
	cr_assert_eq(strlen(out.module), sizeof out.module - 1);
}
