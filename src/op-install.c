/* op-install.c: the install operation ('cert install', the renewal tracker):
 * a CA's reply goes next to its key.
 *
 * Order of the token changes (each step is idempotent, so a run that stops
 * anywhere is finished by the next run with the same reply):
 *   1. missing intermediates are created (category authority, not trusted);
 *   2. the leaf is created (label: the key's label, or "<L>.pending" when the
 *      key is a pending rekey key) with the key's CKA_ID, and read back;
 *   3. older certificates with the key's id are destroyed (or relabelled
 *      "<label>.retired-YYYYMMDD" with --keep-old);
 *   4. rekey only: the old objects labelled "<L>" (certificate first, then
 *      public and private key) are relabelled "<L>.retired-YYYYMMDD" (or
 *      destroyed with --destroy-old); then the pending key pair and its
 *      certificate are relabelled "<L>";
 *   5. the leaf's label is set to its key's label if it differs;
 *   6. --out-dir files are replaced together (all or none).
 * Until step 2 has finished the token holds the old certificate; after it,
 * old and new; the old one goes only once the new one has been read back.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/keys.h"
#include "p11km/op.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

#include "op-install.h"

/* --- finding the leaf ---------------------------------------------------------- */

static int
key_matches(struct install *in, const struct p11km_object *k, X509 *cert)
{
	EVP_PKEY *pk = NULL;
	int eq;

	if (p11km_key_pubkey(&in->s, k, &pk) < 0) {
		p11km_error_clear();
		return 0;
	}
	eq = EVP_PKEY_eq(pk, X509_get0_pubkey(cert)) == 1;
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return eq;
}

/* The batch: the key that signed this run's request is given with its
 * public key; the one certificate of the reply with that public key is the
 * leaf (no search).  1 found, 0 not (the searches follow). */
static int
given_leaf(struct install *in)
{
	X509 *leaf = NULL;
	int r;

	if (in->o.key == NULL || in->o.key_pub == NULL || !in->borrowed ||
	    (in->uri != NULL && in->uri->has_object))
		return 0;
	for (int i = 0; i < sk_X509_num(in->reply); i++) {
		X509 *c = sk_X509_value(in->reply, i);
		if (X509_get0_pubkey(c) != NULL && EVP_PKEY_eq(in->o.key_pub, X509_get0_pubkey(c)) == 1) {
			if (leaf != NULL)
				return 0; /* two: the searches say which */
			leaf = c;
		}
	}
	ERR_clear_error();
	if (leaf == NULL)
		return 0;
	if ((r = p11km_object_copy(in->o.key, &in->key)) < 0)
		return r;
	in->have_key = 1;
	in->leaf = leaf;
	return 1;
}

static int
find_leaf(struct install *in)
{
	struct p11km_object named, k;
	int have_named = 0, r = 0, nmatch = 0;
	struct p11km_buf tried = { 0 };

	if ((r = given_leaf(in)) != 0)
		return r < 0 ? r : 0;
	memset(&named, 0, sizeof(named));
	if (in->uri != NULL && in->uri->has_object) {
		if ((r = p11km_object_find_one(&in->s, in->uri, CKO_PRIVATE_KEY, &named)) < 0)
			return r;
		have_named = 1;
	}
	/* Certificates that are not CAs first; CA certificates only when none
	 * of those matched (a token may hold a CA's key too).  Fewer searches:
	 * the chain in a reply is rarely the token's. */
	for (int step = 0; step < 2 * sk_X509_num(in->reply) && r == 0; step++) {
		int pass = step / sk_X509_num(in->reply), i = step % sk_X509_num(in->reply);
		X509 *c = sk_X509_value(in->reply, i);
		int found;
		if (pass == 1 && nmatch > 0)
			break;
		if ((X509_get_extension_flags(c) & EXFLAG_CA) ? pass == 0 : pass == 1)
			continue;
		if (have_named) {
			found = key_matches(in, &named, c);
		} else {
			r = p11km_key_for_cert(&in->s, c, &k, NULL);
			if (r < 0 && r != P11KM_ERR_NOTFOUND)
				break;
			found = r == 0;
			r = 0;
			p11km_error_clear();
		}
		if (!found) {
			char *subj = p11km_cert_subject(c), *line;
			unsigned char kid[20];
			char *hex = X509_get0_pubkey(c) != NULL &&
			            p11km_pubkey_keyid(X509_get0_pubkey(c), kid) == 0
			                ? p11km_hex(kid, sizeof(kid)) : NULL;
			p11km_error_clear();
			line = p11km_asprintf("%s'%s' (key id %s)", tried.len ? "; " : "",
			                      subj ? subj : "?", hex ? hex : "?");
			if (line != NULL)
				p11km_buf_append(&tried, line, strlen(line));
			free(line);
			free(hex);
			free(subj);
			continue;
		}
		if (++nmatch > 1) {
			char *a = p11km_cert_subject(in->leaf), *b = p11km_cert_subject(c);
			r = p11km_fail(P11KM_ERR_AMBIGUOUS,
			    "two certificates in the reply match keys on token '%s' ('%s' and '%s'); "
			    "give only one leaf", in->tok->label, a ? a : "?", b ? b : "?");
			free(a);
			free(b);
			if (!have_named)
				p11km_object_release(&k);
			break;
		}
		in->leaf = c;
		if (!have_named) {
			in->key = k;
			in->have_key = 1;
		}
	}
	if (r == 0 && nmatch == 0)
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no certificate in the reply belongs to %s on token '%s' (compared %s) for: %s; "
		    "is this the right token?",
		    have_named ? "the key the URI names" : "a private key", in->tok->label,
		    have_named ? "public keys" : "by CKA_ID = key identifier and SubjectKeyIdentifier, "
		    "then by public key via CKA_MODULUS / CKA_EC_POINT",
		    tried.data ? (char *)tried.data : "");
	if (r == 0 && have_named) {
		in->key = named;
		in->have_key = 1;
		have_named = 0;
	}
	if (have_named)
		p11km_object_release(&named);
	p11km_buf_release(&tried);
	return r;
}

/* --- checks -------------------------------------------------------------------- */

/* The chain files carry what the reply carried, in order (minus a
 * self-signed root).  Only when that does not verify are issuers taken from
 * the token (targeted by CKA_SUBJECT), and only as many as make it verify:
 * a cross-signed root that an earlier reply put on the token is not sent
 * with a later reply that left it out. */
static int
check_leaf(struct install *in)
{
	struct p11km_trust tr = { NULL, in->o.ca_file, in->o.ca_path, 1 };
	STACK_OF(X509) *anchors = NULL;
	int r, v, ok;

	if ((r = p11km_chain_order(in->leaf, in->reply, &in->inter, &in->root)) < 0)
		return r;
	if ((in->from_token = sk_X509_new_null()) == NULL || (anchors = sk_X509_new_null()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	/* with a root the reply is complete: no walk on the token */
	ok = p11km_tok_chain_complete(&in->s, in->leaf, in->inter, &tr, in->root == NULL,
	                              in->from_token, anchors);
	if (ok >= 0 && in->o.no_verify) {
		p11km_warn("--no-verify: the certificate chain is not verified");
	} else if (ok == 0) {
		/* again, for the reason (the reply's own root is one of the untrusted) */
		STACK_OF(X509) *untrusted = sk_X509_dup(in->inter);
		if (untrusted == NULL || (in->root != NULL && !sk_X509_push(untrusted, in->root))) {
			ok = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		} else {
			tr.anchors = anchors;
			ok = p11km_chain_verify(in->leaf, untrusted, &tr);
		}
		sk_X509_free(untrusted);
	}
	sk_X509_pop_free(anchors, X509_free);
	if (ok < 0)
		return ok;
	if ((v = p11km_cert_check_validity(in->leaf, in->ctx->force)) < 0)
		return v;
	if (v == 1)
		p11km_warn("the certificate is not valid yet (notBefore is in the future)");
	if (v == 2)
		p11km_warn("--force: installing an expired certificate");
	return p11km_cert_check_usage(in->leaf);
}

/* --- the token changes ----------------------------------------------------------- */

static int
leaf_equal(const struct p11km_object *o, const unsigned char *der, size_t len)
{
	return o->value_len == len && memcmp(o->value, der, len) == 0;
}

/* A certificate the leaf replaces: not a CA's, not retired, and stored on
 * the token (ykcs11 shows a PIV slot's attestation certificate, with the
 * key's id, as a session object made at C_OpenSession: never the leaf). */
static int
is_user_cert(const struct p11km_object *o)
{
	return o->trusted != P11KM_TRUE && o->cert_category != P11KM_CAT_AUTHORITY &&
	       o->token != P11KM_FALSE && !p11km_label_is_retired(o->label);
}

static int
put_intermediates(struct install *in)
{
	int r = 0;

	if (!in->o.no_chain && sk_X509_num(in->inter) > 0 && p11km_token_is_piv(in->tok)) {
		/* its certificate objects are its key slots: an intermediate's id
		 * would be cut to its first byte and overwrite a slot */
		return cert_act(in, ACT_KEPT, "intermediate", "*", "not put on token '%s': a PIV card "
		                "holds certificates only in its key slots (the chain goes to --out-dir "
		                "and the bindings)", in->tok->label);
	}
	for (int i = 0; !in->o.no_chain && i < sk_X509_num(in->inter) && r == 0; i++) {
		X509 *x = sk_X509_value(in->inter, i);
		char *name = p11km_cert_short_name(x, 64), *fp = p11km_cert_fingerprint(x);
		unsigned char *id = NULL;
		size_t idl = 0;
		CK_OBJECT_HANDLE h;
		if (name == NULL || fp == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		} else if ((r = p11km_tok_cert_find(&in->s, x, &h)) == 1) {
			r = cert_act(in, ACT_KEPT, "intermediate", name, "already on the token (sha256 %s)", fp);
		} else if (r == 0 && in->o.dry_run) {
			r = cert_act(in, ACT_WRITTEN, "intermediate", name, "would be created (sha256 %s)", fp);
		} else if (r == 0 && (r = p11km_cert_keyid(x, &id, &idl)) == 0 &&
		           (r = p11km_tok_cert_create(&in->s, x, name, id, idl, P11KM_CAT_AUTHORITY, 0,
		                                      &h)) == 0) {
			r = cert_act(in, ACT_WRITTEN, "intermediate", name, "created (sha256 %s)", fp);
		}
		free(id);
		free(name);
		free(fp);
	}
	return r;
}

/* Retire (relabel) or destroy one old object. */
static int
retire(struct install *in, const struct p11km_object *o, int destroy, const char *base)
{
	const char *what = o->cls == CKO_CERTIFICATE ? "certificate" : "key";
	char *nl = NULL;
	int r;

	if (destroy) {
		if (!in->o.dry_run && (r = p11km_tok_destroy(&in->s, o->h)) < 0)
			return r;
		return cert_act(in, ACT_REPLACED, what, o->label, "%s%s (%s)",
		           in->o.dry_run ? "would be " : "", "destroyed", p11km_class_name(o->cls));
	}
	if (in->o.dry_run) {
		return cert_act(in, ACT_REPLACED, what, o->label, "would be relabelled '%s.retired-%s' (%s)",
		           base, in->date, p11km_class_name(o->cls));
	}
	if ((r = p11km_tok_retired_label(&in->s, base, o->cls, &nl)) < 0)
		return r;
	if ((r = p11km_tok_relabel(&in->s, o->h, nl)) == 0)
		r = cert_act(in, ACT_REPLACED, what, o->label, "relabelled '%s' (%s)", nl,
		        p11km_class_name(o->cls));
	free(nl);
	return r;
}

static int
put_leaf(struct install *in, CK_OBJECT_HANDLE *leaf_h, char **leaf_label)
{
	const char *label = in->key.label ? in->key.label : "";
	struct p11km_object *certs = NULL;
	size_t n = 0, n_old = 0;
	unsigned char *der = NULL;
	size_t dlen = 0;
	char **kept = NULL;
	int r, present = -1, slots = p11km_token_is_piv(in->tok) == P11KM_PIV_WRITABLE;

	*leaf_h = CK_INVALID_HANDLE;
	*leaf_label = NULL;
	if ((r = p11km_cert_der(in->leaf, &der, &dlen)) < 0)
		return r;
	if ((r = p11km_tok_certs_by_id(&in->s, in->key.id, in->key.id_len, label, &certs, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (present < 0 && leaf_equal(&certs[i], der, dlen))
			present = (int)i;
	for (size_t i = 0; i < n; i++)
		if ((int)i != present && is_user_cert(&certs[i]))
			n_old++;
	if (n > 0 && (kept = calloc(n, sizeof(*kept))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* one certificate per slot: the old one is kept as a file first */
	for (size_t i = 0; slots && present < 0 && i < n && r == 0; i++)
		if (is_user_cert(&certs[i]))
			r = cert_slot_keep(in, &certs[i], &kept[i]);
	if (r < 0)
		goto out;
	if (present >= 0) {
		*leaf_h = certs[present].h;
		*leaf_label = strdup(certs[present].label ? certs[present].label : "");
		if (n_old > 0)
			p11km_note("the certificate is already on token '%s' next to %zu older one%s (an "
			           "earlier install stopped half-way): finishing it", in->tok->label,
			           n_old, n_old == 1 ? "" : "s");
		r = cert_act(in, ACT_KEPT, "certificate", certs[present].label, "already on the token "
		        "(sha256 %s)", in->leaf_fp);
	} else if (in->o.dry_run) {
		*leaf_label = strdup(label);
		r = cert_act(in, ACT_WRITTEN, "certificate", label, "would be created (sha256 %s)",
		        in->leaf_fp);
	} else {
		if ((r = p11km_tok_cert_create(&in->s, in->leaf, label, in->key.id, in->key.id_len,
		                               P11KM_CAT_USER, 0, leaf_h)) < 0)
			goto out;
		*leaf_label = strdup(label);
		r = cert_act(in, ACT_WRITTEN, "certificate", label, "created (sha256 %s)", in->leaf_fp);
	}
	if (r == 0 && *leaf_label == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	/* Only now, with the new certificate on the token, the old ones go. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		if ((int)i == present || !is_user_cert(&certs[i]))
			continue;
		if ((slots && in->o.dry_run) || certs[i].h == *leaf_h) {
			/* the token wrote the new one over it (same handle) */
			if (kept[i] == NULL && !slots && (r = cert_slot_keep(in, &certs[i], &kept[i])) < 0)
				break;
			r = cert_act(in, ACT_REPLACED, "certificate", certs[i].label, "%s by the token "
			             "(one certificate per key slot)%s%s", in->o.dry_run ?
			             "would be overwritten" : "overwritten", kept[i] ? in->o.dry_run ?
			             "; would be kept as " : "; kept as " : "; a placeholder, not kept",
			             kept[i] ? kept[i] : "");
			continue;
		}
		r = retire(in, &certs[i], !in->o.keep_old,
		           in->key_label ? in->key_label : label);
	}
out:
	for (size_t i = 0; kept != NULL && i < n; i++)
		free(kept[i]);
	free(kept);
	p11km_objects_free(certs, n);
	free(der);
	return r;
}

/* Is o one of the new objects (the pending key pair or the new leaf)? */
static int
is_new_object(struct install *in, const struct p11km_object *o)
{
	unsigned char *der = NULL;
	size_t dlen = 0;
	EVP_PKEY *pk = NULL;
	int yes = 0;

	if (o->h == in->key.h)
		return 1;
	if (in->key.id_len > 0)
		return o->id_len == in->key.id_len && memcmp(o->id, in->key.id, o->id_len) == 0;
	if (o->cls == CKO_CERTIFICATE && p11km_cert_der(in->leaf, &der, &dlen) == 0)
		yes = leaf_equal(o, der, dlen);
	if (o->cls == CKO_PUBLIC_KEY && p11km_object_pubkey(o, &pk) == 0)
		yes = EVP_PKEY_eq(pk, X509_get0_pubkey(in->leaf)) == 1;
	EVP_PKEY_free(pk);
	free(der);
	p11km_error_clear();
	ERR_clear_error();
	return yes;
}

/* --destroy-old: the old object is relabelled now (a server that loads the
 * binding still uses it) and destroyed after the bindings have switched. */
static int
doom(struct install *in, const struct p11km_object *o)
{
	struct doomed *d = realloc(in->doomed, (in->n_doomed + 1) * sizeof(*d));

	if (d == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	in->doomed = d;
	d[in->n_doomed].h = o->h;
	d[in->n_doomed].cls = o->cls;
	if ((d[in->n_doomed].label = strdup(o->label ? o->label : "")) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	in->n_doomed++;
	return 0;
}

static int
destroy_doomed(struct install *in)
{
	int r = 0;

	for (size_t i = 0; i < in->n_doomed && r == 0; i++)
		if ((r = p11km_tok_destroy(&in->s, in->doomed[i].h)) == 0)
			r = cert_act(in, ACT_REPLACED, in->doomed[i].cls == CKO_CERTIFICATE ? "certificate"
			        : "key", in->doomed[i].label, "destroyed (%s)",
			        p11km_class_name(in->doomed[i].cls));
	return r;
}

/* Rekey: retire what carries "<L>" and is not the new key's, then move
 * "<L>.pending" to "<L>": public key, private key, certificate last. */
static int
finish_rekey(struct install *in)
{
	static const CK_OBJECT_CLASS retire_order[] = { CKO_CERTIFICATE, CKO_PUBLIC_KEY,
	                                                CKO_PRIVATE_KEY };
	static const CK_OBJECT_CLASS move_order[] = { CKO_PUBLIC_KEY, CKO_PRIVATE_KEY,
	                                              CKO_CERTIFICATE };
	const char *L = in->key_label;
	char *pending = p11km_asprintf("%s.pending", L);
	struct p11km_object *objs = NULL;
	size_t n = 0;
	int r;

	if (pending == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_tok_by_label(&in->s, L, (CK_OBJECT_CLASS)-1, &objs, &n)) < 0)
		goto out;
	for (size_t c = 0; c < 3 && r == 0; c++) {
		for (size_t i = 0; i < n && r == 0; i++) {
			struct p11km_object *o = &objs[i];
			if (o->cls != retire_order[c] || is_new_object(in, o))
				continue;
			if (o->cls == CKO_CERTIFICATE && !is_user_cert(o))
				continue;
			if (in->o.destroy_old && !in->o.dry_run)
				r = doom(in, o);
			if (r == 0)
				r = retire(in, o, in->o.destroy_old && in->o.dry_run, L);
		}
	}
	p11km_objects_free(objs, n);
	objs = NULL;
	n = 0;
	if (r < 0)
		goto out;
	if ((r = p11km_tok_by_label(&in->s, pending, (CK_OBJECT_CLASS)-1, &objs, &n)) < 0)
		goto out;
	for (size_t c = 0; c < 3 && r == 0; c++) {
		for (size_t i = 0; i < n && r == 0; i++) {
			if (objs[i].cls != move_order[c])
				continue;
			if (!in->o.dry_run && (r = p11km_tok_relabel(&in->s, objs[i].h, L)) < 0)
				break;
			r = cert_act(in, ACT_WRITTEN, objs[i].cls == CKO_CERTIFICATE ? "certificate" : "key",
			        pending, "%srelabelled '%s' (%s)", in->o.dry_run ? "would be " : "", L,
			        p11km_class_name(objs[i].cls));
		}
	}
	/* A dry run has not created the leaf: show its final label too. */
out:
	p11km_objects_free(objs, n);
	free(pending);
	return r;
}

/* --- the operation ---------------------------------------------------------------------- */

static int
open_token(struct install *in)
{
	return p11km_token_find_initialised(in->ctx, in->uri, &in->tok);
}

static int
install_run(struct install *in)
{
	CK_OBJECT_HANDLE leaf_h;
	char *leaf_label = NULL;
	int r;

	if ((r = p11km_certs_read(in->o.reply, P11KM_REPLY_MAX_CERTS, &in->reply)) < 0)
		return r;
	if (in->o.uri != NULL && (r = p11km_uri_parse(in->o.uri, &in->uri)) < 0)
		return r;
	if (in->o.session != NULL) {
		/* the caller's session (the renewal batch): no second login */
		in->tok = in->o.tok;
		in->s = *in->o.session;
		in->borrowed = 1;
	} else if ((r = open_token(in)) < 0 ||
	           /* --so-pin-source: the SO writes the certificate (ykcs11: the
	            * management key; a PIV card's keys are visible to it) */
	           (r = in->ctx->so_pin_source_opt != NULL
	                    ? p11km_session_open_so_or_user(in->ctx, in->tok, in->uri, &in->s)
	                    : p11km_session_open_login(in->ctx, in->tok, in->uri, !in->o.dry_run,
	                                               1, &in->s)) < 0) {
		return r;
	}
	if ((r = find_leaf(in)) < 0)
		return r;
	if ((in->leaf_fp = p11km_cert_fingerprint(in->leaf)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = check_leaf(in)) < 0)
		return r;
	in->rekey = p11km_label_is_pending(in->key.label);
	in->key_label = in->rekey ? strndup(in->key.label, strlen(in->key.label) - 8)
	                          : strdup(in->key.label ? in->key.label : "");
	if (in->key_label == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (in->key.id_len == 0 && in->key.label == NULL)
		p11km_warn("the key has neither CKA_ID nor CKA_LABEL: the certificate cannot be "
		           "linked to it by libp11");
	if ((r = cert_stage_files(in)) < 0 || (r = cert_stage_bindings(in)) < 0)
		return r;
	if ((r = put_intermediates(in)) < 0)
		return r;
	if ((r = put_leaf(in, &leaf_h, &leaf_label)) < 0)
		goto out;
	if (in->rekey && (r = finish_rekey(in)) < 0)
		goto out;
	/* (a PIV card's labels are fixed: its slot names the certificate) */
	if (!in->rekey && !in->o.dry_run && strcmp(leaf_label, in->key_label) != 0 &&
	    !p11km_token_is_piv(in->tok)) {
		if ((r = p11km_tok_relabel(&in->s, leaf_h, in->key_label)) < 0)
			goto out;
		if ((r = cert_act(in, ACT_WRITTEN, "certificate", leaf_label, "relabelled '%s'",
		             in->key_label)) < 0)
			goto out;
	}
	if ((in->files != NULL && (r = p11km_ftxn_commit(in->files)) < 0) ||
	    (r = cert_commit_bindings(in)) < 0) {
		/* The token has changed already: say so, and how to finish. */
		char *msg = strdup(p11km_errmsg(r));
		r = p11km_fail(r, "%s; token '%s' already holds the new certificate: run the same "
		               "command again to write the files", msg ? msg : p11km_strerror(r),
		               in->tok->label);
		free(msg);
		goto out;
	}
	/* only now, with every binding switched, the old pair may go */
	r = destroy_doomed(in);
out:
	free(leaf_label);
	return r;
}


static void
install_release(struct install *in)
{
	if (!in->borrowed)
		p11km_session_close(&in->s);
	if (in->have_key)
		p11km_object_release(&in->key);
	for (size_t i = 0; i < in->n_acts; i++) {
		free(in->acts[i].what);
		free(in->acts[i].name);
		free(in->acts[i].detail);
	}
	free(in->acts);
	free(in->key_label);
	free(in->leaf_fp);
	sk_X509_free(in->inter);
	sk_X509_pop_free(in->from_token, X509_free);
	p11km_ftxn_free(in->files);
	for (size_t i = 0; i < in->o.n_bind; i++)
		p11km_rebind_free(in->rebind[i]);
	for (size_t i = 0; i < in->n_doomed; i++)
		free(in->doomed[i].label);
	free(in->doomed);
	sk_X509_pop_free(in->reply, X509_free);
	if (!in->borrowed)
		p11km_token_free(in->tok);
	p11km_uri_free(in->uri);
}

/* What the install did, for the caller to print. */
static int
install_result(struct install *in, struct p11km_install_result *res)
{
	struct p11km_cert_summary cs = { 0 };
	int r;

	if ((r = p11km_cert_summary_x509(in->leaf, &cs)) < 0)
		return r;
	res->dry_run = in->o.dry_run;
	res->rekey = in->rekey;
	res->token_uri = strdup(in->tok->uri);
	res->key_uri = p11km_object_uri(in->tok, &in->key);
	res->subject = p11km_cert_subject(in->leaf);
	res->sha256 = strdup(in->leaf_fp);
	res->serial = cs.serial;
	cs.serial = NULL;
	p11km_cert_summary_release(&cs);
	res->acts = in->acts;
	res->n_acts = in->n_acts;
	in->acts = NULL;
	in->n_acts = 0;
	if (res->token_uri == NULL || res->key_uri == NULL || res->subject == NULL ||
	    res->sha256 == NULL || res->serial == NULL) {
		p11km_install_result_release(res);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int
p11km_cert_install(struct p11km_ctx *ctx, const struct p11km_install_opts *o,
                   struct p11km_install_result *res)
{
	struct install in;
	time_t now = time(NULL);
	struct tm tm;
	int r;

	memset(res, 0, sizeof(*res));
	if (o->keep_old && o->destroy_old)
		return p11km_fail(P11KM_ERR_USAGE, "--keep-old and --destroy-old contradict each other");
	if (o->der && o->out_dir == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--der needs --out-dir");
	if (o->n_bind > MAX_BIND)
		return p11km_fail(P11KM_ERR_USAGE, "at most %d --bind", MAX_BIND);
	if (o->reply == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "no reply to install");
	memset(&in, 0, sizeof(in));
	in.ctx = ctx;
	in.o = *o;
	in.s.logged_in = (CK_USER_TYPE)-1;
	gmtime_r(&now, &tm);
	strftime(in.date, sizeof(in.date), "%Y%m%d", &tm);

	r = install_run(&in);
	if (r == 0)
		r = install_result(&in, res);
	install_release(&in);
	return r;
}

void
p11km_install_result_release(struct p11km_install_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n_acts; i++) {
		free(res->acts[i].what);
		free(res->acts[i].name);
		free(res->acts[i].detail);
	}
	free(res->acts);
	free(res->token_uri);
	free(res->key_uri);
	free(res->subject);
	free(res->sha256);
	free(res->serial);
	memset(res, 0, sizeof(*res));
}
