
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the request body parser (ngx_http_perstack_body_parse(),
 * ngx_http_perstack_body_free()), with the fields the module asks for:
 * expert, query, jobId, answer.
 *
 * The input is the body, in a buffer of its exact size.  It is parsed
 * twice: with a 128-byte err, as the module does, and with one of 1 to 24
 * bytes, so that messages are cut short.
 *
 * Checked:
 *   - the result is 0 or -1, the same both times;
 *   - every value set, on either result, is NUL-terminated, holds no other
 *     NUL and is valid UTF-8 (checked by fuzz_util.c's own decoder);
 *   - on -1, err is NUL-terminated inside err_size, and with 128 bytes not
 *     empty, printable ASCII without '\\'; the short err is the start of
 *     the long one;
 *   - on 0, err is empty, the body is a JSON object (fuzz_util.c's
 *     validator), and yajl's tree parser finds in it only known fields,
 *     each once, each a string equal to the value returned, as on the
 *     second parse; a field absent from the body is NULL;
 *   - a body that is not JSON is refused;
 *   - after body_free(), every value is NULL (and LeakSanitizer sees that
 *     nothing was left allocated).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_body.h"
#include "fuzz.h"


#define NFIELDS   4
#define ERR_SIZE  128


static const char  *names[NFIELDS] = { "expert", "query", "jobId", "answer" };


static void init_fields(ngx_http_perstack_field_t *fields);
static void check_values(const ngx_http_perstack_field_t *fields);
static void check_tree(const u_char *data, size_t len,
    const ngx_http_perstack_field_t *fields);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                         rc, rc2, top;
    char                       *err, *err2;
    size_t                      i, n, err2_size;
    u_char                     *body;
    ngx_http_perstack_field_t   fields[NFIELDS], fields2[NFIELDS];

    body = fuzz_dup(data, size);

    /* filled with 0xff, so that a missing NUL shows */

    err = malloc(ERR_SIZE);
    err2_size = 1 + size % 24;
    err2 = malloc(err2_size);

    if (err == NULL || err2 == NULL) {
        abort();
    }

    memset(err, 0xff, ERR_SIZE);
    memset(err2, 0xff, err2_size);

    init_fields(fields);
    init_fields(fields2);

    rc = ngx_http_perstack_body_parse(body, size, fields, NFIELDS, err,
                                      ERR_SIZE);
    rc2 = ngx_http_perstack_body_parse(body, size, fields2, NFIELDS, err2,
                                       err2_size);

    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(rc2 == rc);

    check_values(fields);
    check_values(fields2);

    if (rc == 0) {
        FUZZ_CHECK(err[0] == '\0');
        FUZZ_CHECK(err2[0] == '\0');

        /* a body that is not JSON (but for yajl's leniencies) is refused */

        if (!fuzz_json_valid(body, size, FUZZ_JSON_YAJL, &top)
            || top != '{')
        {
            fuzz_print("body", body, size);
            FUZZ_CHECK(!"a body that is not a JSON object is refused");
        }

        for (i = 0; i < NFIELDS; i++) {
            FUZZ_CHECK(fields[i].len == fields2[i].len);
            FUZZ_CHECK((fields[i].data == NULL) == (fields2[i].data == NULL));
            FUZZ_CHECK(fields[i].data == NULL
                       || memcmp(fields[i].data, fields2[i].data,
                                 fields[i].len) == 0);
        }

        check_tree(body, size, fields);

    } else {
        FUZZ_CHECK(memchr(err, '\0', ERR_SIZE) != NULL);
        FUZZ_CHECK(memchr(err2, '\0', err2_size) != NULL);

        n = strlen(err);
        FUZZ_CHECK(n > 0);

        for (i = 0; i < n; i++) {
            FUZZ_CHECK(err[i] >= 0x20 && err[i] <= 0x7e && err[i] != '\\');
        }

        /* cut short, not another message */

        FUZZ_CHECK(strlen(err2) == (n < err2_size - 1 ? n : err2_size - 1));
        FUZZ_CHECK(memcmp(err2, err, strlen(err2)) == 0);

        /* one of the parser's own messages ("out of memory" aside) */

        FUZZ_CHECK(strcmp(err, "body is not valid JSON") == 0
                   || strcmp(err, "body escapes half a surrogate pair") == 0
                   || strcmp(err, "body must be a JSON object") == 0
                   || strncmp(err, "field \"", 7) == 0
                   || strncmp(err, "unknown field", 13) == 0);
    }

    ngx_http_perstack_body_free(fields, NFIELDS);
    ngx_http_perstack_body_free(fields2, NFIELDS);

    for (i = 0; i < NFIELDS; i++) {
        FUZZ_CHECK(fields[i].data == NULL && fields2[i].data == NULL);
    }

    free(err);
    free(err2);
    free(body);

    return 0;
}


/* as the module: names set, values poisoned, which the parser must reset */

static void
init_fields(ngx_http_perstack_field_t *fields)
{
    size_t  i;

    for (i = 0; i < NFIELDS; i++) {
        fields[i].name = names[i];
        fields[i].data = (u_char *) (uintptr_t) 1;
        fields[i].len = (size_t) -1;
    }
}


static void
check_values(const ngx_http_perstack_field_t *fields)
{
    size_t  i;

    for (i = 0; i < NFIELDS; i++) {
        FUZZ_CHECK(fields[i].name == names[i]);

        if (fields[i].data == NULL) {
            FUZZ_CHECK(fields[i].len == 0);
            continue;
        }

        FUZZ_CHECK(fields[i].data[fields[i].len] == '\0');
        FUZZ_CHECK(memchr(fields[i].data, '\0', fields[i].len) == NULL);
        FUZZ_CHECK(fuzz_utf8_valid(fields[i].data, fields[i].len));
    }
}


/* what yajl's tree parser, another reading of the same body, finds in it */

static void
check_tree(const u_char *data, size_t len,
    const ngx_http_perstack_field_t *fields)
{
    char       *text, err[128];
    size_t      i, j, seen[NFIELDS];
    yajl_val    tree, v;
    const char  *key;

    /* the body was valid JSON: no NUL byte in it */

    FUZZ_CHECK(memchr(data, '\0', len) == NULL);

    text = malloc(len + 1);
    if (text == NULL) {
        abort();
    }

    memcpy(text, data, len);
    text[len] = '\0';

    tree = yajl_tree_parse(text, err, sizeof(err));
    FUZZ_CHECK(tree != NULL && YAJL_IS_OBJECT(tree));

    memset(seen, 0, sizeof(seen));

    for (i = 0; i < YAJL_GET_OBJECT(tree)->len; i++) {
        key = YAJL_GET_OBJECT(tree)->keys[i];
        v = YAJL_GET_OBJECT(tree)->values[i];

        for (j = 0; j < NFIELDS; j++) {
            if (strcmp(key, names[j]) == 0) {
                break;
            }
        }

        FUZZ_CHECK(j < NFIELDS);
        FUZZ_CHECK(seen[j]++ == 0);
        FUZZ_CHECK(YAJL_IS_STRING(v));
        FUZZ_CHECK(fields[j].data != NULL);

        if (strlen(YAJL_GET_STRING(v)) != fields[j].len
            || memcmp(YAJL_GET_STRING(v), fields[j].data, fields[j].len)
               != 0)
        {
            fuzz_print("body", data, len);
            fuzz_print(names[j], fields[j].data, fields[j].len);
            FUZZ_CHECK(!"the value yajl_tree finds");
        }
    }

    for (j = 0; j < NFIELDS; j++) {
        FUZZ_CHECK(seen[j] || fields[j].data == NULL);
    }

    yajl_tree_free(tree);
    free(text);
}
