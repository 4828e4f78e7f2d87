
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the Server-Sent Events writer
 * (ngx_http_perstack_sse_size(), ngx_http_perstack_sse_write()).
 *
 * Input:
 *
 *     byte 0        t = byte % 65, the number of type bytes
 *     8 bytes       the event id, big-endian (fewer: the id is shorter)
 *     t bytes       the type, of which only the bytes of [A-Za-z0-9_.:-]
 *                   are kept, as the module only writes such types
 *     the rest      the data
 *
 * Checked:
 *   - sse_size() is the length sse_write() writes, into a buffer of
 *     exactly that size;
 *   - the event holds no "\r" and ends with "\n\n";
 *   - read back as an EventSource client reads a stream (the WHATWG HTML
 *     standard's "interpreting an event stream": lines end at "\r\n",
 *     "\r" or "\n"; "field: value" with one space after the colon removed;
 *     a blank line dispatches), it is exactly one event, dispatched at its
 *     very end, with no comment and no field but one "id" (the id in
 *     decimal), one "event" (the type) when the type is not empty, and
 *     "data" lines, whose values joined by "\n" are the data with each of
 *     its "\r\n", "\r" and "\n" turned into "\n".
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_sse.h"
#include "fuzz.h"


static void read_event(const u_char *ev, size_t len, uint64_t id,
    const u_char *type, size_t type_len, const u_char *want,
    size_t want_len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t     t, i, n, type_len, len, ev_size, want_len;
    u_char     type[64], *body, *ev, *end, *want;
    uint64_t   id;

    if (size == 0) {
        return 0;
    }

    t = data[0] % 65;
    data++;
    size--;

    id = 0;
    n = size < 8 ? size : 8;

    for (i = 0; i < n; i++) {
        id = id << 8 | data[i];
    }

    data += n;
    size -= n;

    n = size < t ? size : t;
    type_len = 0;

    for (i = 0; i < n; i++) {
        if ((data[i] >= 'a' && data[i] <= 'z')
            || (data[i] >= 'A' && data[i] <= 'Z')
            || (data[i] >= '0' && data[i] <= '9')
            || data[i] == '_' || data[i] == '.' || data[i] == ':'
            || data[i] == '-')
        {
            type[type_len++] = data[i];
        }
    }

    data += n;
    size -= n;

    body = fuzz_dup(data, size);
    len = size;

    ev_size = ngx_http_perstack_sse_size(NULL, 0, id, type_len, body, len);

    ev = malloc(ev_size);
    if (ev == NULL) {
        abort();
    }

    end = ngx_http_perstack_sse_write(ev, NULL, 0, id, type, type_len, body,
                                      len);

    FUZZ_CHECK(end >= ev && (size_t) (end - ev) == ev_size);

    /* the data with its line breaks as a client reads them */

    want = malloc(len + 1);
    if (want == NULL) {
        abort();
    }

    want_len = 0;

    for (i = 0; i < len; i++) {
        if (body[i] == '\r') {
            if (i + 1 < len && body[i + 1] == '\n') {
                i++;
            }

            want[want_len++] = '\n';

        } else {
            want[want_len++] = body[i];
        }
    }

    read_event(ev, ev_size, id, type, type_len, want, want_len);

    free(ev);

    /*
     * NDJSON: the size is what is written, and the line is the data with
     * "\"position\":<id>" and at most a comma after its first "{"
     */

    ev_size = ngx_http_perstack_ndjson_size(id, body, len);

    ev = malloc(ev_size + 1);
    if (ev == NULL) {
        abort();
    }

    end = ngx_http_perstack_ndjson_write(ev, id, body, len);

    FUZZ_CHECK(end >= ev && (size_t) (end - ev) == ev_size);
    FUZZ_CHECK(ev_size >= len && ev_size <= len + 32);
    FUZZ_CHECK(memchr(body, '{', len) != NULL || ev_size == len);

    free(want);
    free(ev);
    free(body);

    return 0;
}


static void
read_event(const u_char *ev, size_t len, uint64_t id, const u_char *type,
    size_t type_len, const u_char *want, size_t want_len)
{
    int            dispatched, nid, nevent;
    char           digits[32];
    size_t         i, data_len, name_len, value_len, line_len;
    u_char        *buf;
    const u_char  *line, *colon, *value;

    FUZZ_CHECK(memchr(ev, '\r', len) == NULL);
    FUZZ_CHECK(len >= 2 && ev[len - 2] == '\n' && ev[len - 1] == '\n');

    snprintf(digits, sizeof(digits), "%llu", (unsigned long long) id);

    /* the data buffer: never longer than the event */

    buf = malloc(len);
    if (buf == NULL) {
        abort();
    }

    data_len = 0;
    dispatched = 0;
    nid = 0;
    nevent = 0;

    i = 0;

    while (i < len) {
        FUZZ_CHECK(!dispatched);

        line = ev + i;

        while (i < len && ev[i] != '\r' && ev[i] != '\n') {
            i++;
        }

        /* a line without its end is not read: the event would not end */

        FUZZ_CHECK(i < len);

        line_len = ev + i - line;

        if (ev[i] == '\r' && i + 1 < len && ev[i + 1] == '\n') {
            i++;
        }

        i++;

        if (line_len == 0) {
            dispatched = 1;
            continue;
        }

        /* a comment: not in an event */

        FUZZ_CHECK(line[0] != ':');

        colon = memchr(line, ':', line_len);

        if (colon != NULL) {
            name_len = colon - line;
            value = colon + 1;

            if (value < line + line_len && *value == ' ') {
                value++;
            }

            value_len = line + line_len - value;

        } else {
            name_len = line_len;
            value = line + line_len;
            value_len = 0;
        }

        if (name_len == 2 && memcmp(line, "id", 2) == 0) {
            FUZZ_CHECK(nid++ == 0 && data_len == 0 && nevent == 0);
            FUZZ_CHECK(value_len == strlen(digits)
                       && memcmp(value, digits, value_len) == 0);

        } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
            FUZZ_CHECK(nevent++ == 0 && data_len == 0);
            FUZZ_CHECK(value_len == type_len
                       && memcmp(value, type, value_len) == 0);

        } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
            memcpy(buf + data_len, value, value_len);
            data_len += value_len;
            buf[data_len++] = '\n';

        } else {
            fuzz_print("event", ev, len);
            FUZZ_CHECK(!"only the fields id, event and data");
        }
    }

    FUZZ_CHECK(dispatched);
    FUZZ_CHECK(nid == 1);
    FUZZ_CHECK(nevent == (type_len != 0));

    /* the client drops the last "\n" of the data buffer */

    FUZZ_CHECK(data_len > 0);
    data_len--;

    if (data_len != want_len || memcmp(buf, want, want_len) != 0) {
        fuzz_print("event", ev, len);
        fuzz_print("data read", buf, data_len);
        fuzz_print("data wanted", want, want_len);
        FUZZ_CHECK(!"the client reads the data back");
    }

    free(buf);
}
