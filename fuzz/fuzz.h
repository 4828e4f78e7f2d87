
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * What the fuzz targets share: FUZZ_CHECK(), which reports a broken
 * invariant and aborts (libFuzzer then saves the input as a crash), and
 * reference checkers written independently of the module's own code, so
 * that a target compares two implementations rather than one with itself.
 */


#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fuzz_fail(__FILE__, __LINE__, #cond);                             \
        }                                                                     \
    } while (0)


void fuzz_fail(const char *file, int line, const char *what);

/* prints bytes with C escapes (the first 200) on stderr, before a fail */
void fuzz_print(const char *name, const void *data, size_t len);

/* an exact-size copy, so that AddressSanitizer sees a read past its end */
u_char *fuzz_dup(const void *data, size_t len);

/*
 * The length of the well-formed UTF-8 sequence at p (1 for ASCII), or 0:
 * decoded, then checked against overlong forms, surrogates and code points
 * above U+10FFFF (RFC 3629).
 */
size_t fuzz_utf8_seq(const u_char *p, size_t left);

int fuzz_utf8_valid(const u_char *p, size_t len);


/*
 * yajl's leniencies, which fuzz_json_valid() can be told to accept too:
 * "\f" and "\v" as white space; after the value, a string left open until
 * the end of the text (yajl takes it for a token still to come, and forgets
 * to complain at the end); in that string, UTF-8 checked for its shape only.
 */
#define FUZZ_JSON_YAJL_WS    0x01
#define FUZZ_JSON_YAJL_TAIL  0x02
#define FUZZ_JSON_YAJL_UTF8  0x04
#define FUZZ_JSON_YAJL       0x07

/*
 * Whether [p, p + len) is one JSON text as RFC 8259 defines it, in valid
 * UTF-8, with the leniencies in flags; *top receives the first byte of its
 * value ('{', '[', '"', ...).  Iterative: any nesting depth.
 */
int fuzz_json_valid(const u_char *p, size_t len, int flags, int *top);


/* What a JSON text holds, as fuzz_json_measure() finds it. */
typedef struct {
    /* the deepest nesting of arrays and objects */
    size_t                       depth;
    /* values of any kind, containers included; keys are not values */
    size_t                       values;
    /* the length of the longest number's text */
    size_t                       number_max;
    /* an escaped surrogate without its other half, in a string or key */
    unsigned                     lone_surrogate:1;
    /* "\u0000" in a string or key */
    unsigned                     nul:1;
} fuzz_json_measure_t;

/*
 * Measures [p, p + len), a text fuzz_json_valid() (strict) takes, by a
 * scan of its own: no tree, any depth.
 */
void fuzz_json_measure(const u_char *p, size_t len, fuzz_json_measure_t *m);


#endif /* _FUZZ_H_INCLUDED_ */
