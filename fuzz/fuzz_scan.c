
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * libFuzzer target: the scanner that reads a runtime event as its line
 * streams through (ngx_http_perstack_scan_*): whether the line is one JSON
 * object the module takes, and its "type", "expertKey", "error" fields and
 * checkpoint.pendingToolCalls.
 *
 * Input:
 *
 *     byte 0        how the text is cut: b < 0x80, pieces of b + 1 bytes;
 *                   else pieces of 0 to 2^(b & 0x0f) bytes, their sizes
 *                   drawn from the seed (b >> 4) & 7, empty ones included
 *     the rest      the text: one line, without its "\n"
 *
 * A piece is never shorter than 1/512 of the text (empty ones aside):
 * yajl lexes a string it holds again each time it is given more of it, so
 * that a long string fed in tiny pieces costs its length squared.
 *
 * The text is scanned twice, fed whole and in those pieces, each from a
 * buffer of its exact size.  Checked:
 *   - the result is OK or INVALID; error is NULL on OK, else one of the
 *     scanner's reasons; once INVALID, every later feed() and end()
 *     returns it, with the same reason;
 *   - both ways give the same result, and on OK the same fields: type,
 *     expertKey, error.name, .message and .statusCode, and
 *     pendingToolCalls byte for byte (on INVALID the fields are what was
 *     read before the fault was seen, which depends on the cuts: not
 *     compared);
 *   - against fuzz_util.c's own validator and measure: OK exactly when the
 *     text is one JSON text (RFC 8259, valid UTF-8) whose value is an
 *     object, at most 64 deep, with no escaped surrogate without its pair,
 *     no number over 256 characters and no top-level "type" that starts
 *     with "perstack."; a reason given is true of the text;
 *   - on OK the fields are sane: a type of 1 to 64 bytes of
 *     [A-Za-z0-9_.:-] or none, an expertKey of at most 512 bytes (513:
 *     longer), error strings within their bounds in valid UTF-8,
 *     pendingToolCalls a JSON array;
 *   - when the text is at most 64 KiB and the tree builder
 *     (ngx_http_perstack_json_tree(), a second reader of the same text)
 *     takes it: the fields are the tree's: the last top-level "type"
 *     when it is a string and a valid type, the last "expertKey" string, the
 *     last "name" and "message" strings (cut to 256 and 4096 bytes on a
 *     character's boundary) and integer "statusCode" of the top-level
 *     "error" objects, and the last "pendingToolCalls" array of the
 *     "checkpoint" objects, which the scanner's copy, parsed, equals node
 *     for node.  The tree refuses two things the scanner takes, which are
 *     not compared: "\u0000" in a string, and more than 65536 values.
 *
 * Known, and accepted here: error.message may come out shorter than 4096
 * bytes when its text, escapes included, is longer than that: the scanner
 * gives yajl only the first NGX_HTTP_PERSTACK_SCAN_STRING_MAX bytes of a
 * string's text.  What it keeps is then the start of the message, cut on a
 * character's boundary, and at least 682 bytes (4096 / 6: "\u0001" is six
 * bytes of text for one of the message).
 *
 * Known, and accepted too: a high surrogate escaped and followed by
 * another escape than "\u" ("\ud800\n") is refused as "a bad escape",
 * not as "an unpaired surrogate".
 *
 * Compiled with -DFUZZ_TOLERATE_YAJL, the target accepts yajl's leniency
 * of a string left open after the value ({"a":1} "...), which the scanner
 * inherits: such a text is only compared with itself, cut.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_scan.h"
#include "fuzz.h"


/* a text longer than this is not compared with the tree */
#define TREE_TEXT_MAX  65536

/* the least a message cut short by the scanner keeps */
#define MESSAGE_LEAST  (NGX_HTTP_PERSTACK_SCAN_STRING_MAX / 6)


static const char  *reasons[] = {
    "not JSON",
    "not a JSON object",
    "nested too deep",
    "a number is too long",
    "a type in the module's namespace",
    "an unpaired surrogate",
    "a bad escape",
    "a control character in a string",
    "invalid UTF-8",
    NULL
};

#define REASON_PERSTACK  "a type in the module's namespace"


/* what the tree says the scanner should have read */
typedef struct {
    /* a top-level "type" string starts with "perstack." */
    int                          perstack;
    const char                  *type;
    const char                  *expert;
    const char                  *name;
    const char                  *message;
    int                          has_status;
    long long                    status;
    yajl_val                     pending;
} expect_t;


static void scan(ngx_http_perstack_scan_t *s, const u_char *text, size_t len,
    int cut, u_char how);
static void check_sane(const ngx_http_perstack_scan_t *s);
static void check_same(const ngx_http_perstack_scan_t *a,
    const ngx_http_perstack_scan_t *b);
static void check_reason(const ngx_http_perstack_scan_t *s, int valid,
    int top, const fuzz_json_measure_t *m, int perstack);
static void expect_tree(yajl_val root, expect_t *e);
static void check_tree(const ngx_http_perstack_scan_t *s, const expect_t *e);
static void same_node(yajl_val a, yajl_val b);
static int type_valid(const u_char *p, size_t len);
static size_t cut(const u_char *p, size_t len, size_t max);
static void scan_fail(int line, const char *what);

/* FUZZ_CHECK(), with the text printed first */
#define fail(what)  scan_fail(__LINE__, what)


static const u_char  *fuzz_text;
static size_t         fuzz_text_len;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                        valid, top, takes, perstack;
    size_t                     len;
    u_char                    *text;
    yajl_val                   tree;
    expect_t                   e;
    const char                *err;
    fuzz_json_measure_t        m;
    ngx_http_perstack_scan_t   whole, pieces;

    if (size == 0) {
        return 0;
    }

    len = size - 1;
    text = fuzz_dup(data + 1, len);

    fuzz_text = text;
    fuzz_text_len = len;

    memset(&whole, 0, sizeof(ngx_http_perstack_scan_t));
    memset(&pieces, 0, sizeof(ngx_http_perstack_scan_t));

    scan(&whole, text, len, 0, 0);
    scan(&pieces, text, len, 1, data[0]);

    check_sane(&whole);

    if (whole.rc != pieces.rc) {
        fprintf(stderr, "whole: %d (%s), in pieces: %d (%s)\n",
                (int) whole.rc, whole.error ? whole.error : "-",
                (int) pieces.rc, pieces.error ? pieces.error : "-");
        fail("the same result whole and in pieces");
    }

    if (whole.rc == NGX_HTTP_PERSTACK_SCAN_OK) {
        check_same(&whole, &pieces);
    }

#ifdef FUZZ_TOLERATE_YAJL
    if (whole.rc == NGX_HTTP_PERSTACK_SCAN_OK && whole.in_string) {
        /* a string left open after the value: yajl's, not JSON */
        goto done;
    }
#endif

    valid = fuzz_json_valid(text, len, 0, &top);
    memset(&m, 0, sizeof(fuzz_json_measure_t));

    if (valid) {
        fuzz_json_measure(text, len, &m);
    }

    takes = valid && top == '{' && m.depth <= NGX_HTTP_PERSTACK_JSON_DEPTH_MAX
            && !m.lone_surrogate
            && m.number_max <= NGX_HTTP_PERSTACK_SCAN_NUMBER_MAX;

    /* the tree, where it can tell about "perstack." types and fields */

    tree = NULL;
    perstack = -1;
    memset(&e, 0, sizeof(expect_t));

    if (takes && len <= TREE_TEXT_MAX) {
        err = NULL;
        tree = ngx_http_perstack_json_tree(text, len, 0, &err);

        if (tree == NULL) {
            /* the two things only the tree refuses */
            if (!m.nul && m.values <= NGX_HTTP_PERSTACK_JSON_NODES_MAX) {
                fprintf(stderr, "    tree: %s\n", err ? err : "-");
                fail("the tree of a text the scanner may take");
            }

        } else {
            FUZZ_CHECK(YAJL_IS_OBJECT(tree));
            expect_tree(tree, &e);
            perstack = e.perstack;
        }
    }

    if (whole.rc == NGX_HTTP_PERSTACK_SCAN_OK) {

        if (!takes || perstack == 1) {
            fprintf(stderr, "    valid %d, top '%c', depth %lu, "
                    "lone surrogate %d, longest number %lu, perstack %d\n",
                    valid, valid ? top : '-', (unsigned long) m.depth,
                    (int) m.lone_surrogate, (unsigned long) m.number_max,
                    perstack);
            fail("OK only for one JSON object the module takes");
        }

        if (tree != NULL) {
            check_tree(&whole, &e);
        }

    } else {
        check_reason(&whole, valid, top, &m, perstack);

        if (takes && perstack == 0) {
            fprintf(stderr, "    refused: %s\n", whole.error);
            fail("a JSON object the module takes is OK");
        }
    }

    if (tree != NULL) {
        yajl_tree_free(tree);
    }

#ifdef FUZZ_TOLERATE_YAJL
done:
#endif

    ngx_http_perstack_scan_free(&whole);
    ngx_http_perstack_scan_free(&pieces);

    FUZZ_CHECK(whole.pending == NULL && whole.gen == NULL
               && whole.yajl == NULL);

    free(text);

    return 0;
}


/*
 * Feeds the text whole, or in the pieces "how" says, each from a buffer of
 * its exact size, then ends the line.
 */

static void
scan(ngx_http_perstack_scan_t *s, const u_char *text, size_t len, int cut,
    u_char how)
{
    size_t                       off, n, least;
    u_char                      *buf;
    uint32_t                     rnd;
    unsigned                     empty;
    const char                  *error;
    ngx_http_perstack_scan_rc_e  rc, prev;

    FUZZ_CHECK(ngx_http_perstack_scan_start(s) == 0);

    rnd = 0x9e3779b9u * (1 + ((how >> 4) & 7));
    least = len / 512;
    empty = 0;
    off = 0;
    prev = NGX_HTTP_PERSTACK_SCAN_OK;
    error = NULL;

    do {
        if (!cut) {
            n = len;

        } else if (how < 0x80) {
            n = how + 1;

        } else {
            rnd ^= rnd << 13;
            rnd ^= rnd >> 17;
            rnd ^= rnd << 5;
            n = rnd % ((1u << (how & 0x0f)) + 1);

            if (n == 0 && ++empty > 4) {
                n = 1;
            }

            if (n) {
                empty = 0;
            }
        }

        if (n && n < least) {
            n = least;
        }

        if (n > len - off) {
            n = len - off;
        }

        buf = fuzz_dup(text + off, n);
        rc = ngx_http_perstack_scan_feed(s, buf, n);
        free(buf);

        off += n;

        FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK
                   || rc == NGX_HTTP_PERSTACK_SCAN_INVALID);
        FUZZ_CHECK(rc == s->rc);

        if (prev == NGX_HTTP_PERSTACK_SCAN_INVALID) {
            /* refused once, refused for good, for the same reason */
            FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_SCAN_INVALID);
            FUZZ_CHECK(s->error == error);
        }

        prev = rc;
        error = s->error;

    } while (off < len);

    rc = ngx_http_perstack_scan_end(s);

    FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_SCAN_OK
               || rc == NGX_HTTP_PERSTACK_SCAN_INVALID);
    FUZZ_CHECK(rc == s->rc);

    if (prev == NGX_HTTP_PERSTACK_SCAN_INVALID) {
        FUZZ_CHECK(rc == NGX_HTTP_PERSTACK_SCAN_INVALID && s->error == error);
    }
}


static void
check_sane(const ngx_http_perstack_scan_t *s)
{
    int     top;
    size_t  i;

    if (s->rc != NGX_HTTP_PERSTACK_SCAN_OK) {
        FUZZ_CHECK(s->error != NULL);

        for (i = 0; reasons[i]; i++) {
            if (strcmp(s->error, reasons[i]) == 0) {
                return;
            }
        }

        fprintf(stderr, "    error: %s\n", s->error);
        fail("a reason of the scanner's");
    }

    FUZZ_CHECK(s->error == NULL);

    FUZZ_CHECK(s->type_len <= NGX_HTTP_PERSTACK_TYPE_MAX);
    FUZZ_CHECK(s->type_len == 0 || type_valid(s->type, s->type_len));

    FUZZ_CHECK(s->has_expert || s->expert_len == 0);
    FUZZ_CHECK(s->expert_len <= NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX + 1);
    FUZZ_CHECK(s->expert_len > NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX
               || fuzz_utf8_valid(s->expert, s->expert_len));

    FUZZ_CHECK(s->has_error_name || s->error_name_len == 0);
    FUZZ_CHECK(s->error_name_len <= NGX_HTTP_PERSTACK_SCAN_NAME_MAX);
    FUZZ_CHECK(fuzz_utf8_valid(s->error_name, s->error_name_len));

    FUZZ_CHECK(s->has_error_message || s->error_message_len == 0);
    FUZZ_CHECK(s->error_message_len <= NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX);
    FUZZ_CHECK(fuzz_utf8_valid(s->error_message, s->error_message_len));

    if (s->pending != NULL) {
        FUZZ_CHECK(s->pending_len <= NGX_HTTP_PERSTACK_SCAN_PENDING_MAX);

        if (!fuzz_json_valid(s->pending, s->pending_len, 0, &top)
            || top != '[')
        {
            fuzz_print("pendingToolCalls", s->pending, s->pending_len);
            fail("pendingToolCalls is a JSON array");
        }

    } else {
        FUZZ_CHECK(s->pending_len == 0);
    }
}


#define SAME(field)                                                           \
    do {                                                                      \
        if (a->field != b->field) {                                           \
            fprintf(stderr, "    " #field ": whole %lld, in pieces %lld\n",   \
                    (long long) a->field, (long long) b->field);             \
            fail("the same " #field " whole and in pieces");                  \
        }                                                                     \
    } while (0)

#define SAME_BYTES(field, len)                                                \
    do {                                                                      \
        SAME(len);                                                            \
        if (a->len <= sizeof(a->field)                                        \
            && memcmp(a->field, b->field, a->len) != 0)                       \
        {                                                                     \
            fuzz_print("whole", a->field, a->len);                            \
            fuzz_print("in pieces", b->field, b->len);                        \
            fail("the same " #field " whole and in pieces");                  \
        }                                                                     \
    } while (0)


static void
check_same(const ngx_http_perstack_scan_t *a, const ngx_http_perstack_scan_t *b)
{
    FUZZ_CHECK(b->error == NULL);

    SAME_BYTES(type, type_len);

    SAME(has_expert);
    SAME_BYTES(expert, expert_len);

    SAME(has_error_name);
    SAME_BYTES(error_name, error_name_len);
    SAME(has_error_message);
    SAME_BYTES(error_message, error_message_len);
    SAME(has_status_code);

    if (a->has_status_code) {
        SAME(status_code);
    }

    if ((a->pending == NULL) != (b->pending == NULL)
        || a->pending_len != b->pending_len
        || (a->pending
            && memcmp(a->pending, b->pending, a->pending_len) != 0))
    {
        fuzz_print("whole", a->pending, a->pending ? a->pending_len : 0);
        fuzz_print("in pieces", b->pending, b->pending ? b->pending_len : 0);
        fail("the same pendingToolCalls whole and in pieces");
    }
}


/* the reason for refusing the text is true of it */

static void
check_reason(const ngx_http_perstack_scan_t *s, int valid, int top,
    const fuzz_json_measure_t *m, int perstack)
{
    int          ok;
    const char  *err;

    err = s->error;

    if (!valid) {
        /* not JSON: any reason may be the first fault found */
        return;
    }

    if (strcmp(err, "not a JSON object") == 0) {
        ok = (top != '{');

    } else if (strcmp(err, "nested too deep") == 0) {
        ok = (m->depth > NGX_HTTP_PERSTACK_JSON_DEPTH_MAX);

    } else if (strcmp(err, "a number is too long") == 0) {
        ok = (m->number_max > NGX_HTTP_PERSTACK_SCAN_NUMBER_MAX);

    } else if (strcmp(err, "an unpaired surrogate") == 0) {
        ok = m->lone_surrogate;

    } else if (strcmp(err, "a bad escape") == 0) {
        /* known: "\ud800\n" is refused for its "\n" */
        ok = m->lone_surrogate;

    } else if (strcmp(err, REASON_PERSTACK) == 0) {
        /* the tree tells, when it was built */
        ok = (perstack != 0);

    } else {
        /* "not JSON", a bad escape, a control character, invalid UTF-8 */
        ok = 0;
    }

    if (!ok) {
        fprintf(stderr, "    refused: %s; top '%c', depth %lu, "
                "lone surrogate %d, longest number %lu, perstack %d\n",
                err, top, (unsigned long) m->depth, (int) m->lone_surrogate,
                (unsigned long) m->number_max, perstack);
        fail("the reason is true of the text");
    }
}


/* what the scanner should read, as the tree has it */

static void
expect_tree(yajl_val root, expect_t *e)
{
    size_t       i, j;
    yajl_val     v, w;
    const char  *k, *r;

    for (i = 0; i < root->u.object.len; i++) {
        k = root->u.object.keys[i];
        v = root->u.object.values[i];

        if (strcmp(k, "type") == 0 && !YAJL_IS_STRING(v)) {
            /* the last "type" counts, as classify() has it */
            e->type = NULL;

        } else if (strcmp(k, "type") == 0) {

            if (strncmp(v->u.string, "perstack.", 9) == 0) {
                e->perstack = 1;
            }

            e->type = type_valid((u_char *) v->u.string, strlen(v->u.string))
                      ? v->u.string : NULL;

        } else if (strcmp(k, "expertKey") == 0 && YAJL_IS_STRING(v)) {
            e->expert = v->u.string;

        } else if (strcmp(k, "error") == 0 && YAJL_IS_OBJECT(v)) {

            for (j = 0; j < v->u.object.len; j++) {
                k = v->u.object.keys[j];
                w = v->u.object.values[j];

                if (strcmp(k, "name") == 0 && YAJL_IS_STRING(w)) {
                    e->name = w->u.string;

                } else if (strcmp(k, "message") == 0 && YAJL_IS_STRING(w)) {
                    e->message = w->u.string;

                } else if (strcmp(k, "statusCode") == 0 && YAJL_IS_NUMBER(w))
                {
                    /* an integer of at most 18 digits, or none */
                    r = w->u.number.r;
                    r += (*r == '-');

                    e->has_status = (strlen(r) >= 1 && strlen(r) <= 18
                                     && strspn(r, "0123456789")
                                        == strlen(r));

                    if (e->has_status) {
                        e->status = strtoll(w->u.number.r, NULL, 10);
                    }
                }
            }

        } else if (strcmp(k, "checkpoint") == 0 && YAJL_IS_OBJECT(v)) {

            for (j = 0; j < v->u.object.len; j++) {
                if (strcmp(v->u.object.keys[j], "pendingToolCalls") == 0
                    && YAJL_IS_ARRAY(v->u.object.values[j]))
                {
                    e->pending = v->u.object.values[j];
                }
            }
        }
    }
}


static void
check_tree(const ngx_http_perstack_scan_t *s, const expect_t *e)
{
    size_t       n, want;
    yajl_val     copy;
    const char  *err;

    /* type */

    n = e->type ? strlen(e->type) : 0;

    if (s->type_len != n || (n && memcmp(s->type, e->type, n) != 0)) {
        fuzz_print("type", s->type, s->type_len);
        fuzz_print("the tree's", e->type, n);
        fail("the type is the tree's");
    }

    /* expertKey */

    FUZZ_CHECK(s->has_expert == (e->expert != NULL));

    if (e->expert) {
        n = strlen(e->expert);

        if (n > NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX) {
            FUZZ_CHECK(s->expert_len == NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX + 1);

        } else if (s->expert_len != n || memcmp(s->expert, e->expert, n)) {
            fuzz_print("expertKey", s->expert,
                       s->expert_len <= NGX_HTTP_PERSTACK_SCAN_EXPERT_MAX
                       ? s->expert_len : 0);
            fuzz_print("the tree's", e->expert, n);
            fail("the expertKey is the tree's");
        }
    }

    /* error.name: cut to its bound on a character's boundary */

    FUZZ_CHECK(s->has_error_name == (e->name != NULL));

    if (e->name) {
        n = cut((u_char *) e->name, strlen(e->name),
                NGX_HTTP_PERSTACK_SCAN_NAME_MAX);

        if (s->error_name_len != n || memcmp(s->error_name, e->name, n)) {
            fuzz_print("error.name", s->error_name, s->error_name_len);
            fuzz_print("the tree's", e->name, n);
            fail("error.name is the tree's");
        }
    }

    /* error.message: the same, or (known) its start, when its text is long */

    FUZZ_CHECK(s->has_error_message == (e->message != NULL));

    if (e->message) {
        n = strlen(e->message);
        want = cut((u_char *) e->message, n,
                   NGX_HTTP_PERSTACK_SCAN_MESSAGE_MAX);

        if (s->error_message_len > want
            || memcmp(s->error_message, e->message, s->error_message_len)
            || (s->error_message_len < want
                && (6 * n < NGX_HTTP_PERSTACK_SCAN_STRING_MAX
                    || s->error_message_len < MESSAGE_LEAST
                    || ((u_char) e->message[s->error_message_len] & 0xc0)
                       == 0x80)))
        {
            fuzz_print("error.message", s->error_message,
                       s->error_message_len);
            fuzz_print("the tree's", e->message, want);
            fail("error.message is the tree's");
        }
    }

    /* error.statusCode */

    FUZZ_CHECK(s->has_status_code == e->has_status);
    FUZZ_CHECK(!e->has_status || s->status_code == e->status);

    /* checkpoint.pendingToolCalls, parsed again */

    if (e->pending == NULL) {
        if (s->pending != NULL) {
            fuzz_print("pendingToolCalls", s->pending, s->pending_len);
            fail("no pendingToolCalls when the tree has no such array");
        }

        return;
    }

    if (s->pending == NULL) {
        fail("the pendingToolCalls the tree has");
    }

    err = NULL;
    copy = ngx_http_perstack_json_tree(s->pending, s->pending_len, 0, &err);

    if (copy == NULL) {
        fuzz_print("pendingToolCalls", s->pending, s->pending_len);
        fprintf(stderr, "    tree: %s\n", err ? err : "-");
        fail("pendingToolCalls makes a tree");
    }

    same_node(e->pending, copy);

    yajl_tree_free(copy);
}


static void
same_node(yajl_val a, yajl_val b)
{
    size_t  i, n;

    FUZZ_CHECK(a != NULL && b != NULL);

    if (a->type != b->type) {
        fprintf(stderr, "    types %d and %d\n", (int) a->type,
                (int) b->type);
        fail("pendingToolCalls equals the tree's");
    }

    switch (a->type) {

    case yajl_t_string:
        if (strcmp(a->u.string, b->u.string) != 0) {
            fuzz_print("string", a->u.string, strlen(a->u.string));
            fuzz_print("the copy's", b->u.string, strlen(b->u.string));
            fail("pendingToolCalls equals the tree's");
        }

        return;

    case yajl_t_number:
        if (strcmp(a->u.number.r, b->u.number.r) != 0) {
            fprintf(stderr, "    number %s, the copy's %s\n",
                    a->u.number.r, b->u.number.r);
            fail("pendingToolCalls equals the tree's");
        }

        return;

    case yajl_t_object:
        n = a->u.object.len;
        FUZZ_CHECK(n == b->u.object.len);

        for (i = 0; i < n; i++) {
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0) {
                fuzz_print("key", a->u.object.keys[i],
                           strlen(a->u.object.keys[i]));
                fuzz_print("the copy's", b->u.object.keys[i],
                           strlen(b->u.object.keys[i]));
                fail("pendingToolCalls equals the tree's");
            }

            same_node(a->u.object.values[i], b->u.object.values[i]);
        }

        return;

    case yajl_t_array:
        n = a->u.array.len;
        FUZZ_CHECK(n == b->u.array.len);

        for (i = 0; i < n; i++) {
            same_node(a->u.array.values[i], b->u.array.values[i]);
        }

        return;

    default:
        return;
    }
}


/* 1 to NGX_HTTP_PERSTACK_TYPE_MAX bytes of [A-Za-z0-9_.:-] */

static int
type_valid(const u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_PERSTACK_TYPE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] == '\0'
            || strchr("abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", p[i])
               == NULL)
        {
            return 0;
        }
    }

    return 1;
}


/* the longest start of p of at most max bytes that ends a character */

static size_t
cut(const u_char *p, size_t len, size_t max)
{
    size_t  n;

    if (len <= max) {
        return len;
    }

    for (n = max; n > 0 && (p[n] & 0xc0) == 0x80; n--) {
        /* void */
    }

    return n;
}


static void
scan_fail(int line, const char *what)
{
    fuzz_print("text", fuzz_text, fuzz_text_len);
    fuzz_fail(__FILE__, line, what);
}
