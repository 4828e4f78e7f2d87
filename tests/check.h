/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * A tiny assertion kit for the unit tests: every CHECK* counts as one check,
 * a failed one is reported on stderr with its place and what was compared,
 * and check_done() prints "<name>: P passed, F failed" on stdout, which
 * tests/Makefile adds up.
 */


#ifndef _CHECK_H_INCLUDED_
#define _CHECK_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static unsigned long  check_passed;
static unsigned long  check_failed;


#define CHECK(cond)                                                           \
    check_result((cond) != 0, __FILE__, __LINE__, #cond)

#define CHECK_MEM(got, got_len, want, want_len)                               \
    check_mem(got, got_len, want, want_len, __FILE__, __LINE__, #got)

/* want is a string literal: its length is known without strlen() */
#define CHECK_LIT(got, got_len, want)                                         \
    check_mem(got, got_len, want, sizeof(want) - 1, __FILE__, __LINE__, #got)

#define CHECK_STR(got, want)                                                  \
    check_mem(got, strlen(got), want, strlen(want), __FILE__, __LINE__, #got)

#define CHECK_UINT(got, want)                                                 \
    check_uint(got, want, __FILE__, __LINE__, #got)


static inline int
check_result(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
        return 1;
    }

    check_failed++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);

    return 0;
}


/* prints bytes with C escapes, the first 300 of them */

static inline void
check_print(const char *name, const void *data, size_t len)
{
    size_t                i;
    const unsigned char  *p;

    p = data;

    fprintf(stderr, "    %s (%lu bytes): \"", name, (unsigned long) len);

    for (i = 0; i < len && i < 300; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            fprintf(stderr, "\\%c", p[i]);

        } else if (p[i] == '\n') {
            fprintf(stderr, "\\n");

        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            fputc(p[i], stderr);

        } else {
            fprintf(stderr, "\\x%02x", p[i]);
        }
    }

    fprintf(stderr, "\"%s\n", (len > 300) ? "..." : "");
}


static inline int
check_mem(const void *got, size_t got_len, const void *want, size_t want_len,
    const char *file, int line, const char *what)
{
    if (got != NULL && got_len == want_len
        && (want_len == 0 || memcmp(got, want, want_len) == 0))
    {
        check_passed++;
        return 1;
    }

    check_failed++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);

    if (got == NULL) {
        fprintf(stderr, "    got NULL\n");

    } else {
        check_print("got", got, got_len);
    }

    check_print("want", want, want_len);

    return 0;
}


static inline int
check_uint(unsigned long long got, unsigned long long want, const char *file,
    int line, const char *what)
{
    if (got == want) {
        check_passed++;
        return 1;
    }

    check_failed++;
    fprintf(stderr, "%s:%d: check failed: %s is %llu, not %llu\n",
            file, line, what, got, want);

    return 0;
}


static inline int
check_done(const char *name)
{
    printf("%s: %lu passed, %lu failed\n", name, check_passed, check_failed);

    return check_failed ? 1 : 0;
}


/* a small, fixed pseudo-random sequence (xorshift64), the same everywhere */

static unsigned long long  check_random_state = 88172645463325252ULL;


static inline void
check_seed(unsigned long long seed)
{
    check_random_state = seed ? seed : 88172645463325252ULL;
}


static inline unsigned long
check_random(unsigned long n)
{
    unsigned long long  x;

    x = check_random_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    check_random_state = x;

    return (unsigned long) ((x >> 11) % n);
}


#endif /* _CHECK_H_INCLUDED_ */
