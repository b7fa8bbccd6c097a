/* test-op-track.c: the tracking operations called directly, no argv, on a
 * SoftHSM2 token the fixture makes (the p11km binary initialises it and
 * generates the key): p11km_track_add() keeps a reload command word for
 * word, says unchanged for the same settings and refuses others without
 * force (the state kept with it); p11km_track_list(); and p11km_renew()
 * writes the renewal request of a one-day certificate to a file CA (the
 * request judged by OpenSSL: its signature, the token key). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/op-track.h"
#include "p11km/p11.h"
#include "p11km/util.h"

#define CHECK_TOKEN_NAME "op-track"
#include "check-token.h"

#define CERT_URI "pkcs11:token=U;object=k;type=cert"

static void
add_opts(struct p11km_track_add_opts *o, char *state, char *ca, char *const *words, size_t n)
{
	memset(o, 0, sizeof(*o));
	snprintf(state, 128, "%s/state", dir);
	snprintf(ca, 128, "file:%s/ca", dir);
	o->state_dir = state;
	o->cert = CERT_URI;
	o->ca = ca;
	o->prune_after = "7";
	o->reload_argv = words;
	o->n_reload_argv = n;
}

START_TEST(add_unchanged_force)
{
	char *words[] = { "/bin/echo", "a b", "x;y" }, state[128], ca[128], path[160];
	struct p11km_track_add_opts o;
	struct p11km_track_add_result res;
	struct p11km_track **v = NULL;
	struct stat st;
	size_t n = 0;

	add_opts(&o, state, ca, words, 3);
	ck_assert_int_eq(p11km_track_add(&ctx, &o, &res), 0);
	ck_assert_int_eq(res.unchanged, 0);
	ck_assert_str_eq(res.t->id, "k");
	ck_assert_uint_eq(res.t->n_reload, 3);
	ck_assert_str_eq(res.t->reload[1], "a b");
	ck_assert_str_eq(res.t->reload[2], "x;y");
	ck_assert_int_eq(res.t->prune_days, 7);
	ck_assert_str_eq(res.t->pin_source, pin_spec);
	p11km_track_add_result_release(&res);
	snprintf(path, sizeof(path), "%s/track/k.json", state);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	/* the same settings: unchanged; others: refused without force */
	ck_assert_int_eq(p11km_track_add(&ctx, &o, &res), 0);
	ck_assert_int_eq(res.unchanged, 1);
	p11km_track_add_result_release(&res);
	o.prune_after = "never";
	ck_assert_int_eq(p11km_track_add(&ctx, &o, &res), P11KM_ERR_EXISTS);
	ck_assert_ptr_null(res.t);
	o.force = 1;
	ck_assert_int_eq(p11km_track_add(&ctx, &o, &res), 0);
	ck_assert_int_eq(res.t->prune_days, P11KM_TRACK_PRUNE_NEVER);
	p11km_track_add_result_release(&res);
	/* --reload given both ways: refused */
	o.reload = "/bin/true";
	ck_assert_int_eq(p11km_track_add(&ctx, &o, &res), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_track_list(state, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0]->id, "k");
	p11km_track_list_free(v, n);
}
END_TEST

START_TEST(renew_to_a_file_ca)
{
	struct p11km_req_opts ro = { 0 };
	struct p11km_req_result rr;
	struct p11km_track_add_opts o;
	struct p11km_track_add_result res;
	struct p11km_renew_opts rn = { 0 };
	struct p11km_renew_result out;
	const char *ids[] = { "k" };
	char state[128], ca[128], path[200], cmd[400];
	X509_REQ *req, *renewal;
	X509 *cert;
	FILE *fp;

	/* a one-day certificate for the token key, installed by the p11km binary */
	ro.key = KEY_URI;
	ro.subject = "CN=k.example.org";
	ro.type = -1;
	ck_assert_int_eq(p11km_req_new(&ctx, &ro, &rr), 0);
	req = request_of(&rr);
	p11km_req_result_release(&rr);
	cert = issue(req);
	snprintf(cmd, sizeof(cmd), "cert install %s/cert.pem pkcs11:token=U --no-verify "
	         "--pin-source %s 2>/dev/null", dir, pin_spec);
	p11km(cmd);
	add_opts(&o, state, ca, NULL, 0);
	snprintf(path, sizeof(path), "%s/ca", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(p11km_track_add(&ctx, &o, &res), 0);
	p11km_track_add_result_release(&res);
	rn.state_dir = state;
	rn.ids = ids;
	rn.n_ids = 1;
	ck_assert_int_eq(p11km_renew(&ctx, &rn, &out), 0);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.items[0].outcome, P11KM_RENEW_WAITING);
	ck_assert_str_eq(out.items[0].old_serial, "07");
	ck_assert_int_eq(out.n_failed, 0);
	ck_assert_int_eq(p11km_renew_verdict(&out), 0);
	p11km_renew_result_release(&out);
	/* the request in the file CA: signed by the token key, for its subject */
	snprintf(path, sizeof(path), "%s/ca/k.csr", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	ck_assert_ptr_nonnull(renewal = PEM_read_X509_REQ(fp, NULL, NULL, NULL));
	fclose(fp);
	ck_assert_int_eq(X509_REQ_verify(renewal, X509_get0_pubkey(cert)), 1);
	ck_assert_int_eq(X509_NAME_cmp(X509_REQ_get_subject_name(renewal),
	                               X509_get_subject_name(cert)), 0);
	/* the same run again: still waiting, nothing failed; ids and --all at once: refused */
	ck_assert_int_eq(p11km_renew(&ctx, &rn, &out), 0);
	ck_assert_int_eq(out.items[0].outcome, P11KM_RENEW_WAITING);
	p11km_renew_result_release(&out);
	rn.all = 1;
	ck_assert_int_eq(p11km_renew(&ctx, &rn, &out), P11KM_ERR_USAGE);
	X509_REQ_free(renewal);
	X509_REQ_free(req);
	X509_free(cert);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("op-track");
	TCase *tc = tcase_create("softhsm2");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, add_unchanged_force);
	tcase_add_test(tc, renew_to_a_file_ca);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
