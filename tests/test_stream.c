/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Unit tests of the demultiplexer of Docker's attach stream.
 *
 * Every input is fed whole, one byte at a time, cut in two at every offset
 * and cut at random (fixed seeds); each piece is in a buffer of its own
 * exact size, so that AddressSanitizer catches a read past "last".  What
 * the demultiplexer returns is written down as a transcript, one item a
 * line:
 *
 *     1:text      a line of stdout ("2:" stderr, "3:" daemon error)
 *     1!17        a line of stdout too long to hold, of 17 bytes, that
 *                 came in parts ("1!17=text" when the test asks for the
 *                 parts' bytes too)
 *     E           a bad frame header        M  out of memory
 *     T           the stream ended inside a frame
 *     F1:text     a line returned by flush() ("F1!17" too long)
 */


#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


/* the source is included so that the tests can make realloc() fail */

static int  fail_alloc;


static void *
test_realloc(void *p, size_t n)
{
    return fail_alloc ? NULL : realloc(p, n);
}


#define realloc  test_realloc
#include "ngx_http_perstack_stream.c"
#undef realloc

#include "check.h"


typedef struct {
    char                          *data;
    size_t                         len;
    size_t                         size;
} text_t;


typedef enum {
    CUT_WHOLE,
    CUT_BYTES,
    CUT_AT,
    CUT_RANDOM
} cut_e;


typedef struct {
    cut_e                          how;
    /* CUT_AT: the offset; CUT_RANDOM: the largest piece */
    size_t                         n;
} cut_t;


#define L16  "0123456789abcdef"
#define L17  L16 "g"

#define FRAME(s, type, lit)  frame(s, type, lit, sizeof(lit) - 1)
#define EXPECT(in, max_line, lit)                                             \
    expect(in, max_line, lit, sizeof(lit) - 1, __LINE__)


static void
text_add(text_t *t, const void *p, size_t n)
{
    if (t->len + n + 1 > t->size) {
        t->size = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->size);

        if (t->data == NULL) {
            abort();
        }
    }

    if (n > 0) {
        memcpy(t->data + t->len, p, n);
    }

    t->len += n;
    t->data[t->len] = '\0';
}


static void
text_printf(text_t *t, const char *fmt, ...)
{
    char     buf[256];
    va_list  args;

    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    text_add(t, buf, strlen(buf));
}


static void
text_free(text_t *t)
{
    free(t->data);
    t->data = NULL;
    t->len = 0;
    t->size = 0;
}


/* a frame as the Engine API sends it: the header, then the payload */

static void
frame(text_t *s, unsigned type, const char *payload, size_t len)
{
    u_char  h[8];

    h[0] = (u_char) type;
    h[1] = 0;
    h[2] = 0;
    h[3] = 0;
    h[4] = (u_char) (len >> 24);
    h[5] = (u_char) (len >> 16);
    h[6] = (u_char) (len >> 8);
    h[7] = (u_char) len;

    text_add(s, h, sizeof(h));
    text_add(s, payload, len);
}


/* the parts of the long line of each stream, joined */
static text_t  parts[4];
static int     parts_open[4];
static int     parts_text;


static void
record(text_t *t, ngx_http_perstack_demux_rc_e rc,
    ngx_http_perstack_line_t *line, const char *prefix)
{
    text_t  *acc;

    switch (rc) {

    case NGX_HTTP_PERSTACK_DEMUX_LINE:
        text_printf(t, "%s%u:", prefix, line->stream);
        text_add(t, line->data, line->len);
        text_add(t, "\n", 1);
        break;

    case NGX_HTTP_PERSTACK_DEMUX_PIECE:
        acc = &parts[line->stream];

        if (line->first != !parts_open[line->stream]) {
            text_printf(t, "?%s part %u\n",
                        line->first ? "first" : "no first", line->stream);
        }

        if (line->first) {
            acc->len = 0;
            parts_open[line->stream] = 1;
        }

        text_add(acc, line->data, line->len);

        if (line->last) {
            parts_open[line->stream] = 0;
            text_printf(t, "%s%u!%lu", prefix, line->stream,
                        (unsigned long) acc->len);

            if (parts_text) {
                text_add(t, "=", 1);
                text_add(t, acc->data, acc->len);
            }

            text_add(t, "\n", 1);
        }

        break;

    case NGX_HTTP_PERSTACK_DEMUX_ERROR:
        text_add(t, "E\n", 2);
        break;

    case NGX_HTTP_PERSTACK_DEMUX_NOMEM:
        text_add(t, "M\n", 2);
        break;

    default:
        break;
    }
}


static size_t
cut_next(cut_t *cut, size_t off, size_t left)
{
    size_t  n;

    switch (cut->how) {

    case CUT_WHOLE:
        return left;

    case CUT_BYTES:
        return 1;

    case CUT_AT:
        return (off < cut->n) ? cut->n - off : left;

    default:
        /* empty pieces too */
        n = check_random(cut->n + 1);
        return (n < left) ? n : left;
    }
}


/* feeds "in" cut as "cut" says, then flushes, and writes the transcript */

static void
run(text_t *t, const text_t *in, size_t max_line, cut_t *cut)
{
    size_t                         off, n, i;
    u_char                        *buf;
    const u_char                  *pos;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_t      d;
    ngx_http_perstack_demux_rc_e   rc;

    ngx_http_perstack_demux_init(&d, max_line);

    memset(parts_open, 0, sizeof(parts_open));

    for (off = 0; off < in->len; off += n) {
        n = cut_next(cut, off, in->len - off);

        buf = malloc(n ? n : 1);
        if (buf == NULL) {
            abort();
        }

        memcpy(buf, in->data + off, n);
        pos = buf;

        do {
            rc = ngx_http_perstack_demux_next(&d, &pos, buf + n, &line);
            record(t, rc, &line, "");
        } while (rc == NGX_HTTP_PERSTACK_DEMUX_LINE
                 || rc == NGX_HTTP_PERSTACK_DEMUX_PIECE);

        if (rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN && pos != buf + n) {
            text_printf(t, "?AGAIN with %lu bytes left\n",
                        (unsigned long) (buf + n - pos));
        }

        free(buf);

        if (rc != NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            ngx_http_perstack_demux_free(&d);
            return;
        }
    }

    if (ngx_http_perstack_demux_truncated(&d)) {
        text_add(t, "T\n", 2);
    }

    /* at most a line or the two parts that end one for each stream */

    for (i = 0; i < 7; i++) {
        rc = ngx_http_perstack_demux_flush(&d, &line);
        if (rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            break;
        }

        record(t, rc, &line, "F");
    }

    if (i == 7) {
        text_add(t, "?flush does not end\n", 20);
    }

    ngx_http_perstack_demux_free(&d);
}


/* runs "in" cut in every way; four checks */

static void
expect(const text_t *in, size_t max_line, const char *want, size_t want_len,
    int line)
{
    size_t  k;
    text_t  t;
    cut_t   cut;

    memset(&t, 0, sizeof(text_t));
    text_add(&t, "", 0);

    cut.how = CUT_WHOLE;
    cut.n = 0;
    run(&t, in, max_line, &cut);
    check_mem(t.data, t.len, want, want_len, __FILE__, line, "fed whole");

    t.len = 0;
    cut.how = CUT_BYTES;
    run(&t, in, max_line, &cut);
    check_mem(t.data, t.len, want, want_len, __FILE__, line,
              "fed one byte at a time");

    cut.how = CUT_AT;

    for (k = 1; k < in->len; k++) {
        t.len = 0;
        cut.n = k;
        run(&t, in, max_line, &cut);

        if (t.len != want_len || memcmp(t.data, want, want_len) != 0) {
            fprintf(stderr, "cut at offset %lu:\n", (unsigned long) k);
            break;
        }
    }

    check_mem(t.data, t.len, want, want_len, __FILE__, line,
              "cut in two at every offset");

    cut.how = CUT_RANDOM;

    for (k = 1; k <= 50; k++) {
        t.len = 0;
        cut.n = k;
        check_seed(k);
        run(&t, in, max_line, &cut);

        if (t.len != want_len || memcmp(t.data, want, want_len) != 0) {
            fprintf(stderr, "random pieces of up to %lu bytes, seed %lu:\n",
                    (unsigned long) k, (unsigned long) k);
            break;
        }
    }

    check_mem(t.data, t.len, want, want_len, __FILE__, line,
              "cut at random");

    text_free(&t);
}


static void
test_recorded(void)
{
    text_t  in;

    memset(&in, 0, sizeof(text_t));

    FRAME(&in, 1, "hello wor");
    FRAME(&in, 2, "warn");
    FRAME(&in, 1, "ld\nsecond\r\n\n");
    FRAME(&in, 1, "");
    FRAME(&in, 2, "ing\r\n");
    FRAME(&in, 3, "daemon error\n");
    FRAME(&in, 1, "\r\n\r\nthird li");
    FRAME(&in, 2, "a");
    FRAME(&in, 1, "ne\n");
    FRAME(&in, 2, "b");
    FRAME(&in, 2, "");
    FRAME(&in, 2, "c");
    FRAME(&in, 2, "\n");
    FRAME(&in, 2, "partial stderr");
    FRAME(&in, 1, "tail");

    EXPECT(&in, 1024,
           "1:hello world\n"
           "1:second\n"
           "2:warning\n"
           "3:daemon error\n"
           "1:third line\n"
           "2:abc\n"
           "F1:tail\n"
           "F2:partial stderr\n");

    text_free(&in);
}


static void
test_interleaved(void)
{
    text_t  in;

    memset(&in, 0, sizeof(text_t));

    FRAME(&in, 1, "out 1 ");
    FRAME(&in, 2, "err 1 ");
    FRAME(&in, 1, "continued\nout 2 ");
    FRAME(&in, 2, "continued\r");
    FRAME(&in, 1, "continued\n");
    FRAME(&in, 2, "\nerr 2\n");

    /* a line comes out when its "\n" does */

    EXPECT(&in, 1024,
           "1:out 1 continued\n"
           "1:out 2 continued\n"
           "2:err 1 continued\n"
           "2:err 2\n");

    text_free(&in);
}


static void
test_line_endings(void)
{
    text_t  in;

    memset(&in, 0, sizeof(text_t));

    /* only a "\r" right before "\n" belongs to the line ending */

    FRAME(&in, 1, "crlf\r\nlf\na\rb\nx\r\r\n\rlead\n");
    FRAME(&in, 1, "split\r");
    FRAME(&in, 1, "\n");

    EXPECT(&in, 1024,
           "1:crlf\n"
           "1:lf\n"
           "1:a\rb\n"
           "1:x\r\n"
           "1:\rlead\n"
           "1:split\n");

    text_free(&in);

    /* empty lines, with or without "\r", are skipped */

    FRAME(&in, 1, "\n\n\r\n");
    FRAME(&in, 2, "\r\n\n");
    FRAME(&in, 1, "\n\nz\n\n");
    FRAME(&in, 2, "\r");

    EXPECT(&in, 1024, "1:z\n");

    text_free(&in);
}


static void
test_oversize(void)
{
    size_t  i;
    text_t  in, line, want, t;
    cut_t   cut;

    memset(&in, 0, sizeof(text_t));
    memset(&line, 0, sizeof(text_t));
    memset(&want, 0, sizeof(text_t));
    memset(&t, 0, sizeof(text_t));

    FRAME(&in, 1, L16 "\n" L17 "\n" "next\n");
    EXPECT(&in, 16, "1:" L16 "\n" "1!17\n" "1:next\n");
    text_free(&in);

    /* "\r\n" is not part of the length */

    FRAME(&in, 1, L16 "\r\n" L17 "\r\n" "ok\r\n");
    EXPECT(&in, 16, "1:" L16 "\n" "1!17\n" "1:ok\n");
    text_free(&in);

    /* a "\r" inside the line is */

    FRAME(&in, 1, L16 "\rx\n" L16 "\r\r\n");
    EXPECT(&in, 16, "1!18\n" "1!17\n");
    text_free(&in);

    /* one report for a long line over many frames, the next one is fine */

    for (i = 0; i < 100; i++) {
        FRAME(&in, 2, "0123456789");
    }

    FRAME(&in, 1, "short\n");
    FRAME(&in, 2, "\r\n" "fine\n");
    EXPECT(&in, 16, "1:short\n" "2!1000\n" "2:fine\n");
    text_free(&in);

    /* at the end of the stream */

    FRAME(&in, 1, L16 "\n");
    FRAME(&in, 2, L17 L17);
    FRAME(&in, 1, L17);
    EXPECT(&in, 16, "1:" L16 "\n" "F1!17\n" "F2!34\n");
    text_free(&in);

    FRAME(&in, 1, "a\nbb\n");
    EXPECT(&in, 0, "1!1\n" "1!2\n");
    text_free(&in);

    /* lines far longer than the first buffer */

    for (i = 0; i < 100000; i++) {
        text_add(&line, "abcdefghijklmnopqrstuvwxyz" + i % 26, 1);
    }

    for (i = 0; i < line.len; i += 3000) {
        frame(&in, 1, line.data + i,
              (line.len - i < 3000) ? line.len - i : 3000);
    }

    FRAME(&in, 1, "\n");
    frame(&in, 1, line.data, line.len);
    FRAME(&in, 1, "!\nok\n");
    frame(&in, 1, line.data, 70000);

    text_add(&want, "1:", 2);
    text_add(&want, line.data, line.len);
    text_add(&want, "\n1!100001\n1:ok\nF1:", 18);
    text_add(&want, line.data, 70000);
    text_add(&want, "\n", 1);

    /* not EXPECT: cutting this at every offset takes too long */

    cut.how = CUT_WHOLE;
    cut.n = 0;
    run(&t, &in, 100000, &cut);
    CHECK_MEM(t.data, t.len, want.data, want.len);

    t.len = 0;
    cut.how = CUT_RANDOM;
    cut.n = 5000;
    check_seed(7);
    run(&t, &in, 100000, &cut);
    CHECK_MEM(t.data, t.len, want.data, want.len);

    text_free(&t);
    text_free(&in);
    text_free(&line);
    text_free(&want);
}


static void
test_bad_header(void)
{
    size_t                         i;
    u_char                         bad[8];
    text_t                         in;
    const u_char                  *pos;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_t      d;
    ngx_http_perstack_demux_rc_e   rc, rc2;

    static const u_char  headers[][8] = {
        { 0, 0, 0, 0, 0, 0, 0, 1 },
        { 4, 0, 0, 0, 0, 0, 0, 1 },
        { 255, 0, 0, 0, 0, 0, 0, 1 },
        { 1, 1, 0, 0, 0, 0, 0, 1 },
        { 2, 0, 1, 0, 0, 0, 0, 1 },
        { 1, 0, 0, 0x80, 0, 0, 0, 1 },
        /* not a frame: the "HTTP/1.1 200 OK" of a response */
        { 'H', 'T', 'T', 'P', '/', '1', '.', '1' }
    };

    memset(&in, 0, sizeof(text_t));

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        FRAME(&in, 1, "before\npartial");
        text_add(&in, headers[i], 8);
        text_add(&in, "x\n", 2);

        /* lines before the bad header come out, then the error */
        EXPECT(&in, 1024, "1:before\n" "E\n");

        text_free(&in);
    }

    /* the error stays */

    memcpy(bad, headers[1], 8);

    ngx_http_perstack_demux_init(&d, 1024);

    pos = bad;
    rc = ngx_http_perstack_demux_next(&d, &pos, bad + 8, &line);
    rc2 = ngx_http_perstack_demux_next(&d, &pos, bad + 8, &line);

    CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_ERROR);
    CHECK(rc2 == NGX_HTTP_PERSTACK_DEMUX_ERROR);

    ngx_http_perstack_demux_free(&d);
}


static void
test_truncated(void)
{
    text_t  in;

    memset(&in, 0, sizeof(text_t));

    /* nothing at all */

    text_add(&in, "", 0);
    EXPECT(&in, 1024, "");

    /* inside a header */

    FRAME(&in, 1, "abc\n");
    text_add(&in, "\2\0\0", 3);
    EXPECT(&in, 1024, "1:abc\n" "T\n");
    text_free(&in);

    /* inside a payload: what came is a line */

    FRAME(&in, 1, "abc\n");
    text_add(&in, "\1\0\0\0\0\0\0\12" "hello", 13);
    EXPECT(&in, 1024, "1:abc\n" "T\n" "F1:hello\n");
    text_free(&in);

    FRAME(&in, 2, "err\n");
    text_add(&in, "\2\0\0\0\0\0\0\12" "hi\r", 11);
    EXPECT(&in, 1024, "2:err\n" "T\n" "F2:hi\n");
    text_free(&in);

    /* at a frame boundary, not truncated */

    FRAME(&in, 1, "no newline");
    FRAME(&in, 3, "daemon");
    EXPECT(&in, 1024, "F1:no newline\n" "F3:daemon\n");
    text_free(&in);
}


static void
test_zero_size(void)
{
    int     i;
    text_t  in;

    memset(&in, 0, sizeof(text_t));

    FRAME(&in, 1, "");
    FRAME(&in, 1, "a");
    FRAME(&in, 2, "");
    FRAME(&in, 3, "");
    FRAME(&in, 1, "");
    FRAME(&in, 1, "b\n");
    FRAME(&in, 1, "");
    EXPECT(&in, 1024, "1:ab\n");
    text_free(&in);

    for (i = 0; i < 50; i++) {
        FRAME(&in, 1 + i % 3, "");
    }

    EXPECT(&in, 1024, "");
    text_free(&in);
}


static void
test_nomem(void)
{
    text_t                         in, more, t;
    const u_char                  *pos, *last;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_t      d;
    ngx_http_perstack_demux_rc_e   rc;

    memset(&in, 0, sizeof(text_t));
    memset(&more, 0, sizeof(text_t));
    memset(&t, 0, sizeof(text_t));

    FRAME(&in, 1, "abc");
    FRAME(&more, 1, "d\n");

    ngx_http_perstack_demux_init(&d, 1024);

    pos = (u_char *) in.data;
    last = pos + in.len;

    fail_alloc = 1;
    rc = ngx_http_perstack_demux_next(&d, &pos, last, &line);
    fail_alloc = 0;

    CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_NOMEM);

    /* the payload is left for a retry */
    CHECK(pos == (u_char *) in.data + 8);

    rc = ngx_http_perstack_demux_next(&d, &pos, last, &line);
    CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN);
    CHECK(pos == last);

    pos = (u_char *) more.data;
    last = pos + more.len;

    rc = ngx_http_perstack_demux_next(&d, &pos, last, &line);
    record(&t, rc, &line, "");
    CHECK_LIT(t.data, t.len, "1:abcd\n");

    ngx_http_perstack_demux_free(&d);

    /* free() may be called twice */
    ngx_http_perstack_demux_free(&d);

    text_free(&in);
    text_free(&more);
    text_free(&t);
}


/*
 * Random streams against a model that reads them byte by byte: frames of
 * random sizes and streams, lines of random lengths around max_line, and
 * the stream cut short at a random place.
 */

static void
model_line(text_t *want, unsigned stream, text_t *acc, size_t max_line,
    const char *prefix)
{
    size_t  len;

    len = acc->len;

    if (len > 0 && acc->data[len - 1] == '\r') {
        len--;
    }

    if (len > max_line) {
        text_printf(want, "%s%u!%lu=", prefix, stream, (unsigned long) len);
        text_add(want, acc->data, len);
        text_add(want, "\n", 1);

    } else if (len > 0) {
        text_printf(want, "%s%u:", prefix, stream);
        text_add(want, acc->data, len);
        text_add(want, "\n", 1);
    }

    acc->len = 0;
}


static void
test_model(void)
{
    char      payload[20];
    size_t    max_line, end, off, len, i, j;
    text_t    in, want, got, acc[4];
    cut_t     cut;
    unsigned  type, iter, failed;

    static const char  alphabet[] = "abc \r\n\r\n";

    memset(&in, 0, sizeof(text_t));
    memset(&want, 0, sizeof(text_t));
    memset(&got, 0, sizeof(text_t));
    memset(acc, 0, sizeof(acc));

    max_line = 8;
    failed = 0;
    parts_text = 1;

    for (iter = 0; iter < 500 && !failed; iter++) {
        check_seed(1000 + iter);

        in.len = 0;
        want.len = 0;
        got.len = 0;
        text_add(&want, "", 0);
        text_add(&got, "", 0);

        for (type = 1; type <= 3; type++) {
            acc[type].len = 0;
        }

        /* the stream ends at "end" or after its last frame */

        end = check_random(500);

        for (i = check_random(40); i > 0; i--) {
            off = in.len;

            if (off >= end) {
                break;
            }

            type = 1 + check_random(10) / 4;
            len = check_random(sizeof(payload));

            for (j = 0; j < len; j++) {
                payload[j] = alphabet[check_random(sizeof(alphabet) - 1)];
            }

            frame(&in, type, payload, len);

            for (j = off + 8; j < in.len && j < end; j++) {
                if (in.data[j] == '\n') {
                    model_line(&want, type, &acc[type], max_line, "");

                } else {
                    text_add(&acc[type], &in.data[j], 1);
                }
            }
        }

        if (end < in.len) {
            in.len = end;
            text_add(&want, "T\n", 2);
        }

        for (type = 1; type <= 3; type++) {
            model_line(&want, type, &acc[type], max_line, "F");
        }

        cut.how = CUT_RANDOM;
        cut.n = 1 + check_random(30);
        run(&got, &in, max_line, &cut);

        if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
        {
            fprintf(stderr, "random stream %u:\n", iter);
            failed = 1;
        }
    }

    CHECK_MEM(got.data, got.len, want.data, want.len);

    parts_text = 0;

    text_free(&in);
    text_free(&want);
    text_free(&got);

    for (i = 0; i < 4; i++) {
        text_free(&acc[i]);
    }
}


int
main(void)
{
    size_t  i;

    test_recorded();
    test_interleaved();
    test_line_endings();
    test_oversize();
    test_bad_header();
    test_truncated();
    test_zero_size();
    test_nomem();
    test_model();

    for (i = 0; i < 4; i++) {
        text_free(&parts[i]);
    }

    return check_done("test_stream");
}
