
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * Random ids and credentials, from the kernel's randomness.
 */


#ifndef _NGX_HTTP_PERSTACK_RANDOM_H_INCLUDED_
#define _NGX_HTTP_PERSTACK_RANDOM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* len random bytes: NGX_ERROR only when no source could give them */
ngx_int_t ngx_http_perstack_random_bytes(u_char *dst, size_t len);

/* len characters of alphabet (at most 256) */
void ngx_http_perstack_random_string(u_char *dst, size_t len,
    const char *alphabet);


#endif /* _NGX_HTTP_PERSTACK_RANDOM_H_INCLUDED_ */
