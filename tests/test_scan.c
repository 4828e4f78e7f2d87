/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Unit tests of the scanner that reads a runtime event as it streams:
 * every line is fed whole, one byte at a time and in random pieces, and
 * each way must give the same result.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_scan.h"
#include "check.h"


typedef struct {
    char     *data;
    size_t    len;
    size_t    size;
} buf_t;


static void
buf_add(buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->size) {
        b->size = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->size);

        if (b->data == NULL) {
            abort();
        }
    }

    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}


static void
buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}


/* total bytes of s repeated, the last one cut short */

static void
buf_repeat(buf_t *b, const char *s, size_t total)
{
    size_t  n, len;

    len = strlen(s);

    while (total) {
        n = (total < len) ? total : len;
        buf_add(b, s, n);
        total -= n;
    }
}


/* feeds the line in pieces of at most "piece" bytes (0: whole, or random
 * sizes up to -piece when piece is negative) */

static ngx_http_perstack_scan_rc_e
scan(ngx_http_perstack_scan_t *s, const char *data, size_t len, long piece)
{
    size_t                       off, n;
    ngx_http_perstack_scan_rc_e  rc;

    if (ngx_http_perstack_scan_start(s) != 0) {
        return NGX_HTTP_PERSTACK_SCAN_NOMEM;
    }

    rc = NGX_HTTP_PERSTACK_SCAN_OK;

    for (off = 0; off < len; off += n) {
        if (piece == 0) {
            n = len;

        } else if (piece > 0) {
            n = (size_t) piece;

        } else {
            n = 1 + check_random((unsigned long) -piece);
        }

        if (n > len - off) {
            n = len - off;
        }

        rc = ngx_http_perstack_scan_feed(s, (const u_char *) data + off, n);
    }

    if (rc == NGX_HTTP_PERSTACK_SCAN_OK) {
        rc = ngx_http_perstack_scan_end(s);
    }

    return rc;
}


/*
 * The same result, whatever the pieces.  Lines too long to feed in tiny
 * pieces take the big ones: yajl scans a string it holds again each time
 * it gets more of it.
 */

static const long  all_pieces[] = { 0, 1, 2, 3, 7, 4096, -64, -5000 };
static const long  big_pieces[] = { 0, 4096, 16384, -20000 };

#define SCAN_PIECES(pieces, text, len, check)                                 \
    do {                                                                      \
        size_t  i_;                                                           \
        for (i_ = 0; i_ < sizeof(pieces) / sizeof(pieces[0]); i_++) {        \
            ngx_http_perstack_scan_rc_e  rc;                                  \
            check_seed(i_ + 1);                                               \
            rc = scan(&s, text, len, pieces[i_]);                             \
            check;                                                            \
            ngx_http_perstack_scan_free(&s);                                  \
        }                                                                     \
    } while (0)

#define SCAN_ALL(text, len, check)                                            \
    SCAN_PIECES(all_pieces, text, len, check)
#define SCAN_BIG(text, len, check)                                            \
    SCAN_PIECES(big_pieces, text, len, check)


static void
test_complete(void)
{
    ngx_http_perstack_scan_t  s;
    static const char  line[] =
        "{\"type\":\"completeRun\",\"id\":\"x\",\"expertKey\":\"demo\","
        "\"checkpoint\":{\"status\":\"completed\",\"messages\":[{\"a\":[1,"
        "2.5e3,true,false,null]}]},\"text\":\"caf\xc3\xa9 \\u00e9 "
        "\\ud83d\\ude00\"}";

    memset(&s, 0, sizeof(s));

    SCAN_ALL(line, sizeof(line) - 1,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK_LIT(s.type, s.type_len, "completeRun");
             CHECK(s.has_expert);
             CHECK_LIT(s.expert, s.expert_len, "demo");
             CHECK(s.pending == NULL));
}


/* the last "type" counts, as classify() has it, whatever its value */

static void
test_type_repeated(void)
{
    ngx_http_perstack_scan_t  s;
    static const char  line1[] = "{\"type\":\"completeRun\",\"type\":1}";
    static const char  line2[] = "{\"type\":[],\"type\":\"completeRun\"}";

    memset(&s, 0, sizeof(s));

    SCAN_ALL(line1, sizeof(line1) - 1,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK(s.type_len == 0));

    SCAN_ALL(line2, sizeof(line2) - 1,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK_LIT(s.type, s.type_len, "completeRun"));
}


static void
test_pending(void)
{
    buf_t                     b, want;
    ngx_http_perstack_scan_t  s;

    memset(&s, 0, sizeof(s));
    memset(&b, 0, sizeof(b));
    memset(&want, 0, sizeof(want));

    /* yajl writes the calls back in its own form: no white space */

    buf_str(&want, "[{\"id\":\"c1\",\"toolName\":\"askUser\",\"args\":"
                   "{\"question\":\"");
    buf_repeat(&want, "why? ", 10000);
    buf_str(&want, "\",\"n\":[1,-2,3.5],\"t\":true,\"z\":null}}]");

    buf_str(&b, "{\"type\" : \"stopRunByInteractiveTool\", \"checkpoint\":"
                "{\"pendingToolCalls\": [ {\"id\":\"c1\",\"toolName\":"
                "\"askUser\",\"args\":{\"question\":\"");
    buf_repeat(&b, "why? ", 10000);
    buf_str(&b, "\",\"n\":[1,-2,3.5],\"t\":true,\"z\":null}} ],"
                "\"other\":[{\"pendingToolCalls\":[]}]},"
                "\"expertKey\":\"demo\"}");

    SCAN_ALL(b.data, b.len,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK_LIT(s.type, s.type_len, "stopRunByInteractiveTool");
             CHECK_LIT(s.expert, s.expert_len, "demo");
             CHECK_MEM(s.pending, s.pending_len, want.data, want.len));

    /* calls over the bound are not kept; the line is still fine */

    free(b.data);
    memset(&b, 0, sizeof(b));

    buf_str(&b, "{\"type\":\"stopRunByInteractiveTool\",\"checkpoint\":"
                "{\"pendingToolCalls\":[\"");
    buf_repeat(&b, "a", NGX_HTTP_PERSTACK_SCAN_PENDING_MAX + 10);
    buf_str(&b, "\"]}}");

    SCAN_BIG(b.data, b.len,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK_LIT(s.type, s.type_len, "stopRunByInteractiveTool");
             CHECK(s.pending == NULL));

    free(b.data);
    free(want.data);
}


static void
test_error(void)
{
    size_t                    off;
    buf_t                     b;
    ngx_http_perstack_scan_t  s;

    memset(&s, 0, sizeof(s));
    memset(&b, 0, sizeof(b));

    buf_str(&b, "{\"type\":\"stopRunByError\",\"error\":{\"name\":"
                "\"APICallError\",\"statusCode\":500,\"message\":\"");
    off = b.len;
    /* a message far over its bound, cut on a character's boundary */
    buf_repeat(&b, "\xe3\x81\x82", 9000);
    buf_str(&b, "\",\"isRetryable\":false},\"expertKey\":\"demo\"}");

    SCAN_ALL(b.data, b.len,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK_LIT(s.type, s.type_len, "stopRunByError");
             CHECK_LIT(s.error_name, s.error_name_len, "APICallError");
             CHECK(s.has_status_code && s.status_code == 500);
             CHECK(s.error_message_len
                   == NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX / 3 * 3);
             CHECK(memcmp(s.error_message, b.data + off, 3) == 0));

    free(b.data);
}


/* a long string is not held, and what comes after it is still read */

static void
test_long(void)
{
    buf_t                     b;
    ngx_http_perstack_scan_t  s;

    memset(&s, 0, sizeof(s));
    memset(&b, 0, sizeof(b));

    buf_str(&b, "{\"checkpoint\":{\"messages\":[{\"text\":\"");
    buf_repeat(&b, "All work and no play \\\" \xc3\xa9\\u00e9 ", 200000);
    buf_str(&b, "\"}]},\"");
    buf_repeat(&b, "k", 100000);
    buf_str(&b, "\":1,\"type\":\"completeRun\"}");

    SCAN_ALL(b.data, b.len,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK);
             CHECK_LIT(s.type, s.type_len, "completeRun"));

    free(b.data);
}


/* head, then n bytes of fill, then tail: refused for error */

static void
refused_long(const char *head, const char *fill, size_t n, const char *tail,
    const char *error)
{
    buf_t                     b;
    ngx_http_perstack_scan_t  s;

    memset(&s, 0, sizeof(s));
    memset(&b, 0, sizeof(b));

    buf_str(&b, head);
    buf_repeat(&b, fill, n);
    buf_str(&b, tail);

    SCAN_ALL(b.data, b.len,
             CHECK(rc == NGX_HTTP_PERSTACK_SCAN_INVALID);
             CHECK_STR(s.error, error));

    free(b.data);
}


static void
test_refused(void)
{
    size_t                    i;
    buf_t                     b;
    ngx_http_perstack_scan_t  s;

    static const char  *bad[] = {
        "",
        "   ",
        "[1]",
        "\"x\"",
        "{\"a\":}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{\"a\":1",
        "{\"a\":\"open",
        "{/* c */\"a\":1}",
        "{\"a\":1}// c",
        "{\f\"a\":1}",
        "{\v\"a\":1}",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc0\x80\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\ud800x\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"type\":\"perstack.end\"}",
        "{\"type\":\"perstack\\u002eend\"}",
        "{\"type\":\"completeRun\",\"type\":\"perstack.end\"}",
        "{\"type\":\"completeRun\"} \"",
        "{\"a\":1} \"abc",
        NULL
    };

    memset(&s, 0, sizeof(s));

    for (i = 0; bad[i]; i++) {
        SCAN_ALL(bad[i], strlen(bad[i]),
                 CHECK(rc == NGX_HTTP_PERSTACK_SCAN_INVALID);
                 CHECK(s.error != NULL));
    }

    memset(&b, 0, sizeof(b));

    /* the same faults, past the part of a long string yajl is given */

    static const char  *tails[] = {
        "\x01", "\xc3", "\xc3(", "\xe0\x80\x80", "\\ud800", "\\q", "\\u00",
        NULL
    };

    for (i = 0; tails[i]; i++) {
        b.len = 0;
        buf_str(&b, "{\"type\":\"completeRun\",\"text\":\"");
        buf_repeat(&b, "x", 10000);
        buf_str(&b, tails[i]);
        buf_str(&b, "\"}");

        SCAN_ALL(b.data, b.len,
                 CHECK(rc == NGX_HTTP_PERSTACK_SCAN_INVALID));
    }

    /* nesting: 64 levels pass, 65 do not */

    b.len = 0;
    buf_repeat(&b, "{\"a\":", 64 * 5);
    buf_str(&b, "1");
    buf_repeat(&b, "}", 64);

    SCAN_ALL(b.data, b.len, CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK));

    free(b.data);

    /* nesting, a number yajl would hold whole, a type forged behind a
     * long string */

    refused_long("{\"a\":", "[", 100000, "", "nested too deep");
    refused_long("{\"a\":", "1", 100000, "}", "a number is too long");
    refused_long("{\"type\":\"streamRunResult\",\"delta\":\"", "x", 100000,
                 "\",\"type\":\"perstack.end\"}",
                 "a type in the module's namespace");
}


int
main(void)
{
    test_complete();
    test_type_repeated();
    test_pending();
    test_error();
    test_long();
    test_refused();

    return check_done("test_scan");
}
