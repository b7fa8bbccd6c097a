/* pin.h: PIN sources.  No PIN ever comes from argv. */
#ifndef P11KM_PIN_H
#define P11KM_PIN_H

#include <stddef.h>

enum p11km_pin_kind {
	P11KM_PIN_FILE,   /* file:PATH (or a bare path from a URI pin-source) */
	P11KM_PIN_ENV,    /* env:VAR */
	P11KM_PIN_FD,     /* fd:N */
	P11KM_PIN_PROMPT, /* prompt: from the terminal, no echo */
	P11KM_PIN_VALUE,  /* a URI's pin-value (warned about) */
};

struct p11km_pinsrc {
	enum p11km_pin_kind kind;
	char *arg;    /* path, variable name, fd number text, value */
	char *spec;   /* the text as given, for messages (never a PIN value) */
};

/* Longest PIN accepted (bytes). */
#define P11KM_PIN_MAX 256

/* Parse "file:PATH", "env:VAR", "fd:N", "prompt".  bare_path_ok: a plain
 * path means file: (RFC 7512 pin-source). */
int p11km_pinsrc_parse(const char *spec, int bare_path_ok, struct p11km_pinsrc *out);
/* A source holding a literal value (URI pin-value). */
int p11km_pinsrc_value(const char *value, struct p11km_pinsrc *out);
void p11km_pinsrc_release(struct p11km_pinsrc *src);
/* An "env:VAR" spec: keep VAR out of every child's environment (before the
 * source is parsed or used: a command may start children first). */
void p11km_pin_env_hide(const char *spec);

/*
 * Read the PIN.  A trailing "\n" or "\r\n" is stripped, an empty PIN is
 * refused, a world-readable PIN file gets a warning.  prompt is the text
 * shown for P11KM_PIN_PROMPT.  *pin is NUL-terminated; free it with
 * p11km_pin_free(), which wipes it.
 */
int p11km_pin_read(const struct p11km_pinsrc *src, const char *prompt,
                   char **pin, size_t *len);
void p11km_pin_free(char *pin, size_t len);

#endif
