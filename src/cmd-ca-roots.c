/* cmd-ca-roots.c: 'ca roots NAME': the CA's own certificates (a helper's
 * FETCH-ROOTS, AD CS's certnew.cer?ReqID=CACert), printed, written with
 * -o, or installed as trusted roots with --to through 'roots install'. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "p11km/ca.h"
#include "p11km/cmd.h"
#include "p11km/store.h"
#include "p11km/util.h"

enum { O_TO = 1000, O_CONFIG_DIR, O_DRY_RUN };

const struct p11km_opt p11km_ca_roots_opts[] = {
	{ "to", 1, O_TO, "STORE", "install them as trusted roots into STORE ('roots install --to'; "
	  "repeat for several)" },
	{ "out", 1, 'o', "FILE", "write them (PEM) to FILE" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "with --to: show what would change; change nothing" },
	{ "config-dir", 1, O_CONFIG_DIR, "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
	{ NULL, 0, 0, NULL, NULL },
};

int
p11km_cmd_temp_file(const char *data, size_t len, char **path)
{
	const char *tmp = getenv("TMPDIR");
	char *p = p11km_asprintf("%s/p11km-ca.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd;

	*path = NULL;
	if (p == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((fd = mkstemp(p)) < 0 || p11km_write_all(fd, data, len) < 0) {
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(p);
		}
		free(p);
		return p11km_fail(P11KM_ERR_IO, "cannot write a temporary file: %s", strerror(e));
	}
	close(fd);
	*path = p;
	return 0;
}

int
p11km_cmd_run_verb(struct p11km_ctx *ctx, const struct p11km_cmd *table, const char *verb,
                   int argc, char **argv)
{
	for (const struct p11km_cmd *c = table; c->verb != NULL; c++)
		if (strcmp(c->verb, verb) == 0)
			return c->run(ctx, c, argc, argv);
	return p11km_fail(P11KM_ERR_FAILED, "'%s' is missing from the command table", verb);
}

int
p11km_ca_roots_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_profile *p = NULL;
	const char *dir_opt = NULL, *out = NULL;
	char **iargv = NULL, *pem = NULL, *tmp = NULL;
	size_t pem_len = 0;
	int r, iargc = 0, dry = 0;

	if ((iargv = calloc((size_t)argc * 2 + 4, sizeof(*iargv))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	iargv[iargc++] = "install";
	iargv[iargc++] = NULL; /* the file, below */
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_TO: iargv[iargc++] = "--to"; iargv[iargc++] = (char *)g.optarg; break;
		case 'o': out = g.optarg; break;
		case O_DRY_RUN: dry = 1; break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		default: r = r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option"); goto done;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto done;
	if (dry && iargc == 2) {
		r = p11km_fail(P11KM_ERR_USAGE, "--dry-run goes with --to STORE");
		goto done;
	}
	if (dry)
		iargv[iargc++] = "--dry-run";
	if ((r = p11km_ca_profile_load(p11km_ca_dir(dir_opt), argv[g.argi], &p)) < 0)
		goto done;
	if (p->kind->roots == NULL) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "'ca roots' is not supported by CA kind '%s' "
		               "(CA '%s'); fetch its root from the CA's documentation and use "
		               "'p11km roots install'", p->kind->name, p->name);
		goto done;
	}
	if ((r = p->kind->roots(ctx, p, &pem, &pem_len)) < 0)
		goto done;
	if (out != NULL && (r = p11km_write_file_atomic(out, pem, pem_len, 0644)) < 0)
		goto done;
	if (iargc > 2) {
		if (out == NULL && (r = p11km_cmd_temp_file(pem, pem_len, &tmp)) < 0)
			goto done;
		iargv[1] = (char *)(out ? out : tmp);
		r = p11km_cmd_run_verb(ctx, p11km_cmds_roots, "install", iargc, iargv);
	} else if (ctx->json) {
		json_t *o = json_pack("{s:s,s:s,s:s?,s:s?}", "ca", p->name, "kind", p->kind->name,
		                      "file", out, "certificates", out ? NULL : pem);
		char *t = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
		printf("%s\n", t ? t : "{}");
		free(t);
		json_decref(o);
	} else if (out == NULL) {
		fputs(pem, stdout);
	} else if (!ctx->quiet) {
		printf("wrote the certificates of CA '%s' to '%s'\n", p->name, p11km_esc(out));
	}
done:
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	free(pem);
	free(iargv);
	p11km_ca_profile_free(p);
	return r;
}
