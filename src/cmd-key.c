/* cmd-key.c: 'key generate'. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/cmd.h"
#include "p11km/keygen.h"
#include "p11km/util.h"

enum { O_TYPE = 1000, O_LABEL, O_ID, O_ALLOW_ENGINE_BREAKING };

static void
print_key(struct p11km_ctx *ctx, struct p11km_token *tok, const struct p11km_object *o,
          enum p11km_keytype type, const char *uri)
{
	char *id = p11km_hex(o->id, o->id_len);

	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "uri", uri);
		p11km_json_kv_string(&j, "token", tok->label);
		p11km_json_kv_string(&j, "label", o->label);
		p11km_json_kv_string(&j, "id", id ? id : "");
		p11km_json_kv_string(&j, "type", p11km_keytype_name(type));
		p11km_json_kv_bool(&j, "sensitive", o->sensitive == P11KM_TRUE);
		p11km_json_kv_bool(&j, "extractable", o->extractable == P11KM_TRUE);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		printf("%s\n", uri);
	}
	free(id);
}

static int
cmd_key_generate(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_keygen kg = { .type = P11KM_KEY_EC_P256 };
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s = { 0 };
	struct p11km_object priv = { 0 };
	unsigned char *id = NULL;
	size_t id_len = 0;
	char *kuri = NULL;
	int r, t;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_TYPE:
			if ((t = p11km_keytype_parse(g.optarg)) < 0) {
				r = p11km_fail(P11KM_ERR_USAGE,
				    "unknown key type '%s': use rsa:2048, rsa:3072, rsa:4096, ec:p256, "
				    "ec:p384, ec:p521 or ed25519", g.optarg);
				goto out;
			}
			kg.type = t;
			break;
		case O_LABEL: kg.label = g.optarg; break;
		case O_ID:
			free(id);
			id = NULL;
			if (p11km_unhex(g.optarg, &id, &id_len) < 0 || id_len == 0 || id_len > 64) {
				r = p11km_fail(P11KM_ERR_USAGE, "--id takes 1 to 64 bytes in hex, like 0a1b2c");
				goto out;
			}
			break;
		case O_ALLOW_ENGINE_BREAKING: kg.allow_engine_breaking = 1; break;
		default:
			if (r < 0)
				goto out;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	if (kg.label == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "key generate needs --label LABEL");
		goto out;
	}
	if ((r = p11km_label_check(kg.label, 128)) < 0 || (r = p11km_uri_parse(argv[g.argi], &uri)) < 0)
		goto out;
	if (uri->has_object) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "give the token's URI (without object=, id= or type=); name the key with --label");
		goto out;
	}
	kg.id = id;
	kg.id_len = id_len;
	kg.force = ctx->force;
	if ((r = p11km_token_find_one(ctx, uri, &tok)) < 0 ||
	    (r = p11km_session_open_login(ctx, tok, uri, 1, 1, &s)) < 0 ||
	    (r = p11km_keygen_check(&s, &kg)) < 0 || (r = p11km_keygen_run(&s, &kg, &priv, NULL)) < 0)
		goto out;
	if ((kuri = p11km_object_uri(tok, &priv)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	print_key(ctx, tok, &priv, kg.type, kuri);
	r = 0;
out:
	free(kuri);
	free(id);
	p11km_object_release(&priv);
	p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}

static const struct p11km_opt generate_opts[] = {
	{ "type", 1, O_TYPE, "TYPE",
	  "rsa:2048, rsa:3072, rsa:4096, ec:p256 (default), ec:p384, ec:p521 or ed25519" },
	{ "label", 1, O_LABEL, "LABEL", "label (CKA_LABEL) of the new key pair (required)" },
	{ "id", 1, O_ID, "HEX", "CKA_ID (default: SHA-1 key identifier of the public key)" },
	{ "allow-engine-breaking", 0, O_ALLOW_ENGINE_BREAKING, NULL,
	  "allow Ed25519 on a token with other keys (breaks libp11 0.4.12 there)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_key[] = {
	{ "generate", "TOKEN-URI", "generate a sign-only, non-extractable key pair on a token",
	  cmd_key_generate, generate_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "list", "[URI]", "list the keys (object list --type key)", p11km_key_list_run, NULL, 0, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
