/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * perstack-demo, a small JSON reader, enough for checkpoints and answers: the
 * string members of a flat object, the items of an array.
 */


#include "demo.h"


typedef struct {
    const char  *p;
    const char  *end;
} demo_json_t;


static void demo_json_ws(demo_json_t *j);
static int demo_json_hex4(demo_json_t *j, uint32_t *out);
static void demo_buf_utf8(demo_buf_t *b, uint32_t c);
static int demo_json_string(demo_json_t *j, demo_buf_t *out);
static int demo_json_skip(demo_json_t *j, int depth);


/* a small JSON reader: the members of a flat object (checkpoints, answers) */

static void
demo_json_ws(demo_json_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
demo_json_hex4(demo_json_t *j, uint32_t *out)
{
    int       i;
    char      c;
    uint32_t  v;

    if (j->end - j->p < 4) {
        return -1;
    }

    v = 0;

    for (i = 0; i < 4; i++) {
        c = *j->p++;
        v <<= 4;

        if (c >= '0' && c <= '9') {
            v |= (uint32_t) (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t) (c - 'a' + 10);

        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t) (c - 'A' + 10);

        } else {
            return -1;
        }
    }

    *out = v;

    return 0;
}


static void
demo_buf_utf8(demo_buf_t *b, uint32_t c)
{
    char  s[4];

    if (c < 0x80) {
        s[0] = (char) c;
        demo_buf_add(b, s, 1);

    } else if (c < 0x800) {
        s[0] = (char) (0xc0 | (c >> 6));
        s[1] = (char) (0x80 | (c & 0x3f));
        demo_buf_add(b, s, 2);

    } else if (c < 0x10000) {
        s[0] = (char) (0xe0 | (c >> 12));
        s[1] = (char) (0x80 | ((c >> 6) & 0x3f));
        s[2] = (char) (0x80 | (c & 0x3f));
        demo_buf_add(b, s, 3);

    } else {
        s[0] = (char) (0xf0 | (c >> 18));
        s[1] = (char) (0x80 | ((c >> 12) & 0x3f));
        s[2] = (char) (0x80 | ((c >> 6) & 0x3f));
        s[3] = (char) (0x80 | (c & 0x3f));
        demo_buf_add(b, s, 4);
    }
}


/* a string at j->p, decoded into out (NULL to skip it) */

static int
demo_json_string(demo_json_t *j, demo_buf_t *out)
{
    char       c;
    uint32_t   u, lo;
    demo_buf_t  skip;

    memset(&skip, 0, sizeof(skip));

    if (out == NULL) {
        out = &skip;
    }

    if (j->p == j->end || *j->p != '"') {
        return -1;
    }

    j->p++;

    while (j->p < j->end) {
        c = *j->p++;

        if (c == '"') {
            free(skip.data);
            return 0;
        }

        if ((unsigned char) c < 0x20) {
            break;
        }

        if (c != '\\') {
            demo_buf_add(out, &c, 1);
            continue;
        }

        if (j->p == j->end) {
            break;
        }

        c = *j->p++;

        switch (c) {
        case '"': case '\\': case '/':
            demo_buf_add(out, &c, 1);
            continue;
        case 'b':
            demo_buf_add(out, "\b", 1);
            continue;
        case 'f':
            demo_buf_add(out, "\f", 1);
            continue;
        case 'n':
            demo_buf_add(out, "\n", 1);
            continue;
        case 'r':
            demo_buf_add(out, "\r", 1);
            continue;
        case 't':
            demo_buf_add(out, "\t", 1);
            continue;
        case 'u':
            break;
        default:
            goto invalid;
        }

        if (demo_json_hex4(j, &u) != 0) {
            break;
        }

        if (u >= 0xd800 && u <= 0xdbff) {
            if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                j->p += 2;

                if (demo_json_hex4(j, &lo) != 0) {
                    break;
                }

                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);

                } else {
                    u = 0xfffd;
                    j->p -= 6;
                }

            } else {
                u = 0xfffd;
            }

        } else if (u >= 0xdc00 && u <= 0xdfff) {
            u = 0xfffd;
        }

        demo_buf_utf8(out, u);
    }

invalid:

    free(skip.data);

    return -1;
}


/* skip any value */

static int
demo_json_skip(demo_json_t *j, int depth)
{
    char  close;

    if (depth > 64) {
        return -1;
    }

    demo_json_ws(j);

    if (j->p == j->end) {
        return -1;
    }

    if (*j->p == '"') {
        return demo_json_string(j, NULL);
    }

    if (*j->p == '{' || *j->p == '[') {
        close = (*j->p == '{') ? '}' : ']';
        j->p++;
        demo_json_ws(j);

        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }

        for ( ;; ) {
            if (close == '}') {
                demo_json_ws(j);

                if (demo_json_string(j, NULL) != 0) {
                    return -1;
                }

                demo_json_ws(j);

                if (j->p == j->end || *j->p++ != ':') {
                    return -1;
                }
            }

            if (demo_json_skip(j, depth + 1) != 0) {
                return -1;
            }

            demo_json_ws(j);

            if (j->p == j->end) {
                return -1;
            }

            if (*j->p == ',') {
                j->p++;
                continue;
            }

            if (*j->p++ == close) {
                return 0;
            }

            return -1;
        }
    }

    /* numbers, true, false, null */

    if (!strchr("-0123456789tfn", *j->p)) {
        return -1;
    }

    while (j->p < j->end && strchr("+-.0123456789eEtruefalsn", *j->p)) {
        j->p++;
    }

    return 0;
}


/*
 * The members of a JSON object text: for each key in keys the decoded
 * string, or the text of another value, goes to the matching buffer of
 * values.  Returns -1 when the text is not a JSON object.
 */

int
demo_json_strings(const char *text, size_t len, const char **keys,
    demo_buf_t *values)
{
    int          i;
    const char  *start;
    demo_buf_t   key;
    demo_json_t  j;

    memset(&key, 0, sizeof(key));

    j.p = text;
    j.end = text + len;

    demo_json_ws(&j);

    if (j.p == j.end || *j.p++ != '{') {
        return -1;
    }

    demo_json_ws(&j);

    if (j.p < j.end && *j.p == '}') {
        j.p++;
        goto done;
    }

    for ( ;; ) {
        demo_json_ws(&j);
        demo_buf_reset(&key);

        if (demo_json_string(&j, &key) != 0) {
            goto invalid;
        }

        demo_json_ws(&j);

        if (j.p == j.end || *j.p++ != ':') {
            goto invalid;
        }

        demo_json_ws(&j);

        for (i = 0; keys[i]; i++) {
            if (strcmp(keys[i], demo_buf_cstr(&key)) == 0) {
                break;
            }
        }

        if (keys[i] && j.p < j.end && *j.p == '"') {
            demo_buf_reset(&values[i]);

            if (demo_json_string(&j, &values[i]) != 0) {
                goto invalid;
            }

        } else {
            start = j.p;

            if (demo_json_skip(&j, 0) != 0) {
                goto invalid;
            }

            /* other values of wanted keys: their text as it is */

            if (keys[i]) {
                demo_buf_reset(&values[i]);
                demo_buf_add(&values[i], start, (size_t) (j.p - start));
            }
        }

        demo_json_ws(&j);

        if (j.p == j.end) {
            goto invalid;
        }

        if (*j.p == ',') {
            j.p++;
            continue;
        }

        if (*j.p++ == '}') {
            break;
        }

        goto invalid;
    }

done:

    demo_json_ws(&j);

    if (j.p != j.end) {
        goto invalid;
    }

    free(key.data);
    return 0;

invalid:

    free(key.data);
    return -1;
}


/* the text of a JSON array without its brackets, white space trimmed */

void
demo_json_array_items(demo_buf_t *array, demo_buf_t *out)
{
    const char  *p, *end;

    p = demo_buf_cstr(array);
    end = p + array->len;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'
                       || end[-1] == '\r'))
    {
        end--;
    }

    demo_buf_reset(out);

    if (end - p < 2 || *p != '[' || end[-1] != ']') {
        return;
    }

    demo_buf_add(out, p + 1, (size_t) (end - p - 2));
}


/* the first item of a JSON array's items, as text */

void
demo_json_first_item(demo_buf_t *items, demo_buf_t *out)
{
    const char   *start;
    demo_json_t   j;

    demo_buf_reset(out);

    j.p = demo_buf_cstr(items);
    j.end = j.p + items->len;

    demo_json_ws(&j);
    start = j.p;

    if (j.p < j.end && demo_json_skip(&j, 0) == 0) {
        demo_buf_add(out, start, (size_t) (j.p - start));
    }
}
