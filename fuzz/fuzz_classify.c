
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the classifier of the runtime's stdout lines and the
 * JSON string escaper (ngx_http_perstack_json_classify(),
 * ngx_http_perstack_json_escape_size(), ngx_http_perstack_json_escape()).
 *
 * The input is one line, in a buffer of its exact size.
 *
 * classify():
 *   - the result is OBJECT, OTHER or INVALID (NOMEM only without memory);
 *   - it agrees with an independent RFC 8259 validator (fuzz_util.c): not
 *     INVALID exactly when the line is one JSON text in valid UTF-8, and
 *     OBJECT exactly when that text is an object;
 *   - *type_len is 0 unless OBJECT; when not 0, the type is 1 to
 *     NGX_HTTP_PERSTACK_TYPE_MAX bytes of [A-Za-z0-9_.:-] (the type buffer
 *     is exactly NGX_HTTP_PERSTACK_TYPE_MAX bytes);
 *   - the type is the last top-level "type" member's, when yajl's own tree
 *     parser (a second implementation) finds one whose value is such a
 *     string; 0 otherwise.
 *
 * escape():
 *   - escape_size() is the length escape() writes, into a buffer of
 *     exactly that size;
 *   - the output holds no control character and no DEL, is valid UTF-8,
 *     and, in quotes, is a JSON string that yajl decodes back into the
 *     input with each byte of an invalid UTF-8 sequence replaced by U+FFFD;
 *   - in quotes, classify() calls it OTHER; as {"type":"..."}, OBJECT, with
 *     the input as the type exactly when the input is a valid type.
 *
 * classify() inherits two leniencies of yajl (fuzz.h): "\f" and "\v" as
 * white space, and a string left open after the value, as in
 * "{\"type\":\"x\"} \"": such a line is an OBJECT, forwarded byte for byte
 * to clients whose JSON parsers reject it.  Compiled with
 * -DFUZZ_TOLERATE_YAJL, this target accepts both and checks the rest.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_json.h"
#include "fuzz.h"


#ifdef FUZZ_TOLERATE_YAJL
/* the line's UTF-8 is checked on its own: strictly, tail included */
#define JSON_FLAGS  (FUZZ_JSON_YAJL_WS | FUZZ_JSON_YAJL_TAIL)
#else
#define JSON_FLAGS  0
#endif

/* deeper inputs are not given to yajl_tree, whose yajl_tree_free() recurses */
#define TREE_MAX_DEPTH  512


typedef struct {
    u_char                      *data;
    size_t                       len;
    unsigned                     calls;
} decoded_t;


static void check_classify(const u_char *data, size_t len);
static void check_type_tree(const u_char *data, size_t len,
    const u_char *type, size_t type_len);
static void check_escape(const u_char *data, size_t len);
static size_t expected_type(const u_char *data, size_t len);
static int decoded_string(void *ctx, const unsigned char *s, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *line;

    line = fuzz_dup(data, size);

    check_classify(line, size);
    check_escape(line, size);

    free(line);

    return 0;
}


static void
check_classify(const u_char *data, size_t len)
{
    int                          valid, top;
    size_t                       type_len, i;
    u_char                      *type;
    ngx_http_perstack_json_rc_e  rc;

    type = malloc(NGX_HTTP_PERSTACK_TYPE_MAX);
    if (type == NULL) {
        abort();
    }

    type_len = (size_t) -1;

    rc = ngx_http_perstack_json_classify(data, len, type, &type_len);

    FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_JSON_OBJECT
               || rc == NGX_HTTP_PERSTACK_JSON_OTHER
               || rc == NGX_HTTP_PERSTACK_JSON_INVALID);

    valid = fuzz_json_valid(data, len, JSON_FLAGS, &top);

    if (valid != (rc != NGX_HTTP_PERSTACK_JSON_INVALID)) {
        fprintf(stderr, "classify(): %d, the RFC 8259 validator: %s\n",
                (int) rc, valid ? "valid" : "invalid");
        fuzz_print("line", data, len);
        FUZZ_CHECK(!"classify() agrees with the RFC 8259 validator");
    }

    FUZZ_CHECK(!valid || (rc == NGX_HTTP_PERSTACK_JSON_OBJECT) == (top == '{'));

    if (rc != NGX_HTTP_PERSTACK_JSON_OBJECT) {
        FUZZ_CHECK(type_len == 0);
        free(type);
        return;
    }

    FUZZ_CHECK(type_len <= NGX_HTTP_PERSTACK_TYPE_MAX);

    for (i = 0; i < type_len; i++) {
        FUZZ_CHECK((type[i] >= 'a' && type[i] <= 'z')
                   || (type[i] >= 'A' && type[i] <= 'Z')
                   || (type[i] >= '0' && type[i] <= '9')
                   || type[i] == '_' || type[i] == '.' || type[i] == ':'
                   || type[i] == '-');
    }

    check_type_tree(data, len, type, type_len);

    free(type);
}


/* the type as yajl_tree sees it: the last top-level "type" member */

static void
check_type_tree(const u_char *data, size_t len, const u_char *type,
    size_t type_len)
{
    char      *text, err[128];
    size_t     i, depth, n;
    yajl_val   tree, v;

    /*
     * a valid JSON text holds no NUL byte, and yajl_tree wants a C string;
     * its keys and strings are C strings too, cut at a "\u0000"
     */

    if (memchr(data, '\0', len) != NULL) {
        return;
    }

    depth = 0;

    for (i = 0; i < len; i++) {
        if (data[i] == '{' || data[i] == '[') {
            depth++;
        }

        if (data[i] == '\\' && len - i >= 6
            && memcmp(data + i + 1, "u0000", 5) == 0)
        {
            return;
        }
    }

    if (depth > TREE_MAX_DEPTH) {
        return;
    }

    text = malloc(len + 1);
    if (text == NULL) {
        abort();
    }

    memcpy(text, data, len);
    text[len] = '\0';

    /*
     * yajl_tree_parse() allows comments; the line has none, as classify()
     * (without them) took it for an object
     */

    tree = yajl_tree_parse(text, err, sizeof(err));
    FUZZ_CHECK(tree != NULL && YAJL_IS_OBJECT(tree));

    v = NULL;

    for (i = YAJL_GET_OBJECT(tree)->len; i > 0; i--) {
        if (strcmp(YAJL_GET_OBJECT(tree)->keys[i - 1], "type") == 0) {
            v = YAJL_GET_OBJECT(tree)->values[i - 1];
            break;
        }
    }

    n = 0;

    if (v != NULL && YAJL_IS_STRING(v)) {
        n = strlen(YAJL_GET_STRING(v));

        if (expected_type((u_char *) YAJL_GET_STRING(v), n) == 0) {
            n = 0;
        }
    }

    if (n != type_len
        || (n && memcmp(type, YAJL_GET_STRING(v), n) != 0))
    {
        fuzz_print("line", data, len);
        fuzz_print("type", type, type_len);
        FUZZ_CHECK(!"the type yajl_tree finds");
    }

    yajl_tree_free(tree);
    free(text);
}


/* len when data is a valid type, else 0 */

static size_t
expected_type(const u_char *data, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_PERSTACK_TYPE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (strchr("abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", data[i])
            == NULL || data[i] == '\0')
        {
            return 0;
        }
    }

    return len;
}


static void
check_escape(const u_char *data, size_t len)
{
    size_t                       size, i, n, want_len, type_len;
    u_char                      *out, *end, *want, *quoted, *type;
    decoded_t                    dec;
    yajl_handle                  h;
    yajl_status                  status;
    yajl_callbacks               cb;
    ngx_http_perstack_json_rc_e  rc;

    size = ngx_http_perstack_json_escape_size(data, len);

    /* "{\"type\":\"" + the escaped input + "\"}" in one buffer */

    quoted = malloc(sizeof("{\"type\":\"\"}") - 1 + size);
    if (quoted == NULL) {
        abort();
    }

    out = quoted + sizeof("{\"type\":\"") - 1;

    end = ngx_http_perstack_json_escape(out, data, len);

    FUZZ_CHECK(end >= out && (size_t) (end - out) == size);

    for (i = 0; i < size; i++) {
        FUZZ_CHECK(out[i] >= 0x20 && out[i] != 0x7f);
    }

    FUZZ_CHECK(fuzz_utf8_valid(out, size));

    /* what decoding must give back: U+FFFD for each byte of invalid UTF-8 */

    want = malloc(3 * len + 1);
    if (want == NULL) {
        abort();
    }

    want_len = 0;

    for (i = 0; i < len; i += n) {
        n = fuzz_utf8_seq(data + i, len - i);

        if (n == 0) {
            memcpy(want + want_len, "\xef\xbf\xbd", 3);
            want_len += 3;
            n = 1;

        } else {
            memcpy(want + want_len, data + i, n);
            want_len += n;
        }
    }

    /* "\"" + the escaped input + "\"", decoded by yajl */

    out[-1] = '"';
    out[size] = '"';

    memset(&cb, 0, sizeof(yajl_callbacks));
    cb.yajl_string = decoded_string;

    memset(&dec, 0, sizeof(decoded_t));

    h = yajl_alloc(&cb, NULL, &dec);
    if (h == NULL) {
        abort();
    }

    status = yajl_parse(h, out - 1, size + 2);

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    if (status != yajl_status_ok || dec.calls != 1 || dec.len != want_len
        || memcmp(dec.data, want, want_len) != 0)
    {
        fuzz_print("input", data, len);
        fuzz_print("escaped", out, size);
        fuzz_print("decoded", dec.data, dec.len);
        fuzz_print("wanted", want, want_len);
        FUZZ_CHECK(!"escape() round-trips through yajl");
    }

    yajl_free(h);
    free(dec.data);

    type = malloc(NGX_HTTP_PERSTACK_TYPE_MAX);
    if (type == NULL) {
        abort();
    }

    rc = ngx_http_perstack_json_classify(out - 1, size + 2, type, &type_len);
    FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_JSON_OTHER && type_len == 0);

    memcpy(quoted, "{\"type\":\"", sizeof("{\"type\":\"") - 1);
    memcpy(out + size, "\"}", 2);

    rc = ngx_http_perstack_json_classify(quoted,
                                         sizeof("{\"type\":\"\"}") - 1 + size,
                                         type, &type_len);
    FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_JSON_OBJECT);
    FUZZ_CHECK(type_len == expected_type(data, len));
    FUZZ_CHECK(type_len == 0 || memcmp(type, data, len) == 0);

    free(type);
    free(want);
    free(quoted);
}


static int
decoded_string(void *ctx, const unsigned char *s, size_t len)
{
    decoded_t  *dec;

    dec = ctx;

    dec->calls++;
    dec->data = fuzz_dup(s, len);
    dec->len = len;

    return 1;
}
