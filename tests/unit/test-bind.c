/* test-bind.c: --listen parsing, the flavour table and rendered configs
 * (pure code: no module, no token). */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdlib.h>
#include <string.h>

#include "p11km/bind.h"
#include "p11km/util.h"

START_TEST(listen_forms)
{
	struct p11km_listen l;

	ck_assert_int_eq(p11km_listen_parse("127.0.0.1:8443", &l), 0);
	ck_assert_str_eq(l.host, "127.0.0.1");
	ck_assert_int_eq(l.port, 8443);
	ck_assert_int_eq(l.v6, 0);
	ck_assert_int_eq(p11km_listen_parse("[::1]:443", &l), 0);
	ck_assert_str_eq(l.host, "::1");
	ck_assert_int_eq(l.v6, 1);
	ck_assert_int_eq(p11km_listen_parse("*:1", &l), 0);
	ck_assert_str_eq(l.host, "*");
	ck_assert_int_eq(p11km_listen_parse("[2001:db8::5]:65535", &l), 0);
	ck_assert_int_eq(l.port, 65535);
	ck_assert_int_eq(p11km_listen_parse("[::ffff:192.0.2.1]:443", &l), 0);
	ck_assert_int_eq(p11km_listen_parse("0.0.0.0:443", &l), 0);
}
END_TEST

START_TEST(listen_bad)
{
	static const char *bad[] = {
		"127.0.0.1", "127.0.0.1:", ":443", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:44x", "[::1]443", "[::1:443", "[]:443", "host.example:443",
		"1.2.3.4;listen:1", "1.2.3.4:443;", "[::1;]:443", "**:443", "",
		/* addresses that look like addresses and are not */
		"300.1.1.1:443", "1.2.3:443", "1.2.3.4.5:443", "1..2.3:443", "[1:2:3:4:5:6:7:8:9]:443",
		"[::g]:443", "[:::1]:443", "[1.2.3.4]:443", "127.0.0.1:+443", "127.0.0.1:-1",
		"127.0.0.1: 443", "[::1]:99999999999999999999",
	};
	struct p11km_listen l;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(p11km_listen_parse(bad[i], &l) == P11KM_ERR_USAGE, "accepted '%s'",
		              bad[i]);
}
END_TEST

START_TEST(flavours)
{
	const struct p11km_bind_flavour *f;

	ck_assert_ptr_nonnull(f = p11km_bind_flavour_find("nginx"));
	ck_assert_ptr_null(f->why_not);
	ck_assert_ptr_nonnull(f = p11km_bind_flavour_find("apache"));
	ck_assert_str_eq(f->key_directive, "SSLCertificateKeyFile");
	ck_assert_ptr_nonnull(f = p11km_bind_flavour_find("stunnel"));
	ck_assert_int_eq(f->needs_connect, 1);
	ck_assert_ptr_nonnull(f = p11km_bind_flavour_find("openssl-conf"));
	ck_assert_ptr_null(f->render);
	ck_assert_ptr_nonnull(f = p11km_bind_flavour_find("haproxy"));
	ck_assert_ptr_nonnull(f->why_not);
	ck_assert_ptr_nonnull(f = p11km_bind_flavour_find("lighttpd"));
	ck_assert_ptr_nonnull(f->why_not);
	ck_assert_ptr_null(p11km_bind_flavour_find("iis"));
}
END_TEST

static const char *
file_of(const struct p11km_bind_files *fs, const char *name)
{
	for (size_t i = 0; i < fs->n; i++)
		if (strcmp(fs->f[i].name, name) == 0)
			return fs->f[i].data;
	return NULL;
}

/* Is file name exactly text?  (Certificate files are not NUL-terminated.) */
static int
file_is(const struct p11km_bind_files *fs, const char *name, const char *text)
{
	for (size_t i = 0; i < fs->n; i++)
		if (strcmp(fs->f[i].name, name) == 0)
			return fs->f[i].len == strlen(text) && memcmp(fs->f[i].data, text, fs->f[i].len) == 0;
	return 0;
}

static void
params(struct p11km_bind_params *p, const char *server, struct p11km_listen *l, size_t n)
{
	memset(p, 0, sizeof(*p));
	p->fl = p11km_bind_flavour_find(server);
	p->listen = l;
	p->n_listen = n;
	p->server_name = "www.example.org";
	p->connect = "127.0.0.1:8080";
	p->dir = "/etc/p11km/www";
	p->key_uri = (char *)"pkcs11:token=t;id=%01;type=private?pin-source=%2Fp";
	p->cert_pem = (unsigned char *)"LEAF\n";
	p->cert_pem_len = 5;
	p->module_path = (char *)"/usr/lib/softhsm/libsofthsm2.so";
	p->engine_path = (char *)"/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
}

START_TEST(render_nginx)
{
	struct p11km_listen l[3];
	struct p11km_bind_params p;
	struct p11km_bind_files fs;
	const char *s;

	ck_assert_int_eq(p11km_listen_parse("127.0.0.1:443", &l[0]), 0);
	ck_assert_int_eq(p11km_listen_parse("[::1]:443", &l[1]), 0);
	ck_assert_int_eq(p11km_listen_parse("*:8443", &l[2]), 0);
	params(&p, "nginx", l, 3);
	p.chain_pem = (unsigned char *)"CHAIN\n";
	p.chain_pem_len = 6;
	ck_assert_int_eq(p11km_bind_render(&p, &fs), 0);
	ck_assert_ptr_nonnull(s = file_of(&fs, "nginx-server.conf"));
	ck_assert_ptr_nonnull(strstr(s, "    listen 127.0.0.1:443 ssl;\n"));
	ck_assert_ptr_nonnull(strstr(s, "    listen [::1]:443 ssl;\n"));
	ck_assert_ptr_nonnull(strstr(s, "    listen *:8443 ssl;\n"));
	ck_assert_ptr_nonnull(strstr(s, "ssl_certificate_key \"engine:pkcs11:pkcs11:token=t;"));
	/* the snippet names this generation's files: SHA-256("LEAF\n") */
	ck_assert_str_eq(p.gen, "49e4016ac4c2227b");
	ck_assert_ptr_nonnull(strstr(s, "ssl_certificate \"/etc/p11km/www/fullchain-49e4016ac4c2227b.pem\";"));
	ck_assert(file_is(&fs, "fullchain-49e4016ac4c2227b.pem", "LEAF\nCHAIN\n"));
	ck_assert(file_is(&fs, "chain-49e4016ac4c2227b.pem", "CHAIN\n"));
	ck_assert(file_is(&fs, "cert-49e4016ac4c2227b.pem", "LEAF\n"));
	/* ... written before the snippet, which is the switch */
	ck_assert_str_eq(fs.f[0].name, "cert-49e4016ac4c2227b.pem");
	for (size_t i = 0; i < fs.n; i++)
		if (strcmp(fs.f[i].name, "nginx-server.conf") == 0)
			break;
		else
			ck_assert_str_ne(fs.f[i].name, "p11km-binding.conf");
	ck_assert(file_is(&fs, "fullchain.pem", "LEAF\nCHAIN\n"));
	ck_assert(file_is(&fs, "chain.pem", "CHAIN\n"));
	ck_assert(file_is(&fs, "cert.pem", "LEAF\n"));
	ck_assert_ptr_nonnull(strstr(file_of(&fs, "openssl.cnf"), "\ninit = 1\n"));
	ck_assert_ptr_nonnull(strstr(file_of(&fs, "p11km-binding.conf"), "\nserver = nginx\n"));
	p11km_bind_files_release(&fs);
}
END_TEST

START_TEST(render_apache_stunnel)
{
	struct p11km_listen l[1];
	struct p11km_bind_params p;
	struct p11km_bind_files fs;
	const char *s;

	ck_assert_int_eq(p11km_listen_parse("*:443", &l[0]), 0);
	params(&p, "apache", l, 1);
	ck_assert_int_eq(p11km_bind_render(&p, &fs), 0);
	ck_assert_ptr_nonnull(s = file_of(&fs, "apache-vhost.conf"));
	ck_assert_ptr_nonnull(strstr(s, "\nListen 443 https\n<VirtualHost *:443>\n"));
	ck_assert_ptr_nonnull(strstr(s, "SSLCertificateFile \"/etc/p11km/www/cert-49e4016ac4c2227b.pem\""));
	ck_assert_ptr_nonnull(strstr(s, "SSLCertificateKeyFile \"pkcs11:token=t;id=%01;type=private"));
	ck_assert_ptr_nonnull(file_of(&fs, "cert-49e4016ac4c2227b.pem"));
	p11km_bind_files_release(&fs);

	params(&p, "stunnel", l, 1);
	ck_assert_int_eq(p11km_bind_render(&p, &fs), 0);
	ck_assert_ptr_nonnull(s = file_of(&fs, "stunnel.conf"));
	ck_assert_ptr_nonnull(strstr(s, "\naccept = 443\nconnect = 127.0.0.1:8080\n"));
	ck_assert_ptr_nonnull(strstr(s, "\ncert = /etc/p11km/www/fullchain-49e4016ac4c2227b.pem\n"));
	ck_assert_ptr_nonnull(strstr(file_of(&fs, "p11km-binding.conf"), "\nconnect = 127.0.0.1:8080\n"));
	p11km_bind_files_release(&fs);
}
END_TEST

static Suite *
bind_suite(void)
{
	Suite *s = suite_create("bind");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, listen_forms);
	tcase_add_test(tc, listen_bad);
	tcase_add_test(tc, flavours);
	tcase_add_test(tc, render_nginx);
	tcase_add_test(tc, render_apache_stunnel);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
		return p11km_check_run(bind_suite());
}
