
/*
 * Copyright (C) The ngx_http_perstack_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_perstack_random.h"

#include <openssl/rand.h>

#if (NGX_LINUX)
#include <sys/random.h>
#endif


/*
 * The kernel's randomness.  getrandom() does not block once the pool was
 * initialised, which it is long before nginx runs; if it fails all the
 * same, the bytes come from libcrypto's generator, seeded by the kernel.
 */

ngx_int_t
ngx_http_perstack_random_bytes(u_char *dst, size_t len)
{
    ssize_t  n;

    while (len) {
#if (NGX_LINUX)
        n = getrandom(dst, len, GRND_NONBLOCK);
#else
        n = -1;
#endif

        if (n <= 0) {
            return (RAND_bytes(dst, (int) len) == 1) ? NGX_OK : NGX_ERROR;
        }

        dst += n;
        len -= n;
    }

    return NGX_OK;
}


/* len characters of alphabet (at most 256), from the kernel's randomness */

void
ngx_http_perstack_random_string(u_char *dst, size_t len,
    const char *alphabet)
{
    u_char      bytes[64];
    size_t      n;
    ngx_uint_t  i, size;

    size = ngx_strlen(alphabet);

    while (len) {
        n = ngx_min(len, sizeof(bytes));

        if (ngx_http_perstack_random_bytes(bytes, n) != NGX_OK) {
            /* ids need to be unique, not secret */
            for (i = 0; i < n; i++) {
                bytes[i] = (u_char) ngx_random();
            }
        }

        /* a slight bias for alphabets that do not divide 256 is harmless */
        for (i = 0; i < n; i++) {
            *dst++ = alphabet[bytes[i] % size];
        }

        len -= n;
    }
}
