/* cmd-roots.c: 'roots install|remove|list': trusted roots in token and file
 * stores.  Everything is read and checked first; then each store changes in
 * one go (one rewrite, one session and login, one update-ca-certificates). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "p11km/cert.h"
#include "p11km/cmd.h"
#include "p11km/store.h"
#include "p11km/util.h"

enum { O_TO = 1000, O_FROM, O_ALLOW_NON_CA, O_DRY_RUN, O_SYSTEM_ROOT };

static const struct p11km_opt install_opts[] = {
	{ "to", 1, O_TO, "STORE", p11km_store_to_help },
	{ "allow-non-ca", 0, O_ALLOW_NON_CA, NULL, "also trust certificates that are not CA certificates" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "show what would change in each store; change nothing" },
	{ "system-root", 1, O_SYSTEM_ROOT, "DIR", "file system root for the system store (tests; also P11KM_SYSTEM_ROOT)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt remove_opts[] = {
	{ "from", 1, O_FROM, "STORE", p11km_store_from_help },
	{ "dry-run", 0, O_DRY_RUN, NULL, "show what would change in each store; change nothing" },
	{ "system-root", 1, O_SYSTEM_ROOT, "DIR", "file system root for the system store (tests; also P11KM_SYSTEM_ROOT)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt list_opts[] = {
	{ "system-root", 1, O_SYSTEM_ROOT, "DIR", "file system root for the system store (tests; also P11KM_SYSTEM_ROOT)" },
	{ NULL, 0, 0, NULL, NULL },
};

struct cert_info {
	X509 *x;        /* borrowed */
	char *fp, *subject;
};

static void
infos_free(struct cert_info *ci, size_t n)
{
	for (size_t i = 0; ci != NULL && i < n; i++) {
		free(ci[i].fp);
		free(ci[i].subject);
	}
	free(ci);
}

static int
infos_of(STACK_OF(X509) *sk, struct cert_info **out)
{
	size_t n = (size_t)sk_X509_num(sk);
	struct cert_info *ci = calloc(n + 1, sizeof(*ci));

	*out = NULL;
	if (ci == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		ci[i].x = sk_X509_value(sk, (int)i);
		ci[i].fp = p11km_cert_fingerprint(ci[i].x);
		ci[i].subject = p11km_cert_subject(ci[i].x);
		if (ci[i].fp == NULL || ci[i].subject == NULL) {
			infos_free(ci, n);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
	}
	*out = ci;
	return 0;
}

struct stores {
	struct p11km_store **st;
	size_t n;
};

static int
stores_add(struct stores *s, const char *spec, const char *sysroot)
{
	struct p11km_store **nst = realloc(s->st, (s->n + 1) * sizeof(*nst));

	if (nst == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	s->st = nst;
	if (s->n >= 16)
		return p11km_fail(P11KM_ERR_USAGE, "at most 16 stores at once");
	int r = p11km_store_parse(spec, sysroot, &s->st[s->n]);
	if (r == 0)
		s->n++;
	return r;
}

static void
stores_release(struct stores *s)
{
	for (size_t i = 0; i < s->n; i++)
		p11km_store_free(s->st[i]);
	free(s->st);
}

/*
 * The options install and remove share: the stores named by --to or --from
 * (store_key, repeatable; each opened here), --dry-run, --allow-non-ca,
 * --system-root.  *argi is the index of the first positional argument.
 */
static int
stores_from_opts(const struct p11km_cmd *cmd, int argc, char **argv, int store_key,
                 struct stores *stores, int *dry_run, int *allow_non_ca, int *argi)
{
	struct p11km_getopt g = { 0 };
	const char **specs = calloc((size_t)argc + 1, sizeof(*specs));
	const char *sysroot = NULL;
	int r, nspecs = 0;

	if (specs == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			goto out;
		if (r == store_key)
			specs[nspecs++] = g.optarg;
		else if (r == O_ALLOW_NON_CA)
			*allow_non_ca = 1;
		else if (r == O_DRY_RUN)
			*dry_run = 1;
		else if (r == O_SYSTEM_ROOT)
			sysroot = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	if (nspecs == 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "name at least one store with --%s STORE",
		               store_key == O_TO ? "to" : "from");
		goto out;
	}
	for (int i = 0; i < nspecs && r == 0; i++)
		r = stores_add(stores, specs[i], sysroot);
	*argi = g.argi;
out:
	free(specs);
	return r;
}

/*
 * The commit of store failed (r) after the stores before it were changed:
 * say which, with what changed in each (counts[k] certificates added or
 * removed), and how to finish.  Returns r.
 */
static int
changed_before(int r, const struct stores *stores, size_t failed, const size_t *counts,
               const char *verb, const char *finish)
{
	struct p11km_buf b = { 0 };
	char *msg = strdup(p11km_errmsg(r));
	size_t n = 0;

	for (size_t k = 0; k < failed; k++) {
		char *one;
		if (counts[k] == 0)
			continue;
		one = p11km_asprintf("%s%s (%zu %s)", n++ ? ", " : "", stores->st[k]->spec, counts[k],
		                     verb);
		if (one == NULL || p11km_buf_append(&b, one, strlen(one) + 1) < 0)
			n = 0;
		else
			b.len--; /* keep the string terminated */
		free(one);
	}
	if (n > 0 && msg != NULL)
		r = p11km_fail(r, "%s; these stores were already changed: %s; %s", msg,
		               (char *)b.data, finish);
	free(msg);
	p11km_buf_release(&b);
	return r;
}

/* Read every CERT argument into one stack (duplicates dropped). */
static int
read_certs(int argc, char **argv, STACK_OF(X509) **out)
{
	STACK_OF(X509) *all = sk_X509_new_null();
	int r = 0;

	if (all == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (int i = 0; i < argc && r == 0; i++) {
		STACK_OF(X509) *sk = NULL;
		if ((r = p11km_certs_read(argv[i], P11KM_ROOTS_MAX_CERTS, &sk)) < 0)
			break;
		while (r == 0 && sk_X509_num(sk) > 0) {
			X509 *x = sk_X509_shift(sk);
			int dup = 0;
			for (int k = 0; k < sk_X509_num(all) && !dup; k++)
				dup = X509_cmp(sk_X509_value(all, k), x) == 0;
			if (dup) {
				X509_free(x);
			} else if (sk_X509_num(all) >= P11KM_ROOTS_MAX_CERTS) {
				X509_free(x);
				r = p11km_fail(P11KM_ERR_INPUT, "more than %d certificates at once",
				               P11KM_ROOTS_MAX_CERTS);
			} else if (!sk_X509_push(all, x)) {
				X509_free(x);
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			}
		}
		sk_X509_pop_free(sk, X509_free);
	}
	if (r < 0) {
		sk_X509_pop_free(all, X509_free);
		return r;
	}
	*out = all;
	return 0;
}

static void
print_cert_line(const char *prefix, const struct cert_info *ci)
{
	printf("%s%s %s\n", p11km_esc(prefix), ci->fp, p11km_esc(ci->subject));
}

/* --- install ----------------------------------------------------------------------- */

static int
cmd_roots_install(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct stores stores = { 0 };
	STACK_OF(X509) *certs = NULL, **adds = NULL;
	struct cert_info *ci = NULL;
	int allow_non_ca = 0, dry_run = 0, r, n = 0, argi = 0;

	if ((r = stores_from_opts(cmd, argc, argv, O_TO, &stores, &dry_run, &allow_non_ca,
	                          &argi)) < 0)
		goto out;
	/* 1. read and check every certificate */
	if ((r = read_certs(argc - argi, argv + argi, &certs)) < 0)
		goto out;
	n = sk_X509_num(certs);
	if ((r = infos_of(certs, &ci)) < 0)
		goto out;
	for (int i = 0; i < n; i++) {
		if ((r = p11km_cert_check_anchor(ci[i].x)) == 0)
			continue;
		if (!allow_non_ca)
			goto out;
		p11km_warn("--allow-non-ca: trusting '%s', which is not a CA certificate", ci[i].subject);
		p11km_error_clear();
		r = 0;
	}
	/* 2. read every store, and work out what changes */
	if ((adds = calloc(stores.n, sizeof(*adds))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t s = 0; s < stores.n; s++) {
		if ((r = p11km_store_open_for(ctx, stores.st[s], !dry_run, certs)) < 0)
			goto out;
		if ((adds[s] = sk_X509_new_null()) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		for (int i = 0; i < n; i++)
			if (p11km_store_index(stores.st[s], ci[i].x) < 0 && !sk_X509_push(adds[s], ci[i].x)) {
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
				goto out;
			}
	}
	/* 3. change each store in one go */
	for (size_t s = 0; s < stores.n && !dry_run; s++) {
		if (sk_X509_num(adds[s]) > 0)
			p11km_verbose("%s: adding %d certificates", stores.st[s]->spec, sk_X509_num(adds[s]));
		if ((r = p11km_store_commit(ctx, stores.st[s], adds[s], NULL, 0)) < 0) {
			size_t *counts = calloc(stores.n, sizeof(*counts));
			for (size_t k = 0; counts != NULL && k < s; k++)
				counts[k] = (size_t)sk_X509_num(adds[k]);
			if (counts != NULL)
				r = changed_before(r, &stores, s, counts, "added",
				    "run the same command again to finish (what is there stays)");
			free(counts);
			goto out;
		}
	}
	/* 4. report */
	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_bool(&j, "dry_run", dry_run);
		p11km_json_key(&j, "certificates");
		p11km_json_array_begin(&j);
		for (int i = 0; i < n; i++) {
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "sha256", ci[i].fp);
			p11km_json_kv_string(&j, "subject", ci[i].subject);
			p11km_json_object_end(&j);
		}
		p11km_json_array_end(&j);
		p11km_json_key(&j, "stores");
		p11km_json_array_begin(&j);
		for (size_t s = 0; s < stores.n; s++) {
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "store", stores.st[s]->spec);
			for (int pass = 0; pass < 2; pass++) {
				p11km_json_key(&j, pass == 0 ? "added" : "present");
				p11km_json_array_begin(&j);
				for (int i = 0; i < n; i++) {
					int added = 0;
					for (int k = 0; k < sk_X509_num(adds[s]) && !added; k++)
						added = sk_X509_value(adds[s], k) == ci[i].x;
					if (added == (pass == 0))
						p11km_json_string(&j, ci[i].fp);
				}
				p11km_json_array_end(&j);
			}
			p11km_json_object_end(&j);
		}
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		for (size_t s = 0; s < stores.n; s++) {
			int na = sk_X509_num(adds[s]);
			for (int i = 0; i < n; i++) {
				int added = 0;
				for (int k = 0; k < na && !added; k++)
					added = sk_X509_value(adds[s], k) == ci[i].x;
				char *pfx = p11km_asprintf("%s: %s: ", stores.st[s]->spec,
				    added ? (dry_run ? "would add" : "added")
				          : "already present, unchanged");
				if (pfx != NULL)
					print_cert_line(pfx, &ci[i]);
				free(pfx);
			}
			printf("%s: %d %s, %d already present\n", p11km_esc(stores.st[s]->spec), na,
			       dry_run ? "would be added" : "added", n - na);
		}
	}
	r = 0;
out:
	for (size_t s = 0; adds != NULL && s < stores.n; s++)
		sk_X509_free(adds[s]);
	free(adds);
	infos_free(ci, (size_t)n);
	sk_X509_pop_free(certs, X509_free);
	stores_release(&stores);
	return r;
}

/* --- remove ------------------------------------------------------------------------- */

/* A removal target: a fingerprint, or the certificates of a file. */
struct target {
	unsigned char fp[32];
	const char *arg;
};

static int
parse_targets(int argc, char **argv, struct target **out, size_t *n_out)
{
	struct target *t = NULL;
	size_t n = 0;
	int r = 0;

	for (int i = 0; i < argc && r == 0; i++) {
		unsigned char *raw = NULL;
		size_t rl = 0;
		STACK_OF(X509) *sk = NULL;
		const char *a = argv[i];
		size_t hexchars = 0;
		for (const char *p = a; *p; p++)
			hexchars += (*p != ':');
		if (hexchars == 64 && strspn(a, "0123456789abcdefABCDEF:") == strlen(a) &&
		    p11km_unhex(a, &raw, &rl) == 0 && rl == 32) {
			struct target *nt = realloc(t, (n + 1) * sizeof(*nt));
			if (nt == NULL) {
				free(raw);
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
				break;
			}
			t = nt;
			memcpy(t[n].fp, raw, 32);
			t[n++].arg = a;
			free(raw);
			continue;
		}
		free(raw);
		p11km_error_clear();
		if ((r = p11km_certs_read(a, P11KM_ROOTS_MAX_CERTS, &sk)) < 0) {
			/* p11km_fail() writes the buffer p11km_errmsg() returns: copy first */
			char *why = strdup(p11km_errmsg(r));
			r = p11km_fail(P11KM_ERR_USAGE,
			    "'%s' is neither a SHA-256 fingerprint (64 hex digits) nor a certificate "
			    "file: %s", a, why ? why : p11km_strerror(r));
			free(why);
			break;
		}
		for (int k = 0; k < sk_X509_num(sk) && r == 0; k++) {
			struct target *nt = realloc(t, (n + 1) * sizeof(*nt));
			if (nt == NULL) {
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
				break;
			}
			t = nt;
			r = p11km_cert_sha256(sk_X509_value(sk, k), t[n].fp);
			t[n++].arg = a;
		}
		sk_X509_pop_free(sk, X509_free);
	}
	if (r < 0) {
		free(t);
		return r;
	}
	*out = t;
	*n_out = n;
	return 0;
}

static int
cmd_roots_remove(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct stores stores = { 0 };
	struct target *tg = NULL;
	size_t ntg = 0, **rms = NULL, *nrms = NULL;
	struct p11km_json j;
	int dry_run = 0, unused = 0, r, argi = 0;

	if ((r = stores_from_opts(cmd, argc, argv, O_FROM, &stores, &dry_run, &unused,
	                          &argi)) < 0)
		goto out;
	if ((r = parse_targets(argc - argi, argv + argi, &tg, &ntg)) < 0)
		goto out;
	rms = calloc(stores.n, sizeof(*rms));
	nrms = calloc(stores.n, sizeof(*nrms));
	if (rms == NULL || nrms == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t s = 0; s < stores.n; s++) {
		struct p11km_store *st = stores.st[s];
		if ((r = p11km_store_open(ctx, st, !dry_run)) < 0)
			goto out;
		if ((rms[s] = calloc((size_t)sk_X509_num(st->certs) + 1, sizeof(size_t))) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		for (size_t t = 0; t < ntg; t++) {
			int found = 0;
			for (int i = 0; i < sk_X509_num(st->certs); i++) {
				unsigned char fp[32];
				if (p11km_cert_sha256(sk_X509_value(st->certs, i), fp) < 0 ||
				    memcmp(fp, tg[t].fp, 32) != 0)
					continue;
				found = 1;
				int dup = 0;
				for (size_t k = 0; k < nrms[s] && !dup; k++)
					dup = rms[s][k] == (size_t)i;
				if (!dup)
					rms[s][nrms[s]++] = (size_t)i;
			}
			if (!found && !ctx->force) {
				char *hex = p11km_hex(tg[t].fp, 32);
				r = p11km_fail(P11KM_ERR_NOTFOUND,
				    "%s does not hold %s (from '%s'); nothing was removed (--force ignores "
				    "absent certificates)", st->spec, hex ? hex : "?", tg[t].arg);
				free(hex);
				goto out;
			}
			if (!found)
				p11km_note("%s does not hold a certificate from '%s'; nothing to remove",
				           st->spec, tg[t].arg);
		}
	}
	for (size_t s = 0; s < stores.n && !dry_run; s++) {
		if ((r = p11km_store_commit(ctx, stores.st[s], NULL, rms[s], nrms[s])) < 0) {
			r = changed_before(r, &stores, s, nrms, "removed",
			                   "run the same command again with --force to finish");
			goto out;
		}
	}
	if (ctx->json) {
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_bool(&j, "dry_run", dry_run);
		p11km_json_key(&j, "stores");
		p11km_json_array_begin(&j);
	}
	for (size_t s = 0; s < stores.n; s++) {
		struct p11km_store *st = stores.st[s];
		if (ctx->json) {
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "store", st->spec);
			p11km_json_key(&j, "removed");
			p11km_json_array_begin(&j);
		}
		for (size_t k = 0; k < nrms[s]; k++) {
			X509 *x = sk_X509_value(st->certs, (int)rms[s][k]);
			char *fp = p11km_cert_fingerprint(x), *subj = p11km_cert_subject(x);
			if (ctx->json)
				p11km_json_string(&j, fp);
			else
				printf("%s: %s: %s %s\n", p11km_esc(st->spec), dry_run ? "would remove" : "removed",
				       fp ? fp : "?", subj ? subj : "?");
			free(fp);
			free(subj);
		}
		if (ctx->json) {
			p11km_json_array_end(&j);
			p11km_json_object_end(&j);
		}
	}
	if (ctx->json) {
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	}
	r = 0;
out:
	for (size_t s = 0; rms != NULL && s < stores.n; s++)
		free(rms[s]);
	free(rms);
	free(nrms);
	free(tg);
	stores_release(&stores);
	return r;
}

/* --- list ------------------------------------------------------------------------------ */

static int
cmd_roots_list(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_store *st = NULL;
	struct cert_info *ci = NULL;
	const char *sysroot = NULL;
	int r, n = 0;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r == O_SYSTEM_ROOT)
			sysroot = g.optarg;
		else
			return r;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if ((r = p11km_store_parse(argv[g.argi], sysroot, &st)) < 0)
		return r;
	if ((r = p11km_store_check_exists(st)) < 0 || (r = p11km_store_open(ctx, st, 0)) < 0 ||
	    (r = infos_of(st->certs, &ci)) < 0)
		goto out;
	n = sk_X509_num(st->certs);
	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "store", st->spec);
		p11km_json_key(&j, "certificates");
		p11km_json_array_begin(&j);
		for (int i = 0; i < n; i++) {
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "sha256", ci[i].fp);
			p11km_json_kv_string(&j, "subject", ci[i].subject);
			p11km_json_kv_string(&j, "name", st->names[i]);
			p11km_json_object_end(&j);
		}
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		for (int i = 0; i < n; i++)
			print_cert_line("", &ci[i]);
	}
	r = 0;
out:
	infos_free(ci, (size_t)n);
	p11km_store_free(st);
	return r;
}

const struct p11km_cmd p11km_cmds_roots[] = {
	{ "install", "CERT...", "install trusted root certificates into one or more stores",
	  cmd_roots_install, install_opts, 1, -1, P11KM_CMD_CHANGES_TOKEN },
	{ "remove", "FINGERPRINT|CERT...", "remove trusted root certificates from stores",
	  cmd_roots_remove, remove_opts, 1, -1, P11KM_CMD_CHANGES_TOKEN },
	{ "list", "STORE", "list the trusted certificates of a store", cmd_roots_list, list_opts,
	  1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
