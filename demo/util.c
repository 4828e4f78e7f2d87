/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, the plumbing: output (each line one write(2), errors on
 * stderr as "perstack: ..."), growing buffers, JSON string escaping, time, ids,
 * numbers, reading a file.
 */


#include "demo.h"


static size_t demo_utf8_len(const unsigned char *p, size_t avail);
static uint64_t demo_mix(uint64_t x);


/* low level output */

int
demo_write_all(int fd, const char *p, size_t n)
{
    ssize_t  k;

    while (n > 0) {
        k = write(fd, p, n);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        p += k;
        n -= (size_t) k;
    }

    return 0;
}


void
demo_err(const char *fmt, ...)
{
    int      n;
    char     line[4096];
    va_list  args;

    n = snprintf(line, sizeof(line), "perstack: ");

    va_start(args, fmt);
    n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, args);
    va_end(args);

    if (n > (int) sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }

    line[n++] = '\n';

    (void) demo_write_all(STDERR_FILENO, line, (size_t) n);
}


void
demo_out(const char *p, size_t n)
{
    if (demo_write_all(STDOUT_FILENO, p, n) != 0) {
        demo_err("cannot write to stdout: %s", strerror(errno));
        exit(1);
    }
}


void
demo_oom(void)
{
    demo_err("out of memory");
    exit(1);
}


/* growing buffers */

void
demo_buf_reserve(demo_buf_t *b, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->len + n + 1 <= b->cap) {
        return;
    }

    cap = b->cap ? b->cap : 256;

    while (cap < b->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            demo_oom();
        }

        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        demo_oom();
    }

    b->data = p;
    b->cap = cap;
}


void
demo_buf_add(demo_buf_t *b, const char *p, size_t n)
{
    demo_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}


void
demo_buf_str(demo_buf_t *b, const char *s)
{
    demo_buf_add(b, s, strlen(s));
}


void
demo_buf_fmt(demo_buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    if (n < 0) {
        demo_oom();
    }

    demo_buf_reserve(b, (size_t) n);

    va_start(args, fmt);
    (void) vsnprintf(b->data + b->len, (size_t) n + 1, fmt, args);
    va_end(args);

    b->len += (size_t) n;
}


void
demo_buf_reset(demo_buf_t *b)
{
    b->len = 0;

    if (b->data) {
        b->data[0] = '\0';
    }
}


const char *
demo_buf_cstr(demo_buf_t *b)
{
    return b->data ? b->data : "";
}


/*
 * The length of the valid UTF-8 sequence at p (no overlong forms, no
 * surrogates, at most U+10FFFF), or 0.
 */

static size_t
demo_utf8_len(const unsigned char *p, size_t avail)
{
    size_t    n, i;
    uint32_t  c, min;

    if (p[0] < 0x80) {
        return 1;
    }

    if ((p[0] & 0xe0) == 0xc0) {
        n = 2; c = p[0] & 0x1f; min = 0x80;

    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3; c = p[0] & 0x0f; min = 0x800;

    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4; c = p[0] & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (avail < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return n;
}


/*
 * A JSON string literal: quotes, backslashes and control characters are
 * escaped, bytes that are not valid UTF-8 become U+FFFD.
 */

void
demo_buf_json_n(demo_buf_t *b, const char *s, size_t len)
{
    size_t                k;
    const unsigned char  *p, *end, *run;

    p = (const unsigned char *) s;
    end = p + len;

    demo_buf_reserve(b, len + 2);
    demo_buf_add(b, "\"", 1);

    while (p < end) {

        /* copy the longest plain stretch at once */

        run = p;

        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
            p++;
        }

        if (p > run) {
            demo_buf_add(b, (const char *) run, (size_t) (p - run));
        }

        if (p == end) {
            break;
        }

        switch (*p) {

        case '"':
            demo_buf_add(b, "\\\"", 2);
            break;

        case '\\':
            demo_buf_add(b, "\\\\", 2);
            break;

        case '\n':
            demo_buf_add(b, "\\n", 2);
            break;

        case '\r':
            demo_buf_add(b, "\\r", 2);
            break;

        case '\t':
            demo_buf_add(b, "\\t", 2);
            break;

        case '\b':
            demo_buf_add(b, "\\b", 2);
            break;

        case '\f':
            demo_buf_add(b, "\\f", 2);
            break;

        default:
            if (*p < 0x20 || *p == 0x7f) {
                demo_buf_fmt(b, "\\u%04x", *p);
                break;
            }

            k = demo_utf8_len(p, (size_t) (end - p));

            if (k == 0) {
                demo_buf_add(b, "\\ufffd", 6);
                break;
            }

            demo_buf_add(b, (const char *) p, k);
            p += k;
            continue;
        }

        p++;
    }

    demo_buf_add(b, "\"", 1);
}


void
demo_buf_json(demo_buf_t *b, const char *s)
{
    demo_buf_json_n(b, s, strlen(s));
}


/*
 * An empty b filled with n bytes: unit repeated, then pad up to n (pad is
 * one ASCII byte): valid UTF-8 whose characters straddle many cut points.
 */

void
demo_buf_repeat(demo_buf_t *b, size_t n, const char *unit, char pad)
{
    size_t  ulen;

    ulen = strlen(unit);

    demo_buf_reserve(b, n + 1);

    while (b->len + ulen <= n) {
        memcpy(b->data + b->len, unit, ulen);
        b->len += ulen;
    }

    memset(b->data + b->len, pad, n - b->len);
    b->len = n;
    b->data[n] = '\0';
}


/* a whole file into b; -1 if it cannot be read */

int
demo_read_file(const char *path, demo_buf_t *b)
{
    int      fd;
    char     chunk[8192];
    ssize_t  n;

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return -1;
    }

    for ( ;; ) {
        n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            (void) close(fd);
            return -1;
        }

        if (n == 0) {
            break;
        }

        demo_buf_add(b, chunk, (size_t) n);
    }

    (void) close(fd);

    return 0;
}


/* time, ids, numbers */

long long
demo_now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
demo_sleep_ms(long ms)
{
    struct timespec  ts, rem;

    if (ms <= 0) {
        return;
    }

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;

    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) {
        ts = rem;
    }
}


static uint64_t
demo_mix(uint64_t x)
{
    /* splitmix64's finalizer */

    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;

    return x;
}


/* a random looking id of DEMO_ID_LEN lowercase letters and digits */

void
demo_make_id(char *out)
{
    int               i;
    uint64_t          x;
    struct timespec   ts;
    static uint64_t   seed, counter;
    static const char  alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";

    if (seed == 0) {
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        seed = demo_mix((uint64_t) ts.tv_sec * 1000000007ULL
                        ^ (uint64_t) ts.tv_nsec
                        ^ ((uint64_t) getpid() << 40)) | 1;
    }

    counter++;
    x = 0;

    for (i = 0; i < DEMO_ID_LEN; i++) {
        if (i % 12 == 0) {
            x = demo_mix(seed + counter * 0x9e3779b97f4a7c15ULL + (uint64_t) i);
        }

        /* a letter first, as cuid2 does */
        if (i == 0) {
            out[i] = alphabet[10 + x % 26];
            x /= 26;

        } else {
            out[i] = alphabet[x % 36];
            x /= 36;
        }
    }

    out[DEMO_ID_LEN] = '\0';
}


/* a job or checkpoint id: safe as a file name */

int
demo_valid_id(const char *s)
{
    size_t  n;

    n = strlen(s);

    if (n == 0 || n > DEMO_MAX_ID) {
        return 0;
    }

    for ( /* void */ ; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* a whole decimal integer, optional sign; 0 on success */

int
demo_parse_long(const char *s, long *out)
{
    long   v;
    char  *end;

    if (*s == '\0') {
        return -1;
    }

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || *end != '\0' || end == s) {
        return -1;
    }

    *out = v;

    return 0;
}


long
demo_query_number(long dflt)
{
    long  v;

    if (demo_parse_long(demo.query, &v) != 0) {
        return dflt;
    }

    return v;
}


/*
 * forkbomb: forks children that sleep until fork fails (a positive query
 * caps their number, default 4096), reports how many it got and the
 * errno in a {"type":"forkbomb"} event, then kills and reaps them.
 */

/* a short name of errno, for the tests to compare */

const char *
demo_errno_name(int err)
{
    switch (err) {
    case 0:
        return "";
    case EAGAIN:
        return "EAGAIN";
    case ENOMEM:
        return "ENOMEM";
    case EPERM:
        return "EPERM";
    case ENOSYS:
        return "ENOSYS";
    case ENETUNREACH:
        return "ENETUNREACH";
    case EHOSTUNREACH:
        return "EHOSTUNREACH";
    case ECONNREFUSED:
        return "ECONNREFUSED";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EACCES:
        return "EACCES";
    case EINVAL:
        return "EINVAL";
    default:
        return "other";
    }
}
