/* x509-name.c: subjects (RFC 4514 and /A=B/ forms), subjectAltNames, usages.
 * Everything is parsed into structures, never pasted into strings: an
 * escaped separator stays inside its value. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "p11km/req.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* Attribute types accepted in subjects, with X.520 / RFC 5280 upper bounds
 * in characters (0: none checked here). */
static const struct {
	const char *name, *alias;
	int nid;
	int max;
} attr_types[] = {
	{ "CN", "commonName", NID_commonName, 64 },
	{ "C", "countryName", NID_countryName, 2 },
	{ "ST", "stateOrProvinceName", NID_stateOrProvinceName, 128 },
	{ "L", "localityName", NID_localityName, 128 },
	{ "O", "organizationName", NID_organizationName, 64 },
	{ "OU", "organizationalUnitName", NID_organizationalUnitName, 64 },
	{ "STREET", "streetAddress", NID_streetAddress, 128 },
	{ "DC", "domainComponent", NID_domainComponent, 63 },
	{ "UID", "userId", NID_userId, 256 },
	{ "emailAddress", "E", NID_pkcs9_emailAddress, 128 },
	{ "serialNumber", NULL, NID_serialNumber, 64 },
	{ "title", NULL, NID_title, 64 },
	{ "GN", "givenName", NID_givenName, 32768 },
	{ "SN", "surname", NID_surname, 32768 },
	{ "initials", NULL, NID_initials, 32768 },
	{ "pseudonym", NULL, NID_pseudonym, 128 },
	{ "generationQualifier", NULL, NID_generationQualifier, 32768 },
	{ "dnQualifier", NULL, NID_dnQualifier, 0 },
	{ "postalCode", NULL, NID_postalCode, 40 },
	{ "businessCategory", NULL, NID_businessCategory, 128 },
	{ "jurisdictionC", "jurisdictionCountryName", NID_jurisdictionCountryName, 2 },
	{ "jurisdictionST", "jurisdictionStateOrProvinceName", NID_jurisdictionStateOrProvinceName, 128 },
	{ "jurisdictionL", "jurisdictionLocalityName", NID_jurisdictionLocalityName, 128 },
	{ "organizationIdentifier", NULL, NID_organizationIdentifier, 64 },
};

static int
attr_lookup(const char *type, size_t len)
{
	for (size_t i = 0; i < sizeof(attr_types) / sizeof(attr_types[0]); i++) {
		if ((strlen(attr_types[i].name) == len &&
		     strncasecmp(attr_types[i].name, type, len) == 0) ||
		    (attr_types[i].alias != NULL && strlen(attr_types[i].alias) == len &&
		     strncasecmp(attr_types[i].alias, type, len) == 0))
			return (int)i;
	}
	return -1;
}

/* Validate UTF-8 (no overlong forms, surrogates, NUL or control characters);
 * returns the number of characters, or -1 with *why set. */
static long
utf8_check(const unsigned char *p, size_t len, const char **why)
{
	long chars = 0;

	for (size_t i = 0; i < len; chars++) {
		unsigned c = p[i], cp, n;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f) {
				*why = c == 0 ? "a NUL character" : "a control character";
				return -1;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
		else { *why = "invalid UTF-8"; return -1; }
		for (unsigned k = 1; k <= n; k++) {
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80) {
				*why = "invalid UTF-8";
				return -1;
			}
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			*why = "invalid UTF-8";
			return -1;
		}
		if (cp >= 0x80 && cp <= 0x9f) {
			*why = "a control character";
			return -1;
		}
		i += n + 1;
	}
	return chars;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

struct nparse {
	const char *s;     /* whole input, for messages */
	const char *p;     /* cursor */
	int slash;         /* OpenSSL /A=B/ form */
};

/* Read an attribute value up to an unescaped separator; decoded into *out. */
static int
read_value(struct nparse *np, struct p11km_buf *out, char *sep)
{
	const char *p = np->p;
	size_t last_kept = 0; /* length after the last escaped or non-space byte */
	int started = 0;

	while (*p == ' ')
		p++;
	if (*p == '#' && !np->slash)
		return p11km_fail(P11KM_ERR_USAGE,
		    "subject: a value starting with '#' (hex-encoded BER) is not supported; "
		    "write it as text, escaping a leading '#' as '\\#'");
	for (;;) {
		unsigned char c = (unsigned char)*p;
		if (c == '\0' || (!np->slash && c == ',') || (np->slash && c == '/') || c == '+') {
			*sep = (char)c;
			break;
		}
		if (c == '\\') {
			int h1 = hexval(p[1]), h2 = h1 >= 0 ? hexval(p[2]) : -1;
			unsigned char v;
			if (h1 >= 0 && h2 >= 0) {
				v = (unsigned char)(h1 * 16 + h2);
				p += 3;
			} else if (p[1] != '\0' && strchr(",+\"\\#;<>= /", p[1]) != NULL) {
				v = (unsigned char)p[1];
				p += 2;
			} else {
				return p11km_fail(P11KM_ERR_USAGE,
				    "subject: invalid escape '\\%.1s'; escape only , + \" \\ # ; < > = space%s "
				    "or write \\XX in hex", p[1] ? p + 1 : "", np->slash ? " /" : "");
			}
			if (p11km_buf_append(out, &v, 1) < 0)
				return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			last_kept = out->len;
			started = 1;
			continue;
		}
		if (!np->slash && (c == '"' || c == ';' || c == '<' || c == '>'))
			return p11km_fail(P11KM_ERR_USAGE,
			    "subject: unescaped '%c' in a value; escape it as '\\%c' (RFC 4514)", c, c);
		if (p11km_buf_append(out, &c, 1) < 0)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		if (c != ' ')
			last_kept = out->len;
		started = 1;
		p++;
	}
	(void)started;
	out->len = last_kept; /* unescaped trailing spaces are not part of the value */
	np->p = p;
	return 0;
}

/* One type=value pair into name (set: -1 adds to the previous RDN). */
static int
read_ava(struct nparse *np, X509_NAME *name, int set, char *sep)
{
	const char *t = np->p, *eq;
	size_t tlen;
	struct p11km_buf v = { 0 };
	const char *why = NULL;
	long chars;
	int i, r;

	while (*t == ' ')
		t++;
	if ((eq = strchr(t, '=')) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "subject: '%s' is not TYPE=value", t);
	tlen = (size_t)(eq - t);
	while (tlen > 0 && t[tlen - 1] == ' ')
		tlen--;
	if (tlen == 0)
		return p11km_fail(P11KM_ERR_USAGE, "subject: an attribute type is missing before '='");
	if ((i = attr_lookup(t, tlen)) < 0)
		return p11km_fail(P11KM_ERR_USAGE,
		    "subject: unknown attribute type '%.*s'; use CN, O, OU, L, ST, C, DC, "
		    "emailAddress, serialNumber, ...", (int)tlen, t);
	np->p = eq + 1;
	if ((r = read_value(np, &v, sep)) < 0)
		goto out;
	if (v.len == 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "subject: %s has an empty value", attr_types[i].name);
		goto out;
	}
	if ((chars = utf8_check(v.data, v.len, &why)) < 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "subject: the %s value contains %s", attr_types[i].name,
		               why);
		goto out;
	}
	if (attr_types[i].max > 0 && chars > attr_types[i].max) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "subject: %s is %ld characters long; the limit is %d (X.520 upper bound)",
		    attr_types[i].name, chars, attr_types[i].max);
		goto out;
	}
	if ((attr_types[i].nid == NID_countryName || attr_types[i].nid == NID_jurisdictionCountryName) &&
	    (chars != 2 || !isupper(v.data[0]) || !isupper(v.data[1]))) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "subject: %s must be a two-letter upper-case ISO 3166 code like 'US'",
		    attr_types[i].name);
		goto out;
	}
	if (X509_NAME_add_entry_by_NID(name, attr_types[i].nid, MBSTRING_UTF8, v.data, (int)v.len,
	                               -1, set) != 1) {
		r = p11km_fail(P11KM_ERR_USAGE, "subject: OpenSSL refuses the %s value: %s",
		               attr_types[i].name, p11km_openssl_error());
		goto out;
	}
	r = 0;
out:
	p11km_buf_release(&v);
	return r;
}

/* Reverse the RDN order of an RFC 4514 parse (written most specific first). */
static int
reverse_rdns(X509_NAME *in, X509_NAME **out)
{
	X509_NAME *n = X509_NAME_new();
	int count = X509_NAME_entry_count(in), prev_set = -1;

	if (n == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	/* Walk RDNs from the last to the first, keeping each RDN's entries. */
	for (int end = count - 1; end >= 0;) {
		int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(in, end)), start = end;
		while (start > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(in, start - 1)) == set)
			start--;
		for (int k = start; k <= end; k++) {
			if (X509_NAME_add_entry(n, X509_NAME_get_entry(in, k), -1, k == start ? 0 : -1) != 1) {
				X509_NAME_free(n);
				return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			}
		}
		end = start - 1;
		(void)prev_set;
	}
	*out = n;
	return 0;
}

int
p11km_name_parse(const char *s, X509_NAME **out)
{
	struct nparse np = { s, s, 0 };
	X509_NAME *name = NULL, *rev = NULL;
	char sep = '\0';
	int set = 0, r;

	if (s == NULL || *s == '\0')
		return p11km_fail(P11KM_ERR_USAGE, "subject: empty; give for example 'CN=www.example.com'");
	if (strlen(s) > 8192)
		return p11km_fail(P11KM_ERR_USAGE, "subject: longer than 8192 bytes");
	if (*s == '/') {
		np.slash = 1;
		np.p = s + 1;
	}
	if ((name = X509_NAME_new()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (;;) {
		if ((r = read_ava(&np, name, set, &sep)) < 0)
			goto out;
		if (sep == '\0')
			break;
		np.p++;
		set = sep == '+' ? -1 : 0;
		if (np.slash && sep == '/' && *np.p == '\0')
			break; /* a trailing '/' */
	}
	if (!np.slash) {
		if ((r = reverse_rdns(name, &rev)) < 0)
			goto out;
		X509_NAME_free(name);
		name = rev;
	}
	*out = name;
	return 0;
out:
	X509_NAME_free(name);
	return r;
}

char *
p11km_name_text(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL, *p;
	long len;

	if (b == NULL)
		return NULL;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (len = BIO_get_mem_data(b, &p)) >= 0 && (s = malloc((size_t)len + 1)) != NULL) {
		if (len > 0) /* an empty name: no data, and p may be NULL */
			memcpy(s, p, (size_t)len);
		s[len] = '\0';
	}
	BIO_free(b);
	return s;
}

/* --- subjectAltName -------------------------------------------------------- */

int
p11km_is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int
p11km_is_hostname(const char *s)
{
	size_t len = strlen(s), label = 0;
	const char *last = s;
	int all_digits = 1;

	if (len == 0 || len > 253)
		return 0;
	if (strncmp(s, "*.", 2) == 0) {
		s += 2;
		last = s;
		if (*s == '\0')
			return 0;
	}
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-' || *last == '-')
				return 0;
			if (*p == '\0')
				break;
			label = 0;
			last = p + 1;
			all_digits = 1;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
		if (!isdigit((unsigned char)*p))
			all_digits = 0;
		label++;
	}
	return !all_digits; /* "1.2.3.4" is an address, not a name */
}

static int
ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int
email_ok(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at == s || (size_t)(at - s) > 64 || strlen(s) > 254 || !ascii_printable(s))
		return 0;
	for (const char *p = s; p < at; p++)
		if (strchr("@\"(),:;<>[\\]", *p) != NULL)
			return 0;
	return p11km_is_hostname(at + 1);
}

static int
uri_ok(const char *s)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL || colon == s || !isalpha((unsigned char)*s) || strlen(s) > 4096 ||
	    !ascii_printable(s) || colon[1] == '\0')
		return 0;
	for (const char *p = s; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
			return 0;
	return 1;
}

static GENERAL_NAME *
gn_ia5(int type, const char *v)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (g == NULL || s == NULL || ASN1_STRING_set(s, v, (int)strlen(v)) != 1) {
		GENERAL_NAME_free(g);
		ASN1_IA5STRING_free(s);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, type, s);
	return g;
}

static GENERAL_NAME *
gn_ip(const char *v)
{
	unsigned char buf[16];
	int len = 0;
	GENERAL_NAME *g;
	ASN1_OCTET_STRING *os;

	if (inet_pton(AF_INET, v, buf) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, v, buf) == 1)
		len = 16;
	else
		return NULL;
	g = GENERAL_NAME_new();
	os = ASN1_OCTET_STRING_new();
	if (g == NULL || os == NULL || ASN1_OCTET_STRING_set(os, buf, len) != 1) {
		GENERAL_NAME_free(g);
		ASN1_OCTET_STRING_free(os);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, GEN_IPADD, os);
	return g;
}

static const char *const san_prefixes[] = { "DNS:", "IP:", "email:", "URI:" };

static int
san_prefix(const char *p)
{
	for (int i = 0; i < 4; i++)
		if (strncasecmp(p, san_prefixes[i], strlen(san_prefixes[i])) == 0)
			return i;
	return -1;
}

/* One "TYPE:value" item. */
static int
san_one(const char *item, GENERAL_NAMES *gens)
{
	int k = san_prefix(item);
	const char *v;
	char *copy = NULL;
	GENERAL_NAME *g = NULL;
	const char *why = NULL;

	if (k < 0)
		return p11km_fail(P11KM_ERR_USAGE,
		    "--san '%s': start each name with DNS:, IP:, email: or URI:", item);
	v = item + strlen(san_prefixes[k]);
	if (utf8_check((const unsigned char *)v, strlen(v), &why) < 0)
		return p11km_fail(P11KM_ERR_USAGE, "--san: the value contains %s", why);
	switch (k) {
	case 0:
		if (!p11km_is_hostname(v))
			return p11km_fail(P11KM_ERR_USAGE,
			    "--san DNS:%s is not a valid host name (letters, digits, '-' in labels of "
			    "1 to 63, an optional leading '*.'; addresses go in IP:)", v);
		g = gn_ia5(GEN_DNS, v);
		break;
	case 1:
		copy = strdup(v);
		if (copy != NULL && copy[0] == '[' && strlen(copy) > 2 && copy[strlen(copy) - 1] == ']') {
			copy[strlen(copy) - 1] = '\0';
			memmove(copy, copy + 1, strlen(copy));
		}
		if (copy != NULL && !p11km_is_ip(copy)) {
			free(copy);
			return p11km_fail(P11KM_ERR_USAGE,
			    "--san IP:%s is not an IPv4 or IPv6 address", v);
		}
		g = copy ? gn_ip(copy) : NULL;
		free(copy);
		break;
	case 2:
		if (!email_ok(v))
			return p11km_fail(P11KM_ERR_USAGE, "--san email:%s is not an e-mail address", v);
		g = gn_ia5(GEN_EMAIL, v);
		break;
	case 3:
		if (!uri_ok(v))
			return p11km_fail(P11KM_ERR_USAGE,
			    "--san URI:%s is not an absolute URI (scheme:..., printable ASCII)", v);
		g = gn_ia5(GEN_URI, v);
		break;
	}
	if (g == NULL || sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int
p11km_san_parse(const char *spec, GENERAL_NAMES **gens)
{
	char *copy, *p, *start;
	int r = 0, created = 0;

	if (*gens == NULL) {
		if ((*gens = GENERAL_NAMES_new()) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		created = 1;
	}
	if ((copy = strdup(spec)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	/* Split at commas that start a new "TYPE:" (a URI may hold commas). */
	for (start = p = copy; r == 0; p++) {
		if (*p == '\0' || (*p == ',' && san_prefix(p + 1 + strspn(p + 1, " ")) >= 0)) {
			int end = *p == '\0';
			*p = '\0';
			while (*start == ' ')
				start++;
			r = san_one(start, *gens);
			if (end)
				break;
			start = p + 1;
		}
	}
	free(copy);
	if (r < 0 && created) {
		GENERAL_NAMES_free(*gens);
		*gens = NULL;
	}
	return r;
}

char *
p11km_general_name_text(const GENERAL_NAME *g)
{
	int type;
	void *v = GENERAL_NAME_get0_value(g, &type);
	const ASN1_STRING *s = v;
	char buf[64];

	switch (type) {
	case GEN_DNS:
		return p11km_asprintf("DNS:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
	case GEN_EMAIL:
		return p11km_asprintf("email:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
	case GEN_URI:
		return p11km_asprintf("URI:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
	case GEN_IPADD:
		if (ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16) {
			inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6,
			          ASN1_STRING_get0_data(s), buf, sizeof(buf));
			return p11km_asprintf("IP:%s", buf);
		}
		return strdup("IP:?");
	default:
		return p11km_asprintf("other:%d", type);
	}
}

/* --- key usage --------------------------------------------------------------- */

static const struct { const char *name; int bit; } ku_bits[] = {
	{ "digitalSignature", 0 }, { "nonRepudiation", 1 }, { "contentCommitment", 1 },
	{ "keyEncipherment", 2 }, { "dataEncipherment", 3 }, { "keyAgreement", 4 },
	{ "keyCertSign", 5 }, { "cRLSign", 6 }, { "encipherOnly", 7 }, { "decipherOnly", 8 },
};

/* Call fn for each comma-separated item of list. */
static int
each_item(const char *list, const char *what, int (*fn)(const char *item, size_t len, void *arg),
          void *arg)
{
	const char *p = list;
	int r, n = 0;

	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 0)
			return p11km_fail(P11KM_ERR_USAGE, "%s: empty item in '%s'", what, list);
		if ((r = fn(p, len, arg)) < 0)
			return r;
		n++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return n;
}

static int
ku_item(const char *item, size_t len, void *arg)
{
	for (size_t i = 0; i < sizeof(ku_bits) / sizeof(ku_bits[0]); i++)
		if (strlen(ku_bits[i].name) == len && strncasecmp(ku_bits[i].name, item, len) == 0)
			return ASN1_BIT_STRING_set_bit(arg, ku_bits[i].bit, 1) == 1 ? 0 :
			       p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return p11km_fail(P11KM_ERR_USAGE,
	    "--key-usage: unknown usage '%.*s'; use digitalSignature, keyEncipherment, "
	    "keyAgreement, nonRepudiation, dataEncipherment, keyCertSign, cRLSign", (int)len, item);
}

int
p11km_ku_parse(const char *list, X509_EXTENSION **out)
{
	ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
	X509_EXTENSION *ext;
	int r;

	if (bs == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = each_item(list, "--key-usage", ku_item, bs)) < 0) {
		ASN1_BIT_STRING_free(bs);
		return r;
	}
	ext = X509V3_EXT_i2d(NID_key_usage, 1, bs);
	ASN1_BIT_STRING_free(bs);
	if (ext == NULL)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode keyUsage: %s",
		                  p11km_openssl_error());
	*out = ext;
	return 0;
}

static const struct { const char *name; int nid; } eku_names[] = {
	{ "serverAuth", NID_server_auth }, { "clientAuth", NID_client_auth },
	{ "codeSigning", NID_code_sign }, { "emailProtection", NID_email_protect },
	{ "timeStamping", NID_time_stamp }, { "OCSPSigning", NID_OCSP_sign },
	{ "ipsecIKE", NID_ipsec_IKE }, { "msSmartcardLogin", NID_ms_smartcard_login },
	{ "anyExtendedKeyUsage", NID_anyExtendedKeyUsage },
};

static int
eku_item(const char *item, size_t len, void *arg)
{
	EXTENDED_KEY_USAGE *eku = arg;
	ASN1_OBJECT *obj = NULL;
	char buf[128];

	for (size_t i = 0; i < sizeof(eku_names) / sizeof(eku_names[0]); i++)
		if (strlen(eku_names[i].name) == len && strncasecmp(eku_names[i].name, item, len) == 0)
			obj = OBJ_nid2obj(eku_names[i].nid);
	if (obj == NULL && len < sizeof(buf) && isdigit((unsigned char)item[0])) {
		memcpy(buf, item, len);
		buf[len] = '\0';
		obj = OBJ_txt2obj(buf, 1);
		ERR_clear_error();
	}
	if (obj == NULL)
		return p11km_fail(P11KM_ERR_USAGE,
		    "--ext-key-usage: unknown usage '%.*s'; use serverAuth, clientAuth, codeSigning, "
		    "emailProtection, timeStamping, OCSPSigning or a dotted OID", (int)len, item);
	if (sk_ASN1_OBJECT_push(eku, obj) <= 0) {
		ASN1_OBJECT_free(obj);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int
p11km_eku_parse(const char *list, X509_EXTENSION **out)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	X509_EXTENSION *ext;
	int r;

	if (eku == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = each_item(list, "--ext-key-usage", eku_item, eku)) < 0) {
		sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
		return r;
	}
	ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	if (ext == NULL)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode extendedKeyUsage: %s",
		                  p11km_openssl_error());
	*out = ext;
	return 0;
}
