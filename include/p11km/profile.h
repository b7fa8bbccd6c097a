/* profile.h: token profiles (tokens/<family>/profile, doc/token-profiles.md):
 * what p11km knows about a token family, as data.  A profile explains and
 * sets defaults; probing decides: nothing here makes p11km skip a check it
 * can make.  Part of the p11 layer (depends on util only). */
#ifndef P11KM_PROFILE_H
#define P11KM_PROFILE_H

#include <stddef.h>

/* One "key=value" line of a profile. */
struct p11km_profile_entry {
	char *key, *value;
	unsigned line;
};

struct p11km_profile {
	char *path;                  /* the file it was read from */
	struct p11km_profile_entry *e;
	size_t n;
};

/* The keys a profile may carry: the schema (doc/token-profiles.md). */
struct p11km_profile_key {
	const char *key;
	int required;        /* must appear at least once */
	int repeat;          /* may appear more than once */
	const char *values;  /* space-separated allowed first words, or NULL: free text */
};
extern const struct p11km_profile_key p11km_profile_keys[];

/* Parse one profile from text (path names it in messages).  Unknown keys,
 * missing required keys, repeated single keys and values outside the
 * allowed set are P11KM_ERR_INPUT naming the file and line. */
int p11km_profile_parse(const char *path, const char *text, size_t len,
                        struct p11km_profile *out);
/* Read and parse a file. */
int p11km_profile_read(const char *path, struct p11km_profile *out);
void p11km_profile_release(struct p11km_profile *p);

/* The first value of key (borrowed), or NULL. */
const char *p11km_profile_get(const struct p11km_profile *p, const char *key);
/* The i-th value of key (0-based), or NULL when there are fewer. */
const char *p11km_profile_nth(const struct p11km_profile *p, const char *key, size_t i);

/* The directory of the profiles: $P11KM_TOKENS_DIR, else PKGDATADIR/tokens. */
const char *p11km_profiles_dir(void);
/* Every DIR/<family>/profile, sorted by family name.  A profile that does
 * not parse is an error (the installed data is broken). */
int p11km_profiles_load(const char *dir, struct p11km_profile **out, size_t *n);
void p11km_profiles_free(struct p11km_profile *v, size_t n);

/* How well p11km's view of a token matches profile p: 0 no match, else the
 * number of match-* kinds it declares (all must match; globs, fnmatch(3)):
 * match-module against the module's file name, match-manufacturer and
 * match-model against the token's fields. */
int p11km_profile_match(const struct p11km_profile *p, const char *module_file,
                        const char *manufacturer, const char *model);
/* The best match among v (NULL: none); the most specific wins, the first
 * of equals. */
const struct p11km_profile *p11km_profile_best(const struct p11km_profile *v, size_t n,
                                               const char *module_file,
                                               const char *manufacturer, const char *model);

#endif
