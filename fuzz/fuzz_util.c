
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"


static int fuzz_json_ws(u_char c, int flags);
static int fuzz_json_string(const u_char *p, size_t len, size_t *i,
    int flags);
static size_t fuzz_utf8_shape(const u_char *p, size_t left);
static int fuzz_json_number(const u_char *p, size_t len, size_t *i);
static int fuzz_json_literal(const u_char *p, size_t len, size_t *i,
    const char *word);


void
fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}


void
fuzz_print(const char *name, const void *data, size_t len)
{
    size_t         i;
    const u_char  *p;

    p = data;

    fprintf(stderr, "    %s (%lu bytes): \"", name, (unsigned long) len);

    for (i = 0; i < len && i < 200; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            fprintf(stderr, "\\%c", p[i]);

        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            fputc(p[i], stderr);

        } else {
            fprintf(stderr, "\\x%02x", p[i]);
        }
    }

    fprintf(stderr, "\"%s\n", len > 200 ? "..." : "");
}


u_char *
fuzz_dup(const void *data, size_t len)
{
    u_char  *p;

    /* malloc(0) may return NULL: one byte more, never read */

    p = malloc(len ? len : 1);
    if (p == NULL) {
        abort();
    }

    if (len) {
        memcpy(p, data, len);
    }

    return p;
}


size_t
fuzz_utf8_seq(const u_char *p, size_t left)
{
    size_t    n, i;
    uint32_t  cp, min;

    if (p[0] < 0x80) {
        return 1;
    }

    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
        min = 0x80;

    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
        min = 0x800;

    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (left < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = cp << 6 | (p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


int
fuzz_utf8_valid(const u_char *p, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {
        n = fuzz_utf8_seq(p + i, len - i);

        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * A state machine over an explicit stack of open containers: after a value
 * comes ',' or the container's end; in an object, a key and ':' come before
 * each value.
 */

int
fuzz_json_valid(const u_char *p, size_t len, int flags, int *top)
{
    int      ok;
    size_t   i, depth;
    u_char  *stack, c;

    stack = malloc(len + 1);
    if (stack == NULL) {
        abort();
    }

    ok = 0;
    depth = 0;
    i = 0;
    *top = 0;

value:

    while (i < len && fuzz_json_ws(p[i], flags)) {
        i++;
    }

    if (i == len) {
        goto done;
    }

    c = p[i];

    if (depth == 0) {
        *top = c;
    }

    if (c == '{' || c == '[') {
        stack[depth++] = c;
        i++;

        while (i < len && fuzz_json_ws(p[i], flags)) {
            i++;
        }

        if (i < len && p[i] == (c == '{' ? '}' : ']')) {
            i++;
            depth--;
            goto after;
        }

        if (c == '{') {
            goto key;
        }

        goto value;
    }

    if (c == '"') {
        if (fuzz_json_string(p, len, &i, 0) != 1) {
            goto done;
        }

    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (!fuzz_json_number(p, len, &i)) {
            goto done;
        }

    } else if (!fuzz_json_literal(p, len, &i, "true")
               && !fuzz_json_literal(p, len, &i, "false")
               && !fuzz_json_literal(p, len, &i, "null"))
    {
        goto done;
    }

after:

    while (i < len && fuzz_json_ws(p[i], flags)) {
        i++;
    }

    if (depth == 0) {
        ok = (i == len);

        if (!ok && (flags & FUZZ_JSON_YAJL_TAIL) && p[i] == '"') {
            ok = (fuzz_json_string(p, len, &i, flags) == 2);
        }

        goto done;
    }

    if (i == len) {
        goto done;
    }

    if (p[i] == ',') {
        i++;

        if (stack[depth - 1] == '{') {
            goto key;
        }

        goto value;
    }

    if (p[i] == (stack[depth - 1] == '{' ? '}' : ']')) {
        i++;
        depth--;
        goto after;
    }

    goto done;

key:

    while (i < len && fuzz_json_ws(p[i], flags)) {
        i++;
    }

    if (i == len || p[i] != '"' || fuzz_json_string(p, len, &i, 0) != 1) {
        goto done;
    }

    while (i < len && fuzz_json_ws(p[i], flags)) {
        i++;
    }

    if (i == len || p[i] != ':') {
        goto done;
    }

    i++;

    goto value;

done:

    free(stack);

    return ok;
}


static int
fuzz_json_ws(u_char c, int flags)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        return 1;
    }

    return (flags & FUZZ_JSON_YAJL_WS) && (c == '\f' || c == '\v');
}


/*
 * *i is at the opening quote.  Returns 1 when the string is closed (*i is
 * then past its closing quote), 2 when the text ends inside it between two
 * characters, 0 when it is not a string.  With FUZZ_JSON_YAJL_UTF8, UTF-8
 * is checked for its shape only.
 */

static int
fuzz_json_string(const u_char *p, size_t len, size_t *i, int flags)
{
    size_t  j, k, n;

    j = *i + 1;

    while (j < len) {

        if (p[j] == '"') {
            *i = j + 1;
            return 1;
        }

        if (p[j] < 0x20) {
            return 0;
        }

        if (p[j] == '\\') {
            j++;

            if (j == len) {
                return 0;
            }

            if (p[j] == 'u') {
                for (k = 1; k <= 4; k++) {
                    if (j + k >= len
                        || strchr("0123456789abcdefABCDEF", p[j + k]) == NULL
                        || p[j + k] == '\0')
                    {
                        return 0;
                    }
                }

                j += 5;
                continue;
            }

            if (p[j] == '\0' || strchr("\"\\/bfnrt", p[j]) == NULL) {
                return 0;
            }

            j++;
            continue;
        }

        if (flags & FUZZ_JSON_YAJL_UTF8) {
            n = fuzz_utf8_shape(p + j, len - j);

        } else {
            n = fuzz_utf8_seq(p + j, len - j);
        }

        if (n == 0) {
            return 0;
        }

        j += n;
    }

    return 2;
}


/* a lead byte and its number of continuation bytes, as yajl checks them */

static size_t
fuzz_utf8_shape(const u_char *p, size_t left)
{
    size_t  n, i;

    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc0 && p[0] <= 0xdf) {
        n = 2;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf7) {
        n = 4;

    } else {
        return 0;
    }

    if (left < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */

static int
fuzz_json_number(const u_char *p, size_t len, size_t *i)
{
    size_t  j, start;

    j = *i;

    if (p[j] == '-') {
        j++;
    }

    if (j == len || p[j] < '0' || p[j] > '9') {
        return 0;
    }

    if (p[j] == '0') {
        j++;

    } else {
        while (j < len && p[j] >= '0' && p[j] <= '9') {
            j++;
        }
    }

    if (j < len && p[j] == '.') {
        j++;
        start = j;

        while (j < len && p[j] >= '0' && p[j] <= '9') {
            j++;
        }

        if (j == start) {
            return 0;
        }
    }

    if (j < len && (p[j] == 'e' || p[j] == 'E')) {
        j++;

        if (j < len && (p[j] == '+' || p[j] == '-')) {
            j++;
        }

        start = j;

        while (j < len && p[j] >= '0' && p[j] <= '9') {
            j++;
        }

        if (j == start) {
            return 0;
        }
    }

    *i = j;

    return 1;
}


static int
fuzz_json_literal(const u_char *p, size_t len, size_t *i, const char *word)
{
    size_t  n;

    n = strlen(word);

    if (len - *i < n || memcmp(p + *i, word, n) != 0) {
        return 0;
    }

    *i += n;

    return 1;
}


static long fuzz_hex4(const u_char *p);


void
fuzz_json_measure(const u_char *p, size_t len, fuzz_json_measure_t *m)
{
    long    u, v;
    size_t  i, j, depth;
    u_char  c, prev;

    memset(m, 0, sizeof(fuzz_json_measure_t));

    depth = 0;
    prev = ' ';

    for (i = 0; i < len; prev = p[i], i++) {
        c = p[i];

        if (c == '[' || c == '{') {
            m->values++;

            if (++depth > m->depth) {
                m->depth = depth;
            }

            continue;
        }

        if (c == ']' || c == '}') {
            depth--;
            continue;
        }

        /* a literal's first letter: true, false, null */

        if (c == 't' || c == 'f' || c == 'n') {
            m->values++;
            i += (c == 'f') ? 4 : 3;
            continue;
        }

        /* a number starts where no number goes on */

        if ((c == '-' || (c >= '0' && c <= '9'))
            && !((prev >= '0' && prev <= '9') || prev == '.' || prev == 'e'
                 || prev == 'E' || prev == '+' || prev == '-'))
        {
            m->values++;

            for (j = i + 1; j < len; j++) {
                if (strchr("0123456789.eE+-", p[j]) == NULL || p[j] == '\0') {
                    break;
                }
            }

            if (j - i > m->number_max) {
                m->number_max = j - i;
            }

            continue;
        }

        if (c != '"') {
            continue;
        }

        /* a string, to its closing quote; the text is valid */

        for (i++; p[i] != '"'; i++) {
            if (p[i] != '\\') {
                continue;
            }

            i++;

            if (p[i] != 'u') {
                continue;
            }

            u = fuzz_hex4(p + i + 1);
            i += 4;

            if (u == 0) {
                m->nul = 1;

            } else if (u >= 0xdc00 && u <= 0xdfff) {
                m->lone_surrogate = 1;

            } else if (u >= 0xd800 && u <= 0xdbff) {
                /* "\uD8xx\uDCxx": the text goes on after p[i] */
                if (i + 6 < len && p[i + 1] == '\\' && p[i + 2] == 'u'
                    && (v = fuzz_hex4(p + i + 3)) >= 0xdc00 && v <= 0xdfff)
                {
                    i += 6;

                } else {
                    m->lone_surrogate = 1;
                }
            }
        }

        /* a key is followed by ':', and is not a value */

        for (j = i + 1; j < len && fuzz_json_ws(p[j], 0); j++) {
            /* void */
        }

        if (j == len || p[j] != ':') {
            m->values++;
        }
    }
}


/* four hex digits of a valid text */

static long
fuzz_hex4(const u_char *p)
{
    long    n;
    size_t  i;

    n = 0;

    for (i = 0; i < 4; i++) {
        n = n * 16 + (p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    }

    return n;
}
