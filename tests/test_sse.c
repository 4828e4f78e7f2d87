/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Unit tests of the Server-Sent Events writer.
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_sse.h"
#include "check.h"


#define SSE(id, type, data, want)                                             \
    sse_is(id, type, sizeof(type) - 1, data, sizeof(data) - 1, want,          \
           sizeof(want) - 1, __LINE__)


/* the size, then the bytes written into a buffer of exactly that size */

static void
sse_is(uint64_t id, const char *type, size_t type_len, const char *data,
    size_t len, const char *want, size_t want_len, int line)
{
    size_t   size;
    u_char  *buf, *end;

    size = ngx_http_perstack_sse_size(NULL, 0, id, type_len,
                                      (const u_char *) data, len);

    check_uint(size, want_len, __FILE__, line, "size");

    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    end = ngx_http_perstack_sse_write(buf, NULL, 0, id,
                                      (const u_char *) type, type_len,
                                      (const u_char *) data, len);

    check_mem(buf, end - buf, want, want_len, __FILE__, line, "event");

    free(buf);
}


static void
test_events(void)
{
    SSE(1, "message", "{\"a\":1}",
        "id: 1\n"
        "event: message\n"
        "data: {\"a\":1}\n"
        "\n");

    SSE(0, "", "x",
        "id: 0\n"
        "data: x\n"
        "\n");

    SSE(18446744073709551615ULL, "t", "x",
        "id: 18446744073709551615\n"
        "event: t\n"
        "data: x\n"
        "\n");

    SSE(1234567890, "tool.call", "data: x",
        "id: 1234567890\n"
        "event: tool.call\n"
        "data: data: x\n"
        "\n");

    SSE(3, "", "a\0b",
        "id: 3\n"
        "data: a\0b\n"
        "\n");

    /* an empty payload is still one data line */

    SSE(10, "", "",
        "id: 10\n"
        "data: \n"
        "\n");

    SSE(7, "e", "",
        "id: 7\n"
        "event: e\n"
        "data: \n"
        "\n");
}


static void
test_lines(void)
{
    SSE(1, "", "a\nb", "id: 1\ndata: a\ndata: b\n\n");
    SSE(1, "", "a\rb", "id: 1\ndata: a\ndata: b\n\n");
    SSE(1, "", "a\r\nb", "id: 1\ndata: a\ndata: b\n\n");
    SSE(1, "", "a\n\rb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
    SSE(1, "", "a\r\r\nb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
    SSE(1, "", "a\n\nb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
    SSE(1, "", "a\n", "id: 1\ndata: a\ndata: \n\n");
    SSE(1, "", "\na", "id: 1\ndata: \ndata: a\n\n");
    SSE(1, "", "\n", "id: 1\ndata: \ndata: \n\n");
    SSE(1, "", "\r", "id: 1\ndata: \ndata: \n\n");
    SSE(1, "", "\r\n", "id: 1\ndata: \ndata: \n\n");
    SSE(1, "", "\n\n", "id: 1\ndata: \ndata: \ndata: \n\n");
    SSE(1, "", "\n\r", "id: 1\ndata: \ndata: \ndata: \n\n");
    SSE(1, "", "x\r\n\r\ny", "id: 1\ndata: x\ndata: \ndata: y\n\n");
}


/*
 * An EventSource client as the HTML standard describes it, for one event:
 * lines end at "\r\n", "\r" or "\n"; an empty line dispatches the event.
 * Returns 0 when the input is exactly one event.
 */

static int
parse_event(const u_char *p, size_t len, char *id, char *type,
    u_char *data, size_t *data_len)
{
    size_t         n, name_len;
    const u_char  *last, *eol, *value;

    last = p + len;
    id[0] = '\0';
    type[0] = '\0';
    *data_len = 0;

    while (p < last) {

        for (eol = p; eol < last && *eol != '\r' && *eol != '\n'; eol++) {
            /* void */
        }

        if (eol == last) {
            return -1;
        }

        if (eol == p) {
            /* the blank line: it must be the end */

            if (*data_len > 0) {
                (*data_len)--;
            }

            return (p + 1 == last) ? 0 : -1;
        }

        for (value = p; value < eol && *value != ':'; value++) {
            /* void */
        }

        name_len = value - p;

        if (value < eol) {
            value++;

            if (value < eol && *value == ' ') {
                value++;
            }
        }

        n = eol - value;

        if (name_len == 4 && memcmp(p, "data", 4) == 0) {
            memcpy(data + *data_len, value, n);
            *data_len += n;
            data[(*data_len)++] = '\n';

        } else if (name_len == 2 && memcmp(p, "id", 2) == 0 && n < 32) {
            memcpy(id, value, n);
            id[n] = '\0';

        } else if (name_len == 5 && memcmp(p, "event", 5) == 0 && n < 32) {
            memcpy(type, value, n);
            type[n] = '\0';

        } else {
            return -1;
        }

        p = eol + 1;

        if (*eol == '\r' && p < last && *p == '\n') {
            p++;
        }
    }

    return -1;
}


/* random payloads: the size is exact, and a client gets the payload back */

static void
test_random(void)
{
    char       id_text[32], id[32], type[32];
    size_t     len, size, i, n, data_len, want_len;
    u_char    *buf, *end;
    u_char     data[64], want[64], got[200];
    unsigned   iter, bad_size, bad_event;
    uint64_t   event_id;

    static const char  alphabet[] = "ab:\r\n\0\xff ";

    bad_size = 0;
    bad_event = 0;

    check_seed(42);

    for (iter = 0; iter < 5000; iter++) {
        len = check_random(sizeof(data) + 1);

        for (i = 0; i < len; i++) {
            data[i] = alphabet[check_random(sizeof(alphabet) - 1)];
        }

        event_id = (uint64_t) check_random(1000000)
                   << (check_random(4) * 16);
        n = (iter % 2) ? 0 : 1 + check_random(8);

        size = ngx_http_perstack_sse_size(NULL, 0, event_id, n, data, len);

        buf = malloc(size);
        if (buf == NULL) {
            abort();
        }

        end = ngx_http_perstack_sse_write(buf, NULL, 0, event_id,
                                          (const u_char *) "abcdefgh", n,
                                          data, len);

        if ((size_t) (end - buf) != size) {
            bad_size++;
        }

        /* what a client should get: "\r\n" and "\r" become "\n" */

        want_len = 0;

        for (i = 0; i < len; i++) {
            if (data[i] == '\r') {
                want[want_len++] = '\n';

                if (i + 1 < len && data[i + 1] == '\n') {
                    i++;
                }

            } else {
                want[want_len++] = data[i];
            }
        }

        snprintf(id_text, sizeof(id_text), "%llu",
                 (unsigned long long) event_id);

        if (parse_event(buf, end - buf, id, type, got, &data_len) != 0
            || strcmp(id, id_text) != 0
            || strlen(type) != n
            || memcmp(type, "abcdefgh", n) != 0
            || data_len != want_len
            || memcmp(got, want, want_len) != 0)
        {
            if (bad_event++ == 0) {
                check_print("event", buf, end - buf);
                check_print("payload", data, len);
            }
        }

        free(buf);
    }

    CHECK_UINT(bad_size, 0);
    CHECK_UINT(bad_event, 0);
}


/* an id that names the stream and the position in it */

static void
test_stream(void)
{
    size_t         size;
    u_char        *end, buf[128];
    const u_char  *stream = (const u_char *) "0123abcd";

    size = ngx_http_perstack_sse_size(stream, 8, 17, 1,
                                      (const u_char *) "{}", 2);
    end = ngx_http_perstack_sse_write(buf, stream, 8, 17,
                                      (const u_char *) "x", 1,
                                      (const u_char *) "{}", 2);

    CHECK_UINT(size, (size_t) (end - buf));
    CHECK_MEM(buf, end - buf, "id: 0123abcd-17\nevent: x\ndata: {}\n\n",
              sizeof("id: 0123abcd-17\nevent: x\ndata: {}\n\n") - 1);

    size = ngx_http_perstack_sse_open_size(stream, 8, 9);
    end = ngx_http_perstack_sse_open(buf, stream, 8, 9);

    CHECK_UINT(size, (size_t) (end - buf));
    CHECK_MEM(buf, end - buf, "id: 0123abcd-9\ndata: ",
              sizeof("id: 0123abcd-9\ndata: ") - 1);
}


/* NDJSON: the position as the object's first member */

static void
ndjson_is(uint64_t position, const char *data, const char *want, int line)
{
    size_t   size;
    u_char  *end, buf[256];

    size = ngx_http_perstack_ndjson_size(position, (const u_char *) data,
                                         strlen(data));
    end = ngx_http_perstack_ndjson_write(buf, position, (const u_char *) data,
                                         strlen(data));

    check_uint(size, (size_t) (end - buf), __FILE__, line, "size");
    check_mem(buf, end - buf, want, strlen(want), __FILE__, line, "line");
}


static void
test_ndjson(void)
{
    ndjson_is(1, "{\"type\":\"x\"}", "{\"position\":1,\"type\":\"x\"}",
              __LINE__);
    ndjson_is(1234567, "  { \"a\":1}", "  {\"position\":1234567, \"a\":1}",
              __LINE__);
    ndjson_is(5, "{}", "{\"position\":5}", __LINE__);
    ndjson_is(5, "{ \t}", "{\"position\":5 \t}", __LINE__);
    /* a long line's first part: more of the object follows */
    ndjson_is(6, "{   ", "{\"position\":6,   ", __LINE__);
    ndjson_is(7, "not json", "not json", __LINE__);
    ndjson_is(0, "{\"b\":[]}", "{\"position\":0,\"b\":[]}", __LINE__);
}


int
main(void)
{
    test_events();
    test_stream();
    test_ndjson();
    test_lines();
    test_random();

    return check_done("test_sse");
}
