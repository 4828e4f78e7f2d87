
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the bounded tree builder (ngx_http_perstack_json_tree()),
 * through which every text the module makes a tree of goes: the engine's
 * answers (container create, wait, errors, the reaper's container list,
 * the gateway's network), the runtime's stopRunByInteractiveTool lines and
 * the module's own job records.
 *
 * The input: its first byte picks the bound on values (bit 7 set: the
 * default, NGX_HTTP_PERSTACK_JSON_NODES_MAX; else 1 to 128, so that the
 * bound is often met); the rest is the text, in a buffer of its exact size
 * (no NUL after it).
 *
 * Checked, against fuzz_util.c's own validator and measure (no tree, any
 * depth):
 *   - a tree comes back exactly when the text is one JSON text (RFC 8259,
 *     valid UTF-8, no comments, nothing of yajl's leniencies), at most 64
 *     deep, of at most the bound of values, with no escaped surrogate
 *     without its pair and no "\u0000"; else NULL, and a reason that is
 *     one of the builder's and true of the text;
 *   - the tree has as many values and is as deep as the text says, and is
 *     the tree yajl_tree_parse() builds of the same text (types, keys in
 *     order, strings, numbers' text, flags and values), but for
 *     -9223372036854775808, which yajl does not take for an integer;
 *   - yajl_tree_free() frees it all (LeakSanitizer), as it does what a
 *     refused text had built.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_json.h"
#include "fuzz.h"


typedef struct {
    size_t                       values;
    size_t                       depth;
} shape_t;


static void check_refused(const u_char *text, size_t len,
    const fuzz_json_measure_t *m, size_t max, const char *err);
static void check_yajl(const u_char *text, size_t len, yajl_val tree);
static void walk(yajl_val mine, yajl_val theirs, size_t depth,
    shape_t *shape);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   valid, top;
    size_t                len, max, bound;
    u_char               *text;
    shape_t               shape;
    yajl_val              tree;
    const char           *err;
    fuzz_json_measure_t   m;

    if (size == 0) {
        return 0;
    }

    max = (data[0] & 0x80) ? 0 : 1 + (data[0] & 0x7f);
    bound = max ? max : NGX_HTTP_PERSTACK_JSON_NODES_MAX;

    len = size - 1;
    text = fuzz_dup(data + 1, len);

    err = "unset";
    tree = ngx_http_perstack_json_tree(text, len, max, &err);

    FUZZ_CHECK((tree == NULL) == (err != NULL));

    valid = fuzz_json_valid(text, len, 0, &top);
    memset(&m, 0, sizeof(fuzz_json_measure_t));

    if (valid) {
        fuzz_json_measure(text, len, &m);
    }

    if (valid && m.depth <= NGX_HTTP_PERSTACK_JSON_DEPTH_MAX
        && m.values <= bound && !m.lone_surrogate && !m.nul)
    {
        if (tree == NULL) {
            fuzz_print("text", text, len);
            fprintf(stderr, "    err: %s\n", err);
            FUZZ_CHECK(!"a tree of a text within the bounds");
        }

        memset(&shape, 0, sizeof(shape_t));
        walk(tree, NULL, 1, &shape);

        FUZZ_CHECK(shape.values == m.values);
        FUZZ_CHECK(shape.depth == m.depth);

        check_yajl(text, len, tree);

        yajl_tree_free(tree);

    } else {
        if (tree != NULL) {
            fuzz_print("text", text, len);
            FUZZ_CHECK(!"no tree of a text that is not JSON or over a bound");
        }

        check_refused(text, len, &m, bound, err);
    }

    free(text);

    return 0;
}


/* the reason is the builder's, and true of the text */

static void
check_refused(const u_char *text, size_t len, const fuzz_json_measure_t *m,
    size_t bound, const char *err)
{
    int  valid, top, ok;

    valid = fuzz_json_valid(text, len, 0, &top);

    if (strcmp(err, "empty") == 0) {
        ok = (len == 0);

    } else if (strcmp(err, "not JSON") == 0
               || strcmp(err, "not valid UTF-8") == 0)
    {
        ok = !valid;

    } else if (strcmp(err, "nested too deep") == 0) {
        ok = !valid || m->depth > NGX_HTTP_PERSTACK_JSON_DEPTH_MAX;

    } else if (strcmp(err, "too many values") == 0) {
        ok = !valid || m->values > bound;

    } else if (strcmp(err, "half a surrogate pair") == 0) {
        ok = !valid || m->lone_surrogate;

    } else if (strcmp(err, "a NUL in a string") == 0) {
        ok = !valid || m->nul;

    } else {
        ok = (strcmp(err, "out of memory") == 0);
    }

    if (!ok) {
        fuzz_print("text", text, len);
        fprintf(stderr, "    err: %s\n", err);
        FUZZ_CHECK(!"the reason is true of the text");
    }
}


/* yajl_tree_parse() of the same text, NUL-terminated: the same tree */

static void
check_yajl(const u_char *text, size_t len, yajl_val tree)
{
    char      *copy;
    yajl_val   theirs;
    shape_t    shape;

    copy = malloc(len + 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, text, len);
    copy[len] = '\0';

    /* at most 64 deep: yajl_tree_free() may recurse */
    theirs = yajl_tree_parse(copy, NULL, 0);
    FUZZ_CHECK(theirs != NULL);

    memset(&shape, 0, sizeof(shape_t));
    walk(tree, theirs, 1, &shape);

    yajl_tree_free(theirs);
    free(copy);
}


/*
 * Counts the values and the depth of mine, and, when theirs is not NULL,
 * compares the two trees node for node.
 */

static void
walk(yajl_val mine, yajl_val theirs, size_t depth, shape_t *shape)
{
    size_t  i, n;

    FUZZ_CHECK(mine != NULL);
    FUZZ_CHECK(theirs == NULL || theirs->type == mine->type);

    shape->values++;

    switch (mine->type) {

    case yajl_t_string:
        FUZZ_CHECK(mine->u.string != NULL);
        FUZZ_CHECK(theirs == NULL
                   || strcmp(mine->u.string, theirs->u.string) == 0);
        return;

    case yajl_t_number:
        FUZZ_CHECK(mine->u.number.r != NULL);

        if (theirs == NULL) {
            return;
        }

        FUZZ_CHECK(strcmp(mine->u.number.r, theirs->u.number.r) == 0);
        FUZZ_CHECK(mine->u.number.flags == theirs->u.number.flags
                   || strcmp(mine->u.number.r, "-9223372036854775808")
                      == 0);
        FUZZ_CHECK(!(theirs->u.number.flags & YAJL_NUMBER_INT_VALID)
                   || mine->u.number.i == theirs->u.number.i);
        FUZZ_CHECK(!(theirs->u.number.flags & YAJL_NUMBER_DOUBLE_VALID)
                   || memcmp(&mine->u.number.d, &theirs->u.number.d,
                             sizeof(double)) == 0);
        return;

    case yajl_t_object:
    case yajl_t_array:
        if (depth > shape->depth) {
            shape->depth = depth;
        }

        FUZZ_CHECK(depth <= NGX_HTTP_PERSTACK_JSON_DEPTH_MAX);

        n = (mine->type == yajl_t_object) ? mine->u.object.len
                                          : mine->u.array.len;

        FUZZ_CHECK(theirs == NULL
                   || n == ((theirs->type == yajl_t_object)
                            ? theirs->u.object.len : theirs->u.array.len));

        for (i = 0; i < n; i++) {
            if (mine->type == yajl_t_array) {
                walk(mine->u.array.values[i],
                     theirs ? theirs->u.array.values[i] : NULL, depth + 1,
                     shape);
                continue;
            }

            FUZZ_CHECK(mine->u.object.keys[i] != NULL);
            FUZZ_CHECK(theirs == NULL
                       || strcmp(mine->u.object.keys[i],
                                 theirs->u.object.keys[i]) == 0);

            walk(mine->u.object.values[i],
                 theirs ? theirs->u.object.values[i] : NULL, depth + 1,
                 shape);
        }

        return;

    default:
        FUZZ_CHECK(mine->type == yajl_t_true || mine->type == yajl_t_false
                   || mine->type == yajl_t_null);
        return;
    }
}
