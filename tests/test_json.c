/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Unit tests of the JSON helpers: classifying the runtime's lines, escaping
 * strings, parsing request bodies, and building bounded trees.  Every
 * input is copied to a buffer of its own exact size, so that
 * AddressSanitizer catches a read past it.
 */


#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_body.h"
#include "check.h"


#define OBJECT   NGX_HTTP_PERSTACK_JSON_OBJECT
#define OTHER    NGX_HTTP_PERSTACK_JSON_OTHER
#define INVALID  NGX_HTTP_PERSTACK_JSON_INVALID

/* 32 bytes of a valid type */
#define T32  "0123456789abcdefABCDEF_.:-012345"

#define CLASSIFY(lit, rc, type)                                               \
    classify_is((const u_char *) lit, sizeof(lit) - 1, rc, type, __LINE__)

#define ESCAPE(lit, want)                                                     \
    escape_is((const u_char *) lit, sizeof(lit) - 1, want, sizeof(want) - 1,  \
              __LINE__)

#define BODY_ERROR(lit, want)                                                 \
    body_error_is(lit, sizeof(lit) - 1, want, __LINE__)

#define BODY(lit)                                                             \
    body_run(lit, sizeof(lit) - 1, err, sizeof(err))


enum { EXPERT, QUERY, MODEL, NFIELDS };

static ngx_http_perstack_field_t  fields[NFIELDS] = {
    { "expert", NULL, 0 },
    { "query", NULL, 0 },
    { "model", NULL, 0 }
};


static u_char *
copy(const void *data, size_t len)
{
    u_char  *p;

    p = malloc(len ? len : 1);
    if (p == NULL) {
        abort();
    }

    memcpy(p, data, len);

    return p;
}


/* two checks: the result, and the type */

static void
classify_is(const u_char *in, size_t len, ngx_http_perstack_json_rc_e want,
    const char *want_type, int line)
{
    size_t                       type_len;
    u_char                      *data, *type;
    ngx_http_perstack_json_rc_e  rc;

    data = copy(in, len);
    type = malloc(NGX_HTTP_PERSTACK_TYPE_MAX);
    type_len = 12345;

    rc = ngx_http_perstack_json_classify(data, len, type, &type_len);

    if (!check_uint(rc, want, __FILE__, line, "classify")) {
        check_print("input", in, len);
    }

    check_mem(type, type_len, want_type, strlen(want_type), __FILE__, line,
              "type");

    free(data);
    free(type);
}


static void
test_classify(void)
{
    size_t   i;
    u_char  *deep;

    CLASSIFY("{\"type\":\"message\",\"x\":1}", OBJECT, "message");
    CLASSIFY("{\"x\":[1,2,{\"y\":null}],\"type\":\"tool.call\"}", OBJECT,
             "tool.call");
    CLASSIFY("{}", OBJECT, "");
    CLASSIFY("{\"kind\":\"message\"}", OBJECT, "");
    CLASSIFY("{\"Type\":\"message\"}", OBJECT, "");
    CLASSIFY("{\"typ\\u0065\":\"escaped.key\"}", OBJECT, "escaped.key");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\\udc00 \\ud83d\\ude00\"}", OBJECT, "t");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\xf0\x9f\x98\x80\"}", OBJECT, "t");

    /* white space around the value */
    CLASSIFY(" \t{ \"type\" : \"t\" }\r\n ", OBJECT, "t");

    /* only the top level counts */
    CLASSIFY("{\"a\":{\"type\":\"inner\"}}", OBJECT, "");
    CLASSIFY("{\"a\":{\"type\":\"inner\"},\"type\":\"outer\"}", OBJECT,
             "outer");
    CLASSIFY("{\"type\":\"outer\",\"a\":{\"type\":\"inner\"}}", OBJECT,
             "outer");
    CLASSIFY("{\"a\":[{\"type\":\"x\"}]}", OBJECT, "");
    CLASSIFY("{\"a\":[\"type\",\"x\"]}", OBJECT, "");
    CLASSIFY("{\"a\":\"type\",\"b\":\"x\"}", OBJECT, "");
    CLASSIFY("[{\"type\":\"x\"}]", OTHER, "");

    /* the last one wins, even when it is not a valid type */
    CLASSIFY("{\"type\":\"a\",\"type\":\"b\"}", OBJECT, "b");
    CLASSIFY("{\"type\":\"a\",\"type\":1}", OBJECT, "");
    CLASSIFY("{\"type\":\"a\",\"type\":null}", OBJECT, "");
    CLASSIFY("{\"type\":\"a\",\"type\":{\"type\":\"c\"}}", OBJECT, "");
    CLASSIFY("{\"type\":\"a\",\"type\":[\"c\"]}", OBJECT, "");
    CLASSIFY("{\"type\":\"a\",\"type\":\"a b\"}", OBJECT, "");
    CLASSIFY("{\"type\":1,\"type\":\"b\"}", OBJECT, "b");

    /* the charset and the length */
    CLASSIFY("{\"type\":\"ABCXYZabcxyz0189_.:-\"}", OBJECT,
             "ABCXYZabcxyz0189_.:-");
    CLASSIFY("{\"type\":\"\"}", OBJECT, "");
    CLASSIFY("{\"type\":\"a b\"}", OBJECT, "");
    CLASSIFY("{\"type\":\"a/b\"}", OBJECT, "");
    CLASSIFY("{\"type\":\"a\\nb\"}", OBJECT, "");
    CLASSIFY("{\"type\":\"a\\u0000\"}", OBJECT, "");
    CLASSIFY("{\"type\":\"caf\xc3\xa9\"}", OBJECT, "");
    CLASSIFY("{\"type\":\"<script>\"}", OBJECT, "");
    CLASSIFY("{\"type\":true}", OBJECT, "");
    CLASSIFY("{\"type\":\"" T32 T32 "\"}", OBJECT, T32 T32);
    CLASSIFY("{\"type\":\"" T32 T32 "x\"}", OBJECT, "");

    /* valid JSON that is not an object */
    CLASSIFY("[]", OTHER, "");
    CLASSIFY("[1,\"a\"]", OTHER, "");
    CLASSIFY("\"type\"", OTHER, "");
    CLASSIFY("42", OTHER, "");
    CLASSIFY("-1.5e300", OTHER, "");
    CLASSIFY("true", OTHER, "");
    CLASSIFY("null", OTHER, "");
    CLASSIFY("  \"text\"  ", OTHER, "");

    /* numbers too large for a long long or a double are still JSON */
    CLASSIFY("{\"type\":\"t\",\"n\":123456789012345678901234567890,"
             "\"d\":1e999}", OBJECT, "t");

    /* not JSON, or more than one value */
    CLASSIFY("", INVALID, "");
    CLASSIFY("   ", INVALID, "");
    CLASSIFY("hello world", INVALID, "");
    CLASSIFY("Error: something failed", INVALID, "");
    CLASSIFY("{", INVALID, "");
    CLASSIFY("{\"type\":\"t\"", INVALID, "");
    CLASSIFY("{\"type\":\"t\",}", INVALID, "");
    CLASSIFY("{\"a\":}", INVALID, "");
    CLASSIFY("{'type':'t'}", INVALID, "");
    CLASSIFY("{type:\"t\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\"}{\"type\":\"u\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\"} {}", INVALID, "");
    CLASSIFY("{\"type\":\"t\"}x", INVALID, "");
    CLASSIFY("{\"type\":\"t\"} // comment", INVALID, "");
    CLASSIFY("/* c */ {\"type\":\"t\"}", INVALID, "");
    CLASSIFY("1 2", INVALID, "");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\xff\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\xc0\x80\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\xed\xa0\x80\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\xf4\x90\x80\x80\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\",\"s\":\"\xe2\x82\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\",\"s\":\"a\tb\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\"}\0", INVALID, "");
    CLASSIFY("{\"type\":\"t\0\"}", INVALID, "");
    CLASSIFY("{\"type\":\"t\"]", INVALID, "");
    CLASSIFY("[1,2}", INVALID, "");
    CLASSIFY("NaN", INVALID, "");

    /* yajl's leniency, found by fuzzing: not JSON, so never forwarded */
    CLASSIFY("\f{\"type\":\"completeRun\"}", INVALID, "");
    CLASSIFY("{\"type\":\"completeRun\",\v\"a\":1}", INVALID, "");
    CLASSIFY("{\"type\":\"completeRun\"} \"", INVALID, "");
    CLASSIFY("true\"", INVALID, "");
    CLASSIFY("{\"a\":\"b\\fc\",\"type\":\"ok\"}", OBJECT, "ok");

    /* deep nesting: no crash, no limit */

    deep = malloc(300000);
    if (deep == NULL) {
        abort();
    }

    memset(deep, '[', 100000);
    classify_is(deep, 100000, INVALID, "", __LINE__);

    memset(deep + 100000, ']', 100000);
    classify_is(deep, 200000, OTHER, "", __LINE__);

    memcpy(deep, "{\"a\":", 5);
    memset(deep + 5, '[', 100000);
    memset(deep + 100005, ']', 100000);
    memcpy(deep + 200005, ",\"type\":\"deep\"}", 15);
    classify_is(deep, 200020, OBJECT, "deep", __LINE__);

    for (i = 0; i < 100000; i++) {
        memcpy(deep + i * 3, "{\"a", 3);
    }

    classify_is(deep, 300000, INVALID, "", __LINE__);

    free(deep);
}


/* two checks: the size, and what is written in a buffer of that size */

static void
escape_is(const u_char *in, size_t len, const char *want, size_t want_len,
    int line)
{
    size_t   size;
    u_char  *data, *buf, *end;

    data = copy(in, len);

    size = ngx_http_perstack_json_escape_size(data, len);

    if (!check_uint(size, want_len, __FILE__, line, "escape size")) {
        check_print("input", in, len);
    }

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    end = ngx_http_perstack_json_escape(buf, data, len);

    if (!check_mem(buf, end - buf, want, want_len, __FILE__, line, "escape"))
    {
        check_print("input", in, len);
    }

    free(data);
    free(buf);
}


static void
test_escape(void)
{
    u_char  c;
    char    printable[128];
    size_t  n;

    static const char  *controls[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003",
        "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b",
        "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013",
        "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b",
        "\\u001c", "\\u001d", "\\u001e", "\\u001f"
    };

    for (c = 0; c < 32; c++) {
        escape_is(&c, 1, controls[c], strlen(controls[c]), __LINE__);
    }

    ESCAPE("\x7f", "\\u007f");
    ESCAPE("\"", "\\\"");
    ESCAPE("\\", "\\\\");
    ESCAPE("", "");
    ESCAPE("say \"hi\"\\n\r\n", "say \\\"hi\\\"\\\\n\\r\\n");
    ESCAPE("a\0b", "a\\u0000b");

    /* the rest of ASCII is kept, "/" too */

    n = 0;

    for (c = 0x20; c < 0x7f; c++) {
        if (c != '"' && c != '\\') {
            printable[n++] = c;
        }
    }

    escape_is((u_char *) printable, n, printable, n, __LINE__);

    /* well-formed UTF-8 is kept: the first and last of each range */

    ESCAPE("\xc2\x80", "\xc2\x80");
    ESCAPE("caf\xc3\xa9", "caf\xc3\xa9");
    ESCAPE("\xdf\xbf", "\xdf\xbf");
    ESCAPE("\xe0\xa0\x80", "\xe0\xa0\x80");
    ESCAPE("\xe2\x82\xac", "\xe2\x82\xac");
    ESCAPE("\xed\x9f\xbf", "\xed\x9f\xbf");
    ESCAPE("\xee\x80\x80", "\xee\x80\x80");
    ESCAPE("\xef\xbf\xbf", "\xef\xbf\xbf");
    ESCAPE("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");
    ESCAPE("\xf0\x9d\x84\x9e", "\xf0\x9d\x84\x9e");
    ESCAPE("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
    ESCAPE("\xe2\x80\xa8", "\xe2\x80\xa8");
    ESCAPE("\xe6\x97\xa5\xe6\x9c\xac\n",
           "\xe6\x97\xa5\xe6\x9c\xac\\n");

    /* each byte of what is not well-formed UTF-8 becomes U+FFFD */

    /* lone continuation bytes, bytes that never appear */
    ESCAPE("\x80", "\\ufffd");
    ESCAPE("\xbf", "\\ufffd");
    ESCAPE("\xfe\xff", "\\ufffd\\ufffd");
    ESCAPE("\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");

    /* overlong forms */
    ESCAPE("\xc0\x80", "\\ufffd\\ufffd");
    ESCAPE("\xc1\xbf", "\\ufffd\\ufffd");
    ESCAPE("\xe0\x80\x80", "\\ufffd\\ufffd\\ufffd");
    ESCAPE("\xe0\x9f\xbf", "\\ufffd\\ufffd\\ufffd");
    ESCAPE("\xf0\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
    ESCAPE("\xf0\x8f\xbf\xbf", "\\ufffd\\ufffd\\ufffd\\ufffd");

    /* surrogates */
    ESCAPE("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");
    ESCAPE("\xed\xbf\xbf", "\\ufffd\\ufffd\\ufffd");
    ESCAPE("\xed\xa0\xbd\xed\xb8\x80",
           "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd");

    /* above U+10FFFF */
    ESCAPE("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");

    /* cut short, at the end and before other characters */
    ESCAPE("\xc3", "\\ufffd");
    ESCAPE("\xe2\x82", "\\ufffd\\ufffd");
    ESCAPE("\xf0\x9d\x84", "\\ufffd\\ufffd\\ufffd");
    ESCAPE("\xe2\x82" "a", "\\ufffd\\ufffd" "a");
    ESCAPE("\xe2\x82\"", "\\ufffd\\ufffd\\\"");
    ESCAPE("\xe2" "\xc3\xa9", "\\ufffd" "\xc3\xa9");
    ESCAPE("a\xf0\x9d\x84\xe2\x82\xac",
           "a\\ufffd\\ufffd\\ufffd\xe2\x82\xac");
}


/* a JSON string, decoded by yajl, which checks UTF-8 */

typedef struct {
    u_char    *data;
    size_t     len;
    unsigned   strings;
} decoded_t;


static int
decoded_string(void *ctx, const unsigned char *s, size_t len)
{
    decoded_t  *d;

    d = ctx;

    d->data = realloc(d->data, len ? len : 1);
    if (d->data == NULL) {
        abort();
    }

    memcpy(d->data, s, len);
    d->len = len;
    d->strings++;

    return 1;
}


static int
decode_json_string(const u_char *s, size_t len, decoded_t *d)
{
    yajl_handle     h;
    yajl_status     status;
    yajl_callbacks  callbacks;

    memset(&callbacks, 0, sizeof(yajl_callbacks));
    callbacks.yajl_string = decoded_string;

    d->strings = 0;
    d->len = 0;

    h = yajl_alloc(&callbacks, NULL, d);
    if (h == NULL) {
        abort();
    }

    status = yajl_parse(h, s, len);

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    yajl_free(h);

    return (status == yajl_status_ok && d->strings == 1) ? 0 : -1;
}


static size_t
utf8_encode(u_char *p, unsigned long cp)
{
    if (cp < 0x80) {
        p[0] = (u_char) cp;
        return 1;
    }

    if (cp < 0x800) {
        p[0] = (u_char) (0xc0 | cp >> 6);
        p[1] = (u_char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        p[0] = (u_char) (0xe0 | cp >> 12);
        p[1] = (u_char) (0x80 | (cp >> 6 & 0x3f));
        p[2] = (u_char) (0x80 | (cp & 0x3f));
        return 3;
    }

    p[0] = (u_char) (0xf0 | cp >> 18);
    p[1] = (u_char) (0x80 | (cp >> 12 & 0x3f));
    p[2] = (u_char) (0x80 | (cp >> 6 & 0x3f));
    p[3] = (u_char) (0x80 | (cp & 0x3f));
    return 4;
}


/*
 * Random input, fixed seeds: the size is always exact, the output is
 * always a valid JSON string, and valid UTF-8 comes back from a JSON
 * decoder as it was.
 */

static void
test_escape_random(void)
{
    size_t          len, size, i;
    u_char         *buf, *end, in[64];
    unsigned        iter, bad_size, bad_json, bad_back, valid;
    decoded_t       d;
    unsigned long   cp;

    static const u_char  bytes[] = {
        0x00, 0x01, 0x08, 0x0a, 0x0d, 0x1f, 0x20, '"', '\\', '/', 'a', 0x7f,
        0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
        0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xfe, 0xff
    };

    bad_size = 0;
    bad_json = 0;
    bad_back = 0;
    memset(&d, 0, sizeof(decoded_t));

    check_seed(2024);

    for (iter = 0; iter < 10000; iter++) {
        valid = iter % 2;
        len = 0;

        if (valid) {
            /* code points from every range, control characters too */

            while (len < sizeof(in) - 4 && check_random(16) != 0) {
                switch (check_random(4)) {

                case 0:
                    cp = check_random(0x80);
                    break;
                case 1:
                    cp = 0x80 + check_random(0x800 - 0x80);
                    break;
                case 2:
                    cp = 0x800 + check_random(0x10000 - 0x800 - 0x800);
                    if (cp >= 0xd800) {
                        cp += 0x800;
                    }
                    break;
                default:
                    cp = 0x10000 + check_random(0x110000 - 0x10000);
                }

                len += utf8_encode(in + len, cp);
            }

        } else {
            len = check_random(sizeof(in) + 1);

            for (i = 0; i < len; i++) {
                in[i] = check_random(2) ? bytes[check_random(sizeof(bytes))]
                                        : (u_char) check_random(256);
            }
        }

        size = ngx_http_perstack_json_escape_size(in, len);

        buf = malloc(size + 2);
        if (buf == NULL) {
            abort();
        }

        buf[0] = '"';
        end = ngx_http_perstack_json_escape(buf + 1, in, len);

        if ((size_t) (end - buf - 1) != size) {
            bad_size++;
            free(buf);
            continue;
        }

        *end++ = '"';

        if (decode_json_string(buf, end - buf, &d) != 0) {
            if (bad_json++ == 0) {
                check_print("not JSON", buf, end - buf);
            }

        } else if (valid && (d.len != len || memcmp(d.data, in, len) != 0)) {
            if (bad_back++ == 0) {
                check_print("changed", buf, end - buf);
            }
        }

        free(buf);
    }

    free(d.data);

    CHECK_UINT(bad_size, 0);
    CHECK_UINT(bad_json, 0);
    CHECK_UINT(bad_back, 0);
}


/*
 * Well-formed UTF-8, with ASCII read a word at a time: one character or
 * one stray byte at every offset of runs of ASCII, across the words.
 */

static void
test_utf8_valid(void)
{
    size_t          len, at, n, i;
    u_char          in[48];
    unsigned        iter, valid, bad;
    unsigned long   cp;

    bad = 0;

    check_seed(7);

    for (iter = 0; iter < 20000; iter++) {
        len = check_random(40);
        at = check_random(len + 1);
        valid = iter % 2;

        for (i = 0; i < at; i++) {
            in[i] = (u_char) (0x20 + check_random(0x5f));
        }

        if (valid) {
            do {
                cp = 0x80 + check_random(0x110000 - 0x80);
            } while (cp >= 0xd800 && cp < 0xe000);

            n = utf8_encode(in + at, cp);

        } else {
            /* a byte that no well-formed sequence has before ASCII */
            in[at] = (u_char) (0x80 + check_random(0x80));
            n = 1;
        }

        for (i = at + n; i < len + n; i++) {
            in[i] = (u_char) (0x20 + check_random(0x5f));
        }

        if ((unsigned) ngx_http_perstack_utf8_valid(in, len + n) != valid) {
            if (bad++ == 0) {
                check_print(valid ? "refused" : "taken", in, len + n);
            }
        }
    }

    CHECK_UINT(bad, 0);

    CHECK_UINT(ngx_http_perstack_utf8_valid((const u_char *) "", 0), 1);
    CHECK_UINT(ngx_http_perstack_utf8_valid(
                   (const u_char *) "abcdefgh\xc3\xa9", 10), 1);
    CHECK_UINT(ngx_http_perstack_utf8_valid(
                   (const u_char *) "abcdefgh\xc3", 9), 0);
    CHECK_UINT(ngx_http_perstack_utf8_valid(
                   (const u_char *) "abcdefg\xed\xa0\x80", 10), 0);
}


static int
body_run(const char *in, size_t len, char *err, size_t err_size)
{
    int      rc;
    u_char  *data;

    data = copy(in, len);

    rc = ngx_http_perstack_body_parse(data, len, fields, NFIELDS, err,
                                      err_size);
    free(data);

    return rc;
}


/* two checks: -1, and the message */

static void
body_error_is(const char *in, size_t len, const char *want, int line)
{
    int   rc;
    char  err[128];

    memset(err, 'X', sizeof(err));

    rc = body_run(in, len, err, sizeof(err));

    if (!check_uint(rc, -1, __FILE__, line, "body_parse")) {
        check_print("input", in, len);
    }

    if (memchr(err, '\0', sizeof(err)) == NULL) {
        check_result(0, __FILE__, line, "the message is NUL-terminated");

    } else if (!check_mem(err, strlen(err), want, strlen(want), __FILE__,
                          line, "message"))
    {
        check_print("input", in, len);
    }

    ngx_http_perstack_body_free(fields, NFIELDS);
}


static void
test_body_errors(void)
{
    BODY_ERROR("", "body is not valid JSON");
    BODY_ERROR("  ", "body is not valid JSON");
    BODY_ERROR("query=hello", "body is not valid JSON");
    BODY_ERROR("{", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\"", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\"}}", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\"} {}", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\"}x", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\",}", "body is not valid JSON");
    BODY_ERROR("{\"query\":'a'}", "body is not valid JSON");
    BODY_ERROR("{query:\"a\"}", "body is not valid JSON");
    BODY_ERROR("/* c */ {}", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"\xff\"}", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\tb\"}", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\0b\"}", "body is not valid JSON");
    BODY_ERROR("{\"query\":\"\\x41\"}", "body is not valid JSON");

    BODY_ERROR("[]", "body must be a JSON object");
    BODY_ERROR("[\"query\",\"a\"]", "body must be a JSON object");
    BODY_ERROR("\"query\"", "body must be a JSON object");
    BODY_ERROR("42", "body must be a JSON object");
    BODY_ERROR("true", "body must be a JSON object");
    BODY_ERROR("null", "body must be a JSON object");

    BODY_ERROR("{\"x\":\"1\"}", "unknown field \"x\"");
    BODY_ERROR("{\"Query\":\"a\"}", "unknown field \"Query\"");
    BODY_ERROR("{\"query \":\"a\"}", "unknown field \"query \"");
    BODY_ERROR("{\"query\":\"a\",\"x-y.z\":1}", "unknown field \"x-y.z\"");
    BODY_ERROR("{\"x\":{\"query\":\"a\"}}", "unknown field \"x\"");
    BODY_ERROR("{\"0123456789012345678901234567890a\":1}",
               "unknown field \"0123456789012345678901234567890a\"");

    /* a name not printed as it is */
    BODY_ERROR("{\"0123456789012345678901234567890ab\":1}", "unknown field");
    BODY_ERROR("{\"\":1}", "unknown field");
    BODY_ERROR("{\"\\u0001\":1}", "unknown field");
    BODY_ERROR("{\"a\\nb\":1}", "unknown field");
    BODY_ERROR("{\"a\\\"b\":1}", "unknown field");
    BODY_ERROR("{\"a\\\\b\":1}", "unknown field");
    BODY_ERROR("{\"caf\xc3\xa9\":1}", "unknown field");
    BODY_ERROR("{\"\x7f\":1}", "unknown field");
    BODY_ERROR("{\"query\\u0000\":1}", "unknown field");

    BODY_ERROR("{\"expert\":1}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":-1.5e999}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":true}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":false}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":null}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":{}}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":[]}", "field \"expert\" must be a string");
    BODY_ERROR("{\"expert\":[\"a\"]}", "field \"expert\" must be a string");
    BODY_ERROR("{\"query\":\"a\",\"model\":{\"secret\":1}}",
               "field \"model\" must be a string");

    BODY_ERROR("{\"query\":\"a\",\"query\":\"b\"}",
               "field \"query\" appears twice");
    BODY_ERROR("{\"query\":\"\",\"expert\":\"e\",\"query\":\"\"}",
               "field \"query\" appears twice");
    BODY_ERROR("{\"query\":\"a\",\"qu\\u0065ry\":\"b\"}",
               "field \"query\" appears twice");

    BODY_ERROR("{\"query\":\"a\\u0000b\"}",
               "field \"query\" contains a NUL byte");
    BODY_ERROR("{\"query\":\"\\u0000\"}",
               "field \"query\" contains a NUL byte");

    /* what yajl lets through */
    BODY_ERROR("{\"query\":\"\\udc00\"}",
               "body escapes half a surrogate pair");
    BODY_ERROR("{\"query\":\"\\ud800\"}",
               "body escapes half a surrogate pair");
    BODY_ERROR("{\"query\":\"\\ud800x\"}",
               "body escapes half a surrogate pair");
    BODY_ERROR("{\"query\":\"\\ud800\\u0041\"}",
               "body escapes half a surrogate pair");
    BODY_ERROR("{\"query\":\"\\uD800\\uD800\"}",
               "body escapes half a surrogate pair");
    BODY_ERROR("{\"query\":\"a\"} \"",
               "body is not valid JSON");
    BODY_ERROR("{\"query\":\"a\"}\v",
               "body is not valid JSON");
    BODY_ERROR("{\"query\":\f\"a\"}",
               "body is not valid JSON");
    BODY_ERROR("{\"query\":\"\xed\xa0\x80\"}",
               "field \"query\" is not valid UTF-8");
    BODY_ERROR("{\"query\":\"\xc0\x80\"}",
               "field \"query\" is not valid UTF-8");
    BODY_ERROR("{\"query\":\"\xf4\x90\x80\x80\"}",
               "field \"query\" is not valid UTF-8");
}


static void
test_body(void)
{
    int     rc;
    char    err[128], small[8];
    size_t  i;

    rc = BODY("{\"query\":\"hello\",\"expert\":\"e1\"}");

    CHECK(rc == 0);
    CHECK_STR(err, "");
    CHECK_LIT(fields[QUERY].data, fields[QUERY].len, "hello");
    CHECK(fields[QUERY].data[fields[QUERY].len] == '\0');
    CHECK_LIT(fields[EXPERT].data, fields[EXPERT].len, "e1");
    CHECK(fields[MODEL].data == NULL && fields[MODEL].len == 0);

    ngx_http_perstack_body_free(fields, NFIELDS);

    CHECK(fields[QUERY].data == NULL && fields[EXPERT].data == NULL);

    /* escapes, white space, UTF-8 as it is */

    rc = BODY(" {\n\t\"query\" : \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ "
              "\\/ \\n\\t \xe6\x97\xa5\" ,\"model\":\"\" }\r\n");

    CHECK(rc == 0);
    CHECK_LIT(fields[QUERY].data, fields[QUERY].len,
              "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \n\t \xe6\x97\xa5");
    CHECK_LIT(fields[MODEL].data, fields[MODEL].len, "");
    CHECK(fields[MODEL].data != NULL && fields[MODEL].data[0] == '\0');
    CHECK(fields[EXPERT].data == NULL);

    ngx_http_perstack_body_free(fields, NFIELDS);

    /* no field at all is for the caller to refuse */

    for (i = 0; i < NFIELDS; i++) {
        fields[i].data = (u_char *) "stale";
        fields[i].len = 5;
    }

    rc = BODY("{}");

    CHECK(rc == 0);
    CHECK(fields[EXPERT].data == NULL && fields[QUERY].data == NULL
          && fields[MODEL].data == NULL);
    CHECK(fields[EXPERT].len == 0 && fields[QUERY].len == 0
          && fields[MODEL].len == 0);

    ngx_http_perstack_body_free(fields, NFIELDS);

    /* an error after a field was taken: the caller frees it */

    rc = BODY("{\"query\":\"kept\",\"x\":1}");

    CHECK(rc == -1);
    CHECK_LIT(fields[QUERY].data, fields[QUERY].len, "kept");
    CHECK_STR(err, "unknown field \"x\"");

    ngx_http_perstack_body_free(fields, NFIELDS);

    /* a short buffer gets as much of the message as fits */

    rc = body_run("[]", 2, small, sizeof(small));

    CHECK(rc == -1);
    CHECK_STR(small, "body mu");

    ngx_http_perstack_body_free(fields, NFIELDS);
}


#define TREE_ERROR(lit, max, want)                                            \
    tree_is(copy(lit, sizeof(lit) - 1), sizeof(lit) - 1, max, want, __LINE__)

#define TREE(lit, max)                                                        \
    tree_of((const u_char *) lit, sizeof(lit) - 1, max, __LINE__)


/* the tree of a copy of exactly len bytes, or NULL (a failed check) */

static yajl_val
tree_of(const u_char *in, size_t len, size_t max, int line)
{
    u_char      *data;
    yajl_val     tree;
    const char  *err;

    data = copy(in, len);
    err = "unset";

    tree = ngx_http_perstack_json_tree(data, len, max, &err);

    if (!check_result(tree != NULL && err == NULL, __FILE__, line,
                      "a tree"))
    {
        check_print("input", in, len < 300 ? len : 300);
        fprintf(stderr, "    err: %s\n", err ? err : "(null)");
    }

    free(data);

    return tree;
}


/*
 * The tree of text, len bytes of its own (freed here): a tree when want is
 * NULL, else no tree and want for the reason.
 */

static void
tree_is(u_char *text, size_t len, size_t max, const char *want, int line)
{
    int          ok;
    yajl_val     tree;
    const char  *err;

    err = "unset";

    tree = ngx_http_perstack_json_tree(text, len, max, &err);

    if (want == NULL) {
        ok = check_result(tree != NULL && err == NULL, __FILE__, line,
                          "a tree");

    } else {
        ok = check_result(tree == NULL, __FILE__, line, "no tree");

        if (err == NULL) {
            err = "(null)";
        }

        ok &= check_mem(err, strlen(err), want, strlen(want), __FILE__, line,
                        "err");
    }

    if (!ok) {
        check_print("input", text, len < 300 ? len : 300);
    }

    yajl_tree_free(tree);
    free(text);
}


/* whether two trees are the same, numbers' flags and values included */

static int
tree_equal(yajl_val a, yajl_val b)
{
    size_t  i;

    if (a == NULL || b == NULL || a->type != b->type) {
        return 0;
    }

    switch (a->type) {

    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;

    case yajl_t_number:
        return strcmp(a->u.number.r, b->u.number.r) == 0
               && a->u.number.flags == b->u.number.flags
               && (!(a->u.number.flags & YAJL_NUMBER_INT_VALID)
                   || a->u.number.i == b->u.number.i)
               && (!(a->u.number.flags & YAJL_NUMBER_DOUBLE_VALID)
                   || memcmp(&a->u.number.d, &b->u.number.d,
                             sizeof(double)) == 0);

    case yajl_t_object:
        if (a->u.object.len != b->u.object.len) {
            return 0;
        }

        for (i = 0; i < a->u.object.len; i++) {
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0
                || !tree_equal(a->u.object.values[i], b->u.object.values[i]))
            {
                return 0;
            }
        }

        return 1;

    case yajl_t_array:
        if (a->u.array.len != b->u.array.len) {
            return 0;
        }

        for (i = 0; i < a->u.array.len; i++) {
            if (!tree_equal(a->u.array.values[i], b->u.array.values[i])) {
                return 0;
            }
        }

        return 1;

    default:
        return 1;
    }
}


/* the same tree as yajl_tree_parse() builds, for JSON both take */

static void
tree_as_yajl(const char *text, int line)
{
    yajl_val  a, b;

    a = tree_of((const u_char *) text, strlen(text), 0, line);
    b = yajl_tree_parse(text, NULL, 0);

    check_result(b != NULL, __FILE__, line, "yajl_tree_parse()");

    if (!check_result(tree_equal(a, b), __FILE__, line, "tree_equal()")) {
        check_print("input", text, strlen(text));
    }

    yajl_tree_free(a);
    yajl_tree_free(b);
}


static void
test_tree(void)
{
    yajl_val  tree, v;

    static const char  *id_path[] = { "Id", NULL };
    static const char  *inner_path[] = { "a", "b", "c", NULL };

    /* what the module reads from it */

    tree = TREE("{\"Id\":\"0123456789ab\",\"StatusCode\":137,"
                "\"a\":{\"b\":{\"c\":[1,-2.5,true,false,null,{},[]]}}}", 0);

    if (tree) {
        v = yajl_tree_get(tree, id_path, yajl_t_string);
        CHECK(v != NULL);

        if (v) {
            CHECK_STR(v->u.string, "0123456789ab");
        }

        v = yajl_tree_get(tree, (const char *[]) { "StatusCode", NULL },
                          yajl_t_number);
        CHECK(v != NULL && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) == 137);

        v = yajl_tree_get(tree, inner_path, yajl_t_array);
        CHECK(v != NULL && v->u.array.len == 7);

        if (v && v->u.array.len == 7) {
            CHECK(YAJL_IS_INTEGER(v->u.array.values[0]));
            CHECK(YAJL_IS_DOUBLE(v->u.array.values[1])
                  && !YAJL_IS_INTEGER(v->u.array.values[1])
                  && YAJL_GET_DOUBLE(v->u.array.values[1]) == -2.5);
            CHECK(YAJL_IS_TRUE(v->u.array.values[2]));
            CHECK(YAJL_IS_FALSE(v->u.array.values[3]));
            CHECK(YAJL_IS_NULL(v->u.array.values[4]));
            CHECK(YAJL_IS_OBJECT(v->u.array.values[5])
                  && v->u.array.values[5]->u.object.len == 0);
            CHECK(YAJL_IS_ARRAY(v->u.array.values[6])
                  && v->u.array.values[6]->u.array.len == 0);
        }

        yajl_tree_free(tree);
    }

    /* the same nodes as yajl's tree parser */

    tree_as_yajl("{\"Id\":\"x\",\"Id\":\"y\",\"k\":{\"\":[{}]}}", __LINE__);
    tree_as_yajl("[0,-0,1e2,1.5E-3,123456789012345678901234567890,"
                 "9223372036854775807,9223372036854775808,1e999,-1e-400]",
                 __LINE__);
    tree_as_yajl("\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r"
                 "\\t \xe6\x97\xa5\"", __LINE__);
    tree_as_yajl(" [ true , false , null , [ [ ] ] , { \"a\" : { } } ]\r\n",
                 __LINE__);
    tree_as_yajl("{\"a\":\"[[[[{{{{\",\"b\":\"\\\"[[[[\"}", __LINE__);

    /* a value at the very end of the text, which yajl reads ahead of */

    tree = TREE("123", 0);
    CHECK(tree != NULL && YAJL_IS_INTEGER(tree)
          && YAJL_GET_INTEGER(tree) == 123);
    yajl_tree_free(tree);

    tree = TREE("\"abc\"", 0);
    CHECK(tree != NULL && YAJL_IS_STRING(tree));
    yajl_tree_free(tree);

    tree = TREE("true", 0);
    CHECK(YAJL_IS_TRUE(tree));
    yajl_tree_free(tree);

    /* nothing */

    TREE_ERROR("", 0, "empty");
    CHECK(ngx_http_perstack_json_tree(NULL, 0, 0, NULL) == NULL);
    TREE_ERROR(" ", 0, "not JSON");
    TREE_ERROR("\n", 0, "not JSON");

    /* comments, anywhere */

    TREE_ERROR("/**/{}", 0, "not JSON");
    TREE_ERROR("{}/**/", 0, "not JSON");
    TREE_ERROR("{\"a\"/**/:1}", 0, "not JSON");
    TREE_ERROR("{\"a\":/**/1}", 0, "not JSON");
    TREE_ERROR("[1,//\n2]", 0, "not JSON");
    TREE_ERROR("{}//", 0, "not JSON");
    TREE_ERROR("{\"a\":/*\"*/[]/*\"*/}", 0, "not JSON");

    /* more than one value, trailing garbage, a string left open after */

    TREE_ERROR("{}{}", 0, "not JSON");
    TREE_ERROR("1 2", 0, "not JSON");
    TREE_ERROR("{} x", 0, "not JSON");
    TREE_ERROR("{}]", 0, "not JSON");
    TREE_ERROR("{} \"", 0, "not JSON");
    TREE_ERROR("{} \"abc", 0, "not JSON");
    TREE_ERROR("{\"a\":1", 0, "not JSON");
    TREE_ERROR("[1,]", 0, "not JSON");
    TREE_ERROR("{\"a\":1}\0", 0, "not JSON");

    /* what yajl takes and JSON does not */

    TREE_ERROR("{\f}", 0, "not JSON");
    TREE_ERROR("[1,\v2]", 0, "not JSON");
    TREE_ERROR("[1]\f", 0, "not JSON");
    TREE_ERROR("[\"\xc0\x80\"]", 0, "not valid UTF-8");
    TREE_ERROR("[\"\xed\xa0\x80\"]", 0, "not valid UTF-8");
    TREE_ERROR("[\"\xf4\x90\x80\x80\"]", 0, "not valid UTF-8");
    TREE_ERROR("[\"\xe6\x97\"]", 0, "not valid UTF-8");
    TREE_ERROR("{\"\xff\":1}", 0, "not valid UTF-8");
    TREE_ERROR("[\"\\ud800\"]", 0, "half a surrogate pair");
    TREE_ERROR("[\"\\udc00\"]", 0, "half a surrogate pair");
    TREE_ERROR("{\"\\ud83dx\":1}", 0, "half a surrogate pair");
    TREE_ERROR("[\"\\ud83d\\u0041\"]", 0, "half a surrogate pair");

    /* a NUL, which the module would read as the end of the string */

    TREE_ERROR("[\"a\\u0000b\"]", 0, "a NUL in a string");
    TREE_ERROR("{\"a\\u0000\":1}", 0, "a NUL in a string");

    /* values */

    tree = TREE("[0,0,0]", 4);
    yajl_tree_free(tree);
    TREE_ERROR("[0,0,0]", 3, "too many values");
    TREE_ERROR("[[],{},\"\",null]", 4, "too many values");
    TREE_ERROR("{\"a\":{\"b\":1}}", 2, "too many values");
    tree = TREE("{\"a\":{\"b\":1}}", 3);
    yajl_tree_free(tree);
}


/* text of n units, in an array: "[unit,unit,...]", exact size */

static u_char *
tree_text(const char *unit, size_t n, size_t *len)
{
    size_t   i, ul;
    u_char  *text, *p;

    ul = strlen(unit);
    *len = 2 + n * (ul + 1) - (n ? 1 : 0);

    text = malloc(*len);
    if (text == NULL) {
        abort();
    }

    p = text;
    *p++ = '[';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        memcpy(p, unit, ul);
        p += ul;
    }

    *p = ']';

    return text;
}


static void
tree_bound_is(const char *unit, size_t n, size_t max, const char *want,
    int line)
{
    size_t   len;
    u_char  *text;

    text = tree_text(unit, n, &len);
    tree_is(text, len, max, want, line);
}


/* head, n times open, mid, n times close, tail */

static u_char *
nest(const char *head, const char *open, size_t n, const char *mid,
    const char *close, const char *tail, size_t *len)
{
    size_t   i, hl, ol, ml, cl, tl;
    u_char  *text, *p;

    hl = strlen(head);
    ol = strlen(open);
    ml = strlen(mid);
    cl = strlen(close);
    tl = strlen(tail);

    *len = hl + n * (ol + cl) + ml + tl;

    text = malloc(*len);
    if (text == NULL) {
        abort();
    }

    p = text;
    memcpy(p, head, hl);
    p += hl;

    for (i = 0; i < n; i++) {
        memcpy(p, open, ol);
        p += ol;
    }

    memcpy(p, mid, ml);
    p += ml;

    for (i = 0; i < n; i++) {
        memcpy(p, close, cl);
        p += cl;
    }

    memcpy(p, tail, tl);

    return text;
}


static void
nest_is(const char *head, const char *open, size_t n, const char *mid,
    const char *close, const char *tail, const char *want, int line)
{
    size_t   len;
    u_char  *text;

    text = nest(head, open, n, mid, close, tail, &len);
    tree_is(text, len, 0, want, line);
}


/*
 * The finding: comments hide the depth from a scanner that does not know
 * them, and a tree two million deep was built and freed recursively.  Run
 * on a thread with a small stack, so that recursion once a level would
 * crash the test rather than pass.
 */

#define TREE_STACK  (256 * 1024)

static void *
tree_deep_thread(void *arg)
{
    /* a stopRunByInteractiveTool checkpoint as the container may write it */
    nest_is("{\"pendingToolCalls\":/*\"*/", "[", 2000000, "", "]",
            "/*\"*/}", "not JSON", __LINE__);
    nest_is("{\"a\":", "[", 2000000, "", "]", "}", "nested too deep",
            __LINE__);
    nest_is("", "{\"a\":", 2000000, "1", "}", "", "nested too deep",
            __LINE__);
    nest_is("", "[{\"\":", 1000000, "1", "}]", "", "nested too deep",
            __LINE__);

    return arg;
}


static void
test_tree_bounds(void)
{
    size_t          len, i;
    u_char         *text;
    uint32_t        x;
    yajl_val        tree;
    pthread_t       t;
    pthread_attr_t  attr;

    /* depth: 64 is the most */

    nest_is("", "[", 64, "", "]", "", NULL, __LINE__);
    nest_is("", "[", 65, "", "]", "", "nested too deep", __LINE__);
    nest_is("", "{\"a\":", 63, "{}", "}", "", NULL, __LINE__);
    nest_is("", "{\"a\":", 64, "{}", "}", "", "nested too deep", __LINE__);
    nest_is("[1,", "[", 63, "2", "]", "]", NULL, __LINE__);
    nest_is("[1,", "[", 64, "2", "]", "]", "nested too deep", __LINE__);
    nest_is("[", "{\"a\":[", 32, "", "]}", "]", "nested too deep",
            __LINE__);
    nest_is("", "{\"a\":[", 32, "", "]}", "", NULL, __LINE__);

    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, TREE_STACK) == 0);

    if (CHECK(pthread_create(&t, &attr, tree_deep_thread, NULL) == 0)) {
        CHECK(pthread_join(t, NULL) == 0);
    }

    pthread_attr_destroy(&attr);

    /* values: the array and its elements */

    tree_bound_is("0", NGX_HTTP_PERSTACK_JSON_NODES_MAX - 1, 0, NULL,
                  __LINE__);
    tree_bound_is("0", NGX_HTTP_PERSTACK_JSON_NODES_MAX, 0, "too many values",
                  __LINE__);
    tree_bound_is("[]", NGX_HTTP_PERSTACK_JSON_NODES_MAX, 0,
                  "too many values", __LINE__);
    tree_bound_is("{}", NGX_HTTP_PERSTACK_JSON_NODES_MAX - 1, 0, NULL,
                  __LINE__);
    tree_bound_is("0", NGX_HTTP_PERSTACK_JSON_NODES_MAX,
                  NGX_HTTP_PERSTACK_JSON_NODES_MAX + 1, NULL, __LINE__);

    /* a malformed 4 MiB checkpoint: a quarter million values at most */

    tree_bound_is("[]", 4 * 1024 * 1024 / 3,
                  NGX_HTTP_PERSTACK_JSON_NODES_LARGE, "too many values",
                  __LINE__);
    tree_bound_is("0", 4 * 1024 * 1024 / 2,
                  NGX_HTTP_PERSTACK_JSON_NODES_LARGE, "too many values",
                  __LINE__);
    tree_bound_is("0", NGX_HTTP_PERSTACK_JSON_NODES_LARGE - 1,
                  NGX_HTTP_PERSTACK_JSON_NODES_LARGE, NULL, __LINE__);

    /* 4 MiB of garbage */

    len = 4 * 1024 * 1024;
    text = malloc(len);

    if (CHECK(text != NULL)) {
        x = 2463534242u;

        for (i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            text[i] = (u_char) x;
        }

        text[0] = '[';

        CHECK(ngx_http_perstack_json_tree(text, len,
                                          NGX_HTTP_PERSTACK_JSON_NODES_LARGE,
                                          NULL)
              == NULL);

        /* and 4 MiB of strings, which is fine */

        memset(text, 'a', len);
        text[0] = '[';
        text[1] = '"';
        text[len - 2] = '"';
        text[len - 1] = ']';

        tree = ngx_http_perstack_json_tree(text, len, 0, NULL);
        CHECK(YAJL_IS_ARRAY(tree) && tree->u.array.len == 1);
        yajl_tree_free(tree);

        free(text);
    }
}


int
main(void)
{
    test_classify();
    test_tree();
    test_tree_bounds();
    test_escape();
    test_escape_random();
    test_utf8_valid();
    test_body_errors();
    test_body();

    return check_done("test_json");
}
