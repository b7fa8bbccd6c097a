/* test-track.c: tracked certificates without a token: when one is due (the
 * defaults, days, percent), --renew-before, ids, the entry's file (atomic,
 * 0600, a round trip), the backoff, the PIN files an entry may keep. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/track.h"
#include "p11km/util.h"

#define DAY 86400L
static char tmpdir[64];

static void
setup(void)
{
	p11km_check_tmpdir(tmpdir, sizeof(tmpdir), "track");
}

static void
teardown(void)
{
	p11km_check_tmpdir_remove(tmpdir);
}

START_TEST(due_defaults)
{
	struct p11km_track t = { .before_days = -1, .before_pct = -1 };
	time_t nb = 1000000000;

	/* 90 days: 30 days left and a third left are the same moment */
	ck_assert_int_eq(p11km_track_due(&t, nb, nb + 90 * DAY), nb + 60 * DAY);
	/* a year: a third of the lifetime left comes first (about 121 days) */
	ck_assert_int_eq(p11km_track_due(&t, nb, nb + 365 * DAY),
	                 nb + 365 * DAY - (time_t)(365 * DAY * 33 / 100.0));
	/* two days: 30 days before expiry is already past: due at once */
	ck_assert_int_le(p11km_track_due(&t, nb, nb + 2 * DAY), nb);
}
END_TEST

START_TEST(due_policy)
{
	struct p11km_track t = { .before_days = 10, .before_pct = -1 };
	time_t nb = 1000000000;

	ck_assert_int_eq(p11km_track_due(&t, nb, nb + 90 * DAY), nb + 80 * DAY);
	t.before_days = -1;
	t.before_pct = 50;
	ck_assert_int_eq(p11km_track_due(&t, nb, nb + 90 * DAY), nb + 45 * DAY);
}
END_TEST

START_TEST(before_parse)
{
	int d, p;

	ck_assert_int_eq(p11km_track_before_parse("14", &d, &p), 0);
	ck_assert_int_eq(d, 14);
	ck_assert_int_eq(p, -1);
	ck_assert_int_eq(p11km_track_before_parse("25%", &d, &p), 0);
	ck_assert_int_eq(d, -1);
	ck_assert_int_eq(p, 25);
	ck_assert_int_eq(p11km_track_before_parse("0%", &d, &p), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_before_parse("100%", &d, &p), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_before_parse("-3", &d, &p), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_before_parse("3d", &d, &p), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_before_parse("", &d, &p), P11KM_ERR_USAGE);
}
END_TEST

START_TEST(id_names)
{
	ck_assert_int_eq(p11km_track_id_check("www.example-1_a"), 0);
	ck_assert_int_eq(p11km_track_id_check(""), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_id_check("../x"), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_id_check(".hidden"), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_id_check("-opt"), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_id_check("web.d"), P11KM_ERR_USAGE); /* its work dir */
}
END_TEST

START_TEST(save_load)
{
	struct p11km_track t, *back = NULL;
	char *path, **ids = NULL;
	size_t n = 0;
	struct stat st;

	memset(&t, 0, sizeof(t));
	t.id = "web";
	t.cert = "pkcs11:token=a;object=web;type=cert";
	t.pin_source = "file:/etc/p11km/pin";
	t.before_days = -1;
	t.before_pct = 20;
	t.bind[t.n_bind++] = "/etc/p11km/bind/web";
	t.reload[t.n_reload++] = "nginx";
	t.reload[t.n_reload++] = "-s";
	t.reload[t.n_reload++] = "reload";
	t.step = P11KM_STEP_WAITING;
	t.attempts = 2;
	t.next_attempt = 1234;
	ck_assert_int_eq(p11km_track_save(tmpdir, &t), 0);
	path = p11km_track_path(tmpdir, "web");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	free(path);
	ck_assert_int_eq(p11km_track_load(tmpdir, "web", &back), 0);
	ck_assert_str_eq(back->cert, t.cert);
	ck_assert_str_eq(back->pin_source, t.pin_source);
	ck_assert_int_eq(back->before_days, -1);
	ck_assert_int_eq(back->before_pct, 20);
	ck_assert_int_eq(back->n_reload, 3);
	ck_assert_str_eq(back->reload[2], "reload");
	ck_assert_int_eq(back->n_bind, 1);
	ck_assert_int_eq(back->step, P11KM_STEP_WAITING);
	ck_assert_int_eq(back->attempts, 2);
	ck_assert_int_eq(back->next_attempt, 1234);
	p11km_track_free(back);
	ck_assert_int_eq(p11km_track_ids(tmpdir, &ids, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(ids[0], "web");
	free(ids[0]);
	free(ids);
	ck_assert_int_eq(p11km_track_load(tmpdir, "other", &back), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_track_remove(tmpdir, "web"), 0);
	ck_assert_int_eq(p11km_track_load(tmpdir, "web", &back), P11KM_ERR_NOTFOUND);
}
END_TEST

START_TEST(backoff)
{
	ck_assert_int_eq(p11km_track_backoff(1), 300);
	ck_assert_int_eq(p11km_track_backoff(2), 600);
	ck_assert_int_eq(p11km_track_backoff(3), 1200);
	ck_assert_int_eq(p11km_track_backoff(40), 86400);
}
END_TEST

START_TEST(pin_files)
{
	char path[128], link[140], spec[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/pin", tmpdir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("1234", fp);
	fclose(fp);
	snprintf(spec, sizeof(spec), "file:%s", path);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(p11km_track_pin_check(spec), P11KM_ERR_INPUT);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(p11km_track_pin_check(spec), 0);
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(p11km_track_pin_check(spec), 0);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	ck_assert_int_eq(symlink(path, link), 0);
	snprintf(spec, sizeof(spec), "file:%s", link);
	ck_assert_int_eq(p11km_track_pin_check(spec), P11KM_ERR_INPUT);
	ck_assert_int_eq(p11km_track_pin_check("prompt"), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_pin_check("fd:3"), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_pin_check("env:PIN"), 0);
	ck_assert_int_eq(p11km_track_pin_check(NULL), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("track");
	TCase *tc = tcase_create("track");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, due_defaults);
	tcase_add_test(tc, due_policy);
	tcase_add_test(tc, before_parse);
	tcase_add_test(tc, id_names);
	tcase_add_test(tc, save_load);
	tcase_add_test(tc, backoff);
	tcase_add_test(tc, pin_files);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
