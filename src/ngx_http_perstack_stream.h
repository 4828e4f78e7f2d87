
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Docker's multiplexed attach stream, turned into lines.
 *
 * With Tty:false, the Engine API sends stdout and stderr as frames:
 * an 8-byte header { type, 0, 0, 0, size (uint32, big-endian) } followed
 * by "size" bytes of payload.  Frame boundaries have nothing to do with
 * line boundaries, and stdout and stderr frames interleave, so each stream
 * keeps its own partial line.
 *
 * This file depends on the C library only, so that it can be unit tested
 * and fuzzed without nginx.
 */


#ifndef _NGX_HTTP_PERSTACK_STREAM_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_STREAM_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_PERSTACK_STDOUT      1
#define NGX_HTTP_PERSTACK_STDERR      2
#define NGX_HTTP_PERSTACK_SYSERR      3

#define NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE  8


typedef enum {
    /* all the input given was consumed: feed more */
    NGX_HTTP_PERSTACK_DEMUX_AGAIN = 0,
    /* line->data, line->len hold one complete line of line->stream */
    NGX_HTTP_PERSTACK_DEMUX_LINE,
    /*
     * A part of a line longer than max_line, in order: line->first for the
     * first part (the max_line + 1 bytes held), line->last for the last
     * one (which may be empty); the others are at most max_line bytes.  The line's "\n", and a "\r"
     * before it, are in no part.
     */
    NGX_HTTP_PERSTACK_DEMUX_PIECE,
    /* a frame header is not one Docker sends: the stream cannot be trusted */
    NGX_HTTP_PERSTACK_DEMUX_ERROR,
    /* memory allocation failed */
    NGX_HTTP_PERSTACK_DEMUX_NOMEM
} ngx_http_perstack_demux_rc_e;


typedef struct {
    u_char                      *data;
    size_t                       len;
    size_t                       size;
    /* a line longer than max_line is being passed on in parts */
    unsigned                     passing:1;
    /* the line held is whole: its part is the first and the last */
    unsigned                     whole:1;
    /* a "\r" ended the last part: it is passed on unless a "\n" follows */
    unsigned                     cr:1;
} ngx_http_perstack_linebuf_t;


typedef struct {
    u_char                       header[NGX_HTTP_PERSTACK_FRAME_HEADER_SIZE];
    size_t                       header_len;
    size_t                       frame_left;
    unsigned                     stream;

    size_t                       max_line;

    /* indexed by stream type: 1 stdout, 2 stderr, 3 daemon error */
    ngx_http_perstack_linebuf_t  lines[4];

    /* a line or part returned last time, released on the next call */
    unsigned                     pending;
} ngx_http_perstack_demux_t;


typedef struct {
    unsigned                     stream;
    unsigned                     first:1;
    unsigned                     last:1;
    const u_char                *data;
    size_t                       len;
} ngx_http_perstack_line_t;


/*
 * max_line: the longest line held whole, without its line ending.  Line
 * buffers start small and grow to at most max_line + 1 bytes; a longer
 * line is returned in parts, the first from that buffer and the others
 * straight from the input, so that no line is too long to pass.
 */
void ngx_http_perstack_demux_init(ngx_http_perstack_demux_t *d,
    size_t max_line);

/*
 * Consumes bytes from [*pos, last) until one line or part is complete,
 * and returns it; *pos is advanced past what was consumed.  A returned
 * line excludes its "\n" and a "\r" before it; it stays valid until the
 * next call on d.  Empty lines are skipped.  Call again with the same *pos
 * and last until it returns NGX_HTTP_PERSTACK_DEMUX_AGAIN.
 */
ngx_http_perstack_demux_rc_e ngx_http_perstack_demux_next(
    ngx_http_perstack_demux_t *d, const u_char **pos, const u_char *last,
    ngx_http_perstack_line_t *line);

/*
 * At the end of the stream: returns what is left of each stream's last,
 * unterminated line (a LINE, or the PIECEs that end a long one), one per
 * call, then AGAIN.  A frame cut short is not an error here: its payload
 * so far is part of a line.
 */
ngx_http_perstack_demux_rc_e ngx_http_perstack_demux_flush(
    ngx_http_perstack_demux_t *d, ngx_http_perstack_line_t *line);

/* non-zero when the stream ended inside a frame header or payload */
int ngx_http_perstack_demux_truncated(ngx_http_perstack_demux_t *d);

void ngx_http_perstack_demux_free(ngx_http_perstack_demux_t *d);


#endif /* _NGX_HTTP_PERSTACK_STREAM_H_INCLUDED_ */
