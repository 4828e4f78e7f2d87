
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the JSON writer (ngx_http_perstack_jw_*()), driven by
 * the input as a program of values and keys.
 *
 * Input: a sequence of operations, each one byte and its operands:
 *
 *     b % 6 == 0    open an object
 *     b % 6 == 1    open an array
 *     b % 6 == 2    close the innermost one
 *     b % 6 == 3    a string: next byte n, then n bytes (fewer at the end)
 *     b % 6 == 4    a number: the next byte's value, as an integer
 *     b % 6 == 5    true, false or null, by b / 6 % 3
 *
 * Inside an object, a string in a key's place is the key.  An operation
 * that would make no JSON (a value in an object where a key goes, a
 * number as a key, a close at the top, a second value at the top) is
 * skipped, and what is open is closed at the end.  The writer's bound is
 * taken from the first byte: 0 (none) or up to 16 KiB.
 *
 * Checked:
 *   - with no bound, the writer never fails and its text is JSON that
 *     yajl's tree parser reads, with the numbers of objects, arrays,
 *     strings, numbers and literals written;
 *   - each string that is valid UTF-8 reads back as the bytes given;
 *   - with a bound, the text is never longer than the bound, and the
 *     writer fails exactly when the unbounded text is longer.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_writer.h"
#include "fuzz.h"


#define DEPTH  (NGX_HTTP_PERSTACK_JSON_DEPTH_MAX - 2)


typedef struct {
    size_t   objects;
    size_t   arrays;
    size_t   strings;
    size_t   numbers;
    size_t   literals;
} counts_t;


/* the input's strings that are valid UTF-8, in order, for the check */
typedef struct {
    const u_char  *data[4096];
    size_t         len[4096];
    size_t         n;
    size_t         next;
} strings_t;


static void run(ngx_http_perstack_jw_t *jw, const uint8_t *data,
    size_t size, counts_t *c, strings_t *s);
static void count(yajl_val v, counts_t *c, strings_t *s, int *bad);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     bad;
    char                    err[128];
    size_t                  max;
    u_char                 *text;
    yajl_val                tree;
    counts_t                want, got, unused;
    strings_t              *strings, *scratch;
    ngx_http_perstack_jw_t  jw, bounded;

    if (size == 0) {
        return 0;
    }

    max = (data[0] & 1) ? (size_t) data[0] * 64 : 0;
    data++;
    size--;

    strings = calloc(1, sizeof(strings_t));
    scratch = calloc(1, sizeof(strings_t));
    if (strings == NULL || scratch == NULL) {
        abort();
    }

    memset(&want, 0, sizeof(counts_t));
    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);
    run(&jw, data, size, &want, strings);

    if (ngx_http_perstack_jw_failed(&jw) || jw.depth != 0) {
        fuzz_fail(__FILE__, __LINE__, "the unbounded writer failed");
    }

    text = malloc(ngx_http_perstack_jw_len(&jw) + 1);
    if (text == NULL) {
        abort();
    }

    memcpy(text, jw.start, ngx_http_perstack_jw_len(&jw));
    text[ngx_http_perstack_jw_len(&jw)] = '\0';

    tree = yajl_tree_parse((char *) text, err, sizeof(err));
    if (tree == NULL) {
        fprintf(stderr, "text: %s\nerror: %s\n", text, err);
        fuzz_fail(__FILE__, __LINE__, "the writer's text is not JSON");
    }

    memset(&got, 0, sizeof(counts_t));
    bad = 0;
    count(tree, &got, strings, &bad);

    if (memcmp(&got, &want, sizeof(counts_t)) != 0) {
        fprintf(stderr, "text: %s\n", text);
        fuzz_fail(__FILE__, __LINE__,
                  "the JSON read back is not what was written");
    }

    if (bad) {
        fprintf(stderr, "text: %s\n", text);
        fuzz_fail(__FILE__, __LINE__,
                  "a valid UTF-8 string did not read back as itself");
    }

    yajl_tree_free(tree);

    if (max) {
        memset(&unused, 0, sizeof(counts_t));
        ngx_http_perstack_jw_init(&bounded, ngx_http_perstack_jw_malloc, NULL,
                                  max);
        run(&bounded, data, size, &unused, scratch);

        if (ngx_http_perstack_jw_len(&bounded) > max) {
            fuzz_fail(__FILE__, __LINE__, "the bounded text is over its bound");
        }

        if (ngx_http_perstack_jw_failed(&bounded)
            != (ngx_http_perstack_jw_len(&jw) > max))
        {
            fuzz_fail(__FILE__, __LINE__,
                      "the bounded writer failed, or not, wrongly");
        }

        if (!ngx_http_perstack_jw_failed(&bounded)
            && (ngx_http_perstack_jw_len(&bounded)
                != ngx_http_perstack_jw_len(&jw)
                || memcmp(bounded.start, jw.start,
                          ngx_http_perstack_jw_len(&jw)) != 0))
        {
            fuzz_fail(__FILE__, __LINE__,
                      "the bounded text differs from the unbounded one");
        }

        free(bounded.start);
    }

    free(text);
    free(jw.start);
    free(strings);
    free(scratch);

    return 0;
}


static void
run(ngx_http_perstack_jw_t *jw, const uint8_t *data, size_t size,
    counts_t *c, strings_t *s)
{
    int             top_done;
    u_char          num[8];
    size_t          i, n, avail, depth;
    const uint8_t  *str;
    unsigned char   open[DEPTH + 1], key_next[DEPTH + 1];

    depth = 0;
    top_done = 0;
    open[0] = 0;
    key_next[0] = 0;

    for (i = 0; i < size; i++) {
        unsigned  op = data[i] % 6;
        int       value_ok, key_place;

        key_place = depth > 0 && open[depth] == '{' && key_next[depth];
        value_ok = depth > 0 ? (open[depth] == '[' || !key_next[depth])
                             : !top_done;

        switch (op) {

        case 0:
        case 1:
            if (!value_ok || depth == DEPTH) {
                break;
            }

            ngx_http_perstack_jw_open(jw, op == 0 ? '{' : '[');

            if (depth > 0 && open[depth] == '{') {
                key_next[depth] = 1;
            }

            if (depth == 0) {
                top_done = 1;
            }

            depth++;
            open[depth] = op == 0 ? '{' : '[';
            key_next[depth] = 1;

            if (op == 0) {
                c->objects++;

            } else {
                c->arrays++;
            }

            break;

        case 2:
            /* an object waits for a key: no key without its value */
            if (depth == 0 || (open[depth] == '{' && !key_next[depth])) {
                break;
            }

            ngx_http_perstack_jw_close(jw);
            depth--;
            break;

        case 3:
            /* the length byte, then the string */
            i++;
            n = (i < size) ? data[i] : 0;
            avail = (i + 1 <= size) ? size - (i + 1) : 0;
            str = data + (i + 1 <= size ? i + 1 : size);

            if (n > avail) {
                n = avail;
            }

            if (key_place) {
                ngx_http_perstack_jw_key(jw, str, n);
                key_next[depth] = 0;

            } else if (value_ok) {
                ngx_http_perstack_jw_value_str(jw, str, n);
                c->strings++;

                if (depth > 0 && open[depth] == '{') {
                    key_next[depth] = 1;
                }

                if (depth == 0) {
                    top_done = 1;
                }

            } else {
                i += n;
                break;
            }

            if (s->n < 4096) {
                s->data[s->n] = str;
                s->len[s->n] = fuzz_utf8_valid(str, n) ? n : (size_t) -1;
                s->n++;
            }

            i += n;
            break;

        case 4:
            i++;

            if (!value_ok || key_place) {
                break;
            }

            n = snprintf((char *) num, sizeof(num), "%u",
                         i < size ? data[i] : 0);
            ngx_http_perstack_jw_value_raw(jw, num, n);
            c->numbers++;

            if (depth > 0 && open[depth] == '{') {
                key_next[depth] = 1;
            }

            if (depth == 0) {
                top_done = 1;
            }

            break;

        default:
            if (!value_ok || key_place) {
                break;
            }

            switch (data[i] / 6 % 3) {
            case 0:
                ngx_http_perstack_jw_value_lit(jw, "true");
                break;
            case 1:
                ngx_http_perstack_jw_value_lit(jw, "false");
                break;
            default:
                ngx_http_perstack_jw_value_lit(jw, "null");
            }

            c->literals++;

            if (depth > 0 && open[depth] == '{') {
                key_next[depth] = 1;
            }

            if (depth == 0) {
                top_done = 1;
            }
        }
    }

    /* what is open is closed; an object that waits for a value gets null */

    while (depth > 0) {
        if (open[depth] == '{' && !key_next[depth]) {
            ngx_http_perstack_jw_value_lit(jw, "null");
            c->literals++;
            key_next[depth] = 1;
        }

        ngx_http_perstack_jw_close(jw);
        depth--;
    }

    if (!top_done) {
        ngx_http_perstack_jw_value_lit(jw, "null");
        c->literals++;
    }
}


/* the tree's values, in the order they were written; keys come first */

static void
count(yajl_val v, counts_t *c, strings_t *s, int *bad)
{
    size_t       i, len;
    const char  *str;

    if (YAJL_IS_OBJECT(v)) {
        c->objects++;

        for (i = 0; i < v->u.object.len; i++) {
            str = v->u.object.keys[i];

            if (s->next < s->n) {
                len = s->len[s->next];

                if (len != (size_t) -1 && memchr(s->data[s->next], '\0', len)
                    == NULL
                    && (strlen(str) != len
                        || memcmp(str, s->data[s->next], len) != 0))
                {
                    *bad = 1;
                }

                s->next++;
            }

            count(v->u.object.values[i], c, s, bad);
        }

        return;
    }

    if (YAJL_IS_ARRAY(v)) {
        c->arrays++;

        for (i = 0; i < v->u.array.len; i++) {
            count(v->u.array.values[i], c, s, bad);
        }

        return;
    }

    if (YAJL_IS_STRING(v)) {
        c->strings++;
        str = v->u.string;

        if (s->next < s->n) {
            len = s->len[s->next];

            if (len != (size_t) -1
                && memchr(s->data[s->next], '\0', len) == NULL
                && (strlen(str) != len
                    || memcmp(str, s->data[s->next], len) != 0))
            {
                *bad = 1;
            }

            s->next++;
        }

        return;
    }

    if (YAJL_IS_NUMBER(v)) {
        c->numbers++;
        return;
    }

    c->literals++;
}
