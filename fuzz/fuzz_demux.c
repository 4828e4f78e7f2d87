
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the demultiplexer of Docker's attach stream
 * (ngx_http_perstack_demux_*).
 *
 * Input:
 *
 *     byte 0        max_line: 2 + b for b < 0x80 (small, so that long
 *                   lines are common), else 1000 + 100 * (b & 0x7f), so
 *                   that line buffers grow past their first allocation
 *     byte 1        k = 1 + byte % 16, the number of control bytes
 *     k bytes       control bytes, used in turn, one for each piece fed:
 *                   the low 6 bits are the piece's size (0: an empty call
 *                   first, then one byte; 63: all the rest), the high 2
 *                   bits how many calls are made before the caller stops
 *                   early (0: until AGAIN), keeping the unconsumed bytes
 *                   for the next piece, as the module does when its client
 *                   is busy
 *     the rest      the stream: frame headers and payloads
 *
 * Each piece is in a buffer of its own exact size, the unconsumed bytes
 * included, so that AddressSanitizer catches a read past "last" or of an
 * earlier piece.
 *
 * Checked, for each result:
 *   - a LINE is 1 to max_line bytes of stream 1, 2 or 3, without "\n";
 *   - a PIECE is a part of a line longer than max_line, without "\n":
 *     "first" is set exactly on the first part of a line of its stream
 *     (the bytes held: max_line, or max_line + 1, bytes), "last" exactly
 *     on its last (which may be empty; no other part is); between the two,
 *     no LINE of the same stream comes (other streams' results may);
 *   - after AGAIN, all the input was consumed; after ERROR, every later
 *     next() returns ERROR; no line buffer grows past max_line + 1 bytes;
 *   - flush() ends each stream's last line, a LINE or its last PIECEs,
 *     and then nothing is left open.
 * And, beyond those, the whole sequence of results equals that of a
 * simple reference demultiplexer, which reads the whole stream at once and
 * keeps each line whole: the same LINEs byte for byte, each long line's
 * parts joined equal to the reference's line byte for byte (compared when
 * its last part comes), the same ERROR and truncated(); so the pieces the
 * stream comes in, and where the caller stops, never change what it
 * yields.
 *
 * A line, whole or joined, may end with "\r" when it ended with "\r\r\n":
 * only one "\r" before the "\n" is part of the line ending, and a bare
 * "\r" inside a line is kept (see the header).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_stream.h"
#include "fuzz.h"


#define REF_LINE      NGX_HTTP_PERSTACK_DEMUX_LINE
/* a line longer than max_line: its parts, joined */
#define REF_LONG      NGX_HTTP_PERSTACK_DEMUX_PIECE
#define REF_ERROR     NGX_HTTP_PERSTACK_DEMUX_ERROR


typedef struct {
    int                          rc;
    unsigned                     stream;
    size_t                       len;
    /* of a line's bytes in ref_t.text */
    size_t                       off;
} ref_event_t;


typedef struct {
    ref_event_t                 *events;
    size_t                       nevents;
    /* the events of next(); those of flush() follow */
    size_t                       nnext;
    u_char                      *text;
    size_t                       text_len;
    int                          truncated;
} ref_t;


typedef struct {
    ngx_http_perstack_demux_t    d;
    size_t                       max_line;
    const ref_t                 *ref;
    /* the next reference event to compare with */
    size_t                       next_event;
    int                          error;
    /* the bytes given and not consumed yet, in their own allocation */
    u_char                      *in;
    size_t                       in_len;
    /* each stream's long line: its parts so far, joined */
    u_char                      *parts[4];
    size_t                       parts_len[4];
    size_t                       parts_size[4];
    /* a first part came, its last did not yet */
    unsigned                     open[4];
} run_t;


static void ref_demux(const u_char *p, size_t n, size_t max_line, ref_t *ref);
static void ref_line(ref_t *ref, unsigned stream, const u_char *data,
    size_t len, size_t max_line);
static void run_piece(run_t *run, const u_char *p, size_t n, unsigned calls);
static void run_result(run_t *run, ngx_http_perstack_demux_rc_e rc,
    const ngx_http_perstack_line_t *line);
static void run_part(run_t *run, const ngx_http_perstack_line_t *line);
static void run_bounded(run_t *run);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                         max_line, nctl, off, n, i;
    unsigned                       guard;
    const u_char                  *ctl, *stream;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_rc_e   rc;
    ref_t                          ref;
    run_t                          run;

    if (size < 2) {
        return 0;
    }

    max_line = data[0] < 0x80 ? 2 + (size_t) data[0]
                              : 1000 + 100 * (size_t) (data[0] & 0x7f);
    nctl = 1 + data[1] % 16;

    if (size < 2 + nctl) {
        return 0;
    }

    ctl = data + 2;
    stream = data + 2 + nctl;
    size -= 2 + nctl;

    ref_demux(stream, size, max_line, &ref);

    memset(&run, 0, sizeof(run_t));
    ngx_http_perstack_demux_init(&run.d, max_line);
    run.max_line = max_line;
    run.ref = &ref;

    off = 0;

    for (i = 0; off < size; i++) {
        n = ctl[i % nctl] & 0x3f;

        if (n == 0) {
            run_piece(&run, NULL, 0, ctl[i % nctl] >> 6);
            n = 1;

        } else if (n == 0x3f || n > size - off) {
            n = size - off;
        }

        run_piece(&run, stream + off, n, ctl[i % nctl] >> 6);
        off += n;
    }

    /* no more input: the caller goes on until AGAIN */

    run_piece(&run, NULL, 0, 0);

    if (run.error) {
        /* still an error, however often asked */
        run_piece(&run, NULL, 0, 0);
    }

    FUZZ_CHECK(run.next_event == ref.nnext);
    FUZZ_CHECK(ngx_http_perstack_demux_truncated(&run.d) == ref.truncated);

    /* for each stream, a LINE, or at most the two parts that end one */

    for (guard = 0; ; guard++) {
        FUZZ_CHECK(guard <= 6);

        rc = ngx_http_perstack_demux_flush(&run.d, &line);
        run_bounded(&run);

        if (rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            break;
        }

        FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_LINE
                   || rc == NGX_HTTP_PERSTACK_DEMUX_PIECE);

        run_result(&run, rc, &line);
    }

    FUZZ_CHECK(run.next_event == ref.nevents);

    /* every long line got its last part */

    for (i = 1; i < 4; i++) {
        FUZZ_CHECK(!run.open[i]);
    }

    /* everything was flushed: nothing comes a second time */

    FUZZ_CHECK(ngx_http_perstack_demux_flush(&run.d, &line)
               == NGX_HTTP_PERSTACK_DEMUX_AGAIN);

    ngx_http_perstack_demux_free(&run.d);

    free(run.in);

    for (i = 0; i < 4; i++) {
        free(run.parts[i]);
    }

    free(ref.events);
    free(ref.text);

    return 0;
}


/*
 * Appends [p, p + n) to the unconsumed bytes, and calls next() until AGAIN,
 * or "calls" times when that is not 0; keeps what was not consumed.
 */

static void
run_piece(run_t *run, const u_char *p, size_t n, unsigned calls)
{
    u_char                        *in;
    unsigned                       i;
    const u_char                  *pos, *last, *prev;
    ngx_http_perstack_line_t       line;
    ngx_http_perstack_demux_rc_e   rc;

    in = malloc(run->in_len + n ? run->in_len + n : 1);
    if (in == NULL) {
        abort();
    }

    if (run->in_len) {
        memcpy(in, run->in, run->in_len);
    }

    if (n) {
        memcpy(in + run->in_len, p, n);
    }

    free(run->in);
    run->in = in;
    run->in_len += n;

    pos = in;
    last = in + run->in_len;

    for (i = 0; calls == 0 || i < calls; i++) {
        prev = pos;

        rc = ngx_http_perstack_demux_next(&run->d, &pos, last, &line);

        FUZZ_CHECK(pos >= prev && pos <= last);
        run_bounded(run);

        if (run->error) {
            FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_ERROR);

            /* the module gives up on the stream: so do we */
            pos = last;
            break;
        }

        if (rc == NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            FUZZ_CHECK(pos == last);
            break;
        }

        FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_LINE
                   || rc == NGX_HTTP_PERSTACK_DEMUX_PIECE
                   || rc == NGX_HTTP_PERSTACK_DEMUX_ERROR);

        run_result(run, rc, &line);

        if (rc == NGX_HTTP_PERSTACK_DEMUX_ERROR) {
            run->error = 1;

            /* asked again at once, with the same input */
            prev = pos;
            rc = ngx_http_perstack_demux_next(&run->d, &pos, last, &line);
            FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_DEMUX_ERROR);
            FUZZ_CHECK(pos >= prev && pos <= last);

            pos = last;
            break;
        }
    }

    /* the unconsumed bytes move to the start of the buffer */

    run->in_len = last - pos;
    memmove(in, pos, run->in_len);
}


static void
run_result(run_t *run, ngx_http_perstack_demux_rc_e rc,
    const ngx_http_perstack_line_t *line)
{
    size_t              len;
    const u_char       *data;
    const ref_event_t  *ev;

    data = NULL;
    len = 0;

    if (rc == NGX_HTTP_PERSTACK_DEMUX_LINE) {
        FUZZ_CHECK(line->stream >= NGX_HTTP_PERSTACK_STDOUT
                   && line->stream <= NGX_HTTP_PERSTACK_SYSERR);
        FUZZ_CHECK(line->data != NULL);
        FUZZ_CHECK(line->len >= 1 && line->len <= run->max_line);
        FUZZ_CHECK(memchr(line->data, '\n', line->len) == NULL);

        /* not inside a long line of the same stream */
        FUZZ_CHECK(!run->open[line->stream]);

        data = line->data;
        len = line->len;

    } else if (rc == NGX_HTTP_PERSTACK_DEMUX_PIECE) {
        run_part(run, line);

        if (!line->last) {
            /* the line is compared when it is whole */
            return;
        }

        data = run->parts[line->stream];
        len = run->parts_len[line->stream];
    }

    FUZZ_CHECK(run->next_event < run->ref->nevents);

    ev = &run->ref->events[run->next_event++];

    if ((int) rc != ev->rc
        || (rc != NGX_HTTP_PERSTACK_DEMUX_ERROR
            && (line->stream != ev->stream || len != ev->len
                || memcmp(data, run->ref->text + ev->off, len) != 0)))
    {
        fprintf(stderr, "result %lu: rc %d stream %u len %lu, "
                "the reference has rc %d stream %u len %lu\n",
                (unsigned long) run->next_event - 1, (int) rc,
                rc == NGX_HTTP_PERSTACK_DEMUX_ERROR ? 0 : line->stream,
                (unsigned long) len, ev->rc, ev->stream,
                (unsigned long) ev->len);

        if (rc != NGX_HTTP_PERSTACK_DEMUX_ERROR) {
            fuzz_print(rc == NGX_HTTP_PERSTACK_DEMUX_LINE ? "line"
                                                          : "parts joined",
                       data, len);
        }

        if (ev->rc != REF_ERROR) {
            fuzz_print("reference", run->ref->text + ev->off, ev->len);
        }

        FUZZ_CHECK(!"the same result as the reference");
    }
}


/* a part of a long line: checked, and joined to the parts before it */

static void
run_part(run_t *run, const ngx_http_perstack_line_t *line)
{
    size_t     size;
    u_char    *p;
    unsigned   s;

    s = line->stream;

    FUZZ_CHECK(s >= NGX_HTTP_PERSTACK_STDOUT && s <= NGX_HTTP_PERSTACK_SYSERR);
    FUZZ_CHECK(line->len == 0 || line->data != NULL);
    FUZZ_CHECK(line->len == 0 || memchr(line->data, '\n', line->len) == NULL);

    if (line->first != !run->open[s]) {
        fprintf(stderr, "a part of stream %u: first %u, last %u, len %lu, "
                "%s\n", s, (unsigned) line->first, (unsigned) line->last,
                (unsigned long) line->len,
                run->open[s] ? "after a first part" : "with no first part");
        FUZZ_CHECK(!"first exactly on a line's first part");
    }

    if (line->first) {
        /* the bytes held: the buffer full, but for a "\r" held back */
        FUZZ_CHECK(line->len >= run->max_line
                   && line->len <= run->max_line + 1);

        run->open[s] = 1;
        run->parts_len[s] = 0;
    }

    /* only the last part may be empty */
    FUZZ_CHECK(line->last || line->len > 0);

    if (run->parts_len[s] + line->len > run->parts_size[s]) {
        size = 2 * (run->parts_len[s] + line->len);

        p = realloc(run->parts[s], size);
        if (p == NULL) {
            abort();
        }

        run->parts[s] = p;
        run->parts_size[s] = size;
    }

    if (line->len) {
        memcpy(run->parts[s] + run->parts_len[s], line->data, line->len);
        run->parts_len[s] += line->len;
    }

    if (line->last) {
        run->open[s] = 0;
    }
}


/* memory stays bounded: no line buffer past max_line + 1 bytes */

static void
run_bounded(run_t *run)
{
    unsigned  s;

    for (s = 0; s < 4; s++) {
        FUZZ_CHECK(run->d.lines[s].len <= run->d.lines[s].size);
        FUZZ_CHECK(run->d.lines[s].size <= run->max_line + 1);
    }
}


/*
 * The reference: frames parsed from the whole stream, one byte of payload
 * at a time, each stream's bytes collected until "\n", every line kept
 * whole, however long.
 */

static void
ref_demux(const u_char *p, size_t n, size_t max_line, ref_t *ref)
{
    size_t     i, frame_left, len[4];
    u_char    *buf[4];
    unsigned   s, stream;

    memset(ref, 0, sizeof(ref_t));

    /* at most one event for each byte, plus an error and three flushes */

    ref->events = malloc((n + 4) * sizeof(ref_event_t));
    ref->text = malloc(n + 1);

    for (s = 0; s < 4; s++) {
        buf[s] = malloc(n + 1);
        len[s] = 0;
    }

    if (ref->events == NULL || ref->text == NULL || buf[0] == NULL
        || buf[1] == NULL || buf[2] == NULL || buf[3] == NULL)
    {
        abort();
    }

    frame_left = 0;
    stream = 0;
    i = 0;

    while (i < n) {

        if (frame_left == 0) {
            if (n - i < NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE) {
                ref->truncated = 1;
                break;
            }

            if (p[i] < 1 || p[i] > 3
                || p[i + 1] != 0 || p[i + 2] != 0 || p[i + 3] != 0)
            {
                ref->events[ref->nevents++].rc = REF_ERROR;
                /* the header stays, unusable */
                ref->truncated = 1;
                break;
            }

            stream = p[i];
            frame_left = (size_t) p[i + 4] << 24 | (size_t) p[i + 5] << 16
                         | (size_t) p[i + 6] << 8 | p[i + 7];
            i += NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE;
            continue;
        }

        if (p[i] == '\n') {
            ref_line(ref, stream, buf[stream], len[stream], max_line);
            len[stream] = 0;

        } else {
            buf[stream][len[stream]++] = p[i];
        }

        frame_left--;
        i++;
    }

    if (frame_left != 0) {
        ref->truncated = 1;
    }

    ref->nnext = ref->nevents;

    for (s = 1; s <= 3; s++) {
        ref_line(ref, s, buf[s], len[s], max_line);
    }

    for (s = 0; s < 4; s++) {
        free(buf[s]);
    }
}


static void
ref_line(ref_t *ref, unsigned stream, const u_char *data, size_t len,
    size_t max_line)
{
    ref_event_t  *ev;

    if (len > 0 && data[len - 1] == '\r') {
        len--;
    }

    if (len == 0) {
        return;
    }

    ev = &ref->events[ref->nevents++];
    ev->stream = stream;
    ev->len = len;

    ev->rc = (len > max_line) ? REF_LONG : REF_LINE;
    ev->off = ref->text_len;
    memcpy(ref->text + ref->text_len, data, len);
    ref->text_len += len;
}
