
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Unit tests of the JSON writer.
 */


#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_perstack_writer.h"
#include "check.h"


/* a grow function that fails once the text would exceed *limit */

static u_char *
limited(void *data, u_char *old, size_t used, size_t size)
{
    size_t  *limit = data;

    if (size > *limit) {
        return NULL;
    }

    return realloc(old, size);
}


static void
test_text(void)
{
    ngx_http_perstack_jw_t  jw;

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);

    ngx_http_perstack_jw_raw(&jw, "{\"type\":");
    ngx_http_perstack_jw_str(&jw, (u_char *) "a\"b\\c\n\x01", 7);
    ngx_http_perstack_jw_raw(&jw, ",\"n\":");
    ngx_http_perstack_jw_int(&jw, -42);
    ngx_http_perstack_jw_raw(&jw, ",\"u\":");
    ngx_http_perstack_jw_uint(&jw, 18446744073709551615ULL);
    ngx_http_perstack_jw_raw(&jw, "}");

    CHECK(!ngx_http_perstack_jw_failed(&jw));
    CHECK_LIT(jw.start, ngx_http_perstack_jw_len(&jw),
              "{\"type\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":-42,"
              "\"u\":18446744073709551615}");

    free(jw.start);

    /* invalid UTF-8 becomes U+FFFD, escaped as json_escape() does */

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);
    ngx_http_perstack_jw_str(&jw, (u_char *) "a\xff" "b", 3);

    CHECK_LIT(jw.start, ngx_http_perstack_jw_len(&jw),
              "\"a\\ufffdb\"");

    free(jw.start);
}


static void
test_values(void)
{
    char                    errbuf[128];
    yajl_val                tree;
    ngx_http_perstack_jw_t  jw;

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);

    ngx_http_perstack_jw_open(&jw, '[');
    ngx_http_perstack_jw_open(&jw, '{');
    ngx_http_perstack_jw_key(&jw, (u_char *) "id", 2);
    ngx_http_perstack_jw_value_str(&jw, (u_char *) "x", 1);
    ngx_http_perstack_jw_key(&jw, (u_char *) "args", 4);
    ngx_http_perstack_jw_open(&jw, '{');
    ngx_http_perstack_jw_close(&jw);
    ngx_http_perstack_jw_key(&jw, (u_char *) "list", 4);
    ngx_http_perstack_jw_open(&jw, '[');
    ngx_http_perstack_jw_value_raw(&jw, (u_char *) "1.5e3", 5);
    ngx_http_perstack_jw_value_raw(&jw, (u_char *) "null", 4);
    ngx_http_perstack_jw_open(&jw, '[');
    ngx_http_perstack_jw_close(&jw);
    ngx_http_perstack_jw_value_str(&jw, (u_char *) "", 0);
    ngx_http_perstack_jw_close(&jw);
    ngx_http_perstack_jw_close(&jw);
    ngx_http_perstack_jw_value_raw(&jw, (u_char *) "true", 4);
    ngx_http_perstack_jw_close(&jw);

    CHECK(!ngx_http_perstack_jw_failed(&jw));
    CHECK_UINT(jw.depth, 0);
    CHECK_LIT(jw.start, ngx_http_perstack_jw_len(&jw),
              "[{\"id\":\"x\",\"args\":{},\"list\":[1.5e3,null,[],\"\"]},"
              "true]");

    /* what it wrote is JSON */

    ngx_http_perstack_jw_rawn(&jw, (u_char *) "", 1);

    tree = yajl_tree_parse((char *) jw.start, errbuf, sizeof(errbuf));
    CHECK(tree != NULL && YAJL_IS_ARRAY(tree));
    yajl_tree_free(tree);

    free(jw.start);

    /* a close without an open fails */

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);
    ngx_http_perstack_jw_close(&jw);
    CHECK(ngx_http_perstack_jw_failed(&jw));
    free(jw.start);
}


static void
test_bounds(void)
{
    int                     i;
    size_t                  limit;
    ngx_http_perstack_jw_t  jw;

    /* over max: failed, and every later call does nothing */

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 300);

    for (i = 0; i < 100; i++) {
        ngx_http_perstack_jw_raw(&jw, "0123456789");
    }

    CHECK(ngx_http_perstack_jw_failed(&jw));
    CHECK(ngx_http_perstack_jw_len(&jw) <= 300);
    CHECK(jw.end - jw.start <= 300);

    free(jw.start);

    /* no memory: failed */

    limit = 1000;
    ngx_http_perstack_jw_init(&jw, limited, &limit, 0);

    for (i = 0; i < 1000; i++) {
        ngx_http_perstack_jw_str(&jw, (u_char *) "abc", 3);
    }

    CHECK(ngx_http_perstack_jw_failed(&jw));
    CHECK(ngx_http_perstack_jw_len(&jw) <= 1000);

    free(jw.start);

    /* nesting past the depth limit fails */

    ngx_http_perstack_jw_init(&jw, ngx_http_perstack_jw_malloc, NULL, 0);

    for (i = 0; i < NGX_HTTP_PERSTACK_JSON_DEPTH_MAX + 1; i++) {
        ngx_http_perstack_jw_open(&jw, '[');
    }

    CHECK(ngx_http_perstack_jw_failed(&jw));

    free(jw.start);
}


int
main(void)
{
    test_text();
    test_values();
    test_bounds();

    return check_done("test_writer");
}
