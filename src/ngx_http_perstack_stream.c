/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_http_perstack_stream.h"


#define NGX_HTTP_PERSTACK_LINE_INITIAL_SIZE  1024


static ngx_http_perstack_demux_rc_e ngx_http_perstack_demux_add(
    ngx_http_perstack_demux_t *d, unsigned stream, const u_char *p, size_t n,
    int end, size_t *used, ngx_http_perstack_line_t *line);
static ngx_http_perstack_demux_rc_e ngx_http_perstack_demux_part(
    ngx_http_perstack_demux_t *d, unsigned stream, int end,
    ngx_http_perstack_line_t *line);
static ngx_http_perstack_demux_rc_e ngx_http_perstack_demux_held(
    ngx_http_perstack_demux_t *d, unsigned stream,
    ngx_http_perstack_line_t *line);
static int ngx_http_perstack_demux_append(ngx_http_perstack_linebuf_t *lb,
    const u_char *p, size_t n, size_t max_size);
static void ngx_http_perstack_demux_release(ngx_http_perstack_demux_t *d);


#define NGX_HTTP_PERSTACK_PART_MIN  16384

#define ngx_http_perstack_max(a, b)  ((a) > (b) ? (a) : (b))


static const u_char  ngx_http_perstack_empty[] = "";


void
ngx_http_perstack_demux_init(ngx_http_perstack_demux_t *d, size_t max_line)
{
    memset(d, 0, sizeof(ngx_http_perstack_demux_t));
    d->max_line = max_line;
}


ngx_http_perstack_demux_rc_e
ngx_http_perstack_demux_next(ngx_http_perstack_demux_t *d, const u_char **pos,
    const u_char *last, ngx_http_perstack_line_t *line)
{
    size_t                         n, chunk, used;
    const u_char                  *p, *h, *nl;
    ngx_http_perstack_linebuf_t   *lb;
    ngx_http_perstack_demux_rc_e   rc;

    ngx_http_perstack_demux_release(d);

    p = *pos;

    for ( ;; ) {

        if (d->frame_left == 0) {

            /* between frames: collect a header, which may arrive split */

            if (d->header_len < NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE) {
                n = NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE - d->header_len;
                if (n > (size_t) (last - p)) {
                    n = last - p;
                }

                memcpy(d->header + d->header_len, p, n);
                d->header_len += n;
                p += n;

                if (d->header_len < NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE) {
                    *pos = p;
                    return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
                }
            }

            h = d->header;

            if (h[0] < NGX_HTTP_PERSTACK_STDOUT
                || h[0] > NGX_HTTP_PERSTACK_SYSERR
                || h[1] != 0 || h[2] != 0 || h[3] != 0)
            {
                /*
                 * header_len stays full, so that every later call returns
                 * the error again instead of parsing garbage as frames
                 */
                *pos = p;
                return NGX_HTTP_PERSTACK_DEMUX_ERROR;
            }

            d->stream = h[0];
            d->frame_left = (size_t) h[4] << 24 | (size_t) h[5] << 16
                            | (size_t) h[6] << 8 | (size_t) h[7];
            d->header_len = 0;

            /* a zero-size frame leaves frame_left at 0: the next header */
            continue;
        }

        if (p == last) {
            *pos = p;
            return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
        }

        lb = &d->lines[d->stream];

        if (lb->cr) {
            /*
             * The byte after a part's last "\r" decides what it was.  The
             * buffer was released with the part: it has room.
             */
            lb->cr = 0;

            if (*p != '\n') {
                (void) ngx_http_perstack_demux_append(lb, (u_char *) "\r", 1,
                                                      d->max_line + 1);
            }
        }

        n = d->frame_left;
        if (n > (size_t) (last - p)) {
            n = last - p;
        }

        nl = memchr(p, '\n', n);
        chunk = (nl != NULL) ? (size_t) (nl - p) : n;

        rc = ngx_http_perstack_demux_add(d, d->stream, p, chunk, nl != NULL,
                                         &used, line);

        if (rc == NGX_HTTP_PERSTACK_DEMUX_NOMEM) {
            /* nothing was consumed: the same call may be retried */
            *pos = p;
            return rc;
        }

        if (used == chunk && nl != NULL) {
            used++;
        }

        p += used;
        d->frame_left -= used;

        if (rc != NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            *pos = p;
            return rc;
        }
    }
}


ngx_http_perstack_demux_rc_e
ngx_http_perstack_demux_flush(ngx_http_perstack_demux_t *d,
    ngx_http_perstack_line_t *line)
{
    size_t                         used;
    unsigned                       stream;
    ngx_http_perstack_linebuf_t   *lb;
    ngx_http_perstack_demux_rc_e   rc;

    ngx_http_perstack_demux_release(d);

    for (stream = NGX_HTTP_PERSTACK_STDOUT;
         stream <= NGX_HTTP_PERSTACK_SYSERR;
         stream++)
    {
        lb = &d->lines[stream];

        if (lb->passing) {
            /* a long line without its "\n": what is gathered ends it */
            lb->cr = 0;
            return ngx_http_perstack_demux_part(d, stream, 1, line);
        }

        if (lb->len == 0) {
            continue;
        }

        rc = ngx_http_perstack_demux_add(d, stream, NULL, 0, 1, &used, line);

        if (rc != NGX_HTTP_PERSTACK_DEMUX_AGAIN) {
            return rc;
        }
    }

    return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
}


int
ngx_http_perstack_demux_truncated(ngx_http_perstack_demux_t *d)
{
    return d->header_len != 0 || d->frame_left != 0;
}


void
ngx_http_perstack_demux_free(ngx_http_perstack_demux_t *d)
{
    unsigned  i;

    for (i = 0; i < sizeof(d->lines) / sizeof(d->lines[0]); i++) {
        free(d->lines[i].data);
        memset(&d->lines[i], 0, sizeof(ngx_http_perstack_linebuf_t));
    }

    d->pending = 0;
}


/*
 * Adds [p, p + n) to the partial line of a stream; "end" means that a "\n"
 * follows.  *used tells how much of it was taken.  Returns AGAIN while no
 * line or part is complete, and for an empty line.
 *
 * A line up to max_line bytes is held, plus one byte for a "\r" that may
 * turn out to precede the "\n".  A line that does not fit becomes parts:
 * the bytes held, with as much of the input as fills the buffer, are the
 * first; the rest is gathered in the same buffer into parts of
 * NGX_HTTP_PERSTACK_PART_MIN to max_line bytes, the last ending with the
 * line.  A "\r" that ends a part is held back (lb->cr) until the next byte
 * shows whether it ends the line.
 */

static ngx_http_perstack_demux_rc_e
ngx_http_perstack_demux_add(ngx_http_perstack_demux_t *d, unsigned stream,
    const u_char *p, size_t n, int end, size_t *used,
    ngx_http_perstack_line_t *line)
{
    size_t                        len, room;
    const u_char                 *data;
    ngx_http_perstack_linebuf_t  *lb;

    lb = &d->lines[stream];

    line->stream = stream;
    line->first = 0;
    line->last = 0;

    if (lb->passing) {
        /*
         * Parts other than the first are gathered up to
         * NGX_HTTP_PERSTACK_PART_MIN bytes, so that a container that
         * writes a byte at a time does not make a part, and an event
         * slice, of each byte; and they are at most max_line bytes.
         */

        room = ngx_http_perstack_max(d->max_line, 1) - lb->len;

        if (n > room) {
            n = room;
            end = 0;
        }

        *used = n;

        if (ngx_http_perstack_demux_append(lb, p, n, d->max_line + 1) != 0) {
            return NGX_HTTP_PERSTACK_DEMUX_NOMEM;
        }

        if (!end && lb->len < NGX_HTTP_PERSTACK_PART_MIN && n < room) {
            return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
        }

        return ngx_http_perstack_demux_part(d, stream, end, line);
    }

    *used = n;

    if (lb->len + n > d->max_line + 1) {
        /* the line does not fit: what does is the first part */

        *used = d->max_line + 1 - lb->len;

        if (ngx_http_perstack_demux_append(lb, p, *used, d->max_line + 1)
            != 0)
        {
            return NGX_HTTP_PERSTACK_DEMUX_NOMEM;
        }

        lb->whole = 0;

        return ngx_http_perstack_demux_held(d, stream, line);
    }

    if (end && lb->len == 0) {
        /*
         * the whole line is in the input, which the caller keeps until
         * its next call: no copy
         */
        data = p;
        len = n;

    } else {
        if (ngx_http_perstack_demux_append(lb, p, n, d->max_line + 1) != 0) {
            return NGX_HTTP_PERSTACK_DEMUX_NOMEM;
        }

        if (!end) {
            return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
        }

        data = lb->data;
        len = lb->len;
    }

    if (len > 0 && data[len - 1] == '\r') {
        len--;
    }

    if (len == 0) {
        lb->len = 0;
        return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
    }

    if (len > d->max_line) {
        /* max_line + 1 bytes and its end: one part, the first and last */

        if (lb->len == 0
            && ngx_http_perstack_demux_append(lb, p, n, d->max_line + 1)
               != 0)
        {
            return NGX_HTTP_PERSTACK_DEMUX_NOMEM;
        }

        lb->whole = 1;

        return ngx_http_perstack_demux_held(d, stream, line);
    }

    line->data = data;
    line->len = len;
    d->pending = stream;

    return NGX_HTTP_PERSTACK_DEMUX_LINE;
}


/* the bytes gathered of a long line, after its first part */

static ngx_http_perstack_demux_rc_e
ngx_http_perstack_demux_part(ngx_http_perstack_demux_t *d, unsigned stream,
    int end, ngx_http_perstack_line_t *line)
{
    size_t                        len;
    ngx_http_perstack_linebuf_t  *lb;

    lb = &d->lines[stream];

    len = lb->len;

    if (len > 0 && lb->data[len - 1] == '\r') {
        len--;

        if (!end) {
            lb->cr = 1;
        }
    }

    if (end) {
        lb->passing = 0;

    } else if (len == 0) {
        lb->len = 0;
        return NGX_HTTP_PERSTACK_DEMUX_AGAIN;
    }

    line->stream = stream;
    line->first = 0;
    line->last = end;
    line->data = (len > 0) ? lb->data : ngx_http_perstack_empty;
    line->len = len;

    d->pending = stream;

    return NGX_HTTP_PERSTACK_DEMUX_PIECE;
}


/* the bytes held for a line that does not fit: its first part */

static ngx_http_perstack_demux_rc_e
ngx_http_perstack_demux_held(ngx_http_perstack_demux_t *d, unsigned stream,
    ngx_http_perstack_line_t *line)
{
    size_t                        len;
    ngx_http_perstack_linebuf_t  *lb;

    lb = &d->lines[stream];

    len = lb->len;

    if (lb->whole) {
        if (lb->data[len - 1] == '\r') {
            len--;
        }

    } else {
        lb->passing = 1;

        if (lb->data[len - 1] == '\r') {
            len--;
            lb->cr = 1;
        }
    }

    line->stream = stream;
    line->first = 1;
    line->last = lb->whole;
    line->data = lb->data;
    line->len = len;

    lb->whole = 0;
    d->pending = stream;

    return NGX_HTTP_PERSTACK_DEMUX_PIECE;
}


static int
ngx_http_perstack_demux_append(ngx_http_perstack_linebuf_t *lb,
    const u_char *p, size_t n, size_t max_size)
{
    size_t   size;
    u_char  *data;

    if (n == 0) {
        return 0;
    }

    if (lb->len + n > lb->size) {
        size = lb->size;

        if (size == 0) {
            size = NGX_HTTP_PERSTACK_LINE_INITIAL_SIZE;
        }

        while (size < lb->len + n) {
            size *= 2;
        }

        if (size > max_size) {
            size = max_size;
        }

        data = realloc(lb->data, size);
        if (data == NULL) {
            return -1;
        }

        lb->data = data;
        lb->size = size;
    }

    memcpy(lb->data + lb->len, p, n);
    lb->len += n;

    return 0;
}


/* the line or part returned last time is no longer needed */

static void
ngx_http_perstack_demux_release(ngx_http_perstack_demux_t *d)
{
    if (d->pending) {
        d->lines[d->pending].len = 0;
        d->pending = 0;
    }
}
